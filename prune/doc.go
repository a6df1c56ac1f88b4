// Package prune removes parameters from a trained network by second-order
// saliency: Optimal Brain Damage, Optimal Brain Surgeon and, as a baseline,
// magnitude pruning.
//
// The saliencies approximate the increase of the training loss
// E = Σₙ ℓₙ caused by removing parameter q, at a minimum (∇E = 0) where E is
// close to its quadratic model δE ≈ ½ δθᵀ H δθ, H = ∇²E. Optimal Brain
// Damage assumes H diagonal; Optimal Brain Surgeon minimises δE subject to
// e_qᵀδθ + w_q = 0, moving every other weight, and downdates H⁻¹ to remove
// many weights one after another:
//
//	OBD:  s_q = ½ h_qq w_q²,
//	OBS:  L_q = w_q² / (2 [H⁻¹]_qq),    δθ = −(w_q / [H⁻¹]_qq) H⁻¹ e_q,
//	      H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq,
//	set S: L_S = ½ w_Sᵀ ([H⁻¹]_SS)⁻¹ w_S,    δθ = −H⁻¹_{:,S} ([H⁻¹]_SS)⁻¹ w_S.
//
// By default H is the curvature of the objective the network was trained
// on, J = E + ½μ‖θ‖² with μ = λN for the weight decay λ of
// Settings.WeightDecay, its gradient taken as zero. GradientObjective adds
// the gradient term (see OBD and OBS); it is not the default, as far from
// a minimum it ranks first large weights whose removal the quadratic model
// misjudges (results/engine.md).
//
// Run is the pruning loop: per round one curvature build, the removals,
// optional retraining with the mask fixed and an evaluation, until a
// Stopper holds, with every removal recorded and a sample of them audited
// against the real change of E; it continues from a State. Saliency is the
// extension point, with Magnitude, OBD and OBS provided. Layerwise prunes
// networks too large for one W×W matrix layer by layer (Optimal Brain
// Compression, SparseGPT; references there), LayerwiseRun with
// retraining; RemoveUnits, AbsorbUnits and PruneUnits remove whole hidden
// units.
//
// Indices follow the parameter order of package nn (per layer: W
// row-major, then b); biases are parameters and can be pruned.
//
// References:
//
//	Y. LeCun, J. S. Denker and S. A. Solla, Optimal Brain Damage, NIPS 2,
//	  1989.
//	B. Hassibi and D. G. Stork, Second order derivatives for network
//	  pruning: Optimal Brain Surgeon, NIPS 5, 1993.
//	B. Hassibi, D. G. Stork and G. J. Wolff, Optimal Brain Surgeon and
//	  general network pruning, IEEE ICNN, 1993.
package prune
