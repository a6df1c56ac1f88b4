package main

import (
	"errors"
	"fmt"
	"github.com/secondorder/prune/internal/runreport"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
	"gonum.org/v1/gonum/mat"
)

// methodFlags are the flags that choose a saliency, shared by run and
// saliency.
type methodFlags struct {
	Method, Curvature, Objective, Block string
	Damping                             *float64 // nil when not given
	Alpha                               float64
	Probes, Samples, Hard               int
}

// readMethodFlags reads the method flags of c.
func readMethodFlags(c *cli.Context) methodFlags {
	f := methodFlags{Method: c.String("method"), Curvature: c.String("curvature"), Objective: c.String("objective"), Block: c.String("block"),
		Alpha: c.Float64("alpha"), Probes: c.Int("probes"), Samples: c.Int("samples"), Hard: c.Int("hard")}
	if c.IsSet("damping") {
		f.Damping = ptr(c.Float64("damping"))
	}
	return f
}

// method is a saliency decoded from its flags.
type method struct {
	name, curvature string // obs, obd or magnitude; the curvature's name
	saliency        prune.Saliency
	objective       prune.Objective
	desc            string // such as "OBS (exact Hessian, λ = 0.0001)"
}

// methodCurvatures lists the curvatures of each method, from the registry
// of hessian.Kinds; the first is the default.
var methodCurvatures = map[string][]string{
	"obs": kindNamesWhere(func(k hessian.Kind) bool { return k.Dense || k.InverseOnly || k.LowRank }),
	"obd": kindNamesWhere(func(k hessian.Kind) bool { return k.Diagonal }),
}

func kindNamesWhere(keep func(hessian.Kind) bool) []string {
	var names []string
	for _, k := range hessian.Kinds() {
		if keep(k) {
			names = append(names, k.Name)
		}
	}
	return names
}

// decode returns the saliency of the flags; src draws its samples.
func (f methodFlags) decode(src rand.Source) (method, error) {
	m := method{name: strings.ToLower(cmpOr(f.Method, "obs"))}
	curvs, ok := methodCurvatures[m.name]
	if !ok && m.name != "magnitude" {
		return m, flagErrorf("method", "%q: want obs, obd or magnitude", f.Method)
	}
	applies := func(cond bool, flag, msg string) error {
		if cond {
			return flagErrorf(flag, "applies %s", msg)
		}
		return nil
	}
	if m.name == "magnitude" {
		for _, g := range []struct {
			name string
			set  bool
		}{{"curvature", f.Curvature != ""}, {"objective", f.Objective != ""}, {"damping", f.Damping != nil}, {"alpha", f.Alpha != 0},
			{"probes", f.Probes != 0}, {"samples", f.Samples != 0}, {"hard", f.Hard != 0}, {"block", f.Block != ""}} {
			if err := applies(g.set, g.name, "to --method obs and obd, not magnitude"); err != nil {
				return m, err
			}
		}
		m.saliency, m.desc = prune.Magnitude{}, "magnitude"
		return m, nil
	}
	c := strings.ToLower(f.Curvature)
	if m.name == "obd" && c == "diag" {
		c = "exact"
	}
	if c == "" {
		c = curvs[0]
	} else if !slices.Contains(curvs, c) {
		return m, flagErrorf("curvature", "%q: --method %s takes %s", f.Curvature, m.name, orList(curvs))
	}
	m.curvature = c
	var err error
	if m.objective, err = prune.ParseObjective(cmpOr(strings.ToLower(f.Objective), "trained")); err != nil {
		return m, flagErrorf("objective", "%q: want trained, gradient or loss", f.Objective)
	}
	kind, _ := hessian.KindNamed(c)
	pc, _ := prune.ParseCurvature(c)
	block := strings.ToLower(strings.TrimSpace(f.Block))
	damping := prune.DefaultDamping
	if f.Damping != nil {
		damping = *f.Damping
	}
	for _, e := range []error{
		applies(f.Alpha != 0 && c != "recursive", "alpha", "only to --method obs --curvature recursive"),
		applies(f.Probes != 0 && c != "hutchinson", "probes", "only to --method obd --curvature hutchinson"),
		applies(f.Damping != nil && (m.name == "obd" || c == "recursive"), "damping", "to --method obs with --curvature exact, gn, fisher, fisher-lowrank or gn-lowrank, and to --layerwise"),
		applies(block != "" && (m.name != "obs" || !kind.Dense), "block", "to --method obs with --curvature exact, gn or fisher"),
		applies(f.Samples != 0 && !kind.LowRank && block == "", "samples", "to --method obs with --curvature fisher-lowrank or gn-lowrank, and to --block"),
		applies(f.Hard != 0 && c != "fisher-lowrank" && block == "", "hard", "to --method obs with --curvature fisher-lowrank, and to --block"),
	} {
		if e != nil {
			return m, e
		}
	}
	if kind.LowRank && m.objective == prune.GradientObjective {
		return m, flagErrorf("objective", "gradient applies to OBS on a dense curvature or --block and to OBD, not to --curvature %s (use trained or loss)", c)
	}
	if !(damping >= 0) || math.IsInf(damping, 1) {
		return m, flagErrorf("damping", "%v: must be a finite number not below 0", damping)
	}
	if damping == 0 {
		damping = prune.NoDamping
	}
	switch {
	case m.name == "obd":
		m.saliency = prune.OBD{Curvature: pc, Probes: f.Probes, Src: src}
		m.desc = "OBD (" + runreport.DiagonalNames[c] + ")"
		if c == "hutchinson" {
			m.desc = fmt.Sprintf("OBD (Hutchinson diagonal, %d probes)", cmpOr(f.Probes, hessian.DefaultProbes))
		}
	case kind.LowRank:
		if f.Damping != nil && !(*f.Damping > 0) {
			return m, flagErrorf("damping", "%v: with --curvature %s the damping must be a positive number", *f.Damping, c)
		}
		w := prune.WoodburyOBS{GaussNewton: c == "gn-lowrank", Samples: f.Samples, Hard: f.Hard, Src: src}
		lambda := fmt.Sprintf("λ = %g × mean diagonal", prune.DefaultRelativeDamping)
		if f.Damping != nil {
			w.Damping, lambda = *f.Damping, fmt.Sprintf("λ = %g", *f.Damping)
		}
		what := "low-rank Fisher matrix, m = %d gradients"
		if w.GaussNewton {
			what = "low-rank Gauss–Newton matrix, %d samples"
		}
		m.saliency = w
		m.desc = fmt.Sprintf("Woodbury OBS ("+what+", %s)", cmpOr(f.Samples, prune.DefaultWoodburySamples), lambda)
	case block != "":
		b := prune.BlockOBS{Curvature: pc, Damping: damping, Samples: f.Samples, Hard: f.Hard, Src: src}
		blocks := "one block per unit"
		rest, rows := strings.CutPrefix(block, "rows")
		switch {
		case rows && rest == "":
			b.Rows = true
		case rows && strings.HasPrefix(rest, ":"):
			b.Rows = true
			if b.Block, err = strconv.Atoi(rest[1:]); err != nil || b.Block <= 0 {
				return m, flagErrorf("block", "%q: want a positive block size, rows or rows:N", f.Block)
			}
			blocks = fmt.Sprintf("one block per unit, one per layer of at most %d parameters", b.Block)
		default:
			if b.Block, err = strconv.Atoi(block); err != nil || b.Block <= 0 {
				return m, flagErrorf("block", "%q: want a positive block size, rows or rows:N", f.Block)
			}
			blocks = fmt.Sprintf("blocks of %d", b.Block)
		}
		if f.Samples > 0 {
			blocks += fmt.Sprintf(", %d samples", f.Samples)
		}
		if f.Hard > 0 {
			blocks += fmt.Sprintf(", %d of them the hardest", f.Hard)
		}
		m.saliency = b
		m.desc = fmt.Sprintf("block OBS (%s, %s, λ = %g)", runreport.MatrixNames[c], blocks, math.Max(damping, 0))
	case c == "recursive":
		m.saliency = prune.OBS{Curvature: pc, Alpha: f.Alpha}
		m.desc = fmt.Sprintf("OBS (recursive inverse, α = %g)", cmpOr(f.Alpha, hessian.DefaultAlpha))
	default:
		m.saliency = prune.OBS{Curvature: pc, Damping: damping}
		m.desc = fmt.Sprintf("OBS (%s, λ = %g)", runreport.MatrixNames[c], math.Max(damping, 0))
	}
	if v, ok := m.saliency.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return m, libraryError(err)
		}
	}
	return m, nil
}

// checkMemory returns an error naming the estimate, the limit and the
// cheaper alternatives when a round of m (or --layerwise) on net and the
// training data X, Y needs more than limit bytes.
func checkMemory(m method, layerwise bool, net *nn.Network, X, Y *mat.Dense, limit int64) error {
	need, what := memoryNeed(m, layerwise, net, X, Y)
	if limit < 0 || need <= limit {
		return nil
	}
	alt := "--curvature fisher-lowrank --samples M (O(M·W)), --block B (O(B·W)), --method obd with a diagonal curvature (exact, diag-bl, diag-lm; O(W) memory), --method obd --curvature hutchinson (matrix-free Hessian-vector products), --layerwise (one (In+1)×(In+1) matrix per layer)"
	if layerwise {
		alt = "--method magnitude --layerwise, --method obd without --layerwise (O(W) memory)"
	}
	return fmt.Errorf("--max-memory: %s; cheaper: %s, or raise --max-memory; nothing written", runreport.OverLimit(what, need, limit), alt)
}

// memoryNeed returns the bytes a round of m (or --layerwise) holds at once
// on net and what they hold (runreport.MemoryNeed).
func memoryNeed(m method, layerwise bool, net *nn.Network, X, Y *mat.Dense) (int64, string) {
	if layerwise {
		return runreport.LayerwiseMemoryNeed(net, layerwiseMethod(m.name))
	}
	return runreport.MemoryNeed(m.saliency, m.curvature, net, X, Y)
}

// layerwiseMethod returns the layer-wise method of --method with
// --layerwise.
func layerwiseMethod(method string) prune.LayerwiseMethod {
	switch method {
	case "obd":
		return prune.LayerwiseOBD
	case "magnitude":
		return prune.LayerwiseMagnitude
	}
	return prune.LayerwiseAuto
}

// parseMaxMemory parses --max-memory: empty for the default limit, "off"
// for none (−1).
func parseMaxMemory(s string) (int64, error) {
	if s == "" {
		return hessian.DefaultMemoryLimit(), nil
	}
	return parseSizeFlag("max-memory", s)
}

// parseSizeFlag parses the size s of the flag name: "off" for no limit
// (−1), else a positive number of bytes with an optional K, M, G or T
// suffix.
func parseSizeFlag(name, s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "none":
		return -1, nil
	}
	b, err := sysmem.ParseBytes(s)
	if err != nil {
		return 0, flagValueError(name, s, memoryFlagError(err))
	}
	if b <= 0 {
		return 0, flagErrorf(name, "%q: must be positive (or off)", s)
	}
	return b, nil
}

// memoryFlagError returns the reason for a --max-memory value that
// sysmem.ParseBytes refused.
func memoryFlagError(err error) error {
	if errors.Is(err, sysmem.ErrBytesTooLarge) {
		return fmt.Errorf("too large: the largest size is %s (or use off for no limit)", sysmem.FormatBytes(math.MaxInt64))
	}
	return errors.New("want a number of bytes with an optional K, M, G or T suffix, or off")
}

// lanczosMemoryAdvice is the advice of a matrix kind refused with
// --lanczos, which builds the matrix all the same.
const lanczosMemoryAdvice = "--lanczos on a matrix kind still builds the matrix; use a vector kind (diag, diag-bl, diag-lm, hutchinson), " +
	"whose --eigen runs Lanczos on Hessian-vector products without it, layer-wise OBS, or raise the limit (--max-memory)"

// samplesFlag is --samples of run and saliency.
func samplesFlag() cli.Flag {
	return &cli.IntFlag{Name: "samples", Usage: "number `M` of sampled training rows of --curvature fisher-lowrank (M gradients) or gn-lowrank (M × outputs rows), or of the blocks of --block",
		DefaultText: fmt.Sprintf("%d with a low-rank curvature, every row with --block", prune.DefaultWoodburySamples), Category: "Method"}
}

// hardFlag is --hard of run and saliency.
func hardFlag() cli.Flag {
	return &cli.IntFlag{Name: "hard", Usage: "of the --samples rows, take the `H` of largest loss with weight 1 and draw the others from the rest (--curvature fisher-lowrank and --block): the curvature of a trained classifier comes from its few low-margin samples",
		Category: "Method"}
}

// blockFlag is --block of run and saliency.
func blockFlag() cli.Flag {
	return &cli.StringFlag{Name: "block", Usage: "block OBS: invert the curvature (exact, gn or fisher) in diagonal blocks of `B` consecutive parameters, 'rows' for one block per unit (its weights and bias), or 'rows:N', rows and one block for each layer of at most N parameters; O(B·W) memory",
		DefaultText: "global OBS", Category: "Method"}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// cmpOr returns v, or def when v is the zero value.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// orList returns the names as "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// plural returns "1 round", "2 rounds" and so on.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
