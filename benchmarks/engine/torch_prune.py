"""Global magnitude pruning of a LeNet-300-100 with PyTorch, for comparison.

Reads the parameters written by the engine benchmark (raw little-endian
float64, the toolkit's order: per layer W out×in row-major, then b), builds
the torch.nn.Linear layers, and times torch.nn.utils.prune.global_unstructured
with L1Unstructured removing a given number of parameters over all weights
and biases. Prints one JSON line: the median time in seconds and the flat
indices pruned, as a sorted list.

    /usr/bin/python3 torch_prune.py PARAMS SIZES COUNT REPS
"""
import json
import sys
import time

import numpy as np
import torch
from torch.nn.utils import prune


def main():
    path, sizes, count, reps = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
    theta = np.fromfile(path, dtype="<f8")
    times = []
    for _ in range(reps):
        layers, off = [], 0
        for i in range(len(sizes) - 1):
            lin = torch.nn.Linear(sizes[i], sizes[i + 1]).double()
            n = sizes[i] * sizes[i + 1]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(theta[off:off + n].reshape(sizes[i + 1], sizes[i])))
                off += n
                lin.bias.copy_(torch.from_numpy(theta[off:off + sizes[i + 1]]))
                off += sizes[i + 1]
            layers.append(lin)
        params = []
        for lin in layers:
            params += [(lin, "weight"), (lin, "bias")]
        t0 = time.perf_counter()
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=count)
        times.append(time.perf_counter() - t0)
    pruned, off = [], 0
    for lin in layers:
        for m in (lin.weight_mask, lin.bias_mask):
            flat = m.detach().reshape(-1).numpy()
            pruned += (np.nonzero(flat == 0)[0] + off).tolist()
            off += flat.size
    times.sort()
    print(json.dumps({"seconds": times[len(times) // 2], "threads": torch.get_num_threads(), "version": torch.__version__, "pruned": pruned}))


if __name__ == "__main__":
    main()
