package modelio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
)

// expected returns testdata/expected.json, the values that torch holds for
// the tensors of the files that testdata/torchsave.py writes.
func expected(t testing.TB) map[string]map[string][]float64 {
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]map[string][]float64
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// stateValues returns the values of the tensors of n as written with its
// layout, by key.
func stateValues(t testing.TB, n *nn.Network) map[string][]float64 {
	lay, err := writable(n)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]float64)
	for _, ts := range stateTensors(n, lay) {
		out[ts.key] = ts.values
	}
	return out
}

// TestTorchFiles reads the state_dicts that torch.save wrote (zip and legacy
// formats, pickle protocols 2 and 4, float16, bfloat16, float32, float64, a
// strided tensor, torch.nn.utils.prune's form) and the safetensors files,
// and checks every value against torch's, the layout, and that writing
// gives back torch's tensors (but for the pruned entries of _orig, which
// become 0).
func TestTorchFiles(t *testing.T) {
	exp := expected(t)
	for _, tc := range []struct {
		name string
		lay  Layout
	}{
		{"fc.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF32}},
		{"fc_f16.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF16}},
		{"fc_bf16.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtBF16}},
		{"fc_f64.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF64}},
		{"fc_protocol4.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF32}},
		{"checkpoint.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF32}},
		{"fc_strided.pt", Layout{Names: []string{"fc1", "fc2"}, DType: dtF32}},
		{"seq_pruned.pt", Layout{Modules: []int{0, 2}, DType: dtF32, Masked: []string{"0.weight"}}},
		{"seq_pruned_legacy.pt", Layout{Modules: []int{0, 2}, DType: dtF32, Masked: []string{"0.weight"}}},
		{"deep.safetensors", Layout{Modules: []int{0, 2, 4, 6, 8, 10, 12}, DType: dtF32}},
		{"fc_bf16.safetensors", Layout{Names: []string{"fc1", "fc2"}, DType: dtBF16}},
	} {
		path := filepath.Join("testdata", tc.name)
		n, err := Load(path, &Spec{Activations: "relu,linear", Loss: "ce"})
		if tc.name == "deep.safetensors" {
			n, err = Load(path, &Spec{Activations: "relu", Loss: "mse"})
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		lay, err := LayoutOf(n)
		if err != nil || !reflect.DeepEqual(lay, tc.lay) {
			t.Errorf("%s: layout %+v, %v; want %+v", tc.name, lay, err, tc.lay)
		}
		want := exp[tc.name]
		got := stateValues(t, n)
		if len(got) != len(want) {
			t.Errorf("%s: %d tensors written, torch has %d", tc.name, len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("%s: %s not written", tc.name, k)
				continue
			}
			mk := want[strings.TrimSuffix(k, "_orig")+"_mask"]
			for i := range w {
				v := w[i]
				if strings.HasSuffix(k, "_orig") && mk[i] == 0 {
					v = 0
				}
				if g[i] != v {
					t.Errorf("%s: %s[%d] = %v, torch has %v", tc.name, k, i, g[i], v)
					break
				}
			}
		}
		if tc.name == "seq_pruned.pt" && n.NumLive() != n.NumParams()-6 {
			t.Errorf("%s: %d of %d live, want 6 pruned", tc.name, n.NumLive(), n.NumParams())
		}
	}
}

// TestTorchFileErrors checks that files that are not state_dicts of Linear
// layers are refused with the module or class at fault named.
func TestTorchFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"bad_batchnorm.pt", "module 1 (keys 1.weight, 1.bias, 1.running_mean, …) is not a Linear layer"},
		{"bad_batchnorm.safetensors", "module 1 (keys 1.bias, 1.num_batches_tracked, 1.running_mean, …) is not a Linear layer"},
		{"bad_os_system.pt", "the pickle names posix.system, which a state_dict of tensors does not hold; refused"},
	} {
		path := filepath.Join("testdata", tc.name)
		_, err := Load(path, tanhMSE)
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want …%s…", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.pt", nil, "empty file"},
		{"text.pt", []byte("fc1.weight\n"), "neither a zip archive nor the legacy format"},
		{"epoch.pt", ptBytes(t, "\x80\x02}X\x05\x00\x00\x00epochK\x03s."), "a dict of epoch with no tensors"},
		{"list.pt", ptBytes(t, "\x80\x02]."), "the pickle holds a list, not a state_dict"},
		{"exec.pt", ptBytes(t, "\x80\x02cbuiltins\nexec\nX\x01\x00\x00\x001\x85R."), "the pickle names builtins.exec"},
		{"obj.pt", ptBytes(t, "\x80\x02(cos\nsystem\no."), "the pickle names os.system"},
		{"inst.pt", ptBytes(t, "\x80\x02(iposix\nsystem\n."), "opcode 0x69 at byte 3 is not allowed"},
		{"frame.pt", ptBytes(t, "\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00}."), "frame longer than the pickle"},
		{"bytes8.pt", ptBytes(t, "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f."), "truncated pickle"},
		{"short.safetensors", []byte{1, 2}, "no 8-byte header length"},
		{"long.safetensors", append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, "{}"...), "exceeds the file"},
		{"overlap.safetensors", stBytes(`{"a.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"a.bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "overlap"},
		{"size.safetensors", stBytes(`{"a.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,4]}}`, 4), "hold 4 bytes, want 8"},
		{"dtype.safetensors", stBytes(`{"a.weight":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}`, 4), `unknown dtype "F99"`},
		{"field.safetensors", stBytes(`{"a.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), `want {"dtype", "shape", "data_offsets"}`},
	} {
		path := filepath.Join(t.TempDir(), tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, tanhMSE)
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want …%s…", tc.name, err, tc.want)
		}
	}
}

// stBytes returns a safetensors file of the header h and data zero bytes.
func stBytes(h string, data int) []byte {
	b := []byte{byte(len(h)), byte(len(h) >> 8), 0, 0, 0, 0, 0, 0}
	return append(append(b, h...), make([]byte, data)...)
}

// TestWriteFormats checks that every format reads back the network written,
// with its layout, bit for bit, in both mask forms, and that writing twice
// gives the same bytes.
func TestWriteFormats(t *testing.T) {
	for _, src := range []string{"fc.pt", "fc_f16.pt", "fc_bf16.pt", "seq_pruned.pt"} {
		n, err := Load(filepath.Join("testdata", src), &Spec{Activations: "relu,linear", Loss: "ce"})
		if err != nil {
			t.Fatal(err)
		}
		live := n.Mask()
		if live == nil {
			live = make([]bool, n.NumParams())
			for q := range live {
				live[q] = q%3 != 1
			}
		}
		n.SetMask(live)
		for _, masks := range []string{MasksPrune, MasksPlain} {
			lay, _ := LayoutOf(n)
			lay.Masks = masks
			if err := SetLayout(n, lay); err != nil {
				t.Fatal(err)
			}
			for _, ext := range []string{".pt", ".safetensors", ".npz", ".json"} {
				path := filepath.Join(t.TempDir(), "m"+ext)
				if err := Save(path, n); err != nil {
					t.Fatalf("%s %s %s: %v", src, masks, ext, err)
				}
				m, err := Load(path, nil)
				if err != nil {
					t.Fatalf("%s %s %s: %v", src, masks, ext, err)
				}
				if masks == MasksPlain && ext != ".json" {
					// Plain tensors read back with every parameter live.
					if m.NumLive() != m.NumParams() {
						t.Errorf("%s %s %s: %d of %d live", src, masks, ext, m.NumLive(), m.NumParams())
					}
					m.SetMask(n.Mask())
				}
				if !reflect.DeepEqual(m.RawParams(), n.RawParams()) || !reflect.DeepEqual(m.Mask(), n.Mask()) || !reflect.DeepEqual(m.Layers(), n.Layers()) {
					t.Errorf("%s %s %s: read back differs", src, masks, ext)
				}
				ml, _ := LayoutOf(m)
				want := lay
				if ext == ".npz" && (lay.DType == dtF16 || lay.DType == dtBF16) {
					want.DType = dtF32
				}
				if ext != ".json" {
					if want.Masks == MasksPlain {
						want.Masked = nil
					}
					ml.Masks = want.Masks // not stored in the file itself
				}
				if !reflect.DeepEqual(ml, want) && !(ext != ".json" && masks == MasksPrune && len(ml.Masked) > 0) {
					t.Errorf("%s %s %s: layout %+v, want %+v", src, masks, ext, ml, want)
				}
				if ext == ".pt" || ext == ".safetensors" {
					a, _ := os.ReadFile(path)
					if err := Save(path, n); err != nil {
						t.Fatal(err)
					}
					b, _ := os.ReadFile(path)
					if !bytes.Equal(a, b) {
						t.Errorf("%s %s %s: second write differs", src, masks, ext)
					}
				}
			}
		}
	}
}

// TestHalfFloats checks the float16 and bfloat16 conversions on every bit
// pattern, and rounding to nearest, ties to even.
func TestHalfFloats(t *testing.T) {
	for _, c := range []struct {
		dtype       string
		mbits, bias int
	}{{dtF16, 10, 15}, {dtBF16, 7, 127}} {
		for h := range 1 << 16 {
			v := halfValue(uint16(h), c.mbits, c.bias)
			if math.IsNaN(v) {
				continue
			}
			if c.dtype == dtBF16 && v != float64(math.Float32frombits(uint32(h)<<16)) {
				t.Fatalf("bfloat16 %#04x: %v", h, v)
			}
			if got := halfBits(v, c.mbits, c.bias); got != uint16(h) {
				t.Fatalf("%s %#04x = %v writes as %#04x", c.dtype, h, v, got)
			}
		}
	}
	for _, c := range []struct {
		x    float64
		want uint16
	}{
		{65504, 0x7bff}, {65519.99, 0x7bff}, {65520, 0x7c00}, {-1e9, 0xfc00},
		{1 + 1.0/2048, 0x3c00},       // a tie, to even
		{1 + 3.0/2048, 0x3c02},       // a tie, to even
		{math.Ldexp(1, -25), 0x0000}, // half the smallest subnormal: to even
		{math.Ldexp(1.5, -25), 0x0001},
		{math.Ldexp(1, -24), 0x0001},
		{math.Ldexp(1023.5, -24), 0x0400}, // rounds up to the smallest normal
		{math.Copysign(0, -1), 0x8000},
	} {
		if got := halfBits(c.x, 10, 15); got != c.want {
			t.Errorf("float16(%v) = %#04x, want %#04x", c.x, got, c.want)
		}
	}
	if fits(65520, dtF16) || !fits(65504, dtF16) || fits(math.MaxFloat32*2, dtBF16) || !fits(3e38, dtBF16) {
		t.Error("fits")
	}
}

// TestTorchLoadsWritten has torch load the .pt and .safetensors files
// written, in both mask forms, and compares its tensors with ours.
func TestTorchLoadsWritten(t *testing.T) {
	py := torchPython(t)
	n, err := Load(filepath.Join("testdata", "seq_pruned.pt"), &Spec{Activations: "tanh,linear", Loss: "ce"})
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		dtype, masks, dir string
		m                 *nn.Network
	}
	var runs []run
	args := []string{"-c", torchDump}
	for _, dtype := range []string{dtF16, dtBF16, dtF32, dtF64} {
		for _, masks := range []string{MasksPrune, MasksPlain} {
			lay, _ := LayoutOf(n)
			lay.Masks, lay.DType = masks, dtype
			m := *n
			m.Meta = nil
			if err := SetLayout(&m, lay); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for _, ext := range []string{".pt", ".safetensors"} {
				if err := Save(filepath.Join(dir, "m"+ext), &m); err != nil {
					t.Fatal(err)
				}
			}
			runs = append(runs, run{dtype, masks, dir, &m})
			args = append(args, dir)
		}
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var all []map[string]map[string][]float64
	if err := json.Unmarshal(out, &all); err != nil || len(all) != len(runs) {
		t.Fatalf("%v\n%s", err, out)
	}
	for r, got := range all {
		dtype, masks := runs[r].dtype, runs[r].masks
		want := stateValues(t, runs[r].m)
		for _, f := range []string{"pt", "safetensors"} {
			if len(got[f]) != len(want) {
				t.Errorf("%s %s: torch reads %d tensors from .%s, want %d", dtype, masks, len(got[f]), f, len(want))
			}
			for k, w := range want {
				for i := range w {
					x := w[i]
					if dtype != dtF64 {
						x = halfOrSingle(x, dtype)
					}
					if got[f][k][i] != x {
						t.Fatalf("%s %s .%s: torch has %s[%d] = %v, want %v", dtype, masks, f, k, i, got[f][k][i], x)
					}
				}
			}
		}
	}
}

// halfOrSingle rounds x to dtype as writing does.
func halfOrSingle(x float64, dtype string) float64 {
	var b []float64
	decodeTo := func(raw []byte) float64 {
		b = make([]float64, 1)
		decode(b, raw, dtype, binary.LittleEndian)
		return b[0]
	}
	return decodeTo(encode(nil, []float64{x}, dtype))
}

// torchDump prints, as a JSON list, for each directory DIR of its
// arguments the tensors of DIR/m.pt as torch.load reads them and of
// DIR/m.safetensors as its published layout gives them.
const torchDump = `
import json, struct, sys, torch
def dump(d):
    pt = torch.load(d + "/m.pt")
    b = open(d + "/m.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    codes = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
    st = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        st[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=codes[v["dtype"]]).reshape(v["shape"])
    return {f: {k: v.double().flatten().tolist() for k, v in sd.items()} for f, sd in (("pt", pt), ("safetensors", st))}
print(json.dumps([dump(d) for d in sys.argv[1:]]))
`

// torchPython returns Debian's python3 with torch, or skips the test with a
// message when torch is missing.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("skipped: %s cannot import torch and numpy (%v); install python3-torch and python3-numpy", py, err)
	}
	return py
}

// TestLayersOrder checks that the Linear modules are taken in the order of
// Spec.Layers or of the spec file, and that an order that does not chain,
// or names a module that is not there, is refused.
func TestLayersOrder(t *testing.T) {
	src := filepath.Join("testdata", "fc.pt")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.pt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &Spec{Activations: "relu,linear", Loss: "ce", Layers: []string{"fc1", "fc2"}}
	if n, err := Load(path, spec); err != nil || n.Arch() != "4-3-2" {
		t.Fatalf("layers fc1,fc2: %v", err)
	}
	for _, c := range []struct {
		layers []string
		want   string
	}{
		{[]string{"fc2", "fc1"}, "in the order of layers: fc1.weight: shape (3, 4) takes 4 inputs, but fc2.weight gives 2 outputs"},
		{[]string{"fc1"}, "layers: Linear module fc2 (keys fc2.weight, fc2.bias) is not listed"},
		{[]string{"fc1", "fc3"}, `layers: no module "fc3"; the state_dict has fc1, fc2`},
		{[]string{"fc1", "fc1"}, "layers: fc1 given twice"},
	} {
		spec.Layers = c.layers
		if _, err := Load(path, spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("layers %v: error %v, want …%s…", c.layers, err, c.want)
		}
	}
	if err := os.WriteFile(SpecPath(path), []byte(`{"activations": ["relu", "linear"], "loss": "ce", "layers": ["fc2", "fc1"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "in the order of layers") {
		t.Errorf("layers of the spec file: error %v", err)
	}
}

// ptBytes returns a .pt file in the zip format of torch.save whose pickle
// is p.
func ptBytes(t *testing.T, p string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, r := range [][2]string{{"d/data.pkl", p}, {"d/version", "3\n"}} {
		w, err := zw.Create(r[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(r[1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
