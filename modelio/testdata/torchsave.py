"""Write the .pt and .safetensors files of testdata with Debian's
python3-torch, and expected.json, the values torch holds for each tensor
(flattened in C order, as Python floats, which hold every float16, bfloat16
and float32 value exactly).

Run as /usr/bin/python3 torchsave.py in this directory.
"""

import io
import json
import os
import pickle
import struct
import zipfile

import torch
import torch.nn.utils.prune as prune

torch.manual_seed(12)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.fc2 = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


expected = {}


def save(name, sd, **kw):
    torch.save(sd, name, **kw)
    expected[name] = {k: v.double().flatten().tolist() for k, v in sd.items() if v.is_floating_point()}


net = Net()
save("fc.pt", net.state_dict())
save("fc_f16.pt", {k: v.half() for k, v in net.state_dict().items()})
save("fc_bf16.pt", {k: v.bfloat16() for k, v in net.state_dict().items()})
save("fc_f64.pt", {k: v.double() for k, v in net.state_dict().items()})
save("fc_protocol4.pt", net.state_dict(), pickle_protocol=4)
# A transposed view: strides (1, 4) into its storage.
save("fc_strided.pt", {k: v.t().contiguous().t() if v.dim() == 2 else v for k, v in net.state_dict().items()})

seq = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
prune.l1_unstructured(seq[0], "weight", amount=0.5)
save("seq_pruned_legacy.pt", seq.state_dict(), _use_new_zipfile_serialization=False)
save("seq_pruned.pt", seq.state_dict())

# A training checkpoint, which holds the state_dict under "state_dict".
torch.save({"epoch": 3, "state_dict": net.state_dict(), "optimizer": torch.optim.SGD(net.parameters(), lr=0.1).state_dict()}, "checkpoint.pt")
expected["checkpoint.pt"] = {k: v.double().flatten().tolist() for k, v in net.state_dict().items()}

bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
save("bad_batchnorm.pt", bn.state_dict())


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


# A zip archive like torch.save's whose pickle calls os.system.
with zipfile.ZipFile("bad_os_system.pt", "w", compression=zipfile.ZIP_STORED) as z:
    z.writestr("bad_os_system/data.pkl", pickle.dumps({"fc1.weight": Evil()}, protocol=2))
    z.writestr("bad_os_system/version", "3\n")
expected["bad_os_system.pt"] = {}

# safetensors, from its published layout: an 8-byte little-endian header
# length, the JSON header, the raw little-endian data. The safetensors
# library sorts the tensors by dtype and then name; so do we.
codes = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def safetensors(name, sd):
    header, data = {}, b""
    for k in sorted(sd):
        v = sd[k].contiguous()
        raw = v.view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 else v.numpy().tobytes()
        header[k] = {"dtype": codes[v.dtype], "shape": list(v.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(name, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    expected[name] = {k: v.double().flatten().tolist() for k, v in sd.items() if v.is_floating_point()}


# Sequential names, whose sorted order (0, 10, 2) is not the layers' order.
deep = torch.nn.Sequential(*[m for i in range(6) for m in (torch.nn.Linear(3 if i else 4, 3), torch.nn.ReLU())])
deep.append(torch.nn.Linear(3, 2))
safetensors("deep.safetensors", deep.state_dict())
safetensors("fc_bf16.safetensors", {k: v.bfloat16() for k, v in net.state_dict().items()})
safetensors("bad_batchnorm.safetensors", bn.state_dict())

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
