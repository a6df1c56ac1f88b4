package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMaxMemoryTooLarge is the repro of --max-memory 99999999999999999999T
// reported as "must be positive": the size overflows and the message says
// it is too large.
func TestMaxMemoryTooLarge(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"run", "--model", model, "-o", filepath.Join(dir, "p.json")},
		{"hessian", "--model", model, "--kind", "exact", "-o", filepath.Join(dir, "h.npy")},
	} {
		code, _, errOut := runArgs(append(args, "--max-memory", "99999999999999999999T")...)
		if code != 2 || !strings.Contains(errOut, "too large") || strings.Contains(errOut, "positive") {
			t.Errorf("%s: exit %d, want 2 with \"too large\":\n%s", args[0], code, errOut)
		}
	}
}

// TestLayerwiseMagnitudeMemory is the repro of --layerwise --method
// magnitude refused for a layer Hessian it does not form: under a limit of
// 1 KiB it runs, while layer-wise OBS is refused without suggesting the
// command given.
func TestLayerwiseMagnitudeMemory(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	for _, m := range []string{"magnitude", "obd"} {
		code, _, errOut := runArgs("run", "--model", model, "-o", filepath.Join(dir, m+".json"), "--layerwise", "--method", m,
			"--target-sparsity", "0.5", "--max-memory", "1K")
		if code != 0 {
			t.Errorf("--layerwise --method %s --max-memory 1K: exit %d\n%s", m, code, errOut)
		}
	}
	code, _, errOut := runArgs("run", "--model", model, "-o", filepath.Join(dir, "obs.json"), "--layerwise",
		"--target-sparsity", "0.5", "--max-memory", "1K")
	if code != 1 || !strings.Contains(errOut, "--method magnitude --layerwise") {
		t.Errorf("--layerwise --max-memory 1K: exit %d, want 1 suggesting magnitude\n%s", code, errOut)
	}
}

// TestLanczosRefusalAdvice is the repro of a matrix kind refused under
// --lanczos with the advice to use Lanczos.
func TestLanczosRefusalAdvice(t *testing.T) {
	model := monksModelFile(t)
	code, _, errOut := runArgs("hessian", "--model", model, "--kind", "exact", "--lanczos", "--eigen", "2",
		"--max-memory", "1K", "-o", filepath.Join(t.TempDir(), "h.npy"))
	if code != 1 || strings.Contains(errOut, "(Hv, Lanczos)") || !strings.Contains(errOut, "still builds the matrix") {
		t.Errorf("exit %d, message:\n%s", code, errOut)
	}
}

// TestInternalErrorExit is the repro of a panic exiting with 2, the status
// of usage errors: guard reports it as an internal error with status 3.
func TestInternalErrorExit(t *testing.T) {
	var stderr strings.Builder
	code := guard(&stderr, func() int {
		var s []int
		return s[-1+len(s)] // index out of range [-1]
	})
	if code != 3 || !strings.Contains(stderr.String(), "internal error") || !strings.Contains(stderr.String(), "index out of range") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if code := guard(&stderr, func() int { return 2 }); code != 2 {
		t.Errorf("exit %d passed through as %d", 2, code)
	}
	if code, _, _ := runArgs("run", "--no-such-flag"); code != 2 {
		t.Errorf("usage error: exit %d, want 2", code)
	}
}
