package main

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/prune"
)

// planOf returns the plan of a run with the flags args on model.
func planOf(t *testing.T, model string, args ...string) *runPlan {
	t.Helper()
	c, err := runFlagContext(nil, append(args, "--model", model, "-o", filepath.Join(t.TempDir(), "lib.json"))...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prepareRun(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// libraryRun runs prune.Run with sal on the model and data that the flags
// args load, with the settings the command gives them.
func libraryRun(t *testing.T, model string, args []string, joint bool, sal func(seed uint64) prune.Saliency) *prune.Result {
	t.Helper()
	p := planOf(t, model, args...)
	res, err := prune.Run(context.Background(), p.net, p.splits, &prune.Settings{
		Method: sal(p.data.Seed), PerRound: 4, TargetLive: 30,
		Objective: prune.TrainedObjective, WeightDecay: p.manifest.Settings.ObjectiveDecay,
		AuditSeed: p.data.Seed, MaxBytes: p.limit, Joint: joint,
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
		args []string
		sal  func(seed uint64) prune.Saliency
		desc string
	}{
		{"fisher-lowrank", []string{"--curvature", "fisher-lowrank", "--samples", "64"}, func(seed uint64) prune.Saliency {
			return prune.WoodburyOBS{Samples: 64, Src: rand.NewPCG(seed, streamHutch)}
		}, "Woodbury OBS (low-rank Fisher matrix, m = 64 gradients"},
		{"gn-lowrank", []string{"--curvature", "gn-lowrank", "--samples", "32", "--joint"}, func(seed uint64) prune.Saliency {
			return prune.WoodburyOBS{GaussNewton: true, Samples: 32, Src: rand.NewPCG(seed, streamHutch)}
		}, "Woodbury OBS (low-rank Gauss–Newton matrix, 32 samples"},
		{"block", []string{"--block", "10"}, func(seed uint64) prune.Saliency {
			return prune.BlockOBS{Block: 10, Damping: prune.DefaultDamping, Src: rand.NewPCG(seed, streamHutch)}
		}, "block OBS (exact Hessian, blocks of 10, λ = 0.0001)"},
		{"block-rows-joint", []string{"--block", "rows", "--curvature", "gn", "--joint"}, func(seed uint64) prune.Saliency {
			return prune.BlockOBS{Curvature: prune.GaussNewton, Rows: true, Damping: prune.DefaultDamping, Src: rand.NewPCG(seed, streamHutch)}
		}, "block OBS (Gauss–Newton matrix, one block per unit, λ = 0.0001, joint removals)"},
		{"block-rows-layers-hard", []string{"--block", "rows:20", "--curvature", "gn", "--samples", "60", "--hard", "20", "--damping", "1", "--joint"}, func(seed uint64) prune.Saliency {
			return prune.BlockOBS{Curvature: prune.GaussNewton, Rows: true, Block: 20, Samples: 60, Hard: 20, Damping: 1, Src: rand.NewPCG(seed, streamHutch)}
		}, "block OBS (Gauss–Newton matrix, one block per unit, one per layer of at most 20 parameters, 60 samples, 20 of them the hardest, λ = 1, joint removals)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			output, report := filepath.Join(dir, "pruned.json"), filepath.Join(dir, "rep")
			// Joint by default with a low-rank curvature.
			joint := slices.Contains(c.args, "--joint") || slices.Contains(c.args, "fisher-lowrank") || slices.Contains(c.args, "gn-lowrank")
			err, stdout, stderr := runTest(t, context.Background(), runHooks{}, append(c.args, "--model", model, "--method", "obs", "--target-weights", "30", "--per-round", "4", "-q", "-o", output, "--report", report)...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			if !strings.Contains(stdout, c.desc) || !strings.Contains(stdout, "memory: planned ") {
				t.Errorf("summary does not name %q and the planned memory:\n%s", c.desc, stdout)
			}
			got := loadModel(t, output)
			if got.NumLive() != 30 {
				t.Errorf("%d live parameters, want 30", got.NumLive())
			}
			res := libraryRun(t, model, c.args, joint, c.sal)
			want := res.Net.RawParams()
			for q, v := range got.RawParams() {
				if got.IsLive(q) != res.Net.IsLive(q) || math.Abs(v-want[q]) > 1e-12*math.Max(1, math.Abs(want[q])) {
					t.Fatalf("parameter %d: command %v (live %v), library %v (live %v)", q, v, got.IsLive(q), want[q], res.Net.IsLive(q))
				}
			}
			rep := readReport(t, report)
			if len(rep.Rounds) != len(res.Rounds) {
				t.Fatalf("%d rounds, library %d", len(rep.Rounds), len(res.Rounds))
			}
			for i, rd := range res.Rounds {
				if p := float64(rep.Rounds[i].Predicted); math.Abs(p-rd.Predicted) > 1e-12*math.Max(1, math.Abs(rd.Predicted)) {
					t.Errorf("round %d predicted ΔE %v, library %v", i+1, p, rd.Predicted)
				}
				if rd.Memory <= 0 || rd.Joint != joint {
					t.Errorf("round %d: memory %d, joint %v", i+1, rd.Memory, rd.Joint)
				}
			}
		})
	}
}

func TestRunLowRankRefusesMemoryBeforeAllocating(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	output, report := filepath.Join(dir, "pruned.json"), filepath.Join(dir, "rep")
	for _, args := range [][]string{
		{"--curvature", "fisher-lowrank", "--samples", "100"},
		{"--block", "rows"},
	} {
		err, _, _ := runTest(t, context.Background(), runHooks{}, append(args, "--model", model, "--method", "obs", "--max-memory", "1K", "-q", "-o", output, "--report", report)...)
		if err == nil {
			t.Fatal("a run above --max-memory was not refused")
		}
		for _, want := range []string{"--max-memory", "OBS", "above the limit of 1", "nothing written"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if _, err := os.Stat(output); err == nil {
			t.Error("the output was written")
		}
		if _, err := os.Stat(report); err == nil {
			t.Error("the report directory was created")
		}
	}
}

func TestRunJointPredictsTheSetOBS(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "rep")
	if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "--method", "obs", "--curvature", "fisher-lowrank", "--samples", "64", "--joint",
		"--target-weights", "30", "--per-round", "10", "-q", "-o", filepath.Join(dir, "pruned.json"), "--report", report); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	rep := readReport(t, report)
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
	p := planOf(t, model)
	n := p.net
	N, _ := p.splits.Train.X.Dims()
	pr := &hessian.Problem{Net: n, Data: p.splits.Train, Params: n.LiveIndices()}
	lr, err := prune.WoodburyOBS{Samples: 64, Src: rand.NewPCG(p.data.Seed, streamHutch)}.LowRank(context.Background(), pr,
		&prune.Env{Decay: p.manifest.Settings.ObjectiveDecay * float64(N)})
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
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--samples", "10"}, "--samples"},
		{[]string{"--curvature", "recursive", "--samples", "10"}, "--samples"},
		{[]string{"--method", "obd", "--block", "10"}, "--block"},
		{[]string{"--curvature", "fisher-lowrank", "--block", "10"}, "--block"},
		{[]string{"--block", "0"}, "--block"},
		{[]string{"--block", "x"}, "--block"},
		{[]string{"--block", "rows:0"}, "--block"},
		{[]string{"--block", "rowsx"}, "--block"},
		{[]string{"--hard", "10"}, "--hard"},
		{[]string{"--block", "rows", "--samples", "10", "--hard", "11"}, "--hard"},
		{[]string{"--method", "magnitude", "--hard", "1"}, "--hard"},
		{[]string{"--joint"}, "--joint"},
		{[]string{"--curvature", "fisher-lowrank", "--joint", "--budget", "1"}, "--joint"},
		{[]string{"--curvature", "fisher-lowrank", "--joint", "--stop-error-rise", "0"}, "--joint"},
		{[]string{"--curvature", "fisher-lowrank", "--damping", "0"}, "--damping"},
		{[]string{"--curvature", "gn-lowrank", "--objective", "gradient"}, "--objective"},
	} {
		ctx, err := runFlagContext(nil, append(c.args, "--model", "m.json", "-o", "p.json")...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readRun(ctx)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%v: error %v, want a usage error naming %s", c.args, err, c.flag)
		}
	}
}
