package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/atomicfile"
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

// TestRunLocked is the repro of two runs into one output both succeeding:
// while another process holds the output's lock, a run fails at once and
// writes nothing.
func TestRunLocked(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	for _, locked := range []string{out, filepath.Join(dir, "rep")} {
		l, err := atomicfile.TryLock(locked)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runArgs("run", "--model", model, "-o", out, "--report", filepath.Join(dir, "rep"), "--target-sparsity", "0.3")
		l.Unlock()
		if code != 1 || !strings.Contains(errOut, "being written by another process") {
			t.Errorf("locked %s: exit %d\n%s", locked, code, errOut)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("locked %s: output written", locked)
		}
	}
	if code, _, errOut := runArgs("run", "--model", model, "-o", out, "--report", filepath.Join(dir, "rep"), "--target-sparsity", "0.3"); code != 0 {
		t.Fatalf("unlocked: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(atomicfile.LockPath(out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind")
	}
}

// TestRunUnwritableReport is the repro of an unwritable report directory
// found only after the model was written: the run fails before the work.
func TestRunUnwritableReport(t *testing.T) {
	if fi, err := os.Stat("/sys"); err != nil || !fi.IsDir() || atomicfile.CheckWritable("/sys/prune-test", true) == nil {
		t.Skip("no read-only directory to test with")
	}
	model := monksModelFile(t)
	out := filepath.Join(t.TempDir(), "p.json")
	code, _, errOut := runArgs("run", "--model", model, "-o", out, "--report", "/sys/prune-test-report", "--target-sparsity", "0.3")
	if code != 1 || !strings.Contains(errOut, "--report /sys/prune-test-report") || !strings.Contains(errOut, "cannot create files") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("model written although the report cannot be")
	}
}

// TestOutputLinkAndMode is the repro of a dangling symbolic link at -o
// replaced without --overwrite, and of --overwrite turning a 0600 file
// into 0644.
func TestOutputLinkAndMode(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "m.json")
	if err := os.Symlink(filepath.Join(dir, "missing.json"), link); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"train"}, monksArgs...)
	code, _, errOut := runArgs(append(args, "--epochs", "1", "-o", link)...)
	if code != 1 || !strings.Contains(errOut, "symbolic link") {
		t.Errorf("dangling link: exit %d\n%s", code, errOut)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced")
	}
	if code, _, errOut := runArgs(append(args, "--epochs", "1", "-o", link, "--overwrite")...); code != 0 {
		t.Errorf("dangling link with --overwrite: exit %d\n%s", code, errOut)
	}

	// A dangling link among the report's files is not replaced either.
	rep := filepath.Join(dir, "rep")
	os.Mkdir(rep, 0o755)
	if err := os.Symlink(filepath.Join(dir, "nowhere.json"), filepath.Join(rep, "report.json")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runArgs("run", "--model", monksModelFile(t), "-o", filepath.Join(dir, "p.json"), "--report", rep, "--target-sparsity", "0.3")
	if code != 1 || !strings.Contains(errOut, "symbolic link") {
		t.Errorf("dangling link in the report: exit %d\n%s", code, errOut)
	}

	private := filepath.Join(dir, "private.json")
	if err := os.WriteFile(private, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runArgs(append(args, "--epochs", "1", "-o", private, "--overwrite")...); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if fi, err := os.Stat(private); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after --overwrite: %v, want 0600", fi.Mode().Perm())
	}
}

// TestJoinFailure is the repro of a full disk while writing a checkpoint
// reported only as the later failure to write the outputs.
func TestJoinFailure(t *testing.T) {
	first := errors.New("checkpoint rep/checkpoint.json: no space left on device")
	err := joinFailure(first, errors.New("--report rep: no space left on device"))
	if !strings.HasPrefix(err.Error(), "pruning failed: checkpoint rep/checkpoint.json: no space left on device; then") {
		t.Errorf("error %v", err)
	}
	if later := errors.New("x"); joinFailure(nil, later) != later {
		t.Error("no run error: not the write error")
	}
}

// TestSingleOutputLocked checks that the commands with one output fail at
// once while another process holds its lock, and leave no lock file after
// they succeed.
func TestSingleOutputLocked(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"train":    append(append([]string{"train"}, monksArgs...), "--epochs", "1", "-o", filepath.Join(dir, "t.json")),
		"convert":  {"convert", "--model", model, "-o", filepath.Join(dir, "c.npz")},
		"saliency": {"saliency", "--model", model, "-o", filepath.Join(dir, "s.npy")},
		"hessian":  {"hessian", "--model", model, "--kind", "diag", "-o", filepath.Join(dir, "h.npy")},
	} {
		out := args[len(args)-1]
		l, err := atomicfile.TryLock(out)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runArgs(args...)
		l.Unlock()
		if code != 1 || !strings.Contains(errOut, "being written by another process") {
			t.Errorf("%s locked: exit %d\n%s", name, code, errOut)
		}
		if code, _, errOut := runArgs(args...); code != 0 {
			t.Errorf("%s: exit %d\n%s", name, code, errOut)
		}
		if _, err := os.Stat(atomicfile.LockPath(out)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: lock file left behind", name)
		}
	}
}
