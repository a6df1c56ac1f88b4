package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// An unwritable checkpoint.json is found before the work, like the other
// outputs.
func TestRunUnwritableCheckpoint(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out, report := filepath.Join(dir, "p.json"), filepath.Join(dir, "rep")
	if err := os.MkdirAll(filepath.Join(report, runreport.CheckpointFile), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runArgs("run", "--model", model, "-o", out, "--report", report, "--target-sparsity", "0.3", "--overwrite")
	if code != 1 || !strings.Contains(errOut, "--report "+report) || !strings.Contains(errOut, filepath.Join(report, runreport.CheckpointFile)+" is a directory") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("model written although the checkpoint cannot be")
	}
}

// The checkpoint of every round is written under the lock of the report
// directory, which a second writer cannot take.
func TestRunCheckpointUnderLock(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "rep")
	checked := 0
	h := runHooks{afterRound: func(int) {
		if _, err := os.Stat(filepath.Join(report, runreport.CheckpointFile)); err != nil {
			t.Errorf("no checkpoint after a round: %v", err)
		}
		l, err := atomicfile.TryLock(report)
		if !errors.Is(err, atomicfile.ErrLocked) {
			t.Errorf("the report directory's lock was free while its checkpoint was written: %v", err)
		}
		l.Unlock()
		checked++
	}}
	if err, _, stderr := runTest(t, context.Background(), h, "--model", model, "--target-weights", "30", "--per-round", "4", "-o", filepath.Join(dir, "p.json"), "--report", report, "-q"); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if checked == 0 {
		t.Fatal("no round was checked")
	}
}

// A checkpoint of the first format is refused with the reason.
func TestReadCheckpointFormat1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, runreport.CheckpointFile), []byte(`{"format":"prune-checkpoint/1","state":{"history":[]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readCheckpoint(dir)
	if err == nil || !strings.Contains(err.Error(), `"prune-checkpoint/1", written by an earlier version`) || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("format 1: %v", err)
	}
}

// checkpointSeeds returns a checkpoint of a run in rounds and of a
// finished layer-wise run with a compact history, built without running,
// so that fuzzing starts at once.
func checkpointSeeds(f *testing.F) [][]byte {
	net, err := nn.New([]int{3, 2, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		f.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	set := runreport.Settings{Model: "m.json", Data: dataOptions{Name: "monks1", Options: datasets.Options{Seed: 1}}, Flags: map[string]string{"per-round": "1"},
		Objective: "trained", Output: "p.json", Report: "rep"}
	engine := &prune.State{Net: net, Rounds: 1, Steps: 1, History: []prune.Step{{Step: 1, Round: 1, Index: 0, Live: 10}},
		RoundList: []prune.Round{{Round: 1, Removed: 1, Live: 10}}}
	lw := set
	lw.Flags = map[string]string{"layerwise": "true"}
	lwEngine := *engine
	lwEngine.Stopped = "target"
	lwState := runreport.RunState{LiveBefore: 11, Layerwise: []runreport.Layer{{Layer: 0, Method: "obs"}},
		HistoryGroups: []runreport.Group{{Round: 1, Layer: 0, FirstStep: 1, LastStep: 3000, Removed: 3000, Predicted: runreport.Num(math.NaN())}}}
	var seeds [][]byte
	for _, ck := range []runreport.Checkpoint{
		{Format: runreport.CheckpointFormat, Manifest: runreport.Manifest{Settings: set}, State: runreport.RunState{LiveBefore: 11}, Engine: engine},
		{Format: runreport.CheckpointFormat, Manifest: runreport.Manifest{Settings: lw}, State: lwState, Engine: &lwEngine},
	} {
		b, err := json.Marshal(ck)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := runreport.DecodeCheckpoint(b); err != nil {
			f.Fatalf("seed: %v\n%s", err, b)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzReadCheckpoint decodes crafted checkpoints as --resume does: the
// file, the engine's state (prune.State), the network and the recorded
// flags. Nothing may panic, and what decodes is written back to the same
// checkpoint.
func FuzzReadCheckpoint(f *testing.F) {
	for _, s := range checkpointSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"format":"prune-checkpoint/3","engine":{"Format":"prune-state/1"}}`))
	f.Add([]byte(`{"format":"prune-checkpoint/1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		ck, err := runreport.DecodeCheckpoint(data)
		if err != nil {
			return
		}
		if c, err := runFlagContext(ck.Manifest.Settings.Flags, "--model", "m.json", "-o", "p.json"); err == nil {
			_, _ = readRun(c)
		}
		again, err := json.Marshal(ck)
		if err != nil {
			t.Fatalf("a decoded checkpoint does not encode: %v", err)
		}
		ck2, err := runreport.DecodeCheckpoint(again)
		if err != nil {
			t.Fatalf("an encoded checkpoint does not decode: %v\n%s", err, again)
		}
		third, err := json.Marshal(ck2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("checkpoint changes when written again: %v", err)
		}
	})
}

// Layer-wise magnitude pruning has no damping to state; the layer-wise
// OBS and OBD rules state ρ.
func TestDescribeLayerwise(t *testing.T) {
	for method, want := range map[string]string{
		"magnitude": "layer-wise magnitude",
		"obd":       "layer-wise OBD, ρ = 0.01",
		"obs":       "layer-wise OBS (OBC or SparseGPT), ρ = 0.01",
	} {
		c, err := runFlagContext(nil, "--model", "m.json", "-o", "p.json", "--layerwise", "--method", method, "--damping", "0.01")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := readRun(c); err != nil || p.method.desc != want {
			t.Errorf("%s: %q (%v), want %q", method, p.method.desc, err, want)
		}
	}
	model := monksModelFile(t)
	out := filepath.Join(t.TempDir(), "p.json")
	code, stdout, stderr := runArgs("run", "--model", model, "-o", out, "--layerwise", "--method", "magnitude", "--target-sparsity", "0.5")
	if code != 0 || strings.Contains(stdout+stderr, "ρ") || !strings.Contains(stdout, "with layer-wise magnitude on") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

// The checkpoint records every flag that decides the outputs, --layers,
// --torch-masks and --full-history included, and --resume decodes them
// again.
func TestCheckpointRecordsOutputFlags(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "rep")
	if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "--max-rounds", "1", "--full-history", "--torch-masks", "plain",
		"-o", filepath.Join(dir, "p.json"), "--report", report, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	ck, err := readCheckpoint(report)
	if err != nil {
		t.Fatal(err)
	}
	if f := ck.Manifest.Settings.Flags; f["full-history"] != "true" || f["torch-masks"] != "plain" || f["max-rounds"] != "1" {
		t.Errorf("recorded flags %v", f)
	}
	c, err := runFlagContext(map[string]string{"layers": "fc1,fc2", "torch-masks": "plain", "full-history": "true"}, "--model", "m.npz", "-o", "p.npz")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := readRun(c); err != nil || p.layers != "fc1,fc2" || p.torchMasks != "plain" || !p.fullHistory {
		t.Errorf("decoded %+v, %v", p, err)
	}
}
