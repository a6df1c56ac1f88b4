// Package hessian computes the curvature of a network's training loss
//
//	E(θ) = Σₙ ℓₙ(θ),    H = ∇²E,
//
// over the flat parameter vector θ in the canonical order of package nn
// (per layer: W row-major, then b), exactly or approximately:
//
//   - Exact: Pearlmutter's R-operator Hessian-vector product and the exact
//     dense Hessian, built block by block from back-propagated second
//     derivatives with respect to the pre-activations (BLAS-3 products);
//   - GaussNewton: the outer-product (Gauss–Newton, Levenberg–Marquardt)
//     matrix Σₙ Jₙᵀ Λₙ Jₙ;
//   - Fisher: the empirical Fisher Σₙ gₙ gₙᵀ;
//   - diagonals: exact, Becker–LeCun (full and Levenberg–Marquardt form) and
//     Hutchinson's estimator;
//   - inverses: damped Cholesky, the Optimal Brain Surgeon recursive inverse
//     and its rank-one downdate; spectra by EigenSym and Lanczos.
//
// Every curvature covers the parameters listed in its Problem's Params:
// all parameters, or only the live (unpruned) ones. Index i of a curvature
// refers to parameter Params[i].
//
// References:
//
//	B. A. Pearlmutter, Fast exact multiplication by the Hessian,
//	  Neural Computation 6(1), 1994.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §5.4, 2006.
//	S. Becker and Y. LeCun, Improving the convergence of back-propagation
//	  learning with second order methods, 1988.
//	B. Hassibi and D. G. Stork, Second order derivatives for network
//	  pruning: Optimal Brain Surgeon, NIPS 5, 1993.
package hessian
