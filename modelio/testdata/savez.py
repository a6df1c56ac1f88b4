"""Write torch_pruned.npz with Debian's python3-torch and python3-numpy: the
state_dict of a pruned PyTorch model saved by np.savez, which writes
uncompressed zip entries with zip64 local headers, each an .npy file of
format 1.0.

The model is nn.Sequential(Linear(3, 4), ReLU(), Linear(4, 2), Tanh(),
Linear(2, 1), Sigmoid()), kept as the attribute "model" of a wrapper, in
float32, with the fixed weights below; torch.nn.utils.prune then prunes the
weights of modules 0 and 4 with fixed masks, so that the state_dict holds
model.0.weight_orig and model.0.weight_mask in place of model.0.weight (and
likewise for module 4).

Run as /usr/bin/python3 savez.py in this directory.
"""

import numpy as np
import torch
import torch.nn.utils.prune as prune


class Wrapper(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.ReLU(),
            torch.nn.Linear(4, 2), torch.nn.Tanh(),
            torch.nn.Linear(2, 1), torch.nn.Sigmoid(),
        )

    def forward(self, x):
        return self.model(x)


def tensor(shape, values):
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


net = Wrapper()
weights = {
    0: ([0.5, -0.25, 0.75, 0.1, -1.5, 2.0, 0.3, -0.7, 1.25, 0.0, -0.125, 0.875], [0.1, -0.2, 0.3, 0.0]),
    2: ([0.25, -0.5, 1.0, 0.125, -1.0, 0.5, 0.2, 0.0], [0.05, -0.05]),
    4: ([1.5, -2.5], [-0.3]),
}
masks = {
    0: [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0],
    4: [0, 1],
}
with torch.no_grad():
    for i, (w, b) in weights.items():
        layer = net.model[i]
        layer.weight.copy_(tensor(layer.weight.shape, w))
        layer.bias.copy_(tensor(layer.bias.shape, b))
for i, m in masks.items():
    layer = net.model[i]
    prune.custom_from_mask(layer, "weight", tensor(layer.weight.shape, m))

state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
assert list(state) == [
    "model.0.bias", "model.0.weight_orig", "model.0.weight_mask",
    "model.2.weight", "model.2.bias",
    "model.4.bias", "model.4.weight_orig", "model.4.weight_mask",
], list(state)
assert all(v.dtype == np.float32 for v in state.values())
np.savez("torch_pruned.npz", **state)
