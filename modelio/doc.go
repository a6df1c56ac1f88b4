// Package modelio reads and writes networks in the model files of the
// toolkit, chosen by extension: prune-mlp/1 JSON files (.json, see
// Format) and PyTorch state_dicts: .pt or .pth files of torch.save,
// .safetensors files, and archives saved by NumPy (.npz).
//
// # .pt and .safetensors files
//
// A .pt file is what torch.save(model.state_dict(), "m.pt") writes: a zip
// archive holding ARCHIVE/data.pkl, the pickle of the dict, and one raw
// record ARCHIVE/data/K per storage, or the legacy format of
// _use_new_zipfile_serialization=False. The pickle is read with an
// allow-list: it may name collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 (and _rebuild_tensor, _rebuild_parameter)
// and the torch storage classes, each a Go value that records its
// arguments; any other class is refused by name, and nothing in the file is
// ever run. Opcodes that build objects of arbitrary classes are refused, and
// every length in the pickle is checked against its size before anything
// is allocated. Tensors may be float16, bfloat16, float32 or float64, in
// either byte order, with any strides into their storage. A training
// checkpoint, a dict holding the state_dict under "state_dict",
// "model_state_dict" or "model" next to an epoch or an optimizer's
// state, gives that state_dict.
//
// A .safetensors file holds an 8-byte little-endian header length, a JSON
// header mapping each tensor name to its dtype (F16, BF16, F32, F64),
// shape and data_offsets, and the raw little-endian data.
//
// The keys of these files, and of an .npz archive that is not named as an
// nn.Sequential, are MODULE.TENSOR for any module names (fc1.weight,
// encoder.layers.2.bias): each module with a 2-D weight and a bias (or
// their _orig and _mask forms) is a Linear layer, taken in file order, or in
// the order of Spec.Layers; when the file order does not chain (a
// safetensors writer sorts the keys, putting 10 before 2) but the natural
// order of the names does, that order. The entries of any other module
// (a BatchNorm's running_mean, say) are refused with the module named.
// WritePT and WriteSafetensors write what torch.load and the safetensors
// library read, under the keys and in the dtype read (see Layout).
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
// The spec file of model.npz (or model.pt, model.safetensors) is
// model.spec.json, a JSON object:
//
//	{"activations": ["relu", "relu", "linear"], "loss": "ce", "layers": ["fc1", "fc2", "fc3"], "meta": {…}}
//
// activations names the activation after each Linear layer in order (tanh,
// sigmoid, relu, linear or softmax; one name applies to every layer), loss
// the loss (mse, bce or ce), the optional layers the Linear modules in layer
// order (as Spec.Layers) and the optional meta object the network's Meta.
// Load reads it when it exists; the fields of a Spec override it. Save writes
// it next to the archive, without layers: the file written holds the layers
// in order.
//
// For a model trained with CrossEntropyLoss on logits, name the last
// activation linear (or softmax) and the loss ce; with BCEWithLogitsLoss,
// linear (or sigmoid) and bce (see nn.Logits).
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
// the loop does nothing. module.weight is stale until the first forward
// pass, whose hook computes it as weight_orig * weight_mask. With
// Layout.Masks set to MasksPlain, the tensors are written under their own
// keys with the pruned entries zero, and a module without the prune form
// loads them as they are: model.load_state_dict(sd).
package modelio
