package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/runreport"
)

// allOutputs returns the bytes of the model files and of every file of the
// report directory, by name.
func allOutputs(t *testing.T, model, report string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range modelFiles(model) {
		out[filepath.Base(f)] = mustRead(t, f)
	}
	entries, err := os.ReadDir(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		out["report/"+e.Name()] = mustRead(t, filepath.Join(report, e.Name()))
	}
	return out
}

// A layer-wise run with retraining, interrupted after the pruning and
// resumed, ends with the bytes of the uninterrupted run, whatever
// GOMAXPROCS each part runs with.
func TestRunLayerwiseResumeEqualsUninterrupted(t *testing.T) {
	model := monksModelFile(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	// The report and the checkpoint record the paths: every run writes to
	// the same ones.
	dir := t.TempDir()
	output, report := filepath.Join(dir, "p.json"), filepath.Join(dir, "rep")
	args := []string{"--layerwise", "--target-sparsity", "0.5", "--retrain-epochs", "3", "--model", model, "-o", output, "--report", report, "-q", "--overwrite"}
	var full map[string][]byte
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, args...); err != nil {
			t.Fatalf("GOMAXPROCS %d: %v\n%s", procs, err, stderr)
		}
		got := allOutputs(t, output, report)
		if full == nil {
			full = got
			r := readReport(t, report)
			if r.Stopped != "target" || len(r.Rounds) != 1 || r.Rounds[0].Retrained == nil || len(r.Layerwise) == 0 {
				t.Fatalf("uninterrupted report: stopped %q, %d rounds", r.Stopped, len(r.Rounds))
			}
			if _, ok := full["report/"+runreport.CheckpointFile]; !ok {
				t.Fatal("the uninterrupted run wrote no checkpoint")
			}
		}
		compareOutputs(t, full, got, "uninterrupted, GOMAXPROCS %d", procs)

		// Interrupted after the pruning, as by Ctrl-C …
		fired := 0
		ctx, cancel := context.WithCancel(context.Background())
		err, _, _ := runTest(t, ctx, runHooks{afterRound: func(rounds int) {
			fired++
			cancel()
		}}, args...)
		cancel()
		if fired != 1 || err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "interrupted while retraining") ||
			!strings.Contains(err.Error(), "prune run --resume "+report) {
			t.Fatalf("GOMAXPROCS %d: interrupted run (hook fired %d times): %v", procs, fired, err)
		}
		r := readReport(t, report)
		if r.Stopped != "canceled" || len(r.Rounds) != 1 || r.Rounds[0].Retrained != nil {
			t.Errorf("GOMAXPROCS %d: interrupted report: stopped %q, %d rounds", procs, r.Stopped, len(r.Rounds))
		}
		if b := mustRead(t, output); bytes.Equal(b, full[filepath.Base(output)]) {
			t.Errorf("GOMAXPROCS %d: the interrupted run saved the retrained model", procs)
		}

		// … and resumed with the other GOMAXPROCS: the retraining goes
		// on from the checkpoint and ends where the uninterrupted run
		// ended.
		runtime.GOMAXPROCS(3 - procs)
		err, stdout, stderr := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q")
		if err != nil {
			t.Fatalf("GOMAXPROCS %d: resume: %v\n%s", procs, err, stderr)
		}
		if !strings.Contains(stdout, "resumed from "+filepath.Join(report, runreport.CheckpointFile)) {
			t.Errorf("resume output:\n%s", stdout)
		}
		compareOutputs(t, full, allOutputs(t, output, report), "interrupted with GOMAXPROCS %d and resumed", procs)
	}
}

// compareOutputs reports every file that differs between want and got.
func compareOutputs(t *testing.T, want, got map[string][]byte, format string, args ...any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", fmt.Sprintf(format, args...), len(got), len(want))
	}
	for name, b := range want {
		if !bytes.Equal(b, got[name]) {
			t.Errorf("%s: %s differs from the uninterrupted run", fmt.Sprintf(format, args...), name)
		}
	}
}
