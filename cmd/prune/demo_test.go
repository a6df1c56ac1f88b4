package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	if err := runDemo(context.Background(), 1, out, true, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	for _, w := range []string{"trained", "pruned by OBS", "Hassibi & Stork 1993", "stopped: error-rise", "wrote "} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, stdout.String())
		}
	}
	for _, f := range []string{"model.json", "pruned.json", "report/history.csv", "report/report.json", "report/curve.png", "report/dE.png", "report/checkpoint.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
	r := readReport(t, filepath.Join(out, "report"))
	if r.LiveBefore != 58 || r.LiveAfter >= 30 || r.Final.Train.Accuracy != r.Start.Train.Accuracy || r.Start.Train.Accuracy != 1 {
		t.Errorf("demo: %d → %d live, train accuracy %v → %v", r.LiveBefore, r.LiveAfter, r.Start.Train.Accuracy, r.Final.Train.Accuracy)
	}
	// On the trained objective the curvature is positive definite: no
	// raised damping, no numerical issue.
	if !r.Health.OK || len(r.Health.Issues) != 0 || !strings.Contains(stdout.String(), "health: no numerical issues") {
		t.Errorf("demo health: %+v", r.Health)
	}

	// A second run replaces the demo's files.
	stdout.Reset()
	if err := runDemo(context.Background(), 1, out, true, &stdout, &stderr); err != nil {
		t.Fatalf("second demo: %v", err)
	}
}
