package runreport

import (
	"fmt"
	"math"
	"testing"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// TestKeepCompact checks that a long history keeps the removals a report
// lists and those its charts draw, and that a short one is kept whole.
func TestKeepCompact(t *testing.T) {
	var history []prune.Step
	n := 3 * HistoryCap
	for i := range n {
		s := prune.Step{Step: i + 1, Round: 1, Name: fmt.Sprintf("W0[0][%d]", i), Saliency: float64(i),
			Predicted: math.NaN(), Real: math.NaN(), Loss: math.NaN(), Live: n - i}
		if i == 7 {
			s.Loss = 0.5 // drawn on curve.png
		}
		history = append(history, s)
	}
	kept, groups := KeepCompact(history, nil)
	if len(kept) >= n || len(groups) != 1 || groups[0].Removed != n {
		t.Fatalf("%d kept of %d, groups %+v", len(kept), n, groups)
	}
	listed, _, _ := Compact(StepsOf(history), nil, false)
	has := map[int]bool{}
	for _, s := range kept {
		has[s.Step] = true
	}
	for _, s := range listed {
		if !has[s.Step] {
			t.Errorf("listed step %d not kept", s.Step)
		}
	}
	if !has[8] {
		t.Error("the removal with a loss, which curve.png draws, was not kept")
	}
	prior := []Group{{Round: 1}}
	if k, g := KeepCompact(history[:10], prior); len(k) != 10 || len(g) != 1 {
		t.Errorf("a short history: %d kept, groups %+v", len(k), g)
	}
}

func TestRoundsOf(t *testing.T) {
	m := nn.Metrics{Loss: 1, N: 3}
	rounds := []prune.Round{
		{Round: 1, Removed: 2, Live: 5, Predicted: math.NaN(), Pruned: prune.Eval{Train: m}},
		{Round: 2, Removed: 1, Live: 4, Retrain: &nn.TrainResult{Epochs: 3, Stopped: "epochs"}, Retrained: prune.Eval{Train: m}},
	}
	got := RoundsOf(rounds, true, false)
	if len(got) != 2 || got[0].Retrained != nil || got[1].Retrained == nil || got[1].Retrain.Epochs != 3 ||
		got[0].Pruned.Valid == nil || got[0].Pruned.Test != nil || !math.IsNaN(float64(got[0].Predicted)) {
		t.Errorf("RoundsOf = %+v", got)
	}
	if got := RoundsOf(nil, false, false); got == nil {
		t.Error("RoundsOf(nil) is nil, want an empty list")
	}
}
