package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
)

// samplesFlag is --samples of run and saliency.
func samplesFlag() cli.Flag {
	return &cli.IntFlag{Name: "samples", Usage: "number `M` of sampled training rows of --curvature fisher-lowrank (M gradients) or gn-lowrank (M × outputs rows), or of the blocks of --block",
		DefaultText: fmt.Sprintf("%d with a low-rank curvature, every row with --block", prune.DefaultWoodburySamples), Category: "Method"}
}

// blockFlag is --block of run and saliency.
func blockFlag() cli.Flag {
	return &cli.StringFlag{Name: "block", Usage: "block OBS: invert the curvature (exact, gn or fisher) in diagonal blocks of `B` consecutive parameters, or 'rows' for one block per unit (its weights and bias); O(B·W) memory",
		DefaultText: "global OBS", Category: "Method"}
}

// isLowRank reports whether the curvature is kept in a Woodbury form.
func isLowRank(curvature string) bool {
	k, err := hessian.KindNamed(curvature)
	return err == nil && k.LowRank
}

// isBlock reports whether the settings select block OBS.
func (s runSettings) isBlock() bool { return s.Block > 0 || s.BlockRows }

// checkOBSVariantFlags checks --samples, --block and --joint, and the
// damping and objective of a low-rank curvature, for the method and
// curvature already in s, and fills them into s.
func checkOBSVariantFlags(o runOptions, s *runSettings) error {
	lowRank := s.Method == "obs" && isLowRank(s.Curvature)
	if b := strings.ToLower(strings.TrimSpace(o.Block)); b != "" {
		switch s.Curvature {
		case "exact", "gn", "fisher":
		default:
			return flagErrorf("block", "applies to --method obs with --curvature exact, gn or fisher")
		}
		if s.Method != "obs" {
			return flagErrorf("block", "applies to --method obs, not %s", s.Method)
		}
		if b == "rows" {
			s.BlockRows = true
		} else if v, err := strconv.Atoi(b); err == nil && v > 0 {
			s.Block = v
		} else {
			return flagErrorf("block", "%q: want a positive block size or rows", o.Block)
		}
	}
	if o.Samples != 0 {
		if !lowRank && !s.isBlock() {
			return flagErrorf("samples", "applies to --method obs with --curvature fisher-lowrank or gn-lowrank, and to --block")
		}
		if o.Samples < 0 {
			return flagErrorf("samples", "%d: must be positive", o.Samples)
		}
	}
	s.Samples = o.Samples
	if lowRank {
		s.Samples = cmpOr(o.Samples, prune.DefaultWoodburySamples)
		if o.Damping != nil && !positiveFinite(*o.Damping) {
			return flagErrorf("damping", "%v: with --curvature %s the damping must be a positive number", *o.Damping, s.Curvature)
		}
		if o.Damping != nil {
			s.Damping = ptr(*o.Damping)
		}
	}
	if (lowRank || s.isBlock()) && s.Objective == "gradient" {
		return flagErrorf("objective", "gradient applies to OBS on a dense curvature and OBD, not to --curvature %s or --block (use trained or loss)", s.Curvature)
	}
	if o.Joint {
		switch {
		case !lowRank && !s.isBlock():
			return flagErrorf("joint", "applies to --method obs with --curvature fisher-lowrank or gn-lowrank, or with --block")
		case o.Budget > 0:
			return &usageError{Flag: "joint", Msg: "--joint excludes --budget: a round's set is chosen before its prediction is known"}
		case o.StopErrorRise != nil:
			return &usageError{Flag: "joint", Msg: "--joint excludes --stop-error-rise, which undoes single removals"}
		case o.RebuildEvery > 0:
			return &usageError{Flag: "joint", Msg: "--joint excludes --rebuild-every: a round's set is removed at once"}
		}
		s.Joint = true
	} else if lowRank && o.Budget == 0 && o.StopErrorRise == nil && o.RebuildEvery == 0 {
		s.Joint = true // the library's default for WoodburyOBS
	}
	return nil
}

// describeOBS describes Woodbury and block OBS, "" for the other methods.
func (s runSettings) describeOBS(names map[string]string) string {
	joint := ""
	if s.Joint {
		joint = ", joint removals"
	}
	switch {
	case isLowRank(s.Curvature):
		what := "low-rank Fisher matrix, m = %d gradients"
		if s.Curvature == "gn-lowrank" {
			what = "low-rank Gauss–Newton matrix, %d samples"
		}
		lambda := fmt.Sprintf("λ = %g × mean diagonal", prune.DefaultRelativeDamping)
		if s.Damping != nil {
			lambda = fmt.Sprintf("λ = %g", *s.Damping)
		}
		return fmt.Sprintf("Woodbury OBS ("+what+", %s%s)", s.Samples, lambda, joint)
	case s.isBlock():
		blocks := fmt.Sprintf("blocks of %d", s.Block)
		if s.BlockRows {
			blocks = "one block per unit"
		}
		rows := ""
		if s.Samples > 0 {
			rows = fmt.Sprintf(", %d samples", s.Samples)
		}
		return fmt.Sprintf("block OBS (%s, %s%s, λ = %g%s)", names[s.Curvature], blocks, rows, *s.Damping, joint)
	}
	return ""
}

// obsVariant returns the Woodbury or block OBS saliency of the settings,
// nil for the other methods; src draws their samples.
func (s runSettings) obsVariant(src rand.Source) prune.Saliency {
	switch {
	case isLowRank(s.Curvature):
		w := prune.WoodburyOBS{GaussNewton: s.Curvature == "gn-lowrank", Samples: s.Samples, Src: src}
		if s.Damping != nil {
			w.Damping = *s.Damping
		}
		return w
	case s.isBlock():
		c, _ := prune.ParseCurvature(s.Curvature)
		b := prune.BlockOBS{Curvature: c, Block: s.Block, Rows: s.BlockRows, Damping: *s.Damping, Samples: s.Samples, Src: src}
		if b.Damping == 0 {
			b.Damping = prune.NoDamping
		}
		return b
	}
	return nil
}

// variantMemoryNeed returns the planner's estimate for Woodbury and block
// OBS on the live parameters of net, from the library's MemoryBytes, and
// what it holds; "" for the other methods. The low-rank estimate takes
// --samples rows, an upper bound when the training split has fewer.
func variantMemoryNeed(s runSettings, net *nn.Network) (int64, string) {
	p := &hessian.Problem{Net: net, Params: net.LiveIndices()}
	live := p.Dim()
	switch {
	case isLowRank(s.Curvature):
		k, _ := hessian.KindNamed(s.Curvature)
		return k.LowRankMemory(p, s.Samples), fmt.Sprintf("Woodbury OBS on the %s of rank %d over %d live parameters", k.Desc, k.LowRankRows(p, s.Samples), live)
	case s.isBlock():
		b := s.obsVariant(nil).(prune.BlockOBS)
		return b.MemoryBytes(p), fmt.Sprintf("block OBS on %d blocks over %d live parameters", len(b.Blocks(p)), live)
	}
	return 0, ""
}

// memoryRecord is the planner's estimate in the summary.
type memoryRecord struct {
	Bytes int64  `json:"bytes"`
	Text  string `json:"text"`
	What  string `json:"what"`
}
