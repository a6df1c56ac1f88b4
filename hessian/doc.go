// Package hessian computes the curvature of a network's training loss
//
//	E(θ) = Σₙ ℓₙ(θ),    H = ∇²E,
//
// over the flat parameter vector θ in the canonical order of package nn
// (per layer: W row-major, then b), exactly or approximately:
//
//   - Exact (Hessian-vector products and the dense Hessian), GaussNewton
//     (Σₙ Jₙᵀ Λₙ Jₙ) and Fisher (Σₙ gₙ gₙᵀ);
//   - diagonals: exact, Becker–LeCun and Hutchinson's estimator;
//   - inverses: damped Cholesky, the Optimal Brain Surgeon recursive inverse
//     and its downdate; spectra by EigenSym and Lanczos.
//
// Every matrix is a curvature of the summed loss E, never of a mean. A
// curvature covers the parameters listed in its Problem's Params, all or the
// live ones; its index i refers to parameter Params[i].
//
// References:
//
//	B. A. Pearlmutter, Fast exact multiplication by the Hessian,
//	  Neural Computation 6(1), 1994.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §5.4, 2006.
package hessian
