package nn

import (
	"fmt"
	"math"
)

// Loss is the per-sample loss ℓ of a network; the training loss is E = Σₙ ℓₙ.
type Loss int

// The losses.
//
//	MSE: ℓ = ½‖ŷ−y‖², any element-wise output activation.
//	BCE: ℓ = −Σₖ [yₖ log pₖ + (1−yₖ) log(1−pₖ)], p = sigmoid(a), targets in [0,1].
//	CE:  ℓ = −log pᶜ, p = softmax(a), target c an integer class index.
const (
	MSE Loss = iota
	BCE
	CE
)

var lossNames = [...]string{MSE: "mse", BCE: "bce", CE: "ce"}

// String returns the name used in model files and on the command line.
func (l Loss) String() string {
	if l < 0 || int(l) >= len(lossNames) {
		return fmt.Sprintf("Loss(%d)", int(l))
	}
	return lossNames[l]
}

// ParseLoss returns the loss with the given name: mse, bce or ce.
func ParseLoss(s string) (Loss, error) {
	for i, n := range lossNames {
		if n == s {
			return Loss(i), nil
		}
	}
	return 0, fmt.Errorf("unknown loss %q (want mse, bce or ce)", s)
}

// OutputActivation returns the output activation that the loss requires, and
// false when any element-wise activation will do (MSE).
func (l Loss) OutputActivation() (Activation, bool) {
	switch l {
	case BCE:
		return Sigmoid, true
	case CE:
		return Softmax, true
	}
	return 0, false
}

// TargetCols returns the number of target columns the loss expects for a
// network with out outputs.
func (l Loss) TargetCols(out int) int {
	if l == CE {
		return 1
	}
	return out
}

// sampleLoss returns ℓ for one sample from the output pre-activation a, the
// output z and the target row y.
func (l Loss) sampleLoss(a, z, y []float64) float64 {
	switch l {
	case MSE:
		var s float64
		for k, v := range z {
			d := v - y[k]
			s += d * d
		}
		return 0.5 * s
	case BCE:
		// softplus(a) − y a, stable for large |a|.
		var s float64
		for k, v := range a {
			s += math.Max(v, 0) - y[k]*v + math.Log1p(math.Exp(-math.Abs(v)))
		}
		return s
	case CE:
		m := math.Inf(-1)
		for _, v := range a {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range a {
			s += math.Exp(v - m)
		}
		return m + math.Log(s) - a[int(y[0])]
	}
	panic("nn: unknown loss")
}

// outputDelta writes dℓ/da for one sample to dst.
func (l Loss) outputDelta(dst, a, z, y []float64, f Activation) {
	switch l {
	case MSE:
		for k, v := range z {
			dst[k] = (v - y[k]) * f.Deriv(a[k], v)
		}
	case BCE:
		for k, v := range z {
			dst[k] = v - y[k]
		}
	case CE:
		copy(dst, z)
		dst[int(y[0])] -= 1
	default:
		panic("nn: unknown loss")
	}
}
