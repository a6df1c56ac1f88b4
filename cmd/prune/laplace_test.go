package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/runreport"
)

// trainTo trains a model with the given arguments into dir/name and
// returns its path.
func trainTo(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	code, _, stderr := runArgs(append(append([]string{"train", "--quiet"}, args...), "-o", path)...)
	if code != 0 {
		t.Fatalf("train %v: exit %d\n%s", args, code, stderr)
	}
	return path
}

// TestTrainLM checks train --optimizer lm: it fits sine better than the
// starting network, records its trainer and converges.
func TestTrainLM(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runArgs("train", "--data", "sine", "--n", "60", "--arch", "1-6-1", "--optimizer", "lm", "--weight-decay", "1e-4",
		"--json", "-o", filepath.Join(dir, "s.json"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum runreport.TrainSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	// The noise variance is 0.01, so the mean loss ½(y−t)² of a good fit is near 0.005.
	if sum.Train.MeanLoss > 0.008 {
		t.Errorf("LM training mean loss %v", sum.Train.MeanLoss)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "s.json"))
	if !strings.Contains(string(b), `"optimizer": "lm"`) {
		t.Errorf("model does not record the lm trainer")
	}
}

// TestLaplaceCommand runs laplace on a sine model: the summary, the CSV of
// the predictive and the chart, and that nothing is overwritten.
func TestLaplaceCommand(t *testing.T) {
	dir := t.TempDir()
	model := trainTo(t, dir, "s.json", "--data", "sine", "--n", "60", "--arch", "1-4-1", "--optimizer", "lm", "--weight-decay", "1e-4")
	out := filepath.Join(dir, "pred.csv")
	chart := filepath.Join(dir, "band.png")
	code, stdout, stderr := runArgs("laplace", "--model", model, "--optimize-hyper", "--retrain", "-o", out, "--chart", chart, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum laplaceSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Beta == nil || !(*sum.Beta > 30 && *sum.Beta < 300) {
		t.Errorf("β %v, the data's noise precision is 100", sum.Beta)
	}
	if !(sum.Gamma > 1 && sum.Gamma < float64(sum.Covered)) || sum.Steps == 0 || math.IsNaN(sum.LogEvidence) {
		t.Errorf("summary %+v", sum.Summary)
	}
	if c := *sum.Predictive.Coverage2; c < 0.85 || c > 1 {
		t.Errorf("±2σ coverage %v", c)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 201 || strings.Join(recs[0], ",") != "sample,x,target,mean,std" {
		t.Fatalf("CSV: %v, %d rows, header %v", err, len(recs), recs[0])
	}
	png, err := os.ReadFile(chart)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("chart: %v", err)
	}
	code, _, stderr = runArgs("laplace", "--model", model, "-o", out)
	if code != 1 || !strings.Contains(stderr, "file exists") {
		t.Errorf("second run without --overwrite: exit %d\n%s", code, stderr)
	}
}

// TestLaplaceClassification checks the bce predictive summary and the
// reliability chart.
func TestLaplaceClassification(t *testing.T) {
	dir := t.TempDir()
	model := trainTo(t, dir, "m.json", "--data", "monks1", "--arch", "17-2-1", "--loss", "bce", "--optimizer", "lm", "--weight-decay", "1e-3")
	chart := filepath.Join(dir, "rel.png")
	code, stdout, stderr := runArgs("laplace", "--model", model, "--chart", chart, "--method", "mc", "--samples", "200", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum laplaceSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	p := sum.Predictive
	if p.Accuracy == nil || *p.Accuracy < 0.9 || p.ECEPredictive == nil || sum.Beta != nil {
		t.Errorf("classification summary %+v", p)
	}
	if _, err := os.Stat(chart); err != nil {
		t.Error(err)
	}
}

// TestLaplaceUsage checks the usage errors of laplace, evidence and
// retrain.
func TestLaplaceUsage(t *testing.T) {
	model := monksModelFile(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"laplace"}, "--model is required"},
		{[]string{"laplace", "--model", model, "--curvature", "full"}, `--curvature "full"`},
		{[]string{"laplace", "--model", model, "--alpha", "-1"}, "--alpha -1"},
		{[]string{"laplace", "--model", model, "--retrain"}, "--retrain needs --optimize-hyper"},
		{[]string{"laplace", "--model", model, "--method", "exact"}, `--method "exact"`},
		{[]string{"laplace", "--model", model, "-o", "a.csv", "--chart", "a.csv"}, "name the same file"},
		{[]string{"evidence"}, "--model is required"},
		{[]string{"evidence", "--model", model, "--x", "depth"}, `--x "depth"`},
		{[]string{"retrain", "--model", model, "-o", "x.json"}, "--add or --remove is required"},
		{[]string{"retrain", "--model", model, "--add", "a.csv", "--steps", "0", "-o", "x.json"}, "--steps 0"},
	} {
		code, _, stderr := runArgs(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", c.args, code, c.want, stderr)
		}
	}
}

// TestEvidenceCommand compares two sine models.
func TestEvidenceCommand(t *testing.T) {
	dir := t.TempDir()
	a := trainTo(t, dir, "h1.json", "--data", "sine", "--n", "40", "--arch", "1-1-1", "--optimizer", "lm", "--weight-decay", "1e-4")
	b := trainTo(t, dir, "h3.json", "--data", "sine", "--n", "40", "--arch", "1-3-1", "--optimizer", "lm", "--weight-decay", "1e-4")
	chart := filepath.Join(dir, "ev.png")
	code, stdout, stderr := runArgs("evidence", "-m", a, "-m", b, "--optimize-hyper", "--retrain", "--chart", chart, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var tab evidenceTable
	if err := json.Unmarshal([]byte(stdout), &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.Models) != 2 {
		t.Fatalf("%d rows", len(tab.Models))
	}
	// One tanh unit cannot follow a full period of the sine: its evidence
	// is far lower.
	if !(tab.Models[1].LogEvidence > tab.Models[0].LogEvidence+5) || !tab.Models[1].BestByEvid {
		t.Errorf("evidence 1-1-1 %v, 1-3-1 %v", tab.Models[0].LogEvidence, tab.Models[1].LogEvidence)
	}
	if _, err := os.Stat(chart); err != nil {
		t.Error(err)
	}
}

// TestRetrainCommand adds samples to a sine model and removes them again.
func TestRetrainCommand(t *testing.T) {
	dir := t.TempDir()
	model := trainTo(t, dir, "s.json", "--data", "sine", "--n", "60", "--arch", "1-4-1", "--optimizer", "lm", "--weight-decay", "1e-3")
	add := filepath.Join(dir, "add.csv")
	if err := os.WriteFile(add, []byte("x,y\n0.5,0.48\n1.0,0.85\n-2.0,-0.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "s2.json")
	code, stdout, stderr := runArgs("retrain", "--model", model, "--add", add, "--steps", "2", "--compare", "-o", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum runreport.NewtonSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.N != 63 || sum.Added != 3 || sum.Compare == nil || sum.Compare.GapClosed < 0.8 || sum.ObjectiveNewton >= sum.ObjectiveOld {
		t.Errorf("summary %+v compare %+v", sum, sum.Compare)
	}
	// Removing samples that are not in the training split.
	code, _, stderr = runArgs("retrain", "--model", model, "--remove", add, "-o", filepath.Join(dir, "s3.json"))
	if code != 1 || !strings.Contains(stderr, "not in the training data") {
		t.Errorf("remove of unknown samples: exit %d\n%s", code, stderr)
	}
}
