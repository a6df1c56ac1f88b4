package nn

// Logits returns a copy of layers in which a linear output layer under CE
// takes the softmax activation and one under BCE the sigmoid, the output
// activations of those losses, and every other layer is unchanged.
//
// A PyTorch classifier ends in a Linear module and is trained with
// CrossEntropyLoss or BCEWithLogitsLoss on its outputs, the logits a. The
// losses of this package are computed from the output pre-activation a, as
//
//	CE:  ℓ = log Σₖ exp aₖ − a_c         (torch's CrossEntropyLoss, reduction="sum")
//	BCE: ℓ = Σₖ softplus(aₖ) − yₖ aₖ     (torch's BCEWithLogitsLoss, reduction="sum")
//
// so that the network described as "linear output, ce" is the same function
// of the parameters, with the same gradients, Hessians and saliencies, as the
// one described as "softmax output, ce"; only the network's outputs are the
// probabilities softmax(a) or sigmoid(a) in place of the logits, which
// changes no predicted class. New and FromLayers apply Logits, so that both
// descriptions give the same network.
func Logits(layers []Layer, loss Loss) []Layer {
	out := append([]Layer(nil), layers...)
	if len(out) == 0 {
		return out
	}
	last := &out[len(out)-1]
	if want, fixed := loss.OutputActivation(); fixed && last.Act == Linear {
		last.Act = want
	}
	return out
}

// ActLossError is the error of New and FromLayers for activations that do
// not fit the loss, such as a tanh output layer under CE.
type ActLossError struct{ Msg string }

func (e *ActLossError) Error() string { return e.Msg }
