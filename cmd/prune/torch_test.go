package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio/npz"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/nn"
)

// torchPython returns Debian's python3 with torch and numpy, or skips the
// test with a message when they are missing.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("skipped: %s cannot import torch and numpy (%v); install python3-torch and python3-numpy", py, err)
	}
	return py
}

// torchTrain trains LeNet-300-100 in torch for a few steps on the training
// arrays of DIR/data.npz and saves its state_dict: as fc1/fc2/fc3 modules
// and as an nn.Sequential, in float32 and float64, as .pt (torch.save), .npz
// (np.savez) and .safetensors (from its published layout).
const torchTrain = `
import json, struct, sys
import numpy as np, torch
d = sys.argv[1]
data = np.load(d + "/data.npz")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
torch.manual_seed(1)

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)
    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for step in range(60):
    i = torch.randint(0, len(X), (100,))
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(X[i]), y[i]).backward()
    opt.step()

def seq_names(sd):
    return {k.replace("fc1", "0").replace("fc2", "2").replace("fc3", "4"): v for k, v in sd.items()}

def safetensors(path, sd):
    codes = {torch.float32: "F32", torch.float64: "F64"}
    header, raw = {}, b""
    for k in sorted(sd):
        b = sd[k].contiguous().numpy().tobytes()
        header[k] = {"dtype": codes[sd[k].dtype], "shape": list(sd[k].shape), "data_offsets": [len(raw), len(raw) + len(b)]}
        raw += b
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw)

for dtype, suffix in ((torch.float32, ""), (torch.float64, "64")):
    fc = {k: v.detach().to(dtype) for k, v in net.state_dict().items()}
    seq = seq_names(fc)
    torch.save(fc, f"{d}/fc{suffix}.pt")
    torch.save(seq, f"{d}/seq{suffix}.pt")
    np.savez(f"{d}/fc{suffix}.npz", **{k: v.numpy() for k, v in fc.items()})
    np.savez(f"{d}/seq{suffix}.npz", **{k: v.numpy() for k, v in seq.items()})
    safetensors(f"{d}/fc{suffix}.safetensors", fc)
    safetensors(f"{d}/seq{suffix}.safetensors", seq)
`

// torchEval loads each model file of its arguments into a fresh, unpruned
// module of the naming the file uses, the way the README shows, and prints
// the correct predictions and the accuracy on the test arrays of
// DIR/data.npz, in the dtype of the file, as a JSON object by file.
const torchEval = `
import json, struct, sys
import numpy as np, torch
import torch.nn.utils.prune as prune
d, files = sys.argv[1], sys.argv[2:]
data = np.load(d + "/data.npz")
X, y = torch.from_numpy(data["X_test"]), torch.from_numpy(data["y_test"])

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)
    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

def load(path):
    if path.endswith(".pt"):
        return torch.load(path)
    if path.endswith(".npz"):
        return {k: torch.from_numpy(v) for k, v in np.load(path).items()}
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    codes = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
    sd = {}
    for k, v in json.loads(b[8:8 + n]).items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        sd[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=codes[v["dtype"]]).reshape(v["shape"])
    return sd

out = {}
for f in files:
    sd = load(f)
    if any(k.startswith("fc1.") for k in sd):
        model = Net()
    else:
        model = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    dtype = next(iter(sd.values())).dtype
    model.to(dtype)
    for name, m in model.named_modules():
        for t in ("weight", "bias"):
            if f"{name}.{t}_mask" in sd:
                prune.identity(m, t)
    model.load_state_dict(sd)
    with torch.no_grad():
        correct = int((model(X.to(dtype)).argmax(1) == y).sum())
    out[f] = {"correct": correct, "accuracy": correct / len(y), "dtype": str(dtype)}
print(json.dumps(out))
`

// TestTorchRoundTrip saves a LeNet-300-100 state_dict with torch in every
// format and both namings, prunes it here to 90 % by layer-wise OBS, loads
// the result back into torch in both mask forms, and checks that torch
// counts the same correct test predictions as prune eval: exactly in
// float32, and the same accuracy to 1e-6 in float64. The data are a random
// subset of MNIST, normalized as torch users do, given to both sides as an
// .npz file of arrays.
func TestTorchRoundTrip(t *testing.T) {
	py := torchPython(t)
	s, err := datasets.LoadMNIST("", 0, 0)
	if err != nil {
		t.Skipf("skipped: MNIST is not available: %v", err)
	}
	rng := rand.New(rand.NewPCG(12, 1))
	train := s.Train.Subset(rng.Perm(s.Train.Len())[:1000])
	test := s.Test.Subset(rng.Perm(s.Test.Len())[:500])
	dir := t.TempDir()
	data := filepath.Join(dir, "data.npz")
	writeData(t, data, train, test)

	if out, err := exec.Command(py, "-c", torchTrain, dir).CombinedOutput(); err != nil {
		t.Fatalf("torch training: %v\n%s", err, out)
	}
	type result struct {
		Correct  int     `json:"correct"`
		Accuracy float64 `json:"accuracy"`
	}
	ours := make(map[string]result)
	var outputs []string
	evalHere := func(f string) {
		code, out, stderr := runArgs("eval", "--model", f, "--data", data, "--split", "test", "--json")
		if code != 0 {
			t.Fatalf("eval %s: exit %d\n%s", f, code, stderr)
		}
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("eval %s: %v\n%s", f, err, out)
		}
		r.Correct = int(math.Round(r.Accuracy * float64(test.Len())))
		ours[f] = r
		outputs = append(outputs, f)
	}
	convert := func(from, to, masks string) {
		if code, _, stderr := runArgs("convert", "--quiet", "--model", from, "--torch-masks", masks, "-o", to); code != 0 {
			t.Fatalf("convert %s: exit %d\n%s", from, code, stderr)
		}
		evalHere(to)
	}
	// Each float32 input in its own format and naming; the float64 one
	// pruned once and then converted to the other formats, which keep its
	// names and dtype.
	for _, in := range []string{"fc.pt", "seq.safetensors", "fc.npz", "seq64.pt"} {
		ext := filepath.Ext(in)
		stem := strings.ReplaceAll(in, ".", "_")
		model := filepath.Join(dir, in)
		pruned := filepath.Join(dir, stem+"-pruned"+ext)
		start := time.Now()
		if code, _, stderr := runArgs("run", "--quiet", "--model", model, "--act", "relu,relu,linear", "--loss", "ce",
			"--data", data, "--layerwise", "--target-sparsity", "0.9", "-o", pruned); code != 0 {
			t.Fatalf("run %s: exit %d\n%s", in, code, stderr)
		}
		t.Logf("prune run --layerwise %s: %.1f s (the machine is shared)", in, time.Since(start).Seconds())
		code, out, _ := runArgs("inspect", "--model", pruned, "--json")
		var info modelInfo
		if code != 0 || json.Unmarshal([]byte(out), &info) != nil || math.Abs(info.Sparsity-0.9) > 0.005 {
			t.Errorf("%s: sparsity %v, want 0.9", pruned, info.Sparsity)
		}
		evalHere(pruned)
		convert(pruned, filepath.Join(dir, stem+"-plain"+ext), "plain")
		if in == "seq64.pt" {
			for _, e := range []string{".safetensors", ".npz"} {
				convert(pruned, filepath.Join(dir, stem+"-pruned-as-"+e[1:]+e), "prune")
				convert(pruned, filepath.Join(dir, stem+"-plain-as-"+e[1:]+e), "plain")
			}
		}
	}
	out, err := exec.Command(py, append([]string{"-c", torchEval, dir}, outputs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("torch evaluation: %v\n%s", err, out)
	}
	var theirs map[string]result
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range outputs {
		o, th := ours[f], theirs[f]
		if strings.HasPrefix(filepath.Base(f), "seq64") {
			if math.Abs(o.Accuracy-th.Accuracy) > 1e-6 {
				t.Errorf("%s: prune eval accuracy %v, torch %v", filepath.Base(f), o.Accuracy, th.Accuracy)
			}
		} else if o.Correct != th.Correct {
			t.Errorf("%s: prune eval counts %d correct, torch %d", filepath.Base(f), o.Correct, th.Correct)
		}
		t.Logf("%s: %d of %d correct here, %d in torch", filepath.Base(f), o.Correct, test.Len(), th.Correct)
	}
}

// writeData writes the training and test sets to path as an .npz file of
// float32 inputs, normalized with MNIST's mean 0.1307 and standard
// deviation 0.3081, and int64 class labels.
func writeData(t *testing.T, path string, train, test *nn.Data) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := npz.NewWriter(f)
	for _, c := range []struct {
		suffix string
		set    *nn.Data
	}{{"", train}, {"_test", test}} {
		n, d := c.set.X.Dims()
		x := make([][]float32, n)
		y := make([]int64, n)
		for i := range x {
			x[i] = make([]float32, d)
			for j := range x[i] {
				x[i][j] = float32((c.set.X.At(i, j) - 0.1307) / 0.3081)
			}
			y[i] = int64(c.set.Y.At(i, 0))
		}
		if err := w.Write("X"+c.suffix+".npy", x); err != nil {
			t.Fatal(err)
		}
		if err := w.Write("y"+c.suffix+".npy", y); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
