package main

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/prune"
)

// libraryRun runs prune.Run with sal on the model and data that the run
// options o load, with the settings the command gives them.
func libraryRun(t *testing.T, o runOptions, sal func(seed uint64) prune.Saliency) *prune.Result {
	t.Helper()
	dir := t.TempDir()
	o.Output, o.Report = filepath.Join(dir, "lib.json"), filepath.Join(dir, "lib-report")
	p, err := prepareRun(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := prune.Run(context.Background(), p.net, p.data, &prune.Settings{
		Method: sal(p.set.Data.Seed), PerRound: o.PerRound, TargetLive: o.TargetWeights,
		Objective: prune.TrainedObjective, WeightDecay: p.set.ObjectiveDecay,
		AuditSeed: p.set.Data.Seed, MaxBytes: p.limit, Joint: o.Joint,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunWoodburyAndBlockAgreeWithLibrary(t *testing.T) {
	model := monksModelFile(t)
	for _, c := range []struct {
		name string
		o    runOptions
		sal  func(seed uint64) prune.Saliency
		desc string
	}{
		{"fisher-lowrank", runOptions{Curvature: "fisher-lowrank", Samples: 64}, func(seed uint64) prune.Saliency {
			return prune.WoodburyOBS{Samples: 64, Src: rand.NewPCG(seed, streamHutch)}
		}, "Woodbury OBS (low-rank Fisher matrix, m = 64 gradients"},
		{"gn-lowrank", runOptions{Curvature: "gn-lowrank", Samples: 32, Joint: true}, func(seed uint64) prune.Saliency {
			return prune.WoodburyOBS{GaussNewton: true, Samples: 32, Src: rand.NewPCG(seed, streamHutch)}
		}, "Woodbury OBS (low-rank Gauss–Newton matrix, 32 samples"},
		{"block", runOptions{Block: "10"}, func(seed uint64) prune.Saliency {
			return prune.BlockOBS{Block: 10, Damping: prune.DefaultDamping, Src: rand.NewPCG(seed, streamHutch)}
		}, "block OBS (exact Hessian, blocks of 10, λ = 0.0001)"},
		{"block-rows-joint", runOptions{Block: "rows", Curvature: "gn", Joint: true}, func(seed uint64) prune.Saliency {
			return prune.BlockOBS{Curvature: prune.GaussNewton, Rows: true, Damping: prune.DefaultDamping, Src: rand.NewPCG(seed, streamHutch)}
		}, "block OBS (Gauss–Newton matrix, one block per unit, λ = 0.0001, joint removals)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := c.o
			o.Model, o.Method, o.TargetWeights, o.PerRound, o.Quiet = model, "obs", 30, 4, true
			o.Output, o.Report = filepath.Join(dir, "pruned.json"), filepath.Join(dir, "rep")
			err, stdout, stderr := runTest(t, context.Background(), o)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			if !strings.Contains(stdout, c.desc) || !strings.Contains(stdout, "memory: planned ") {
				t.Errorf("summary does not name %q and the planned memory:\n%s", c.desc, stdout)
			}
			got := loadModel(t, o.Output)
			if got.NumLive() != 30 {
				t.Errorf("%d live parameters, want 30", got.NumLive())
			}
			res := libraryRun(t, o, c.sal)
			want := res.Net.RawParams()
			for q, v := range got.RawParams() {
				if got.IsLive(q) != res.Net.IsLive(q) || math.Abs(v-want[q]) > 1e-12*math.Max(1, math.Abs(want[q])) {
					t.Fatalf("parameter %d: command %v (live %v), library %v (live %v)", q, v, got.IsLive(q), want[q], res.Net.IsLive(q))
				}
			}
			rep := readReport(t, o.Report)
			if len(rep.Rounds) != len(res.Rounds) {
				t.Fatalf("%d rounds, library %d", len(rep.Rounds), len(res.Rounds))
			}
			for i, rd := range res.Rounds {
				if p := float64(rep.Rounds[i].Predicted); math.Abs(p-rd.Predicted) > 1e-12*math.Max(1, math.Abs(rd.Predicted)) {
					t.Errorf("round %d predicted ΔE %v, library %v", i+1, p, rd.Predicted)
				}
				if rd.Memory <= 0 || rd.Joint != (o.Joint || isLowRank(o.Curvature)) { // joint by default with a low-rank curvature
					t.Errorf("round %d: memory %d, joint %v", i+1, rd.Memory, rd.Joint)
				}
			}
		})
	}
}

func TestRunLowRankRefusesMemoryBeforeAllocating(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	for _, o := range []runOptions{
		{Curvature: "fisher-lowrank", Samples: 100},
		{Block: "rows"},
	} {
		o.Model, o.Method, o.MaxMemory, o.Quiet = model, "obs", "1K", true
		o.Output, o.Report = filepath.Join(dir, "pruned.json"), filepath.Join(dir, "rep")
		err, _, _ := runTest(t, context.Background(), o)
		if err == nil {
			t.Fatal("a run above --max-memory was not refused")
		}
		for _, want := range []string{"--max-memory", "OBS", "above the limit of 1", "nothing written"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if _, err := os.Stat(o.Output); err == nil {
			t.Error("the output was written")
		}
		if _, err := os.Stat(o.Report); err == nil {
			t.Error("the report directory was created")
		}
	}
}

func TestRunJointPredictsTheSetOBS(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	o := runOptions{Model: model, Method: "obs", Curvature: "fisher-lowrank", Samples: 64, Joint: true,
		TargetWeights: 30, PerRound: 10, Quiet: true,
		Output: filepath.Join(dir, "pruned.json"), Report: filepath.Join(dir, "rep")}
	if err, _, stderr := runTest(t, context.Background(), o); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	rep := readReport(t, o.Report)
	if len(rep.Rounds) == 0 || rep.Rounds[0].Removed != 10 {
		t.Fatalf("rounds %+v", rep.Rounds)
	}
	var S []int
	for _, st := range rep.History {
		if st.Round == 1 {
			S = append(S, st.Index)
		}
	}
	// The dense inverse of the same low-rank matrix at the start, and the
	// OBS of the round's set on it.
	p, err := prepareRun(context.Background(), runOptions{Model: model, Output: filepath.Join(dir, "other.json"), Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	n := p.net
	N, _ := p.data.Train.X.Dims()
	pr := &hessian.Problem{Net: n, X: p.data.Train.X, Y: p.data.Train.Y, Params: n.LiveIndices()}
	lr, err := prune.WoodburyOBS{Samples: 64, Src: rand.NewPCG(p.set.Data.Seed, streamHutch)}.LowRank(context.Background(), pr,
		&prune.Env{Decay: p.set.ObjectiveDecay * float64(N)})
	if err != nil {
		t.Fatal(err)
	}
	W := pr.Dim()
	hinv := mat.NewSymDense(W, nil)
	col := make([]float64, W)
	for j := 0; j < W; j++ {
		lr.InverseColumnTo(col, j)
		for i := 0; i <= j; i++ {
			hinv.SetSym(i, j, col[i])
		}
	}
	pos := make(map[int]int)
	for i, q := range pr.Params {
		pos[q] = i
	}
	var Sp []int
	for _, q := range S {
		Sp = append(Sp, pos[q])
	}
	w := gatherLive(n.RawParams(), pr.Params)
	_, want, err := prune.OBSSet(hinv, w, Sp)
	if err != nil {
		t.Fatal(err)
	}
	got := float64(rep.Rounds[0].Predicted)
	if math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("round 1 predicted ΔE %v, OBSSet of its set %v", got, want)
	}
	if real := float64(rep.Rounds[0].Real); math.IsNaN(real) {
		t.Error("round 1 has no real ΔE")
	}
}

func gatherLive(theta []float64, idx []int) []float64 {
	w := make([]float64, len(idx))
	for i, q := range idx {
		w[i] = theta[q]
	}
	return w
}

func TestRunOBSVariantFlagErrors(t *testing.T) {
	model := monksModelFile(t)
	for _, c := range []struct {
		o    runOptions
		flag string
	}{
		{runOptions{Samples: 10}, "--samples"},
		{runOptions{Curvature: "recursive", Samples: 10}, "--samples"},
		{runOptions{Method: "obd", Block: "10"}, "--block"},
		{runOptions{Curvature: "fisher-lowrank", Block: "10"}, "--block"},
		{runOptions{Block: "0"}, "--block"},
		{runOptions{Block: "x"}, "--block"},
		{runOptions{Joint: true}, "--joint"},
		{runOptions{Curvature: "fisher-lowrank", Joint: true, Budget: 1}, "--joint"},
		{runOptions{Curvature: "fisher-lowrank", Joint: true, StopErrorRise: ptr(0.0)}, "--joint"},
		{runOptions{Curvature: "fisher-lowrank", Damping: ptr(0.0)}, "--damping"},
		{runOptions{Curvature: "gn-lowrank", Objective: "gradient"}, "--objective"},
	} {
		o := c.o
		o.Model, o.Output, o.Quiet = model, filepath.Join(t.TempDir(), "p.json"), true
		_, err := checkRunOptions(o)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: error %v, want one naming %s", c.o, err, c.flag)
		}
	}
}

func TestLowRankRoundDefaults(t *testing.T) {
	// A low-rank curvature removes half the prunable parameters per round,
	// jointly, unless a flag asks otherwise.
	base := runOptions{Model: "m.json", Output: "out.json", Method: "obs", Curvature: "fisher-lowrank"}
	s, err := checkRunOptions(base)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fraction != prune.DefaultWoodburyFraction || !s.Joint {
		t.Errorf("fisher-lowrank: fraction %v, joint %v; want %v, true", s.Fraction, s.Joint, prune.DefaultWoodburyFraction)
	}
	o := base
	o.Fraction, o.Budget = 0.2, 3
	if s, err = checkRunOptions(o); err != nil {
		t.Fatal(err)
	}
	if s.Fraction != 0.2 || s.Joint {
		t.Errorf("fisher-lowrank with --fraction 0.2 --budget 3: fraction %v, joint %v; want 0.2, false", s.Fraction, s.Joint)
	}
	o = base
	o.Curvature = "exact"
	if s, err = checkRunOptions(o); err != nil {
		t.Fatal(err)
	}
	if s.Fraction != prune.DefaultFraction || s.Joint {
		t.Errorf("exact: fraction %v, joint %v", s.Fraction, s.Joint)
	}
}
