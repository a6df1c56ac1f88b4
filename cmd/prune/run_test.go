package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

// runTest runs the run command with the flags args and the hooks h,
// writing to a buffer, and returns the error and the standard output and
// error.
func runTest(t *testing.T, ctx context.Context, h runHooks, args ...string) (error, string, string) {
	t.Helper()
	c, err := runFlagContext(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = runRun(ctx, c, &stdout, &stderr, h)
	return err, stdout.String(), stderr.String()
}

// readReport reads and decodes DIR/report.json.
func readReport(t *testing.T, dir string) runreport.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, runreport.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var r runreport.Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("report.json does not decode: %v", err)
	}
	return r
}

// readHistory reads DIR/history.csv.
func readHistory(t *testing.T, dir string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, runreport.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("history.csv: %v", err)
	}
	return rows
}

// outputBytes returns the bytes of the files a run writes, by name.
func outputBytes(t *testing.T, model, report string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range append(modelFiles(model), filepath.Join(report, runreport.HistoryFile), filepath.Join(report, runreport.ReportFile), filepath.Join(report, runreport.CheckpointFile)) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestRunWritesModelAndReport(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "pruned.json")
	report := filepath.Join(dir, "rep")
	err, stdout, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "--target-weights", "30", "--per-round", "4", "-o", out, "--report", report, "-q")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "58 → 30 of 58 parameters live in 7 rounds (28 removals); stopped: target") || !strings.Contains(stdout, "GOMAXPROCS") {
		t.Errorf("summary:\n%s", stdout)
	}

	// The model stops exactly at the target and records its pruning.
	n := loadModel(t, out)
	if n.NumLive() != 30 || !n.HasMask() {
		t.Errorf("pruned model has %d live parameters, want 30", n.NumLive())
	}
	if p, ok := n.Meta["pruning"].(map[string]any); !ok || p["stopped"] != "target" {
		t.Errorf("meta.pruning = %v", n.Meta["pruning"])
	} else if b, _ := json.Marshal(p["settings"]); strings.Contains(string(b), dir) || strings.Contains(string(b), model) || !strings.Contains(string(b), `"per-round":"4"`) {
		t.Errorf("meta.pruning.settings holds a path or lacks the flags: %s", b)
	}
	if rd := datasets.Recorded(n.Meta); rd == nil || rd.Name != "monks1" {
		t.Errorf("meta.data = %v", n.Meta["data"])
	}

	// history.csv: a header and one row per removal.
	rows := readHistory(t, report)
	want := []string{"step", "round", "index", "name", "saliency", "predicted_dE", "real_dE", "loss", "error", "live", "undone"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Errorf("history header %v", rows[0])
	}
	if len(rows) != 1+28 {
		t.Fatalf("history has %d rows, want 28", len(rows)-1)
	}
	for i, r := range rows[1:] {
		if r[0] != strconv.Itoa(i+1) || r[8] != "" || r[10] != "false" {
			t.Errorf("history row %d: %v", i+1, r)
		}
		if live, _ := strconv.Atoi(r[9]); live != 58-(i+1) {
			t.Errorf("history row %d: live %s", i+1, r[9])
		}
		for _, c := range r[4:8] {
			if _, err := strconv.ParseFloat(c, 64); err != nil {
				t.Errorf("history row %d: %q is not a number", i+1, c)
			}
		}
	}

	// report.json: rounds, history, health and a manifest whose hash is
	// that of the model file.
	r := readReport(t, report)
	if r.Format != runreport.ReportFormat || r.Stopped != "target" || r.LiveBefore != 58 || r.LiveAfter != 30 || r.Params != 58 {
		t.Errorf("report: format %q stopped %q live %d → %d of %d", r.Format, r.Stopped, r.LiveBefore, r.LiveAfter, r.Params)
	}
	if len(r.Rounds) != 7 || len(r.History) != 28 || r.Rounds[6].Live != 30 || r.Rounds[0].Removed != 4 {
		t.Errorf("report: %d rounds, %d removals", len(r.Rounds), len(r.History))
	}
	for _, rd := range r.Rounds {
		if rd.Pruned.Test == nil || rd.Pruned.Valid != nil || rd.Retrained != nil || math.IsNaN(float64(rd.Predicted)) {
			t.Errorf("round %+v", rd)
		}
	}
	if r.Health.Issues == nil || r.Health.Counts == nil || r.Health.OK != (len(r.Health.Issues) == 0) {
		t.Errorf("health %+v", r.Health)
	}
	b, _ := os.ReadFile(model)
	sum := sha256.Sum256(b)
	if len(r.Manifest.Inputs) != 1 || r.Manifest.Inputs[0].Role != "model" || r.Manifest.Inputs[0].SHA256 != hex.EncodeToString(sum[:]) || r.Manifest.Inputs[0].Bytes != int64(len(b)) {
		t.Errorf("manifest inputs %+v", r.Manifest.Inputs)
	}
	s := r.Manifest.Settings
	if s.Flags["target-weights"] != "30" || s.Flags["per-round"] != "4" || s.Objective != "trained" || s.Data.Name != "monks1" || s.Data.Seed != 1 {
		t.Errorf("manifest settings %+v", s)
	}
	if r.Manifest.Go != runtime.Version() || r.Manifest.BLAS == "" || r.Manifest.Toolkit == "" {
		t.Errorf("manifest build %+v", r.Manifest)
	}
	if strings.Contains(string(mustRead(t, filepath.Join(report, runreport.ReportFile))), "GOMAXPROCS") {
		t.Errorf("report.json mentions GOMAXPROCS")
	}

	// The charts decode.
	for _, f := range []string{runreport.CurveFile, runreport.DeltaFile} {
		fh, err := os.Open(filepath.Join(report, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		fh.Close()
	}

	// A second run into the same report directory needs --overwrite.
	err, _, _ = runTest(t, context.Background(), runHooks{}, "--model", model, "--target-weights", "30", "--per-round", "4", "-o", filepath.Join(dir, "other.json"), "--report", report)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "--resume") || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("second run into the report directory: %v", err)
	}
}

// interruptAfterRound runs the run command with args, cancelled after the
// given round as by Ctrl-C, and returns its error.
func interruptAfterRound(t *testing.T, round int, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err, _, _ := runTest(t, ctx, runHooks{afterRound: func(rounds int) {
		if rounds == round {
			cancel()
		}
	}}, args...)
	return err
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunStopsAtTargetWeights(t *testing.T) {
	model := monksModelFile(t)
	for _, o := range []struct {
		target int
		args   []string
	}{
		{13, []string{"--fraction", "0.3"}},
		{41, []string{"--method", "magnitude"}},
		{50, []string{"--method", "obd", "--per-round", "3", "--per-layer", "--protect-biases"}},
	} {
		dir := t.TempDir()
		out := filepath.Join(dir, "p.json")
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, append(o.args, "--model", model, "-o", out, "-q", "--target-weights", strconv.Itoa(o.target))...); err != nil {
			t.Fatalf("%v: %v\n%s", o.args, err, stderr)
		}
		n := loadModel(t, out)
		if n.NumLive() != o.target {
			t.Errorf("%v: %d live, want %d", o.args, n.NumLive(), o.target)
		}
		if slices.Contains(o.args, "--protect-biases") {
			for q := 0; q < n.NumParams(); q++ {
				if n.ParamAt(q).Bias && !n.IsLive(q) {
					t.Errorf("--protect-biases removed %v", n.ParamAt(q))
				}
			}
		}
		_, err := os.Stat(filepath.Join(dir, "p-report", runreport.DeltaFile))
		if slices.Contains(o.args, "magnitude") != errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: dE.png: %v", o.args, err)
		}
	}
}

// resumeCases are runs whose resumption is checked, and how they stop:
// retraining with Adam (whose shuffling draws from a generator), the
// error-rise rule, the Hutchinson probes and the ΔE budget carry state
// across rounds.
var resumeCases = []struct {
	args    []string
	stopped string
}{
	{[]string{"--method", "obs", "--per-round", "3", "--retrain-epochs", "3", "--stop-error-rise", "0.002", "--target-weights", "5"}, "error-rise"},
	{[]string{"--method", "obd", "--curvature", "hutchinson", "--probes", "20", "--fraction", "0.1", "--target-weights", "10"}, "target"},
	{[]string{"--method", "obs", "--per-round", "4", "--budget", "0.004"}, "budget"},
}

func TestRunResumeEqualsUninterrupted(t *testing.T) {
	model := monksModelFile(t)
	for i, c := range resumeCases {
		dir := t.TempDir()
		output, report := filepath.Join(dir, "p.json"), filepath.Join(dir, "rep")
		args := append(c.args, "--model", model, "-o", output, "--report", report, "-q")
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, args...); err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, stderr)
		}
		full := outputBytes(t, output, report)
		if r := readReport(t, report); len(r.Rounds) < 4 || r.Stopped != c.stopped {
			t.Fatalf("case %d: %d rounds, stopped by %s, want %s", i, len(r.Rounds), r.Stopped, c.stopped)
		}

		// The same run, stopped after round 2 as by Ctrl-C …
		err := interruptAfterRound(t, 2, append(args, "--overwrite")...)
		if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "interrupted in round 3") ||
			!strings.Contains(err.Error(), output) || !strings.Contains(err.Error(), "prune run --resume "+report) {
			t.Fatalf("case %d: interrupted run: %v", i, err)
		}
		if r := readReport(t, report); r.Stopped != "canceled" || len(r.Rounds) != 2 {
			t.Errorf("case %d: interrupted report: stopped %q, %d rounds", i, r.Stopped, len(r.Rounds))
		}
		if n := loadModel(t, output); n.NumLive() >= 58 {
			t.Errorf("case %d: interrupted run saved %d live parameters", i, n.NumLive())
		}

		// … and resumed ends where the uninterrupted run ended, byte
		// for byte.
		err, stdout, stderr := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q")
		if err != nil {
			t.Fatalf("case %d: resume: %v\n%s", i, err, stderr)
		}
		if !strings.Contains(stdout, "resumed from "+filepath.Join(report, runreport.CheckpointFile)+" after round 2") {
			t.Errorf("case %d: resume output:\n%s", i, stdout)
		}
		resumed := outputBytes(t, output, report)
		for name, b := range full {
			if !bytes.Equal(b, resumed[name]) {
				t.Errorf("case %d: %s differs between the uninterrupted and the resumed run", i, name)
			}
		}

		// Resuming a finished run writes the same files again.
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q"); err != nil {
			t.Fatalf("case %d: resume of a finished run: %v\n%s", i, err, stderr)
		}
		for name, b := range outputBytes(t, output, report) {
			if !bytes.Equal(b, full[name]) {
				t.Errorf("case %d: %s differs after resuming a finished run", i, name)
			}
		}
	}
}

func TestRunSameBytesWhateverGOMAXPROCS(t *testing.T) {
	model := monksModelFile(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for i, args := range [][]string{
		resumeCases[0].args,
		resumeCases[1].args,
		{"--method", "obs", "--curvature", "gn", "--per-round", "5", "--stop-error-rise", "0", "--error-measure", "misclassification"},
		{"--layerwise", "--target-sparsity", "0.5", "--retrain-epochs", "2"},
	} {
		dir := t.TempDir()
		output := filepath.Join(dir, "p.json")
		var first map[string][]byte
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			if err, _, stderr := runTest(t, context.Background(), runHooks{}, append(args, "--model", model, "-o", output, "-q", "--overwrite")...); err != nil {
				t.Fatalf("case %d, GOMAXPROCS %d: %v\n%s", i, procs, err, stderr)
			}
			got := outputBytes(t, output, filepath.Join(dir, "p-report"))
			if first == nil {
				first = got
				continue
			}
			for name, b := range first {
				if !bytes.Equal(b, got[name]) {
					t.Errorf("case %d: %s differs between GOMAXPROCS 1 and 2", i, name)
				}
			}
		}
	}
}

func TestRunInterruptedBeforeFirstRound(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled once the start is evaluated: a context cancelled before
	// stops the evaluation, and nothing is written.
	runErr, _, _ := runTest(t, ctx, runHooks{atStart: cancel}, "--model", model, "-o", out, "-q")
	var stderr bytes.Buffer
	if runErr != nil {
		stderr.WriteString(runErr.Error())
	}
	if runErr == nil || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "saved the network pruned so far (58 of 58 parameters live) to "+out) {
		t.Errorf("run: %v", runErr)
	}
	if r := readReport(t, filepath.Join(dir, "p-report")); r.Stopped != "canceled" || r.LiveAfter != 58 {
		t.Errorf("report: stopped %q, %d live", r.Stopped, r.LiveAfter)
	}
	// No round was complete, so no checkpoint: the message does not
	// suggest --resume.
	if strings.Contains(stderr.String(), "--resume") || !strings.Contains(stderr.String(), "nothing to resume") {
		t.Errorf("interrupted in round 1 suggests:\n%s", stderr.String())
	}
}

// A resumed run checks the settings of its checkpoint as strictly as the
// flags.
func TestRunResumeRefusesBadSettings(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "rep")
	if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "-o", filepath.Join(dir, "p.json"), "--report", report, "-q", "--per-round", "5", "--max-rounds", "2"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	path := filepath.Join(report, runreport.CheckpointFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"flags":{`, `"flags":{"method":"bogus",`, "bogus"},
		{`"flags":{`, `"flags":{"damping":"-1",`, "damping"},
		{`"per-round":"5"`, `"per-round":"-5"`, "per-round"},
		{`"flags":{`, `"flags":{"objective":"other",`, "objective"},
		{`"flags":{`, `"flags":{"nosuchflag":"1",`, "nosuchflag"},
	} {
		bad := strings.Replace(string(orig), tc.from, tc.to, 1)
		if bad == string(orig) {
			t.Fatalf("checkpoint lacks %s", tc.from)
		}
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		err, _, _ := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q", "--overwrite")
		if err == nil || !strings.Contains(err.Error(), "settings recorded are invalid") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: resume gave %v", tc.to, err)
		}
	}
	// A checkpoint of a run in rounds without the engine's state cannot
	// be continued exactly: refused.
	var ck map[string]json.RawMessage
	if err := json.Unmarshal(orig, &ck); err != nil {
		t.Fatal(err)
	}
	delete(ck, "engine")
	old, err := json.Marshal(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err, _, _ := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q", "--overwrite"); err == nil || !strings.Contains(err.Error(), "no engine state") {
		t.Errorf("a checkpoint without the engine's state: %v", err)
	}
}

// Retraining that blows the weights up is a health issue.
func TestRunRetrainBlowUpIsAnIssue(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	err, _, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "-o", filepath.Join(dir, "p.json"), "-q", "--per-round", "5", "--max-rounds", "1",
		"--retrain-epochs", "1", "--optimizer", "adam", "--lr", "1e30")
	r := readReport(t, filepath.Join(dir, "p-report"))
	diverged := false
	for _, is := range r.Health.Issues {
		diverged = diverged || (is.Kind == "diverged" && strings.Contains(is.Message, "--lr"))
	}
	if r.Health.OK || !diverged || err == nil {
		t.Errorf("retraining at lr 1e30: err %v, health %+v\n%s", err, r.Health, stderr)
	}
	if n := loadModel(t, filepath.Join(dir, "p.json")); maxAbsParam(n) > 1e3 {
		t.Errorf("the blown-up network was kept: largest |θ| %g", maxAbsParam(n))
	}
}

func TestRunMaxMemory(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	code, _, stderr := runArgs("run", "--model", model, "-o", out, "--max-memory", "1K")
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, stderr)
	}
	for _, w := range []string{"needs about 78.8 KiB", "limit of 1.0 KiB", "--method obd", "hutchinson", "--layerwise", "nothing written"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("message lacks %q:\n%s", w, stderr)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("a refused run wrote %v", entries)
	}
	// Diagonal OBD needs no dense matrix.
	if code, _, stderr := runArgs("run", "-q", "--model", model, "-o", out, "--max-memory", "1K", "--method", "obd", "--max-rounds", "1"); code != 0 {
		t.Errorf("obd with --max-memory 1K: exit %d\n%s", code, stderr)
	}
}

func TestRunBadInputs(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := write("empty.csv", "a,b,c\n")
	classes := write("classes.csv", strings.Repeat(strings.Repeat("0,", 17)+"1\n", 4))
	existing := write("existing.json", "keep")
	npz := filepath.Join(dir, "m.npz")
	n := loadModel(t, model)
	n.Meta = nil
	if err := modelio.Save(npz, n); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(modelio.SpecPath(npz)); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) []string { return append([]string{"run", "--model", model, "-o", out}, extra...) }
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{run("--bogus"), 2, []string{"unknown flag --bogus"}},
		{run("--method", "obx"), 2, []string{`--method "obx"`, "obs, obd or magnitude"}},
		{run("--curvature", "diag-lm"), 2, []string{`--curvature "diag-lm"`, "exact, gn, fisher, fisher-lowrank, gn-lowrank or recursive"}},
		{run("--method", "obd", "--curvature", "recursive"), 2, []string{"--curvature", "diag-bl"}},
		{run("--method", "magnitude", "--curvature", "exact"), 2, []string{"--curvature", "magnitude"}},
		{run("--method", "obd", "--damping", "1"), 2, []string{"--damping"}},
		{run("--alpha", "1e-3"), 2, []string{"--alpha", "recursive"}},
		{run("--probes", "5"), 2, []string{"--probes", "hutchinson"}},
		{run("--data", "nosuchset"), 2, []string{`--data "nosuchset"`, "unknown data set"}},
		{run("--per-round", "2", "--fraction", "0.5"), 2, []string{"--per-round and --fraction"}},
		{run("--fraction", "1.5"), 2, []string{"--fraction 1.5"}},
		{run("--target-sparsity", "1"), 2, []string{"--target-sparsity 1"}},
		{run("--budget", "1", "--method", "magnitude"), 2, []string{"--budget 1", "predicts ΔE"}},
		{run("--error-measure", "loss"), 2, []string{"--error-measure", "--stop-error-rise"}},
		{run("--stop-error-rise", "0", "--error-measure", "hinge"), 2, []string{`--error-measure "hinge"`}},
		{run("--stop-error-rise", "0", "--error-split", "valid"), 2, []string{"--error-split valid", "--valid-fraction"}},
		{run("--lr", "0.1"), 2, []string{"--lr", "--retrain-epochs"}},
		{run("--retrain-epochs", "2", "--optimizer", "newton"), 2, []string{`--optimizer "newton"`}},
		{run("--max-memory", "lots"), 2, []string{`--max-memory "lots"`}},
		{run("extra"), 2, []string{`unexpected argument "extra"`}},
		{[]string{"run", "-o", out}, 2, []string{"--model is required"}},
		{[]string{"run", "--model", model}, 2, []string{"--output is required"}},
		{[]string{"run", "--model", model, "-o", filepath.Join(dir, "p.txt")}, 2, []string{"--output", ".json"}},
		{[]string{"run", "--model", model, "-o", model, "--overwrite"}, 2, []string{"--output", "same file"}},
		{[]string{"run", "--model", npz, "-o", out}, 2, []string{"no activations", "give --act and --loss"}},
		{[]string{"run", "--model", npz, "--act", "tanh,cosh", "--loss", "mse", "-o", out}, 2, []string{`--act "tanh,cosh"`}},
		{[]string{"run", "--resume", filepath.Join(dir, "nowhere")}, 1, []string{"--resume", "no such directory"}},
		{[]string{"run", "--resume", dir}, 1, []string{"--resume", "checkpoint.json"}},
		{[]string{"run", "--resume", dir, "--method", "obd"}, 2, []string{"--method cannot be given with --resume"}},
		{run("--data", "xor"), 1, []string{"--data xor", "17 inputs"}},
		{run("--data", empty), 1, []string{"--data " + empty}},
		{run("--data", classes, "--classes"), 1, []string{"class-index targets", "mse"}},
		{[]string{"run", "--model", filepath.Join(dir, "missing.json"), "-o", out}, 1, []string{"missing.json"}},
		{[]string{"run", "--model", model, "-o", existing}, 1, []string{existing, "--overwrite"}},
		{[]string{"run", "--model", model, "-o", filepath.Join(dir, "no", "p.json")}, 1, []string{"does not exist"}},
	} {
		code, _, stderr := runArgs(c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: message lacks %q:\n%s", c.args, w, stderr)
			}
		}
		for _, f := range []string{out, filepath.Join(dir, "p-report"), filepath.Join(dir, "existing-report")} {
			if _, err := os.Stat(f); err == nil {
				t.Fatalf("%v: wrote %s", c.args, f)
			}
		}
	}
	if string(mustRead(t, existing)) != "keep" {
		t.Errorf("existing output overwritten without --overwrite")
	}
}

func TestRunLayerwise(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	code, stdout, stderr := runArgs("run", "--model", model, "-o", out, "--layerwise", "--target-sparsity", "0.5", "--per-round", "3", "--curvature", "gn")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "ignores --curvature, --per-round") {
		t.Errorf("no note on the ignored flags:\n%s", stderr)
	}
	if !strings.Contains(stdout, "layer-wise OBS") {
		t.Errorf("summary:\n%s", stdout)
	}
	n := loadModel(t, out)
	r := readReport(t, filepath.Join(dir, "p-report"))
	if n.NumLive() != r.LiveAfter || r.LiveAfter > 30 || r.LiveAfter < 28 || len(r.Layerwise) != 2 || len(r.Rounds) != 1 || len(r.History) != 58-r.LiveAfter {
		t.Errorf("layer-wise: %d live, report %+v", n.NumLive(), r.Layerwise)
	}
	if _, err := os.Stat(filepath.Join(dir, "p-report", runreport.DeltaFile)); err == nil {
		t.Errorf("layer-wise run wrote dE.png")
	}
}

func TestRunNPZ(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	npz := filepath.Join(dir, "m.npz")
	n := loadModel(t, model)
	if err := modelio.Save(npz, n); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(modelio.SpecPath(npz)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p.npz")
	code, _, stderr := runArgs("run", "-q", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse", "--data", "monks1", "-o", out, "--target-weights", "40", "--per-round", "6")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	p, err := modelio.Load(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.NumLive() != 40 {
		t.Errorf("%d live", p.NumLive())
	}
	// The spec file of the output exists now: a second run needs
	// --overwrite, also when the archive itself is gone.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runArgs("run", "-q", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse", "--data", "monks1", "-o", out, "--report", filepath.Join(dir, "r2"))
	if code != 1 || !strings.Contains(stderr, "p.spec.json exists") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	// Writing an .npz output over the input's spec file is refused.
	spec := filepath.Join(dir, "s.json")
	if err := os.WriteFile(spec, []byte(`{"activations": ["tanh", "sigmoid"], "loss": "mse"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(spec, modelio.SpecPath(npz)); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runArgs("run", "-q", "--model", npz, "--data", "monks1", "-o", filepath.Join(dir, "m.npz"), "--overwrite")
	if code != 2 || !strings.Contains(stderr, "same file") {
		t.Errorf("output over the input: exit %d\n%s", code, stderr)
	}
}

func TestRunRetrainSettings(t *testing.T) {
	meta := map[string]any{"trainer": metaValue(modelio.TrainerOf(nn.TrainSettings{Optimizer: nn.SGD, LearningRate: 0.05, WeightDecay: 1e-3}))}
	retrain := func(meta map[string]any, args ...string) *nn.TrainSettings {
		t.Helper()
		c, err := runFlagContext(nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := retrainSettings(c, "m.json", meta, false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := retrain(meta, "--retrain-epochs", "7"); s.Optimizer != nn.SGD || s.Epochs != 7 || s.LearningRate != 0.05 || s.WeightDecay != 1e-3 {
		t.Errorf("recorded trainer: %+v", s)
	}
	if s := retrain(meta, "--retrain-epochs", "3", "--optimizer", "lbfgs", "--weight-decay", "0"); s.Optimizer != nn.LBFGS || s.Epochs != 3 || s.WeightDecay != 0 || s.LearningRate != 0 {
		t.Errorf("with --optimizer: %+v", s)
	}
	if s := retrain(meta); s != nil {
		t.Errorf("no retraining: %+v", s)
	}
	if s := retrain(nil, "--retrain-epochs", "2"); s.Optimizer != nn.Adam || s.LearningRate != nn.DefaultAdamRate {
		t.Errorf("without a recorded trainer: %+v", s)
	}
}

// A model trained with --optimizer lm is retrained with L-BFGS and its
// weight decay, with a note; --optimizer lm is refused with the choices.
func TestRunRetrainModelTrainedWithLM(t *testing.T) {
	dir := t.TempDir()
	model := trainTo(t, dir, "m.json", "--data", "monks1", "--arch", "17-3-1", "--loss", "bce", "--optimizer", "lm", "--weight-decay", "1e-3", "--epochs", "5")
	if tr, _ := loadModel(t, model).Meta["trainer"].(map[string]any); tr["optimizer"] != "lm" {
		t.Fatalf("trainer recorded: %v", tr)
	}
	out := filepath.Join(dir, "p.json")
	code, _, stderr := runArgs("run", "--model", model, "--target-sparsity", "0.3", "--retrain-epochs", "3", "-o", out)
	if code != 0 {
		t.Fatalf("run --retrain-epochs on an lm model: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "was trained with Levenberg–Marquardt (lm); retraining uses lbfgs with its weight decay 0.001") {
		t.Errorf("no note of the fallback:\n%s", stderr)
	}
	rep := readReport(t, filepath.Join(dir, "p-report"))
	if r := rep.Manifest.Settings.Retrain; r == nil || r.Optimizer != "lbfgs" || r.WeightDecay != 1e-3 || r.Epochs != 3 {
		t.Errorf("retraining recorded: %+v", rep.Manifest.Settings.Retrain)
	}
	retrained := 0
	for _, rd := range rep.Rounds {
		if rd.Retrain != nil {
			retrained++
		}
	}
	if retrained == 0 {
		t.Errorf("no round was retrained: %+v", rep.Rounds)
	}
	code, _, stderr = runArgs("run", "--model", model, "--retrain-epochs", "3", "--optimizer", "lm", "-o", filepath.Join(dir, "q.json"))
	if code != 2 || !strings.Contains(stderr, "--optimizer") || !strings.Contains(stderr, "give adam, sgd or lbfgs") {
		t.Errorf("--optimizer lm: exit %d\n%s", code, stderr)
	}
}

func TestJNum(t *testing.T) {
	for _, x := range []float64{0, 1, -2.5, 1e-300, math.Pi, math.NaN()} {
		b, err := json.Marshal(runreport.Num(x))
		if err != nil {
			t.Fatal(err)
		}
		var y runreport.Num
		if err := json.Unmarshal(b, &y); err != nil {
			t.Fatal(err)
		}
		if !(float64(y) == x || math.IsNaN(x) && math.IsNaN(float64(y))) {
			t.Errorf("%v → %s → %v", x, b, y)
		}
	}
	if b, _ := json.Marshal(runreport.Num(math.Inf(1))); string(b) != "null" {
		t.Errorf("Inf → %s", b)
	}
}

func TestNewCommandsHelp(t *testing.T) {
	for _, c := range []string{"demo", "run", "saliency", "convert", "bench"} {
		code, out, _ := runArgs(c, "--help")
		if code != 0 || !strings.Contains(out, "USAGE") || !strings.Contains(out, "prune "+c) {
			t.Errorf("%s --help: exit %d\n%s", c, code, out)
		}
	}
	code, out, _ := runArgs("--help")
	for _, c := range []string{"demo", "run", "saliency", "convert", "bench"} {
		if code != 0 || !strings.Contains(out, "   "+c+" ") {
			t.Errorf("--help does not list %s:\n%s", c, out)
		}
	}
}

func maxAbsParam(n *nn.Network) float64 {
	var m float64
	for _, v := range n.RawParams() {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// The summary states the damping the rounds used, --json too.
func TestRunStatesDamping(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	args := []string{"--model", model, "-o", filepath.Join(dir, "p.json"), "-q", "--per-round", "5", "--max-rounds", "2"}
	err, stdout, stderr := runTest(t, context.Background(), runHooks{}, append(args, "--json")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var s runreport.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	r := readReport(t, filepath.Join(dir, "p-report"))
	if s.Damping == nil || s.Damping.Min != float64(r.Rounds[0].Damping) || s.Objective != "trained" {
		t.Fatalf("summary damping %+v, objective %q; rounds %+v", s.Damping, s.Objective, r.Rounds)
	}
	err, stdout, _ = runTest(t, context.Background(), runHooks{}, append(args, "--overwrite")...)
	if err != nil || !strings.Contains(stdout, "damping: λ") {
		t.Errorf("text summary without the damping:\n%s", stdout)
	}
}

// On classification --stop-error-rise watches the misclassification by
// default, so a zero rise does not stop at the first removal.
func TestRunErrorRiseDefaultsToMisclassification(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--model", model, "-o", filepath.Join(dir, "p.json"), "-q", "--per-round", "1", "--stop-error-rise", "0", "--max-rounds", "30"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	r := readReport(t, filepath.Join(dir, "p-report"))
	if r.Manifest.Settings.ErrorMeasure != "misclassification" || r.LiveAfter >= r.LiveBefore-1 {
		t.Errorf("measure %q, %d → %d live", r.Manifest.Settings.ErrorMeasure, r.LiveBefore, r.LiveAfter)
	}
}

func TestRunInterruptedWhileEvaluatingStart(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "pruned.json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err, _, _ := runTest(t, ctx, runHooks{}, "--model", model, "--target-weights", "30", "-o", out, "--report", filepath.Join(dir, "rep"), "-q")
	if err == nil || !strings.Contains(err.Error(), "interrupted while evaluating the model before pruning; nothing was written") {
		t.Fatalf("run with a cancelled context: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after an interrupted preparation", out)
	}
}

// A run with more removals than a report lists keeps a compact history in
// its checkpoint, far smaller than the full one, from which an interrupted
// run resumes byte for byte, and a finished one writes the same files again.
func TestRunCompactCheckpoint(t *testing.T) {
	dir := t.TempDir()
	model := trainTo(t, dir, "m.json", "--data", "monks1", "--arch", "17-300-1", "--loss", "bce", "--epochs", "2")
	for _, c := range []struct {
		name      string
		args      []string
		interrupt bool
	}{
		{"layerwise", []string{"--layerwise", "--target-sparsity", "0.5"}, false},
		{"obd", []string{"--method", "obd", "--fraction", "0.25", "--target-sparsity", "0.8", "--audit-removals", "200"}, true},
	} {
		output, report := filepath.Join(dir, c.name+".json"), filepath.Join(dir, c.name+"-rep")
		args := append(c.args, "--model", model, "-o", output, "--report", report, "-q")
		files := func() map[string][]byte {
			m := outputBytes(t, output, report)
			for _, f := range []string{runreport.CurveFile, runreport.DeltaFile} {
				if b, err := os.ReadFile(filepath.Join(report, f)); err == nil {
					m[f] = b
				}
			}
			return m
		}
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, args...); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, stderr)
		}
		full := files()
		r := readReport(t, report)
		if r.HistorySample == nil || r.Removals <= runreport.HistoryCap {
			t.Fatalf("%s: report lists %d of %d removals, want a sample of more than %d", c.name, len(r.History), r.Removals, runreport.HistoryCap)
		}
		ck, err := readCheckpoint(report)
		if err != nil {
			t.Fatal(err)
		}
		if len(ck.State.HistoryGroups) == 0 || len(ck.Engine.History) >= r.Removals/2 || ck.Engine.Steps != r.Removals {
			t.Errorf("%s: checkpoint holds %d of %d removals, %d groups", c.name, len(ck.Engine.History), r.Removals, len(ck.State.HistoryGroups))
		}
		// The checkpoint is the model and a state of about the report's size.
		if ckb, limit := len(full[runreport.CheckpointFile]), len(full[filepath.Base(output)])+len(full[runreport.ReportFile])+len(full[runreport.HistoryFile]); ckb > limit {
			t.Errorf("%s: checkpoint.json has %d bytes, more than the model, report.json and history.csv together (%d)", c.name, ckb, limit)
		}
		if c.interrupt {
			err := interruptAfterRound(t, 2, append(args, "--overwrite")...)
			if err == nil || !strings.Contains(err.Error(), "interrupted in round 3") {
				t.Fatalf("%s: interrupted run: %v", c.name, err)
			}
			if ck, err := readCheckpoint(report); err != nil || len(ck.State.HistoryGroups) == 0 {
				t.Fatalf("%s: the checkpoint after round 2 is not compact: %v", c.name, err)
			}
			if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q"); err != nil {
				t.Fatalf("%s: resume: %v\n%s", c.name, err, stderr)
			}
			for name, b := range files() {
				if !bytes.Equal(b, full[name]) {
					t.Errorf("%s: %s differs between the uninterrupted and the resumed run", c.name, name)
				}
			}
		}
		if err, _, stderr := runTest(t, context.Background(), runHooks{}, "--resume", report, "-q"); err != nil {
			t.Fatalf("%s: resume of the finished run: %v\n%s", c.name, err, stderr)
		}
		for name, b := range files() {
			if !bytes.Equal(b, full[name]) {
				t.Errorf("%s: %s differs after resuming the finished run", c.name, name)
			}
		}
	}
}
