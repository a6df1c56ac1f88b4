// Package modelio reads and writes networks in the model files of the
// toolkit, chosen by extension: prune-mlp/1 JSON files (.json, see nn.Format)
// and PyTorch state_dicts saved by NumPy (.npz).
//
// # State dicts
//
// An .npz archive holds the state_dict of an nn.Sequential of Linear
// modules and parameter-free modules (activations, Dropout, Flatten), each
// tensor an array named by its key, as
//
//	np.savez("model.npz", **{k: v.cpu().numpy() for k, v in model.state_dict().items()})
//
// writes them. A key has the form [PREFIX]N.NAME: the module index N is the position of
// the Linear module in the Sequential, so that nn.Sequential(Linear, Tanh,
// Linear, Sigmoid) has the keys 0.weight, 0.bias, 2.weight and 2.bias, and
// the prefix, the same for all keys, is empty or names the Sequential inside
// a model, such as "model." in model.0.weight. Layer l of the network is the
// l-th Linear module in index order; indices may skip any number of
// positions.
//
// Each Linear module has a weight of shape (out, in), whose row j holds the
// weights into unit j as in the network, and a bias of shape (out,). Either
// is stored as one array, N.weight, or, after torch.nn.utils.prune, as two:
// N.weight_orig and N.weight_mask, the effective weight being their product.
// A mask holds 1 for a live parameter and 0 for a pruned one, which reads as
// exactly zero whatever the _orig array holds there. The bias likewise. The
// zeros of a plain N.weight, as torch.nn.utils.prune.remove leaves them, are
// live parameters that happen to be zero.
//
// Arrays are float32 or float64 (masks too), in either byte order, in C or
// Fortran order; values are computed in float64. NaN and ±Inf are errors.
// Reading names the file and the key at fault, and rejects keys of other
// modules (a BatchNorm's running_mean, say), a weight without its bias,
// shapes that disagree, other dtypes, mask values other than 0 and 1, and
// archives that are empty, truncated or not zip files.
//
// The archive does not hold the activations and the loss: they come from a
// Spec or from the spec file next to the archive (see SpecPath).
//
// # Layout
//
// Reading records in Network.Meta[MetaKey] how the archive named and stored
// the parameters (the Layout: prefix, module indices, dtype and which tensors
// were in the _orig/_mask form), and Write uses it to put every array back
// under its key and in its dtype: float32 values that were not changed are
// written back bit for bit. A network that was not read from an archive has
// no prefix, its Linear layers at modules 0, 2, 4, … and float64 arrays.
//
// Write writes, for each layer in order, the weight and then the bias, each
// as N.NAME, or as N.NAME_orig and N.NAME_mask when one of its parameters is
// pruned or it was read in that form. The _orig array holds 0 at the pruned
// entries. Masks have the dtype of the parameters, as the masks of
// torch.nn.utils.prune do. Arrays are little-endian, in C order, in npy
// format 2.0 files, compressed as by np.savez_compressed.
//
// # Spec files
//
// The spec file of model.npz is model.spec.json, a JSON object:
//
//	{"activations": ["tanh", "sigmoid"], "loss": "mse", "meta": {…}}
//
// activations names the activation after each Linear layer in order (tanh,
// sigmoid, relu, linear or softmax; one name applies to every layer), loss
// the loss (mse, bce or ce) and the optional meta object the network's Meta.
// Load reads it when it exists; the fields of a Spec override it. Save writes
// it next to the archive.
//
// For a model trained with CrossEntropyLoss on logits, name the last
// activation softmax and the loss ce; with BCEWithLogitsLoss, sigmoid and
// bce.
//
// # PyTorch
//
// Export a model, and import a network written by Write (np is numpy, prune
// torch.nn.utils.prune):
//
//	np.savez("m.npz", **{k: v.cpu().numpy() for k, v in model.state_dict().items()})
//
//	sd = {k: torch.from_numpy(v) for k, v in np.load("pruned.npz").items()}
//	for name, m in model.named_modules():
//	    for t in ("weight", "bias"):
//	        if f"{name}.{t}_mask" in sd:
//	            prune.identity(m, t)
//	model.load_state_dict(sd)
//
// prune.identity gives each masked tensor the _orig and _mask form that the
// archive holds, so that load_state_dict takes it; without pruned parameters
// the loop does nothing.
package modelio
