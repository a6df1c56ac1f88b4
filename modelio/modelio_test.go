package modelio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
)

var tanhMSE = &Spec{Activations: "tanh", Loss: "mse"}

// readBytes reads a network from an archive in memory.
func readBytes(data []byte, name string, spec *Spec) (*nn.Network, error) {
	return Read(bytes.NewReader(data), int64(len(data)), name, spec)
}

// writeBytes writes n as an archive in memory.
func writeBytes(t testing.TB, n *nn.Network) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, n); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sameNet reports whether a and b have the same architecture, parameters
// (bit for bit), mask and loss.
func sameNet(t testing.TB, got, want *nn.Network) {
	t.Helper()
	if !reflect.DeepEqual(got.Layers(), want.Layers()) || got.Loss() != want.Loss() {
		t.Fatalf("got %v %v, want %v %v", got.Layers(), got.Loss(), want.Layers(), want.Loss())
	}
	g, w := got.RawParams(), want.RawParams()
	for q := range w {
		if math.Float64bits(g[q]) != math.Float64bits(w[q]) {
			t.Fatalf("parameter %d (%v): %v, want %v", q, want.ParamAt(q), g[q], w[q])
		}
	}
	if !slices.Equal(got.Mask(), want.Mask()) {
		t.Fatalf("mask %v, want %v", got.Mask(), want.Mask())
	}
}

// randNet returns a network with awkward parameter values and, when masked,
// about a third of its parameters pruned.
func randNet(t testing.TB, sizes []int, acts []nn.Activation, loss nn.Loss, masked bool, rng *rand.Rand) *nn.Network {
	t.Helper()
	n, err := nn.New(sizes, acts, loss)
	if err != nil {
		t.Fatal(err)
	}
	specials := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, math.Pi, math.SmallestNonzeroFloat64, math.MaxFloat64, -1e-300}
	theta := n.RawParams()
	for q := range theta {
		if rng.IntN(4) == 0 {
			theta[q] = specials[rng.IntN(len(specials))]
		} else {
			theta[q] = rng.NormFloat64()
		}
	}
	if masked {
		for q := range theta {
			if rng.IntN(3) == 0 {
				n.Prune(q)
			}
		}
	}
	return n
}

func TestRoundTripJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		sizes  []int
		acts   []nn.Activation
		loss   nn.Loss
		masked bool
	}{
		{[]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.MSE, false},
		{[]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE, true},
		{[]int{4, 5, 3, 3}, []nn.Activation{nn.ReLU, nn.Tanh, nn.Softmax}, nn.CE, true},
		{[]int{1, 1}, []nn.Activation{nn.Linear}, nn.MSE, true},
	} {
		dir := t.TempDir()
		want := randNet(t, tc.sizes, tc.acts, tc.loss, tc.masked, rng)
		want.Meta = map[string]any{"seed": 7, "data": "xor"}
		js := filepath.Join(dir, "m.json")
		if err := Save(js, want); err != nil {
			t.Fatal(err)
		}
		fromJSON, err := Load(js, nil)
		if err != nil {
			t.Fatal(err)
		}
		npzPath := filepath.Join(dir, "m.npz")
		if err := Save(npzPath, fromJSON); err != nil {
			t.Fatal(err)
		}
		fromNPZ, err := Load(npzPath, nil) // activations and loss from m.spec.json
		if err != nil {
			t.Fatal(err)
		}
		sameNet(t, fromNPZ, want)
		if got := fromNPZ.Meta["seed"]; got != json.Number("7") {
			t.Errorf("meta seed %#v, want 7", got)
		}
		back := filepath.Join(dir, "back.json")
		if err := Save(back, fromNPZ); err != nil {
			t.Fatal(err)
		}
		final, err := Load(back, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameNet(t, final, want)
		// The layout survives the JSON file.
		npz2 := filepath.Join(dir, "again.npz")
		if err := Save(npz2, final); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(npzPath)
		b, _ := os.ReadFile(npz2)
		if !bytes.Equal(a, b) {
			t.Errorf("%v: archives differ after a JSON round trip", tc.sizes)
		}
	}
}

func TestWriteKeys(t *testing.T) {
	n, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.SetParams([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	_, keys := unzip(t, writeBytes(t, n))
	if want := []string{"0.weight", "0.bias", "2.weight", "2.bias"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}

	n.Prune(n.WeightIndex(0, 1, 0))
	arrays, keys := unzip(t, writeBytes(t, n))
	if want := []string{"0.weight_orig", "0.weight_mask", "0.bias", "2.weight", "2.bias"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if got, want := arrays["0.weight_mask"].data, f8(1, 1, 0, 1, 1, 1); !bytes.Equal(got, want) {
		t.Errorf("0.weight_mask % x, want % x", got, want)
	}
	if got, want := arrays["0.weight_orig"].data, f8(1, 2, 0, 4, 5, 6); !bytes.Equal(got, want) {
		t.Errorf("0.weight_orig % x, want % x", got, want)
	}
	if a := arrays["0.weight_orig"]; a.descr != "<f8" || a.shape != "(3, 2)" {
		t.Errorf("0.weight_orig: %s %s", a.descr, a.shape)
	}

	n.Prune(n.BiasIndex(1, 0))
	_, keys = unzip(t, writeBytes(t, n))
	if want := []string{"0.weight_orig", "0.weight_mask", "0.bias", "2.weight", "2.bias_orig", "2.bias_mask"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func TestFloat32RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"plain", savez(mlp("", "<f4")...)},
		{"masked", savez(
			arr("0.weight_orig", "<f4", []int{3, 2}, 0.5, 0, 0.75, 1e-40, -0.5, math.Copysign(0, -1)),
			arr("0.weight_mask", "<f4", []int{3, 2}, 1, 0, 1, 1, 1, 1),
			arr("0.bias", "<f4", []int{3}, 0.1, 0.2, 0.3),
			arr("2.weight", "<f4", []int{1, 3}, 1.5, -2, 0.25),
			arr("2.bias_orig", "<f4", []int{1}, 0),
			arr("2.bias_mask", "<f4", []int{1}, 0),
		)},
		{"float64", savez(mlp("", "<f8")...)},
	} {
		n, err := readBytes(tc.in, tc.name+".npz", &Spec{Activations: "tanh,sigmoid", Loss: "bce"})
		if err != nil {
			t.Fatal(err)
		}
		out := writeBytes(t, n)
		sameArrays(t, out, tc.in)
		// Writing is deterministic and reading our own output loses nothing.
		m, err := readBytes(out, "out.npz", &Spec{Activations: "tanh,sigmoid", Loss: "bce"})
		if err != nil {
			t.Fatal(err)
		}
		sameNet(t, m, n)
		if again := writeBytes(t, m); !bytes.Equal(again, out) {
			t.Errorf("%s: second write differs", tc.name)
		}
	}
}

func TestTorchPruned(t *testing.T) {
	// As torch.nn.utils.prune leaves it: the _orig arrays keep their values
	// at the pruned entries.
	in := savez(
		arr("model.0.bias", "<f4", []int{3}, 0.1, 0.2, 0.3),
		arr("model.0.weight_orig", "<f4", []int{3, 2}, 0.5, 9, 0.75, 0.25, -7, 2),
		arr("model.0.weight_mask", "<f4", []int{3, 2}, 1, 0, 1, 1, 0, 1),
		arr("model.2.weight", "<f4", []int{2, 3}, 1, 2, 3, 4, 5, 6),
		arr("model.2.bias", "<f4", []int{2}, 0.5, -0.5),
		arr("model.4.bias", "<f4", []int{1}, 0.25),
		arr("model.4.weight_orig", "<f4", []int{1, 2}, 3, 4),
		arr("model.4.weight_mask", "<f4", []int{1, 2}, 0, 1),
	)
	n, err := readBytes(in, "t.npz", &Spec{Activations: "relu,relu,sigmoid", Loss: "bce"})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Arch(); got != "2-3-2-1" {
		t.Errorf("architecture %s", got)
	}
	for _, q := range []int{n.WeightIndex(0, 0, 1), n.WeightIndex(0, 2, 0), n.WeightIndex(2, 0, 0)} {
		if n.IsLive(q) || n.RawParams()[q] != 0 || math.Signbit(n.RawParams()[q]) {
			t.Errorf("%v: live %v value %v, want pruned and 0", n.ParamAt(q), n.IsLive(q), n.RawParams()[q])
		}
	}
	if n.NumLive() != n.NumParams()-3 {
		t.Errorf("%d live of %d, want 3 pruned", n.NumLive(), n.NumParams())
	}
	if got := n.Weights(0).At(2, 1); got != 2 {
		t.Errorf("W0[2][1] = %v, want 2", got)
	}
	lay, err := LayoutOf(n)
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{Prefix: "model.", Modules: []int{0, 2, 4}, DType: "float32", Masked: []string{"0.weight", "4.weight"}}
	if !reflect.DeepEqual(lay, want) {
		t.Errorf("layout %+v, want %+v", lay, want)
	}

	// Written back under the same keys, with zeros at the pruned entries
	// of the _orig arrays.
	out := writeBytes(t, n)
	wantOut := savez(
		arr("model.0.bias", "<f4", []int{3}, 0.1, 0.2, 0.3),
		arr("model.0.weight_orig", "<f4", []int{3, 2}, 0.5, 0, 0.75, 0.25, 0, 2),
		arr("model.0.weight_mask", "<f4", []int{3, 2}, 1, 0, 1, 1, 0, 1),
		arr("model.2.weight", "<f4", []int{2, 3}, 1, 2, 3, 4, 5, 6),
		arr("model.2.bias", "<f4", []int{2}, 0.5, -0.5),
		arr("model.4.bias", "<f4", []int{1}, 0.25),
		arr("model.4.weight_orig", "<f4", []int{1, 2}, 0, 4),
		arr("model.4.weight_mask", "<f4", []int{1, 2}, 0, 1),
	)
	sameArrays(t, out, wantOut)
}

func TestPrefixModules(t *testing.T) {
	in := savez(
		arr("net.body.0.weight", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6),
		arr("net.body.0.bias", "<f8", []int{3}, 1, 2, 3),
		arr("net.body.3.weight", "<f8", []int{2, 3}, 1, 2, 3, 4, 5, 6),
		arr("net.body.3.bias", "<f8", []int{2}, 1, 2),
		arr("net.body.10.weight", "<f8", []int{1, 2}, 1, 2),
		arr("net.body.10.bias", "<f8", []int{1}, 1),
	)
	n, err := readBytes(in, "p.npz", tanhMSE)
	if err != nil {
		t.Fatal(err)
	}
	lay, _ := LayoutOf(n)
	if lay.Prefix != "net.body." || !slices.Equal(lay.Modules, []int{0, 3, 10}) {
		t.Errorf("layout %+v", lay)
	}
	sameArrays(t, writeBytes(t, n), in)

	// The default layout.
	m, err := nn.New([]int{2, 3, 2, 1}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Sigmoid}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	_, keys := unzip(t, writeBytes(t, m))
	if want := []string{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func TestFortranBigEndian(t *testing.T) {
	// W = [[1, 2], [3, 4], [5, 6]] stored column by column, and big-endian.
	in := savez(
		entry{key: "0.weight", npy: npyArray("<f8", true, []int{3, 2}, f8(1, 3, 5, 2, 4, 6))},
		entry{key: "0.bias", npy: npyArray(">f8", false, []int{3}, f8be(7, 8, 9))},
	)
	n, err := readBytes(in, "f.npz", tanhMSE)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.RawParams(), []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("parameters %v, want %v", got, want)
	}
	arrays, _ := unzip(t, writeBytes(t, n))
	if a := arrays["0.weight"]; a.order != "False" || !bytes.Equal(a.data, f8(1, 2, 3, 4, 5, 6)) {
		t.Errorf("0.weight written as fortran=%s % x", a.order, a.data)
	}
}

func TestReadErrors(t *testing.T) {
	good := mlp("", "<f8")
	with := func(repl ...entry) []byte {
		var es []entry
		for _, e := range good {
			if i := slices.IndexFunc(repl, func(r entry) bool { return r.key == e.key }); i >= 0 {
				if repl[i].npy != nil {
					es = append(es, repl[i])
				}
				continue
			}
			es = append(es, e)
		}
		for _, r := range repl {
			if r.npy != nil && !slices.ContainsFunc(es, func(e entry) bool { return e.key == r.key }) {
				es = append(es, r)
			}
		}
		return savez(es...)
	}
	drop := func(key string) entry { return entry{key: key} }
	goodZip := savez(good...)
	corrupt := bytes.Clone(goodZip)
	// The last byte of the data of the first entry, 0.weight.
	corrupt[bytes.Index(corrupt, []byte("0.weight.npy"))+len("0.weight.npy")+128+47] ^= 0x55

	for _, tc := range []struct {
		name string
		data []byte
		spec *Spec
		want string
	}{
		{"missing bias", with(drop("2.bias")), tanhMSE, "2.weight without 2.bias: Linear layers without bias are not supported"},
		{"missing weight", with(drop("2.weight")), tanhMSE, "2.bias without 2.weight"},
		{"shapes disagree", with(arr("2.weight", "<f8", []int{1, 4}, 1, 2, 3, 4)), tanhMSE, "2.weight: shape (1, 4) takes 4 inputs, but 0.weight gives 3 outputs"},
		{"1-D weight", with(arr("0.weight", "<f8", []int{6}, 1, 2, 3, 4, 5, 6)), tanhMSE, "0.weight: shape (6,), want 2-D (out, in)"},
		{"3-D weight", with(arr("0.weight", "<f8", []int{3, 2, 1}, 1, 2, 3, 4, 5, 6)), tanhMSE, "0.weight: shape (3, 2, 1), want 2-D (out, in)"},
		{"empty weight", with(arr("0.weight", "<f8", []int{3, 0})), tanhMSE, "0.weight: shape (3, 0) has no elements"},
		{"2-D bias", with(arr("0.bias", "<f8", []int{3, 1}, 1, 2, 3)), tanhMSE, "0.bias: shape (3, 1), want (3,) for the 3 outputs of 0.weight"},
		{"short bias", with(arr("0.bias", "<f8", []int{2}, 1, 2)), tanhMSE, "0.bias: shape (2,), want (3,)"},
		{"scalar bias", with(arr("2.bias", "<f8", nil, 1)), tanhMSE, "2.bias: shape (), want (1,)"},
		{"float16", with(entry{key: "0.weight", npy: npyArray("<f2", false, []int{3, 2}, make([]byte, 12))}), tanhMSE, "unsupported dtype <f2 in 0.weight; want float32 or float64"},
		{"int64", with(entry{key: "0.bias", npy: npyArray("<i8", false, []int{3}, make([]byte, 24))}), tanhMSE, "unsupported dtype <i8 in 0.bias; want float32 or float64"},
		{"bool mask", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6), drop("0.weight"), entry{key: "0.weight_mask", npy: npyArray("|b1", false, []int{3, 2}, []byte{1, 1, 1, 1, 1, 1})}), tanhMSE, "unsupported dtype |b1 in 0.weight_mask"},
		{"structured", with(entry{key: "0.bias", npy: npyRaw(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }", make([]byte, 24))}), tanhMSE, "unsupported dtype [('a', '<f8')] in 0.bias"},
		{"mask value", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6), drop("0.weight"), arr("0.weight_mask", "<f8", []int{3, 2}, 1, 0, 0.5, 1, 1, 1)), tanhMSE, "0.weight_mask[1][0]: 0.5 is not 0 or 1"},
		{"mask shape", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6), drop("0.weight"), arr("0.weight_mask", "<f8", []int{2, 3}, 1, 1, 1, 1, 1, 1)), tanhMSE, "0.weight_mask: shape (2, 3), want (3, 2) like 0.weight_orig"},
		{"bias mask shape", with(arr("2.bias_orig", "<f8", []int{1}, 1), drop("2.bias"), arr("2.bias_mask", "<f8", []int{2}, 1, 1)), tanhMSE, "2.bias_mask: shape (2,), want (1,) like 2.bias_orig"},
		{"mask without orig", with(arr("0.weight_mask", "<f8", []int{3, 2}, 1, 1, 1, 1, 1, 1)), tanhMSE, "0.weight_mask without 0.weight_orig"},
		{"orig without mask", with(arr("2.bias_orig", "<f8", []int{1}, 1), drop("2.bias")), tanhMSE, "2.bias_orig without 2.bias_mask"},
		{"plain and orig", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6), arr("0.weight_mask", "<f8", []int{3, 2}, 1, 1, 1, 1, 1, 1)), tanhMSE, "0.weight and 0.weight_orig both present"},
		{"NaN weight", with(arr("2.weight", "<f8", []int{1, 3}, 1, math.NaN(), 3)), tanhMSE, "2.weight[0][1]: NaN is not allowed"},
		{"Inf bias", with(arr("0.bias", "<f4", []int{3}, 1, 2, math.Inf(-1))), tanhMSE, "0.bias[2]: -Inf is not allowed"},
		{"NaN under mask", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, math.NaN(), 3, 4, 5, 6), drop("0.weight"), arr("0.weight_mask", "<f8", []int{3, 2}, 1, 0, 1, 1, 1, 1)), tanhMSE, "0.weight_orig[0][1]: NaN is not allowed"},
		{"NaN mask", with(arr("0.weight_orig", "<f8", []int{3, 2}, 1, 2, 3, 4, 5, 6), drop("0.weight"), arr("0.weight_mask", "<f8", []int{3, 2}, 1, 1, 1, 1, 1, math.NaN())), tanhMSE, "0.weight_mask[2][1]: NaN is not allowed"},
		{"batchnorm", with(arr("1.weight", "<f8", []int{3}, 1, 1, 1), arr("1.bias", "<f8", []int{3}, 0, 0, 0), arr("1.running_mean", "<f8", []int{3}, 0, 0, 0), arr("1.running_var", "<f8", []int{3}, 1, 1, 1), entry{key: "1.num_batches_tracked", npy: npyArray("<i8", false, nil, make([]byte, 8))}), tanhMSE,
			"unsupported module 1 (keys 1.bias, 1.num_batches_tracked, 1.running_mean, …): only Linear layers and parameter-free activations are supported"},
		{"running mean only", with(arr("1.running_mean", "<f8", []int{3}, 0, 0, 0)), tanhMSE, "unsupported module 1 (keys 1.running_mean): only Linear layers"},
		{"layer norm", with(arr("1.weight", "<f8", []int{3}, 1, 1, 1), arr("1.bias", "<f8", []int{3}, 0, 0, 0)), tanhMSE, "1.weight: shape (3,), want 2-D (out, in)"},
		{"named module", with(arr("fc1.weight", "<f8", []int{1, 1}, 1)), tanhMSE, `fc1.weight without fc1.bias: Linear layers without bias are not supported`},
		{"leading zero", with(arr("02.weight", "<f8", []int{1, 1}, 1)), tanhMSE, `02.weight without 02.bias`},
		{"prefixes differ", with(arr("model.4.weight", "<f8", []int{1, 1}, 1)), tanhMSE, `model.4.weight without model.4.bias`},
		{"duplicate", savez(append(slices.Clone(good), arr("0.bias", "<f8", []int{3}, 1, 2, 3))...), tanhMSE, `key "0.bias" appears twice`},
		{"no suffix", savez(append(slices.Clone(good), entry{name: "0.bias", npy: arr("", "<f8", []int{3}, 1, 2, 3).npy})...), tanhMSE, `key "0.bias" appears twice`},
		{"odd key", with(arr("0.we ight", "<f8", []int{1}, 1)), tanhMSE, `key "0.we ight" is not a module name and a tensor name`},
		{"activation count", goodZip, &Spec{Activations: "tanh,tanh,sigmoid", Loss: "mse"}, "spec: 3 activations (tanh,tanh,sigmoid) for the 2 Linear layers (modules 0, 2)"},
		{"unknown activation", goodZip, &Spec{Activations: "tanh,sigmod", Loss: "mse"}, `spec: unknown activation "sigmod"`},
		{"unknown loss", goodZip, &Spec{Activations: "tanh", Loss: "l1"}, `spec: unknown loss "l1"`},
		{"no activations", goodZip, &Spec{Loss: "mse"}, "no activations given for the 2 Linear layers (modules 0, 2)"},
		{"no loss", goodZip, &Spec{Activations: "tanh,sigmoid"}, "no loss given for the 2 Linear layers (modules 0, 2)"},
		{"nil spec", goodZip, nil, "no activations given"},
		{"softmax hidden", goodZip, &Spec{Activations: "softmax,softmax", Loss: "ce"}, "softmax is allowed only on the output layer"},
		{"empty archive", savez(), tanhMSE, "empty archive: no arrays"},
		{"empty file", nil, tanhMSE, "empty file: not an .npz archive"},
		{"not zip", []byte("0.weight,0.bias\n1,2\n"), tanhMSE, "not an .npz archive: zip: not a valid zip file"},
		{"npy file", npyArray("<f8", false, []int{1}, f8(1)), tanhMSE, "an .npy array, not an .npz archive"},
		{"truncated", goodZip[:len(goodZip)-30], tanhMSE, "not an .npz archive"},
		{"checksum", corrupt, tanhMSE, "0.weight: zip: checksum error"},
		{"short data", with(entry{key: "0.weight", npy: npyArray("<f8", false, []int{3, 2}, f8(1, 2, 3, 4, 5))}), tanhMSE, "0.weight: truncated data: shape (3, 2) of <f8 needs 48 bytes"},
		{"split element", with(entry{key: "0.weight", npy: npyArray("<f8", false, []int{3, 2}, f8(1, 2, 3, 4, 5, 6)[:44])}), tanhMSE, "0.weight: truncated data"},
		{"long data", with(entry{key: "0.bias", npy: npyArray("<f8", false, []int{3}, f8(1, 2, 3, 4))}), tanhMSE, "0.bias: data longer than the 24 bytes of shape (3,) of <f8"},
		{"huge shape", with(entry{key: "0.weight", npy: npyArray("<f8", false, []int{3, 100000000}, nil)}), tanhMSE, "0.weight: truncated data: shape (3, 100000000) of <f8 needs 2400000000 bytes, but the member holds at most 0"},
		{"overflowing shape", with(entry{key: "0.weight", npy: npyArray("<f8", false, []int{1 << 20, 1 << 20}, nil)}), tanhMSE, "0.weight: shape (1048576, 1048576): more than 1073741824 elements"},
		{"bad magic", with(entry{key: "0.weight", npy: []byte("\x93NUMPX\x01\x00\x00\x00")}), tanhMSE, "0.weight: not an npy array"},
		{"short header", with(entry{key: "0.weight", npy: []byte("\x93NUMPY\x01\x00\x40\x00{'descr'")}), tanhMSE, "0.weight: truncated npy header"},
		{"version 3", with(entry{key: "0.weight", npy: npyRaw(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", f8(1, 2, 3, 4, 5, 6))}), tanhMSE, "0.weight: npy format version 3.0 is not supported"},
		{"odd header", with(entry{key: "0.bias", npy: npyRaw(1, "{'shape': (3,), 'descr': '<f8', 'fortran_order': False}", f8(1, 2, 3))}), tanhMSE, "0.bias: npy header \"{'shape': (3,), 'descr': '<f8', 'fortran_order': False}\" is not in the layout NumPy writes"},
		{"long header", with(entry{key: "0.bias", npy: npyRaw(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"+strings.Repeat(" ", 20000), f8(1, 2, 3))}), tanhMSE, "0.bias: npy header longer than 16384 bytes"},
	} {
		_, err := readBytes(tc.data, "bad.npz", tc.spec)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "bad.npz: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want %q", tc.name, err, "bad.npz: …"+tc.want+"…")
		}
	}
}

func TestReadVersion2(t *testing.T) {
	in := savez(
		entry{key: "0.weight", npy: npyRaw(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", f4(1, 2))},
		entry{key: "0.bias", npy: npyRaw(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(3))},
	)
	n, err := readBytes(in, "v2.npz", tanhMSE)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.RawParams(); !slices.Equal(got, []float64{1, 2, 3}) {
		t.Errorf("parameters %v", got)
	}
}

func TestNoSpec(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.npz")
	if err := os.WriteFile(path, savez(mlp("", "<f8")...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	if !errors.Is(err, ErrNoSpec) {
		t.Fatalf("error %v, want ErrNoSpec", err)
	}
	want := path + `: no activations given for the 2 Linear layers (modules 0, 2); give them in the spec or in ` +
		filepath.Join(dir, "m.spec.json") + `, such as {"activations": ["relu", "linear"], "loss": "ce"} for a classifier trained with CrossEntropyLoss on its logits`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	_, err = Load(path, &Spec{Activations: "tanh,sigmoid"})
	if !errors.Is(err, ErrNoSpec) || !strings.Contains(err.Error(), "no loss given") {
		t.Errorf("error %v, want no loss", err)
	}
}

func TestSidecar(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.npz")
	side := filepath.Join(dir, "m.spec.json")
	if got := SpecPath(path); got != side {
		t.Fatalf("SpecPath %s, want %s", got, side)
	}
	if err := os.WriteFile(path, savez(mlp("", "<f8")...), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(side, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	acts := func(n *nn.Network) string {
		var s []string
		for _, ly := range n.Layers() {
			s = append(s, ly.Act.String())
		}
		return strings.Join(s, ",") + " " + n.Loss().String()
	}

	write(`{"activations": ["relu", "sigmoid"], "loss": "bce", "meta": {"seed": 3}}`)
	n, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := acts(n); got != "relu,sigmoid bce" {
		t.Errorf("from the spec file: %s", got)
	}
	if n.Meta["seed"] != json.Number("3") {
		t.Errorf("meta %v", n.Meta)
	}
	n, err = Load(path, &Spec{Activations: "tanh,sigmoid"})
	if err != nil {
		t.Fatal(err)
	}
	if got := acts(n); got != "tanh,sigmoid bce" {
		t.Errorf("activations overridden: %s", got)
	}
	n, err = Load(path, &Spec{Loss: "mse"})
	if err != nil {
		t.Fatal(err)
	}
	if got := acts(n); got != "relu,sigmoid mse" {
		t.Errorf("loss overridden: %s", got)
	}

	write(`{"loss": "mse"}`)
	if _, err := Load(path, nil); !errors.Is(err, ErrNoSpec) || !strings.Contains(err.Error(), "no activations") {
		t.Errorf("partial spec file: %v", err)
	}
	if _, err := Load(path, &Spec{Activations: "tanh"}); err != nil {
		t.Errorf("partial spec file and spec: %v", err)
	}
	write(`{"activations": ["tanh"], "loss": "mse"}`)
	if _, err := Load(path, nil); err != nil {
		t.Errorf("one activation for all layers: %v", err)
	}
	write(`{"activations": ["tanh", "tanh", "sigmoid"], "loss": "mse"}`)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), side+": 3 activations (tanh,tanh,sigmoid) for the 2 Linear layers (modules 0, 2)") {
		t.Errorf("too many activations: %v", err)
	}

	for _, tc := range []struct{ text, want string }{
		{`{"activations": ["tanh", "sigmoid"], "los": "mse"}`, `unknown field "los"`},
		{`{"activations": "tanh,sigmoid"}`, `activations: want an array of names`},
		{`{"activations": []}`, `activations: want an array of names`},
		{`{"activations": ["tanh", "sigmod"]}`, `activations[1]: unknown activation "sigmod"`},
		{`{"loss": "l2"}`, `loss: unknown loss "l2"`},
		{`{"loss": null}`, `loss: want a name`},
		{`{"meta": [1]}`, `meta: want an object`},
		{`{"loss": "mse"} {}`, `trailing data`},
		{`[]`, `not a JSON object`},
		{`null`, `null, want a JSON object`},
		{``, `empty file`},
		{`{"loss": "mse"`, `not a JSON object`},
	} {
		write(tc.text)
		_, err := Load(path, tanhMSE) // a broken spec file is an error even when not needed
		if err == nil || !strings.HasPrefix(err.Error(), side+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %s: …%s", tc.text, err, side, tc.want)
		}
	}
}

func TestLoadSave(t *testing.T) {
	dir := t.TempDir()
	n, err := nn.New([]int{2, 1}, []nn.Activation{nn.Sigmoid}, nn.BCE)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"m.pkl", "m", "m.npy"} {
		path := filepath.Join(dir, name)
		if err := Save(path, n); err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "want .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)") {
			t.Errorf("Save %s: %v", name, err)
		}
		if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "want .json (prune-mlp/1), or .npz") {
			t.Errorf("Load %s: %v", name, err)
		}
	}
	for _, name := range []string{"U.NPZ", "U.JSON"} {
		path := filepath.Join(dir, name)
		if err := Save(path, n); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameNet(t, m, n)
	}
	if _, err := os.Stat(filepath.Join(dir, "U.spec.json")); err != nil {
		t.Errorf("spec file of U.NPZ: %v", err)
	}

	// A .json model holds its own activations and loss.
	path := filepath.Join(dir, "U.JSON")
	if _, err := Load(path, &Spec{Activations: "sigmoid", Loss: "bce"}); err != nil {
		t.Errorf("agreeing spec: %v", err)
	}
	if _, err := Load(path, &Spec{Activations: "tanh"}); err == nil || !strings.Contains(err.Error(), path+": spec activations tanh differ from the model's sigmoid") {
		t.Errorf("differing activations: %v", err)
	}
	if _, err := Load(path, &Spec{Loss: "mse"}); err == nil || !strings.Contains(err.Error(), "spec loss mse differs from the model's bce") {
		t.Errorf("differing loss: %v", err)
	}

	// Nothing is written for a network that cannot be.
	bad := n.Clone()
	bad.RawParams()[1] = math.Inf(1)
	for _, name := range []string{"bad.npz", "bad.json"} {
		path := filepath.Join(dir, name)
		if err := Save(path, bad); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("Save %s: %v", name, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written", name)
		}
	}
	if err := Save(filepath.Join(dir, "bad.npz"), bad); err == nil || !strings.Contains(err.Error(), "cannot write npz: 0.weight[0][1]: +Inf cannot be written") {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.spec.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bad.spec.json written")
	}

	// Missing files.
	if _, err := Load(filepath.Join(dir, "none.npz"), tanhMSE); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(dir+string(filepath.Separator)+".npz", tanhMSE); err == nil {
		t.Errorf("directory: no error")
	}
}

func TestWriteErrors(t *testing.T) {
	n, err := nn.New([]int{2, 1}, []nn.Activation{nn.Sigmoid}, nn.BCE)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetLayout(n, Layout{Prefix: "m.", Modules: []int{3}, DType: "float32"}); err != nil {
		t.Fatal(err)
	}
	n.RawParams()[2] = 1e39
	var b bytes.Buffer
	if err := Write(&b, n); err == nil || err.Error() != "cannot write npz: m.3.bias[0]: 1e+39 overflows float32" || b.Len() != 0 {
		t.Errorf("overflow: %v, %d bytes written", err, b.Len())
	}
	n.RawParams()[2] = math.NaN()
	if err := Write(&b, n); err == nil || err.Error() != "cannot write npz: m.3.bias[0]: NaN cannot be written" {
		t.Errorf("NaN: %v", err)
	}
	n.RawParams()[2] = 0
	n.Prune(0)
	n.RawParams()[0] = 1
	if err := Write(&b, n); err == nil || err.Error() != "cannot write npz: m.3.weight[0][0]: pruned but 1, not zero" {
		t.Errorf("pruned: %v", err)
	}
	n.RawParams()[0] = 0
	n.Meta[MetaKey] = map[string]any{"modules": []any{json.Number("0"), json.Number("2")}, "dtype": "float64"}
	if err := Write(&b, n); err == nil || err.Error() != "cannot write npz: meta.npz: modules: 2 module indices for 1 layers" {
		t.Errorf("layout: %v", err)
	}
}

func TestLayout(t *testing.T) {
	n, err := nn.New([]int{2, 2, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	if lay, err := LayoutOf(n); err != nil || !reflect.DeepEqual(lay, Layout{Modules: []int{0, 2}, DType: "float64"}) {
		t.Errorf("default layout %+v, %v", lay, err)
	}
	good := Layout{Prefix: "a.b.", Modules: []int{1, 5}, DType: "float32", Masked: []string{"5.bias"}}
	if err := SetLayout(n, good); err != nil {
		t.Fatal(err)
	}
	// Through a prune-mlp/1 file, which reads numbers as json.Number.
	var buf bytes.Buffer
	if err := WriteJSON(&buf, n); err != nil {
		t.Fatal(err)
	}
	m, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if lay, err := LayoutOf(m); err != nil || !reflect.DeepEqual(lay, good) {
		t.Errorf("layout after JSON %+v, %v", lay, err)
	}
	for _, tc := range []struct {
		lay  Layout
		want string
	}{
		{Layout{Prefix: "a", Modules: []int{0, 2}, DType: "float64"}, `prefix "a"`},
		{Layout{Prefix: "a..", Modules: []int{0, 2}, DType: "float64"}, `prefix "a.."`},
		{Layout{Prefix: ".", Modules: []int{0, 2}, DType: "float64"}, `prefix "."`},
		{Layout{Modules: []int{0}, DType: "float64"}, "modules: 1 module indices for 2 layers"},
		{Layout{Modules: []int{2, 2}, DType: "float64"}, "modules[1]: 2 does not follow 2"},
		{Layout{Modules: []int{-1, 2}, DType: "float64"}, "modules[0]: -1 is negative"},
		{Layout{Modules: []int{0, 2}, DType: "float8"}, `dtype "float8"`},
		{Layout{Modules: []int{0, 2}, DType: "float64", Masks: "zero"}, `masks "zero"`},
		{Layout{Names: []string{"fc1", "fc1"}, DType: "float64"}, `names[1]: "fc1" appears twice`},
		{Layout{Names: []string{"fc1"}, DType: "float64"}, `names: 1 module names for 2 layers`},
		{Layout{Names: []string{"fc1", "a b"}, DType: "float64"}, `names[1]: "a b"`},
		{Layout{Names: []string{"fc1", "fc2"}, Prefix: "m.", DType: "float64"}, `names: not allowed`},
		{Layout{Names: []string{"fc1", "fc2"}, DType: "float64", Masked: []string{"fc3.weight"}}, `masked[0]: "fc3.weight"`},
		{Layout{Modules: []int{0, 2}, DType: "float64", Masked: []string{"1.weight"}}, `masked[0]: "1.weight"`},
		{Layout{Modules: []int{0, 2}, DType: "float64", Masked: []string{"0.weight_orig"}}, `masked[0]`},
	} {
		if err := SetLayout(n, tc.lay); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %s", tc.lay, err, tc.want)
		}
	}
	for _, tc := range []struct {
		meta any
		want string
	}{
		{"x", "meta.npz: string, want an object"},
		{map[string]any{"dtype": "float64"}, "meta.npz: modules: missing"},
		{map[string]any{"modules": []any{0.5, 1.0}, "dtype": "float64"}, "meta.npz: modules: [0]: 0.5 is not an integer"},
		{map[string]any{"modules": []any{0, 2}, "dtype": "float64", "x": 1}, "meta.npz: x: unknown field"},
		{map[string]any{"modules": []any{0, 2}, "dtype": 64}, "meta.npz: dtype: int, want a string"},
	} {
		n.Meta[MetaKey] = tc.meta
		if _, err := LayoutOf(n); err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %s", tc.meta, err, tc.want)
		}
	}
}
