package runreport

import (
	"bytes"
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
		rep := &Report{LiveBefore: 10, LiveAfter: 8, Start: Eval{Train: m}, Final: Eval{Train: m}}
		rep.Rounds = []Round{{Round: 1, Live: 8, Pruned: Eval{Train: m}, Retrained: &Eval{Train: m}}}
		rep.History = []Step{
			{Step: 1, Round: 1, Live: 9, Loss: Num(loss), Predicted: Num(loss), Real: 0, Name: "W0[0][0]"},
			{Step: 2, Round: 1, Live: 8, Loss: Num(loss), Predicted: 1, Real: Num(loss), Name: "W0[0][1]"},
		}
		png, err := Curve(rep.Start, rep.Final, rep.LiveBefore, rep.LiveAfter, rep.Rounds, rep.History)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("curve.png for loss %v: %v", loss, err)
		}
		if png, err := Delta(rep.History); err != nil || png != nil && !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("dE.png for ΔE %v: %v", loss, err)
		}
	}
}
