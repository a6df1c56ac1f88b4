package modelio

import (
	"bytes"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the archives in testdata that the tests generate")

// testdataFiles are the archives in testdata, which also seed FuzzReadNPZ.
// Good ones (want empty) have a spec file and read without a Spec; bad ones
// give the error want with a Spec of tanh layers and loss mse. Those with a
// nil gen are not generated here: torch_pruned.npz comes from savez.py.
var testdataFiles = []struct {
	name string
	gen  func() []byte
	spec string // content of the spec file of a good archive
	want string
}{
	{"mlp.npz", func() []byte { return savez(mlp("", "<f8")...) }, `{"activations": ["tanh", "sigmoid"], "loss": "mse"}`, ""},
	{"mlp_f32_masked.npz", func() []byte {
		return savez(
			arr("0.weight_orig", "<f4", []int{3, 2}, 0.5, 0, 0.75, 0.1, -0.5, 2),
			arr("0.weight_mask", "<f4", []int{3, 2}, 1, 0, 1, 1, 1, 1),
			arr("0.bias", "<f4", []int{3}, 0.125, -0.25, 1),
			arr("2.weight", "<f4", []int{1, 3}, 1.5, -2, 0.3),
			arr("2.bias", "<f4", []int{1}, -0.375),
		)
	}, `{"activations": ["relu", "sigmoid"], "loss": "bce"}`, ""},
	{"fortran.npz", func() []byte {
		return savez(
			entry{key: "0.weight", npy: npyArray("<f8", true, []int{3, 2}, f8(1, 3, 5, 2, 4, 6))},
			entry{key: "0.bias", npy: npyArray(">f8", false, []int{3}, f8be(7, 8, 9))},
		)
	}, `{"activations": ["linear"], "loss": "mse"}`, ""},
	{"torch_pruned.npz", nil, `{"activations": ["relu", "tanh", "sigmoid"], "loss": "bce"}`, ""},

	{"bad_f16.npz", func() []byte {
		return savez(entry{key: "0.weight", npy: npyArray("<f2", false, []int{1, 2}, make([]byte, 4))}, arr("0.bias", "<f8", []int{1}, 0))
	}, "", "unsupported dtype <f2 in 0.weight; want float32 or float64"},
	{"bad_batchnorm.npz", func() []byte {
		return savez(append(mlp("", "<f4"),
			arr("1.running_mean", "<f4", []int{3}, 0, 0, 0),
			arr("1.running_var", "<f4", []int{3}, 1, 1, 1))...)
	}, "", "unsupported module 1 (keys 1.running_mean, 1.running_var)"},
	{"bad_mask_value.npz", func() []byte {
		return savez(
			arr("0.weight_orig", "<f4", []int{1, 2}, 1, 2),
			arr("0.weight_mask", "<f4", []int{1, 2}, 1, 2),
			arr("0.bias", "<f4", []int{1}, 0))
	}, "", "0.weight_mask[0][1]: 2 is not 0 or 1"},
	{"bad_no_bias.npz", func() []byte { return savez(mlp("", "<f8")[:3]...) }, "", "2.weight without 2.bias"},
	{"bad_shapes.npz", func() []byte {
		es := mlp("model.", "<f8")
		es[2] = arr("model.2.weight", "<f8", []int{1, 2}, 1, 2)
		return savez(es...)
	}, "", "model.2.weight: shape (1, 2) takes 2 inputs, but model.0.weight gives 3 outputs"},
	{"bad_nan.npz", func() []byte {
		es := mlp("", "<f4")
		es[1] = arr("0.bias", "<f4", []int{3}, 0, math.NaN(), 0)
		return savez(es...)
	}, "", "0.bias[1]: NaN is not allowed"},
	{"bad_truncated.npz", func() []byte { b := savez(mlp("", "<f8")...); return b[:len(b)/2] }, "", "not an .npz archive"},
	{"bad_not_zip.npz", func() []byte { return []byte("0.weight,0.bias\n") }, "", "not an .npz archive"},
	{"bad_empty.npz", func() []byte { return savez() }, "", "empty archive"},
	{"bad_header.npz", func() []byte {
		return savez(entry{key: "0.weight", npy: npyRaw(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1)}", f8(1))}, arr("0.bias", "<f8", []int{1}, 0))
	}, "", "0.weight: npy header"},
}

func TestTestdata(t *testing.T) {
	for _, tf := range testdataFiles {
		path := filepath.Join("testdata", tf.name)
		if *update && tf.gen != nil {
			if err := os.WriteFile(path, tf.gen(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if *update && tf.spec != "" {
			if err := os.WriteFile(SpecPath(path), []byte(tf.spec+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tf.gen != nil {
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tf.gen()) {
				t.Errorf("%s is not what the tests generate; run go test -run TestTestdata -update", path)
			}
		}
		if tf.want == "" {
			n, err := Load(path, nil)
			if err != nil {
				t.Errorf("%s: %v", tf.name, err)
				continue
			}
			// Written back with the same arrays, but for torch_pruned.npz,
			// whose pruned _orig entries become 0.
			if tf.name != "torch_pruned.npz" {
				in, _ := os.ReadFile(path)
				if tf.name == "fortran.npz" {
					in = savez(
						arr("0.weight", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6),
						arr("0.bias", "<f8", []int{3}, 7, 8, 9))
				}
				sameArrays(t, writeBytes(t, n), in)
			}
			continue
		}
		_, err := Load(path, tanhMSE)
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tf.want) {
			t.Errorf("%s: error %v, want %s: …%s…", tf.name, err, path, tf.want)
		}
	}
}

// TestSavez reads an archive as np.savez writes it, with zip64 local
// headers, holding a state_dict after torch.nn.utils.prune.
func TestSavez(t *testing.T) {
	path := filepath.Join("testdata", "torch_pruned.npz")
	n, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Arch() != "3-4-2-1" || n.NumLive() != n.NumParams()-5 {
		t.Errorf("architecture %s, %d of %d live", n.Arch(), n.NumLive(), n.NumParams())
	}
	lay, err := LayoutOf(n)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Layout{Prefix: "model.", Modules: []int{0, 2, 4}, DType: "float32", Masked: []string{"0.weight", "4.weight"}}); !reflect.DeepEqual(lay, want) {
		t.Errorf("layout %+v, want %+v", lay, want)
	}
	// As in savez.py.
	w0 := []float64{0.5, -0.25, 0.75, 0.1, -1.5, 2.0, 0.3, -0.7, 1.25, 0.0, -0.125, 0.875}
	m0 := []bool{true, false, true, true, true, false, false, true, true, true, true, false}
	for q, v := range w0 {
		if !m0[q] {
			v = 0
		}
		if got := n.RawParams()[q]; got != float64(float32(v)) || n.IsLive(q) != m0[q] {
			t.Errorf("%v: %v live %v, want %v live %v", n.ParamAt(q), got, n.IsLive(q), float32(v), m0[q])
		}
	}

	// Written back as it was read, but for the zeros at the pruned entries of
	// the _orig arrays.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, keys := unzip(t, data)
	var want []entry
	for _, k := range keys {
		a := in[k]
		if m, ok := in[strings.TrimSuffix(k, "_orig")+"_mask"]; ok && strings.HasSuffix(k, "_orig") {
			a.data = slices.Clone(a.data)
			for i := 0; i < len(a.data); i += 4 {
				if bytes.Equal(m.data[i:i+4], f4(0)) {
					copy(a.data[i:], f4(0))
				}
			}
		}
		want = append(want, entry{key: k, npy: npyRaw(1, "{'descr': '"+a.descr+"', 'fortran_order': False, 'shape': "+a.shape+", }", a.data)})
	}
	sameArrays(t, writeBytes(t, n), savez(want...))
}

// TestSavezScript reruns testdata/savez.py with NumPy and torch and checks
// that it writes the arrays of testdata/torch_pruned.npz.
func TestSavezScript(t *testing.T) {
	py := torchPython(t)
	script, err := filepath.Abs(filepath.Join("testdata", "savez.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(py, script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", py, script, err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "torch_pruned.npz"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "torch_pruned.npz"))
	if err != nil {
		t.Fatal(err)
	}
	sameArrays(t, got, want)
	_, gk := unzip(t, got)
	_, wk := unzip(t, want)
	if !slices.Equal(gk, wk) {
		t.Errorf("savez.py writes the entries in the order %v, the fixture has %v", gk, wk)
	}
}
