// Package nn provides fully connected feed-forward networks, their losses and
// gradients, per-parameter masks, data sets and trainers. Model files are
// read and written by package modelio.
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
// with ℓ one of the Loss values. Functions that use a mean say so in their
// name or documentation.
package nn
