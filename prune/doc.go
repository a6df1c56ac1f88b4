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
// By default H is that of the trained objective (see Objective). Run is
// the prune → retrain loop, Saliency its extension point; Layerwise prunes
// layer by layer, PruneUnits whole hidden units. Indices follow the
// parameter order of package nn; biases are parameters and can be pruned.
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
