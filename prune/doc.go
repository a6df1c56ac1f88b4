// Package prune removes parameters from a trained network by second-order
// saliency: Optimal Brain Damage, Optimal Brain Surgeon and, as a baseline,
// magnitude pruning.
//
// All saliencies approximate the increase of the training loss
// E = Σₙ ℓₙ caused by removing parameter q, at a minimum (∇E = 0) where E is
// close to its quadratic model
//
//	δE ≈ ½ δθᵀ H δθ,    H = ∇²E.
//
// Optimal Brain Damage assumes H diagonal and scores
//
//	s_q = ½ h_qq w_q².
//
// Optimal Brain Surgeon minimises δE under the constraint e_qᵀδθ + w_q = 0,
// which moves every other weight:
//
//	L_q = w_q² / (2 [H⁻¹]_qq),    δθ = −(w_q / [H⁻¹]_qq) H⁻¹ e_q.
//
// After a removal the inverse Hessian of the remaining parameters is the
// rank-one downdate
//
//	H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq,
//
// so that OBS removes many weights one after another without rebuilding H.
// A set S removed together costs
//
//	L_S = ½ w_Sᵀ ([H⁻¹]_SS)⁻¹ w_S,    δθ = −H⁻¹_{:,S} ([H⁻¹]_SS)⁻¹ w_S.
//
// By default the saliencies use the curvature H + μI of the objective the
// network was trained on, in sum units J = E + ½μ‖θ‖² with μ = λN for the
// trainer's weight decay λ (Settings.WeightDecay), its gradient taken as
// zero as at J's minimum. GradientObjective adds the gradient g of J,
// which need not be zero; OBD then predicts
//
//	s_q = −g_q w_q + ½ h_qq w_q²,
//
// and the first OBS removal of a round, with u = H⁻¹g,
//
//	L_q = (w_q − u_q)² / (2 [H⁻¹]_qq) − ½ gᵀu,    δθ = −u − ((w_q − u_q)/[H⁻¹]_qq) H⁻¹ e_q;
//
// at a minimum (g = 0) both are the classic formulas. LossObjective keeps
// E alone with g taken as zero.
//
// The gradient term is exact for a single removal on a quadratic J, but
// far from a minimum it ranks first the parameters of largest first-order
// term, often large weights where the quadratic model fails: OBD with it
// on LeNet-300-100 after one epoch of Adam, 90 % of the parameters in one
// round, leaves 90 % test error (see results/engine.md); hence it is not
// the default.
//
// Run is the pruning loop: one curvature build per round, the removals of
// the round, optionally retraining with the mask fixed, one evaluation,
// repeated until a stopping rule holds, recording every removal. The real
// change of the objective is measured for a seeded sample of the removals
// on a seeded subsample of the training rows, and for every round on the
// whole split. Run can continue from a State, which it hands to a hook
// after every round. LayerwiseRun gives layer-wise pruning with retraining
// the same result shape. A saliency is a type implementing Saliency; Magnitude, OBD and
// OBS are provided, and the loop does not depend on which one is used.
//
// Layerwise prunes networks too large for one W×W matrix: per layer it
// minimises the reconstruction error of the layer's outputs with the layer
// Hessian Σₙ z̃ₙz̃ₙᵀ shared by every output row (Optimal Brain Compression,
// or SparseGPT's blocked approximation for large layers). RemoveUnits,
// AbsorbUnits and PruneUnits remove whole hidden units and return a
// physically smaller network.
//
// Indices follow the canonical parameter order of package nn (per layer:
// W row-major, then b); biases are parameters and can be pruned.
//
// References:
//
//	Y. LeCun, J. S. Denker and S. A. Solla, Optimal Brain Damage, NIPS 2,
//	  1989.
//	B. Hassibi and D. G. Stork, Second order derivatives for network
//	  pruning: Optimal Brain Surgeon, NIPS 5, 1993.
//	B. Hassibi, D. G. Stork and G. J. Wolff, Optimal Brain Surgeon and
//	  general network pruning, IEEE ICNN, 1993.
//	X. Dong, S. Chen and S. J. Pan, Learning to prune deep neural networks
//	  via layer-wise optimal brain surgeon, NIPS 2017.
//	E. Frantar, S. P. Singh and D. Alistarh, Optimal Brain Compression,
//	  NeurIPS 2022.
//	E. Frantar and D. Alistarh, SparseGPT, ICML 2023.
package prune
