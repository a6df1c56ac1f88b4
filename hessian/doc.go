// Package hessian computes the curvature of a network's training loss
//
//	E(θ) = Σₙ ℓₙ(θ),    H = ∇²E,
//
// over the flat parameter vector θ in the canonical order of package nn:
// exact, Gauss–Newton and Fisher matrices, diagonals, damped and recursive
// inverses, the OBS downdate and spectra. Every matrix is a curvature of the
// summed loss E, never of a mean, over the parameters Params of its Problem
// (index i is parameter Params[i]), with the same bits for any GOMAXPROCS.
//
// References:
//
//	B. A. Pearlmutter, Fast exact multiplication by the Hessian,
//	  Neural Computation 6(1), 1994.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §5.4, 2006.
package hessian
