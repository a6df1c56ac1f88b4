package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/runreport"
)

func TestSaliencyNPY(t *testing.T) {
	const q = 7 // W0[0][7]
	model := prunedModelFile(t, q)
	dir := t.TempDir()
	for _, c := range []struct {
		method string
		args   []string
	}{
		{"obs", nil},
		{"obs", []string{"--curvature", "recursive", "--alpha", "1e-3"}},
		{"obs", []string{"--curvature", "fisher-lowrank", "--samples", "50"}},
		{"obs", []string{"--curvature", "gn-lowrank", "--samples", "20"}},
		{"obs", []string{"--block", "rows"}},
		{"obd", []string{"--curvature", "diag-lm"}},
		{"obd", []string{"--curvature", "hutchinson", "--probes", "10"}},
		{"magnitude", nil},
	} {
		out := filepath.Join(dir, c.method+".npy")
		args := append([]string{"saliency", "--model", model, "--method", c.method, "-o", out, "--overwrite", "--json"}, c.args...)
		code, stdout, stderr := runArgs(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		v := readNPYVector(t, out)
		if len(v) != 58 {
			t.Fatalf("%v: %d entries, want 58", args, len(v))
		}
		for i, x := range v {
			if (i == q) != math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("%v: entry %d is %v", args, i, x)
			}
		}
		var sum runreport.SaliencySummary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stdout)
		}
		if sum.Params != 58 || sum.Scored != 57 || sum.Pruned != 1 || len(sum.Smallest) != 10 || sum.All != nil {
			t.Errorf("%v: summary %+v", args, sum)
		}
		finite := slices.DeleteFunc(slices.Clone(v), math.IsNaN)
		slices.Sort(finite)
		if float64(sum.Min) != finite[0] || float64(sum.Max) != finite[56] || float64(sum.Median) != finite[28] {
			t.Errorf("%v: min %v median %v max %v, want %v %v %v", args, sum.Min, sum.Median, sum.Max, finite[0], finite[28], finite[56])
		}
		for k, p := range sum.Smallest {
			if float64(p.Saliency) != finite[k] || v[p.Index] != finite[k] || p.Name == "" {
				t.Errorf("%v: smallest[%d] = %+v", args, k, p)
			}
		}
		if c.method == "magnitude" && sum.Smallest[0].Name != loadModel(t, model).ParamAt(sum.Smallest[0].Index).String() {
			t.Errorf("name %q of index %d", sum.Smallest[0].Name, sum.Smallest[0].Index)
		}
	}

	// Text output with --all lists every scored parameter.
	code, stdout, stderr := runArgs("saliency", "--model", model, "--method", "magnitude", "-o", filepath.Join(dir, "all.npy"), "--all")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "58 (57 scored, 1 pruned: NaN)") || !strings.Contains(stdout, "all, in canonical order") || strings.Count(stdout, "W0[") != 50 {
		t.Errorf("--all output:\n%s", stdout)
	}
}

func TestSaliencyErrors(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "s.npy")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--model", model}, 2, "--output is required"},
		{[]string{"--model", model, "-o", filepath.Join(dir, "s.csv")}, 2, ".npy"},
		{[]string{"-o", out}, 2, "--model is required"},
		{[]string{"--model", model, "-o", out, "--method", "random"}, 2, `--method "random"`},
		{[]string{"--model", model, "-o", out, "--curvature", "diag-bl"}, 2, `--curvature "diag-bl"`},
		{[]string{"--model", model, "-o", out, "--max-memory", "1K"}, 1, "--max-memory"},
		{[]string{"--model", model, "-o", out, "--data", "xor"}, 1, "--data xor"},
	} {
		code, _, stderr := runArgs(append([]string{"saliency"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, stderr)
		}
	}
	if _, err := filepath.Glob(out); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("failed runs wrote %v", m)
	}
}

// The damping reported is the one the saliencies were computed with, after
// escalation, in the text and in --json.
func TestSaliencyReportsDamping(t *testing.T) {
	model := prunedModelFile(t, 7)
	out := filepath.Join(t.TempDir(), "s.npy")
	args := []string{"saliency", "--model", model, "--method", "obs", "--objective", "loss", "--damping", "1e-12", "-o", out, "--overwrite", "--json"}
	code, stdout, stderr := runArgs(args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum runreport.SaliencySummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	raised := false
	for _, is := range sum.Health.Issues {
		raised = raised || is.Kind == "damping"
	}
	if !(float64(sum.Damping) > 1e-12) || !raised || sum.Health.OK {
		t.Errorf("damping %v, health %+v: want the escalated damping and its issue", sum.Damping, sum.Health)
	}
	code, text, stderr := runArgs(args[:len(args)-1]...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(text, fmt.Sprintf("λ = %g", float64(sum.Damping))) {
		t.Errorf("the text does not give the damping %v:\n%s", sum.Damping, text)
	}
	// Magnitude has no damping: null.
	code, stdout, _ = runArgs("saliency", "--model", model, "--method", "magnitude", "-o", out, "--overwrite", "--json")
	if code != 0 || !strings.Contains(stdout, `"damping": null`) {
		t.Errorf("magnitude --json: exit %d\n%s", code, stdout)
	}
}
