// Package hessian computes the curvature of a network's training loss
//
//	E(θ) = Σₙ ℓₙ(θ),    H = ∇²E,
//
// over the flat parameter vector θ in the canonical order of package nn
// (per layer: W row-major, then b), exactly or approximately:
//
// Exact, GaussNewton and Fisher matrices, their diagonals (and Becker–LeCun's
// and Hutchinson's), damped and recursive inverses, the OBS downdate, and
// spectra. Every matrix is a curvature of the summed loss E, never of a mean,
// over the parameters of its Problem's Params (index i is parameter
// Params[i]). Results have the same bits for any GOMAXPROCS.
//
// References:
//
//	B. A. Pearlmutter, Fast exact multiplication by the Hessian,
//	  Neural Computation 6(1), 1994.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §5.4, 2006.
package hessian
