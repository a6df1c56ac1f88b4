package nn

import (
	"fmt"
	"math"
)

// Activation is the non-linearity f of a layer.
type Activation int

// The activations. Softmax may be used only on the output layer, with the
// cross-entropy loss.
const (
	Linear Activation = iota
	Tanh
	Sigmoid
	ReLU
	Softmax
)

var activationNames = [...]string{Linear: "linear", Tanh: "tanh", Sigmoid: "sigmoid", ReLU: "relu", Softmax: "softmax"}

// String returns the name used in model files and on the command line.
func (a Activation) String() string {
	if a < 0 || int(a) >= len(activationNames) {
		return fmt.Sprintf("Activation(%d)", int(a))
	}
	return activationNames[a]
}

// ParseActivation returns the activation with the given name: tanh, sigmoid,
// relu, linear or softmax.
func ParseActivation(s string) (Activation, error) {
	for i, n := range activationNames {
		if n == s {
			return Activation(i), nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (want tanh, sigmoid, relu, linear or softmax)", s)
}

// Eval returns f(a) for an element-wise activation. It panics for Softmax,
// which is not element-wise.
func (f Activation) Eval(a float64) float64 {
	switch f {
	case Linear:
		return a
	case Tanh:
		return math.Tanh(a)
	case Sigmoid:
		return sigmoid(a)
	case ReLU:
		if a > 0 {
			return a
		}
		return 0
	}
	panic("nn: Eval of non-element-wise activation " + f.String())
}

// Deriv returns f′ given the pre-activation a and the output z = f(a).
// The derivative of relu at 0 is taken as 0.
func (f Activation) Deriv(a, z float64) float64 {
	switch f {
	case Linear:
		return 1
	case Tanh:
		return 1 - z*z
	case Sigmoid:
		return z * (1 - z)
	case ReLU:
		if a > 0 {
			return 1
		}
		return 0
	}
	panic("nn: Deriv of non-element-wise activation " + f.String())
}

// Deriv2 returns f″ given the pre-activation a and the output z = f(a).
func (f Activation) Deriv2(a, z float64) float64 {
	switch f {
	case Linear, ReLU:
		return 0
	case Tanh:
		return -2 * z * (1 - z*z)
	case Sigmoid:
		return z * (1 - z) * (1 - 2*z)
	}
	panic("nn: Deriv2 of non-element-wise activation " + f.String())
}

func sigmoid(a float64) float64 {
	if a >= 0 {
		return 1 / (1 + math.Exp(-a))
	}
	e := math.Exp(a)
	return e / (1 + e)
}

// softmaxRow writes the softmax of a to z.
func softmaxRow(z, a []float64) {
	m := math.Inf(-1)
	for _, v := range a {
		if v > m {
			m = v
		}
	}
	var s float64
	for i, v := range a {
		e := math.Exp(v - m)
		z[i] = e
		s += e
	}
	for i := range z {
		z[i] /= s
	}
}
