package main

import (
	"bytes"
	"math"
	"testing"

	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/nn"
)

// TestChartsDegenerate checks that a saturated network whose loss stays at
// 1e18 or more, or at +Inf, and ΔE of any size give charts, not a panic
// (gonum/plot panics with "illegal range" on an axis range it cannot tick).
func TestChartsDegenerate(t *testing.T) {
	for _, loss := range []float64{0, 1e18, 1e30, 1e300, math.MaxFloat64, math.Inf(1), math.NaN()} {
		m := nn.Metrics{N: 1, MeanLoss: loss, Loss: loss}
		rep := &runReport{LiveBefore: 10, LiveAfter: 8, Start: runreport.Eval{Train: m}, Final: runreport.Eval{Train: m}}
		rep.Rounds = []runreport.Round{{Round: 1, Live: 8, Pruned: runreport.Eval{Train: m}, Retrained: &runreport.Eval{Train: m}}}
		rep.History = []runreport.Step{
			{Step: 1, Round: 1, Live: 9, Loss: runreport.Num(loss), Predicted: runreport.Num(loss), Real: 0, Name: "W0[0][0]"},
			{Step: 2, Round: 1, Live: 8, Loss: runreport.Num(loss), Predicted: 1, Real: runreport.Num(loss), Name: "W0[0][1]"},
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
