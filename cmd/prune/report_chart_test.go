package main

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/secondorder/prune/nn"
)

// TestChartsDegenerate checks that a saturated network whose loss stays at
// 1e18 or more, or at +Inf, and ΔE of any size give charts, not a panic
// (gonum/plot panics with "illegal range" on an axis range it cannot tick).
func TestChartsDegenerate(t *testing.T) {
	for _, loss := range []float64{0, 1e18, 1e30, 1e300, math.MaxFloat64, math.Inf(1), math.NaN()} {
		m := nn.Metrics{N: 1, MeanLoss: loss, Loss: loss}
		rep := &runReport{LiveBefore: 10, LiveAfter: 8, Start: evalRecord{Train: m}, Final: evalRecord{Train: m}}
		rep.Rounds = []roundRecord{{Round: 1, Live: 8, Pruned: evalRecord{Train: m}, Retrained: &evalRecord{Train: m}}}
		rep.History = []stepRecord{
			{Step: 1, Round: 1, Live: 9, Loss: jnum(loss), Predicted: jnum(loss), Real: 0, Name: "W0[0][0]"},
			{Step: 2, Round: 1, Live: 8, Loss: jnum(loss), Predicted: 1, Real: jnum(loss), Name: "W0[0][1]"},
		}
		png, err := curveChart(rep)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("curve.png for loss %v: %v", loss, err)
		}
		if png, err := deltaChart(rep.History); err != nil || png != nil && !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("dE.png for ΔE %v: %v", loss, err)
		}
	}
}

// TestCompactHistory checks that the history of a large layer-wise run is
// listed as a sample with a summary by round and layer that accounts for
// every removal, and in full with --full-history.
func TestCompactHistory(t *testing.T) {
	var steps []stepRecord
	sizes := []int{235200, 30000, 1000}
	live := 266200
	for l, k := range sizes {
		for i := range k {
			live--
			steps = append(steps, stepRecord{Step: len(steps) + 1, Round: 1, Name: fmt.Sprintf("W%d[%d][%d]", l, i/100, i%100),
				Saliency: jnum(float64(i)), Predicted: jnum(math.NaN()), Real: jnum(math.NaN()), Loss: jnum(math.NaN()), Live: live})
		}
	}
	steps[5].Undone = true
	kept, sample, groups := compactHistory(steps, nil, false)
	if len(kept) > historyCap || sample == nil || sample.Of != len(steps) || sample.Kept != len(kept) {
		t.Fatalf("%d kept of %d, sample %+v", len(kept), len(steps), sample)
	}
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3", len(groups))
	}
	total := 0
	for l, g := range groups {
		total += g.Removed + g.Undone
		want := sizes[l]
		if l == 0 {
			want--
		}
		if g.Layer != l || g.Removed != want || g.Weights != want || g.SaliencyMin != 0 || g.SaliencyMax != jnum(float64(sizes[l]-1)) || !math.IsNaN(float64(g.Predicted)) {
			t.Errorf("group %d: %+v", l, g)
		}
	}
	if total != len(steps) {
		t.Errorf("groups account for %d removals of %d", total, len(steps))
	}
	// The first and last removal of each layer, and the undone one, are
	// listed.
	has := map[int]bool{}
	for _, s := range kept {
		has[s.Step] = true
	}
	for _, st := range []int{1, 6, 235200, 235201, 265200, 265201, 266200} {
		if !has[st] {
			t.Errorf("step %d not listed", st)
		}
	}
	b, err := historyCSV(kept)
	if err != nil || len(b) > 200<<10 {
		t.Errorf("history.csv of the sample: %d bytes, %v", len(b), err)
	}
	if all, s, g := compactHistory(steps, nil, true); len(all) != len(steps) || s != nil || g != nil {
		t.Errorf("--full-history: %d listed", len(all))
	}
	if all, s, g := compactHistory(steps[:historyCap], nil, false); len(all) != historyCap || s != nil || g != nil {
		t.Errorf("a small run: %d of %d listed", len(all), historyCap)
	}
}
