package nn

// Logits returns a copy of layers in which a linear output layer under CE
// takes the softmax activation and one under BCE the sigmoid. The losses are
// computed from the output pre-activations a, the logits of a PyTorch
// classifier trained with CrossEntropyLoss or BCEWithLogitsLoss
// (reduction="sum"), so both descriptions are the same function of the
// parameters; New and FromLayers apply Logits.
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
