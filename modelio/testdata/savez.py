"""Write torch_pruned.npz as np.savez writes a state_dict: uncompressed zip
entries with zip64 local headers, each an .npy file of format 1.0.

The state_dict is that of nn.Sequential(Linear(3, 4), ReLU(), Linear(4, 2),
Tanh(), Linear(2, 1), Sigmoid()) kept as the attribute "model" of a wrapper,
after torch.nn.utils.prune pruned the weights of modules 0 and 4, in float32.
Needs only the Python standard library.
"""

import struct
import zipfile


def npy(shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    header += " " * (21 - len(repr(shape[0])))  # room for the shape to grow, as NumPy leaves
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    data = struct.pack("<%df" % len(values), *values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


w0 = [0.5, -0.25, 0.75, 0.1, -1.5, 2.0, 0.3, -0.7, 1.25, 0.0, -0.125, 0.875]
m0 = [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]
w4 = [1.5, -2.5]
m4 = [0, 1]
state = [
    ("model.0.bias", [4], [0.1, -0.2, 0.3, 0.0]),
    ("model.0.weight_orig", [4, 3], w0),
    ("model.0.weight_mask", [4, 3], m0),
    ("model.2.weight", [2, 4], [0.25, -0.5, 1.0, 0.125, -1.0, 0.5, 0.2, 0.0]),
    ("model.2.bias", [2], [0.05, -0.05]),
    ("model.4.bias", [1], [-0.3]),
    ("model.4.weight_orig", [1, 2], w4),
    ("model.4.weight_mask", [1, 2], m4),
]

with zipfile.ZipFile("torch_pruned.npz", "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
    for key, shape, values in state:
        info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
        with z.open(info, "w", force_zip64=True) as f:
            f.write(npy(shape, values))
