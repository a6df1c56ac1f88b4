package runreport

import (
	"math"

	"github.com/secondorder/prune/prune"
)

// StepsOf returns the records of the removals.
func StepsOf(history []prune.Step) []Step {
	steps := make([]Step, len(history))
	for i, s := range history {
		steps[i] = Step{
			Step: s.Step, Round: s.Round, Index: s.Index, Name: s.Name,
			Saliency: Num(s.Saliency), Predicted: Num(s.Predicted), Real: Num(s.Real),
			Loss: Num(s.Loss), Error: Num(s.Error), Live: s.Live, Undone: s.Undone,
		}
	}
	return steps
}

// RoundsOf returns the records of the rounds, never nil; hasValid and
// hasTest tell which splits are present.
func RoundsOf(rounds []prune.Round, hasValid, hasTest bool) []Round {
	out := []Round{}
	for _, rd := range rounds {
		r := Round{Round: rd.Round, Removed: rd.Removed, Live: rd.Live, Predicted: Num(rd.Predicted), Real: Num(rd.Real),
			Damping: Num(rd.Damping), Rebuilds: rd.Rebuilds, Pruned: NewEval(rd.Pruned, hasValid, hasTest)}
		if rd.Retrain != nil {
			e := NewEval(rd.Retrained, hasValid, hasTest)
			r.Retrained = &e
			r.Retrain = &Retrain{Epochs: rd.Retrain.Epochs, Stopped: rd.Retrain.Stopped}
		}
		out = append(out, r)
	}
	return out
}

// LayersOf returns the records of the layers of a layer-wise run.
func LayersOf(rep prune.LayerwiseReport) []Layer {
	var out []Layer
	for l, ly := range rep.Layers {
		out = append(out, Layer{
			Layer: l, Method: ly.Method.String(), Sparsity: ly.Sparsity,
			WeightsBefore: ly.WeightsBefore, WeightsAfter: ly.WeightsAfter, BiasesBefore: ly.BiasesBefore, BiasesAfter: ly.BiasesAfter,
			Lambda: Num(ly.Lambda), Predicted: Num(ly.Predicted), Actual: Num(ly.Actual), DampingTerm: Num(ly.DampingTerm),
		})
	}
	return out
}

// KeepCompact returns the removals of history that a report of any longer
// history lists (see Compact) or its charts draw, with the sums of all of
// them by round and layer, prior holding the sums of earlier removals
// already dropped. A history short enough to list in full is returned as
// it is, with prior.
func KeepCompact(history []prune.Step, prior []Group) ([]prune.Step, []Group) {
	steps := StepsOf(history)
	listed, sample, groups := Compact(steps, prior, false)
	if sample == nil {
		return history, prior
	}
	listedAt := make(map[int]bool, len(listed))
	for _, s := range listed {
		listedAt[s.Step] = true
	}
	var kept []prune.Step
	for i, s := range history {
		if listedAt[s.Step] || drawn(steps[i]) {
			kept = append(kept, s)
		}
	}
	return kept, groups
}

// drawn reports whether curve.png or dE.png draw the removal s: one kept,
// with the training loss after it or with both a predicted and a real ΔE.
func drawn(s Step) bool {
	finite := func(x Num) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	return !s.Undone && (!math.IsNaN(float64(s.Loss)) || finite(s.Predicted) && finite(s.Real))
}
