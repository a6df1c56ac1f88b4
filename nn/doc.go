// Package nn provides fully connected feed-forward networks, their losses and
// gradients, per-parameter masks, trainers and the prune-mlp/1 model file.
//
// A network is a stack of layers. Layer l maps its input z_{l-1} to
//
//	a_l = W_l z_{l-1} + b_l,    z_l = f_l(a_l),
//
// where W_l is out×in (W[j][i] joins input i to unit j) and f_l is one of
// tanh, sigmoid, relu, linear, or softmax (output layer only).
//
// All parameters live in one flat vector in the canonical order: layer by
// layer, the weight matrix W row-major, then the bias b. Index q of every
// gradient, Hessian, saliency and mask in the toolkit refers to this order.
//
// The training loss is a sum over samples,
//
//	E = Σₙ ℓₙ,
//
// with ℓ = ½‖ŷ−y‖² (MSE), the binary cross-entropy of a sigmoid output (BCE),
// or the cross-entropy of a softmax output with an integer class target (CE).
// A linear output layer under CE or BCE is read as the logits of the loss, as
// in torch's CrossEntropyLoss and BCEWithLogitsLoss, and takes the softmax or
// sigmoid activation (see Logits).
// Functions that use a mean say so in their name or documentation.
package nn
