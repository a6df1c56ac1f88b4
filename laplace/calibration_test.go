package laplace

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestReliabilityKnown checks the reliability diagram, ECE and class
// metrics on predictions worked out by hand.
func TestReliabilityKnown(t *testing.T) {
	// bce, one output: four predictions of 0.75 of which three come true
	// (calibrated), and two of 0.05 of which one comes true (confidence
	// 0.05 against a frequency of 0.5).
	P := mat.NewDense(6, 1, []float64{0.75, 0.75, 0.75, 0.75, 0.05, 0.05})
	Y := mat.NewDense(6, 1, []float64{1, 1, 1, 0, 1, 0})
	r := ReliabilityOf(P, Y, false)
	if r.N[7] != 4 || r.Hit[7] != 3 || math.Abs(r.Conf[7]-3) > 1e-15 || r.N[0] != 2 || r.Hit[0] != 1 {
		t.Errorf("bins: N %v Conf %v Hit %v", r.N, r.Conf, r.Hit)
	}
	// ECE = (2/6)·|0.05 − 0.5| = 0.15.
	if e := r.ECE(); math.Abs(e-0.15) > 1e-15 {
		t.Errorf("ECE %v, want 0.15", e)
	}
	acc, nll := ClassMetrics(P, Y, false)
	// Wrong at 0.5: the 0.75 whose target is 0 and the 0.05 whose target is 1.
	wantNLL := -(3*math.Log(0.75) + math.Log(0.25) + math.Log(0.05) + math.Log(0.95)) / 6
	if math.Abs(acc-4.0/6) > 1e-15 || math.Abs(nll-wantNLL) > 1e-15 {
		t.Errorf("bce: accuracy %v nll %v, want %v %v", acc, nll, 4.0/6, wantNLL)
	}

	// ce, three classes: the confidence is that of the predicted class.
	P = mat.NewDense(2, 3, []float64{0.6, 0.3, 0.1, 0.2, 0.2, 0.6})
	Y = mat.NewDense(2, 1, []float64{0, 1})
	r = ReliabilityOf(P, Y, true)
	if r.N[6] != 2 || r.Hit[6] != 1 {
		t.Errorf("ce bins: N %v Hit %v", r.N, r.Hit)
	}
	// ECE = |0.6 − 0.5| = 0.1.
	if e := r.ECE(); math.Abs(e-0.1) > 1e-15 {
		t.Errorf("ce ECE %v, want 0.1", e)
	}
	acc, nll = ClassMetrics(P, Y, true)
	if wantNLL := -(math.Log(0.6) + math.Log(0.2)) / 2; acc != 0.5 || math.Abs(nll-wantNLL) > 1e-15 {
		t.Errorf("ce: accuracy %v nll %v, want 0.5 %v", acc, nll, wantNLL)
	}
}
