package modelio

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// fileSpecials are values whose decimal form is easy to get wrong.
var fileSpecials = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, math.Pi,
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
	2.2250738585072014e-308, 2.225073858507201e-308, // smallest normal, largest subnormal
	1e-300, -1e-300, 1e300, math.MaxFloat64, -math.MaxFloat64,
	1e-6, 9.999999999999999e-7, 1e21, 9.999999999999999e20, 1e20,
	123456789012345680000, 0.000001234, 5e-324 * 3,
}

// fileRandValue returns a random finite float64, often an awkward one.
func fileRandValue(rng *rand.Rand) float64 {
	switch rng.IntN(6) {
	case 0:
		for {
			v := math.Float64frombits(rng.Uint64())
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				return v
			}
		}
	case 1:
		return fileSpecials[rng.IntN(len(fileSpecials))]
	case 2: // subnormal
		return math.Float64frombits(rng.Uint64() & (1<<63 | 1<<52 - 1))
	}
	return rng.NormFloat64()
}

// fileRandNet returns a network with the given sizes, activations and loss,
// random awkward parameters and, when masked, a random mask.
func fileRandNet(t testing.TB, sizes []int, acts []nn.Activation, loss nn.Loss, masked bool, rng *rand.Rand) *nn.Network {
	t.Helper()
	n, err := nn.New(sizes, acts, loss)
	if err != nil {
		t.Fatal(err)
	}
	for q := range n.RawParams() {
		n.RawParams()[q] = fileRandValue(rng)
	}
	if masked {
		m := make([]bool, n.NumParams())
		for q := range m {
			m[q] = rng.IntN(3) > 0
		}
		m[rng.IntN(len(m))] = false
		n.SetMask(m)
	}
	return n
}

// fileEqual reports how a and b differ, or "" when they are the same
// network: layers, loss, parameters bit for bit, mask and metadata.
func fileEqual(a, b *nn.Network) string {
	if !slices.Equal(a.Layers(), b.Layers()) {
		return "layers differ"
	}
	if a.Loss() != b.Loss() {
		return "losses differ"
	}
	if len(a.RawParams()) != len(b.RawParams()) {
		return "parameter counts differ"
	}
	for q := range a.RawParams() {
		if math.Float64bits(a.RawParams()[q]) != math.Float64bits(b.RawParams()[q]) {
			return "parameter " + a.ParamAt(q).String() + " differs: " + formatFloat(a.RawParams()[q]) + " vs " + formatFloat(b.RawParams()[q])
		}
	}
	if !slices.Equal(a.Mask(), b.Mask()) {
		return "masks differ"
	}
	if a.HasMask() != b.HasMask() {
		return "HasMask differs"
	}
	ma, errA := json.Marshal(a.Meta)
	mb, errB := json.Marshal(b.Meta)
	if errA != nil || errB != nil {
		return "meta cannot be marshalled"
	}
	if len(a.Meta) == 0 && len(b.Meta) == 0 {
		return ""
	}
	if !bytes.Equal(ma, mb) {
		return "meta differs: " + string(ma) + " vs " + string(mb)
	}
	return ""
}

func fileWrite(t testing.TB, n *nn.Network) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, n); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFileRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][]int{{1, 1}, {3, 2}, {2, 1, 1}, {4, 5, 3}, {2, 3, 3, 2}, {17, 3, 1}}
	all := []nn.Activation{nn.Linear, nn.Tanh, nn.Sigmoid, nn.ReLU, nn.Softmax}
	combos := 0
	for _, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
		for _, hidden := range all {
			for _, out := range all {
				for _, sizes := range shapes {
					if len(sizes) == 2 && hidden != nn.Linear {
						continue // no hidden layer
					}
					acts := make([]nn.Activation, len(sizes)-1)
					for l := range acts {
						acts[l] = hidden
					}
					acts[len(acts)-1] = out
					if _, err := nn.New(sizes, acts, loss); err != nil {
						continue
					}
					combos++
					for _, masked := range []bool{false, true} {
						n := fileRandNet(t, sizes, acts, loss, masked, rng)
						if rng.IntN(2) == 0 {
							n.Meta = map[string]any{
								"seed":    uint64(1<<63 + 1),
								"rate":    0.1,
								"data":    "xor <&> \u00e9",
								"metrics": map[string]any{"loss": 1e-300, "n": 4},
								"list":    []any{1, "a", nil, true},
							}
						}
						b := fileWrite(t, n)
						if !bytes.Equal(b, fileWrite(t, n)) {
							t.Fatal("Write is not deterministic")
						}
						m, err := ReadJSON(bytes.NewReader(b))
						if err != nil {
							t.Fatalf("%s %v %v: %v\n%s", n.Arch(), acts, loss, err, b)
						}
						if d := fileEqual(n, m); d != "" {
							t.Fatalf("%s %v %v masked=%v: %s", n.Arch(), acts, loss, masked, d)
						}
						if b2 := fileWrite(t, m); !bytes.Equal(b, b2) {
							t.Fatalf("second write differs:\n%s\n%s", b, b2)
						}
						if masked != bytes.Contains(b, []byte("weight_mask")) {
							t.Errorf("masked=%v, masks written=%v", masked, !masked)
						}
					}
				}
			}
		}
	}
	// With a hidden layer: mse with 4 element-wise outputs and 4 hidden
	// activations, bce and ce with 2 outputs each (their own activation, or
	// linear logits) and 4 hidden activations. Without: 4 mse outputs, 2
	// bce and 2 ce.
	if want := 4*(4*4+2*4+2*4) + 2*(4+2+2); combos != want {
		t.Errorf("tested %d combinations, want %d", combos, want)
	}
}

// TestFileFloats checks that awkward values survive a round trip bit for bit.
func TestFileFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := append([]float64(nil), fileSpecials...)
	for len(vals) < 10000 {
		vals = append(vals, fileRandValue(rng))
	}
	n, err := nn.New([]int{len(vals) - 1, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	copy(n.RawParams(), vals)
	m, err := ReadJSON(bytes.NewReader(fileWrite(t, n)))
	if err != nil {
		t.Fatal(err)
	}
	if d := fileEqual(n, m); d != "" {
		t.Fatal(d)
	}
	if !math.Signbit(m.RawParams()[1]) || m.RawParams()[1] != 0 {
		t.Errorf("-0 read back as %v", m.RawParams()[1])
	}
}

func TestFileMaskAllLive(t *testing.T) {
	b := fileModelJSON(t, func(m map[string]any) {
		fileLayerOf(m, 0)["weight_mask"] = [][]any{{1, 1}, {1, 1}, {1, 1}}
		fileLayerOf(m, 1)["bias_mask"] = []any{1, 1}
	})
	n, err := ReadJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if n.HasMask() || n.NumLive() != n.NumParams() {
		t.Errorf("all-live mask read as %d of %d live", n.NumLive(), n.NumParams())
	}
	if bytes.Contains(fileWrite(t, n), []byte("mask")) {
		t.Error("masks written for a network without pruned parameters")
	}

	// A mask for one part only; the other parts are live.
	b = fileModelJSON(t, func(m map[string]any) {
		fileLayerOf(m, 1)["bias"] = []any{0, 0.5}
		fileLayerOf(m, 1)["bias_mask"] = []any{0, 1}
	})
	n, err = ReadJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if n.NumLive() != n.NumParams()-1 || n.IsLive(n.BiasIndex(1, 0)) {
		t.Errorf("mask %v, want only b1[0] pruned", n.Mask())
	}
	// Masked negative zero is zero.
	b = fileModelJSON(t, func(m map[string]any) {
		fileLayerOf(m, 1)["bias"] = []any{math.Copysign(0, -1), 0.5}
		fileLayerOf(m, 1)["bias_mask"] = []any{0, 1}
	})
	if _, err := ReadJSON(bytes.NewReader(b)); err != nil {
		t.Errorf("masked -0: %v", err)
	}
}

func TestFileMeta(t *testing.T) {
	n, err := nn.New([]int{1, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.Meta = map[string]any{"seed": uint64(18446744073709551615), "html": "<a&b>", "b": 1.5}
	b := fileWrite(t, n)
	if !bytes.Contains(b, []byte(`"html": "<a&b>"`)) {
		t.Errorf("meta strings escaped:\n%s", b)
	}
	m, err := ReadJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Meta["seed"]; got != json.Number("18446744073709551615") {
		t.Errorf("seed read back as %#v", got)
	}
	if got := m.Meta["b"]; got != json.Number("1.5") {
		t.Errorf("b read back as %#v", got)
	}

	// Empty and null meta give a nil Meta and are not written.
	for _, meta := range []any{map[string]any{}, nil} {
		b := fileModelJSON(t, func(m map[string]any) { m["meta"] = meta })
		n, err := ReadJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if n.Meta != nil {
			t.Errorf("meta %v read as %#v, want nil", meta, n.Meta)
		}
		if bytes.Contains(fileWrite(t, n), []byte("meta")) {
			t.Error("empty meta written")
		}
	}
}

func TestFileWriteRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(n *nn.Network)
		want string
	}{
		{"NaN", func(n *nn.Network) { n.RawParams()[3] = math.NaN() }, "W0[1][1]"},
		{"+Inf", func(n *nn.Network) { n.Bias(1)[0] = math.Inf(1) }, "+Inf"},
		{"-Inf", func(n *nn.Network) { n.RawParams()[0] = math.Inf(-1) }, "-Inf"},
		{"pruned non-zero", func(n *nn.Network) { n.Prune(2); n.RawParams()[2] = 0.5 }, "pruned"},
		{"meta NaN", func(n *nn.Network) { n.Meta = map[string]any{"x": math.NaN()} }, "meta"},
		{"meta func", func(n *nn.Network) { n.Meta = map[string]any{"f": func() {}} }, "meta"},
	} {
		n, err := nn.New([]int{2, 3, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
		if err != nil {
			t.Fatal(err)
		}
		n.Init(rand.NewPCG(1, 1))
		tc.edit(n)
		var buf bytes.Buffer
		err = WriteJSON(&buf, n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want mention of %q", tc.name, err, tc.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes written", tc.name, buf.Len())
		}
	}
}

// fileModel returns a valid 2-3-2 bce model as JSON values, for tests to
// break.
func fileModel() map[string]any {
	return map[string]any{
		"format": Format,
		"loss":   "bce",
		"layers": []map[string]any{
			{
				"in": 2, "out": 3, "activation": "tanh",
				"weight": [][]any{{0.5, -0.25}, {1, 2}, {-3, 0.125}},
				"bias":   []any{0.1, 0.2, 0.3},
			},
			{
				"in": 3, "out": 2, "activation": "sigmoid",
				"weight": [][]any{{1, 2, 3}, {4, 5, 6}},
				"bias":   []any{-1, 1},
			},
		},
		"meta": map[string]any{"seed": 1},
	}
}

func fileLayerOf(m map[string]any, l int) map[string]any {
	return m["layers"].([]map[string]any)[l]
}

func fileModelJSON(t testing.TB, edit func(m map[string]any)) []byte {
	m := fileModel()
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fileBadCase struct {
	name string
	data []byte
	want []string // substrings of the error
}

// fileBadCases returns invalid model files and what their errors must say.
func fileBadCases(t testing.TB) []fileBadCase {
	good := fileModelJSON(t, nil)
	edit := func(f func(m map[string]any)) []byte { return fileModelJSON(t, f) }
	raw := func(placeholder any, text string, f func(m map[string]any, p any)) []byte {
		b := edit(func(m map[string]any) { f(m, placeholder) })
		return bytes.Replace(b, []byte(`"@@"`), []byte(text), 1)
	}
	l0 := func(m map[string]any) map[string]any { return fileLayerOf(m, 0) }
	l1 := func(m map[string]any) map[string]any { return fileLayerOf(m, 1) }
	w0 := func(m map[string]any) [][]any { return l0(m)["weight"].([][]any) }
	return []fileBadCase{
		{"empty", nil, []string{"empty input", "not a prune-mlp/1 JSON file"}},
		{"whitespace", []byte(" \n"), []string{"empty input"}},
		{"text", []byte("hello"), []string{"not a prune-mlp/1 JSON file", "byte offset 0"}},
		{"text I", []byte("Is this JSON?"), []string{"not a prune-mlp/1 JSON file", "byte offset 0"}},
		{"csv", []byte("1,2,3\n4,5,6\n"), []string{"not a prune-mlp/1 JSON file", "top level is a number"}},
		{"bad object", []byte(`{"format" "prune-mlp/1"}`), []string{"not a prune-mlp/1 JSON file", "byte offset 10"}},
		{"truncated", good[:len(good)/2], []string{"truncated", "byte offset " + strconv.Itoa(len(good)/2)}},
		{"truncated end", good[:len(good)-1], []string{"truncated"}},
		{"array", []byte("[1, 2]"), []string{"top level is an array"}},
		{"string", []byte(`"prune-mlp/1"`), []string{"top level is a string"}},
		{"null", []byte("null"), []string{"top level is null"}},
		{"trailing object", append(slices.Clone(good), "{}"...), []string{"trailing data", "byte offset " + strconv.Itoa(len(good))}},
		{"trailing garbage", append(slices.Clone(good), "\n,"...), []string{"trailing data"}},
		{"trailing brace", append(slices.Clone(good), "}"...), []string{"trailing data"}},
		{"no format", edit(func(m map[string]any) { delete(m, "format") }), []string{"format: missing"}},
		{"format number", edit(func(m map[string]any) { m["format"] = 1 }), []string{"format: a number, want a string"}},
		{"format null", edit(func(m map[string]any) { m["format"] = nil }), []string{"format: null, want a string"}},
		{"format version", edit(func(m map[string]any) { m["format"] = "prune-mlp/2" }), []string{"format: prune-mlp/2: unsupported version, this build reads prune-mlp/1"}},
		{"format other", edit(func(m map[string]any) { m["format"] = "keras" }), []string{`format: "keras" is not prune-mlp/1`}},
		{"unknown field", edit(func(m map[string]any) { m["zeta"] = 1; m["extra"] = 2 }), []string{`unknown field "extra"`}},
		{"field case", edit(func(m map[string]any) { m["Loss"] = m["loss"]; delete(m, "loss") }), []string{`unknown field "Loss"`}},
		{"no loss", edit(func(m map[string]any) { delete(m, "loss") }), []string{"loss: missing"}},
		{"unknown loss", edit(func(m map[string]any) { m["loss"] = "hinge" }), []string{"loss: unknown loss \"hinge\""}},
		{"loss number", edit(func(m map[string]any) { m["loss"] = 2 }), []string{"loss: a number, want a string"}},
		{"no layers", edit(func(m map[string]any) { delete(m, "layers") }), []string{"layers: missing"}},
		{"layers object", edit(func(m map[string]any) { m["layers"] = map[string]any{} }), []string{"layers: an object, want an array"}},
		{"layers empty", edit(func(m map[string]any) { m["layers"] = []any{} }), []string{"layers: no layers"}},
		{"layers null", edit(func(m map[string]any) { m["layers"] = nil }), []string{"layers: null, want an array"}},
		{"layer number", edit(func(m map[string]any) { m["layers"] = []any{1} }), []string{"layers[0]: a number, want an object"}},
		{"layer null", edit(func(m map[string]any) { m["layers"] = []any{l0(m), nil} }), []string{"layers[1]: null, want an object"}},
		{"layer unknown field", edit(func(m map[string]any) { l1(m)["weights"] = l1(m)["weight"] }), []string{`layers[1]: unknown field "weights"`}},
		{"in missing", edit(func(m map[string]any) { delete(l0(m), "in") }), []string{"layers[0].in: missing"}},
		{"in zero", edit(func(m map[string]any) { l0(m)["in"] = 0 }), []string{"layers[0].in: 0 is not a positive integer"}},
		{"in negative", edit(func(m map[string]any) { l0(m)["in"] = -2 }), []string{"layers[0].in: -2 is not a positive integer"}},
		{"in fraction", edit(func(m map[string]any) { l0(m)["in"] = 2.5 }), []string{"layers[0].in: 2.5 is not a positive integer"}},
		{"in string", edit(func(m map[string]any) { l0(m)["in"] = "2" }), []string{`layers[0].in: "2" is a string, not a number`}},
		{"out missing", edit(func(m map[string]any) { delete(l1(m), "out") }), []string{"layers[1].out: missing"}},
		{"out huge", edit(func(m map[string]any) { l1(m)["out"] = 1e12 }), []string{"layers[1].out: 1000000000000 exceeds the limit"}},
		{"out overflow", raw("@@", "1e999", func(m map[string]any, p any) { l1(m)["out"] = p }), []string{"layers[1].out: 1e999 is out of range"}},
		{"too many params", edit(func(m map[string]any) { l0(m)["in"] = 100000; l0(m)["out"] = 100000 }), []string{"layers[0]: the network has more than"}},
		{"too many params total", edit(func(m map[string]any) { l1(m)["out"] = 300000000 }), []string{"layers[1]: the network has more than"}},
		{"huge declared", edit(func(m map[string]any) { l0(m)["in"] = 32768; l0(m)["out"] = 32767 }), []string{"layers[0].weight: length 3, want out = 32767 rows"}},
		{"huge declared row", edit(func(m map[string]any) { l0(m)["in"] = 32768; l0(m)["out"] = 32767; l0(m)["weight"] = [][]any{{1, 2}} }), []string{"layers[0].weight: length 1, want out = 32767 rows"}},
		{"in mismatch", edit(func(m map[string]any) { l1(m)["in"] = 4 }), []string{"layers[1].in: 4 does not match the previous layer's out = 3"}},
		{"activation missing", edit(func(m map[string]any) { delete(l0(m), "activation") }), []string{"layers[0].activation: missing"}},
		{"activation unknown", edit(func(m map[string]any) { l0(m)["activation"] = "gelu" }), []string{`layers[0].activation: unknown activation "gelu"`}},
		{"activation number", edit(func(m map[string]any) { l0(m)["activation"] = 1 }), []string{"layers[0].activation: a number, want a string"}},
		{"weight missing", edit(func(m map[string]any) { delete(l0(m), "weight") }), []string{"layers[0].weight: missing"}},
		{"weight rows", edit(func(m map[string]any) { l0(m)["weight"] = w0(m)[:2] }), []string{"layers[0].weight: length 2, want out = 3 rows"}},
		{"weight flat", edit(func(m map[string]any) { l0(m)["weight"] = []any{1, 2, 3} }), []string{"layers[0].weight[0]: a number, want an array"}},
		{"weight string", edit(func(m map[string]any) { l0(m)["weight"] = "x" }), []string{"layers[0].weight: a string, want an array"}},
		{"weight columns", edit(func(m map[string]any) { w0(m)[1] = []any{1} }), []string{"layers[0].weight[1]: length 1, want in = 2"}},
		{"weight row null", edit(func(m map[string]any) { w0(m)[2] = nil }), []string{"layers[0].weight[2]: null, want an array"}},
		{"weight NaN string", edit(func(m map[string]any) { w0(m)[2][1] = "NaN" }), []string{"layers[0].weight[2][1]: NaN is not allowed"}},
		{"weight Inf string", edit(func(m map[string]any) { w0(m)[0][0] = "-Infinity" }), []string{"layers[0].weight[0][0]: -Infinity is not allowed"}},
		{"weight inf string", edit(func(m map[string]any) { w0(m)[0][1] = "+inf" }), []string{"layers[0].weight[0][1]: +inf is not allowed"}},
		{"weight other string", edit(func(m map[string]any) { w0(m)[0][1] = "0.5" }), []string{`layers[0].weight[0][1]: "0.5" is a string, not a number`}},
		{"weight null", edit(func(m map[string]any) { w0(m)[1][0] = nil }), []string{"layers[0].weight[1][0]: null is not a number"}},
		{"weight bool", edit(func(m map[string]any) { w0(m)[1][0] = false }), []string{"layers[0].weight[1][0]: false is not a number"}},
		{"weight array", edit(func(m map[string]any) { w0(m)[1][0] = []any{} }), []string{"layers[0].weight[1][0]: an array is not a number"}},
		{"weight object", edit(func(m map[string]any) { w0(m)[1][0] = map[string]any{} }), []string{"layers[0].weight[1][0]: an object is not a number"}},
		{"weight bare NaN", raw("@@", "NaN", func(m map[string]any, p any) { w0(m)[1][1] = p }), []string{"not a prune-mlp/1 JSON file", "NaN and Infinity are not allowed"}},
		{"weight bare Infinity", raw("@@", "-Infinity", func(m map[string]any, p any) { w0(m)[1][1] = p }), []string{"not a prune-mlp/1 JSON file", "NaN and Infinity are not allowed"}},
		{"weight overflow", raw("@@", "-1e400", func(m map[string]any, p any) { w0(m)[1][1] = p }), []string{"layers[0].weight[1][1]: -1e400 is out of range"}},
		{"bias missing", edit(func(m map[string]any) { delete(l1(m), "bias") }), []string{"layers[1].bias: missing"}},
		{"bias length", edit(func(m map[string]any) { l0(m)["bias"] = []any{1, 2} }), []string{"layers[0].bias: length 2, want out = 3"}},
		{"bias number", edit(func(m map[string]any) { l0(m)["bias"] = 1 }), []string{"layers[0].bias: a number, want an array"}},
		{"bias bool", edit(func(m map[string]any) { l0(m)["bias"] = []any{1, true, 3} }), []string{"layers[0].bias[1]: true is not a number"}},
		{"bias NaN", edit(func(m map[string]any) { l1(m)["bias"] = []any{1, "nan"} }), []string{"layers[1].bias[1]: nan is not allowed"}},
		{"weight mask rows", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{1, 1}} }), []string{"layers[0].weight_mask: length 1, want out = 3 rows"}},
		{"weight mask columns", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{1, 1}, {1, 1, 1}, {1, 1}} }), []string{"layers[0].weight_mask[1]: length 3, want in = 2"}},
		{"weight mask two", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{1, 1}, {2, 1}, {1, 1}} }), []string{"layers[0].weight_mask[1][0]: 2 is not 0 or 1"}},
		{"weight mask half", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{1, 1}, {1, 1}, {1, 0.5}} }), []string{"layers[0].weight_mask[2][1]: 0.5 is not 0 or 1"}},
		{"weight mask bool", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{true, 1}, {1, 1}, {1, 1}} }), []string{"layers[0].weight_mask[0][0]: true is not a number"}},
		{"weight mask null", edit(func(m map[string]any) { l0(m)["weight_mask"] = nil }), []string{"layers[0].weight_mask: null, want an array"}},
		{"bias mask string", edit(func(m map[string]any) { l0(m)["bias_mask"] = []any{"1", 1, 1} }), []string{`layers[0].bias_mask[0]: "1" is a string, not a number`}},
		{"bias mask length", edit(func(m map[string]any) { l1(m)["bias_mask"] = []any{1, 1, 1} }), []string{"layers[1].bias_mask: length 3, want out = 2"}},
		{"masked weight", edit(func(m map[string]any) { l0(m)["weight_mask"] = [][]any{{1, 1}, {1, 0}, {1, 1}} }), []string{"layers[0].weight[1][1] is masked but 2, not zero"}},
		{"masked bias", edit(func(m map[string]any) { l0(m)["bias_mask"] = []any{1, 1, 0} }), []string{"layers[0].bias[2] is masked but 0.3, not zero"}},
		{"softmax hidden", edit(func(m map[string]any) { l0(m)["activation"] = "softmax" }), []string{"layers: layer 0: softmax"}},
		{"bce tanh", edit(func(m map[string]any) { l1(m)["activation"] = "tanh" }), []string{"layers: loss bce needs a sigmoid output layer or a linear one (logits), got tanh"}},
		{"ce sigmoid", edit(func(m map[string]any) { m["loss"] = "ce" }), []string{"layers: loss ce needs a softmax output layer or a linear one (logits), got sigmoid"}},
		{"mse softmax", edit(func(m map[string]any) { m["loss"] = "mse"; l1(m)["activation"] = "softmax" }), []string{"layers: a softmax output layer needs loss ce"}},
		{"meta array", edit(func(m map[string]any) { m["meta"] = []any{1} }), []string{"meta: an array, want an object"}},
		{"meta string", edit(func(m map[string]any) { m["meta"] = "x" }), []string{"meta: a string, want an object"}},
	}
}

func TestFileReadGood(t *testing.T) {
	n, err := ReadJSON(bytes.NewReader(fileModelJSON(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if n.Arch() != "2-3-2" || n.Loss() != nn.BCE || n.Layer(0).Act != nn.Tanh || n.Layer(1).Act != nn.Sigmoid {
		t.Errorf("read %s %v", n.Arch(), n.Layers())
	}
	want := []float64{0.5, -0.25, 1, 2, -3, 0.125, 0.1, 0.2, 0.3, 1, 2, 3, 4, 5, 6, -1, 1}
	if !slices.Equal(n.RawParams(), want) {
		t.Errorf("params %v, want %v", n.RawParams(), want)
	}
	if n.HasMask() {
		t.Error("mask read from a file without one")
	}
	if got := n.Meta["seed"]; got != json.Number("1") {
		t.Errorf("meta seed %#v", got)
	}
}

func TestFileReadBad(t *testing.T) {
	for _, tc := range fileBadCases(t) {
		n, err := ReadJSON(bytes.NewReader(tc.data))
		if err == nil {
			t.Errorf("%s: no error reading\n%s", tc.name, tc.data)
			continue
		}
		if n != nil {
			t.Errorf("%s: network returned with error", tc.name)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

// TestFileReadHugeDeclared checks that sizes declared in a small file do
// not make Read allocate for them.
func TestFileReadHugeDeclared(t *testing.T) {
	b := fileModelJSON(t, func(m map[string]any) {
		l := fileLayerOf(m, 0)
		l["in"], l["out"] = 32768, 32767
		l["weight"] = [][]any{{1, 2}}
		l["bias"] = []any{}
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadJSON(bytes.NewReader(b))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("no error")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("Read of a %d-byte file allocated %d bytes", len(b), d)
	}
}

func TestFileReadTooLarge(t *testing.T) {
	good := fileModelJSON(t, nil)
	defer func(m int64) { maxFileSize = m }(maxFileSize)
	maxFileSize = int64(len(good))
	if _, err := ReadJSON(bytes.NewReader(good)); err != nil {
		t.Fatalf("file at the limit: %v", err)
	}
	for _, b := range [][]byte{append(slices.Clone(good), ' '), bytes.Repeat([]byte(" "), 2*len(good))} {
		_, err := ReadJSON(bytes.NewReader(b))
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v, want a size error", err)
		}
	}
	maxFileSize = int64(len(good) / 2)
	_, err := ReadJSON(bytes.NewReader(good))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want a size error", err)
	}
}

type fileErrReader struct{}

var errFileRead = errors.New("disk on fire")

func (fileErrReader) Read([]byte) (int, error) { return 0, errFileRead }

func TestFileReadIOError(t *testing.T) {
	for _, prefix := range [][]byte{nil, []byte(`{"format": `), fileModelJSON(t, nil)} {
		r := io.MultiReader(bytes.NewReader(prefix), fileErrReader{})
		if _, err := ReadJSON(r); !errors.Is(err, errFileRead) {
			t.Errorf("after %d bytes: err = %v, want %v", len(prefix), err, errFileRead)
		}
	}
}

func TestFileGolden(t *testing.T) {
	const path = "testdata/xor-2-2-1.json"
	n, err := loadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if n.Arch() != "2-2-1" || n.Loss() != nn.MSE || n.Layer(0).Act != nn.ReLU || n.Layer(1).Act != nn.Linear {
		t.Fatalf("read %s %v %v", n.Arch(), n.Layers(), n.Loss())
	}
	if n.NumParams() != 9 || n.NumLive() != 6 {
		t.Errorf("%d parameters, %d live; want 9, 6", n.NumParams(), n.NumLive())
	}
	for l := range n.NumLayers() {
		for j := range n.Layer(l).Out {
			if n.IsLive(n.BiasIndex(l, j)) {
				t.Errorf("b%d[%d] is live", l, j)
			}
		}
	}
	if !mat.Equal(n.Weights(0), mat.NewDense(2, 2, []float64{1, -1, -1, 1})) {
		t.Errorf("W0 = %v", mat.Formatted(n.Weights(0)))
	}
	X := mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1})
	Y := n.Forward(X)
	if !mat.Equal(Y, mat.NewDense(4, 1, []float64{0, 1, 1, 0})) {
		t.Errorf("outputs %v, want XOR", mat.Formatted(Y.T()))
	}
	if n.Meta["data"] != "xor" {
		t.Errorf("meta %v", n.Meta)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileWrite(t, n); !bytes.Equal(got, want) {
		t.Errorf("Write does not reproduce %s:\n%s", path, got)
	}
}

func TestFileLoadSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.json")
	n := fileRandNet(t, []int{3, 4, 2}, []nn.Activation{nn.ReLU, nn.Softmax}, nn.CE, true, rand.New(rand.NewPCG(5, 6)))
	n.Meta = map[string]any{"seed": 5}
	if err := saveJSON(path, n); err != nil {
		t.Fatal(err)
	}
	m, err := loadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := fileEqual(n, m); d != "" {
		t.Fatal(d)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}

	// A network that cannot be written leaves the file untouched.
	bad := n.Clone()
	bad.RawParams()[bad.LiveIndices()[3]] = math.NaN()
	err = saveJSON(path, bad)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Save of NaN network: err = %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, saved) {
		t.Errorf("file changed by failed Save (err %v)", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want 1", len(ents))
	}

	// Load errors name the file and the field.
	badPath := filepath.Join(dir, "bad.json")
	b := bytes.Replace(saved, []byte(`"loss": "ce"`), []byte(`"loss": "xe"`), 1)
	if err := os.WriteFile(badPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = loadJSON(badPath)
	if err == nil || !strings.HasPrefix(err.Error(), badPath+": loss: ") {
		t.Errorf("Load of bad file: err = %v", err)
	}
	_, err = loadJSON(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, os.ErrNotExist) || strings.Count(err.Error(), "missing.json") != 1 {
		t.Errorf("Load of missing file: err = %v", err)
	}
}

// FuzzRead checks that Read never panics and that whatever it accepts is
// written and read back unchanged.
func FuzzReadJSON(f *testing.F) {
	f.Add(fileModelJSON(f, nil))
	if b, err := os.ReadFile("testdata/xor-2-2-1.json"); err == nil {
		f.Add(b)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	f.Add(fileWrite(f, fileRandNet(f, []int{2, 3, 2}, []nn.Activation{nn.Sigmoid, nn.Softmax}, nn.CE, true, rng)))
	f.Add(fileWrite(f, fileRandNet(f, []int{1, 2, 1}, []nn.Activation{nn.ReLU, nn.Linear}, nn.MSE, false, rng)))
	for _, tc := range fileBadCases(f) {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			n   *nn.Network
			err error
		)
		if got, bound := memtest.Allocated(func() { n, err = ReadJSON(bytes.NewReader(data)) }), readAllocBound(len(data)); got > bound {
			t.Fatalf("read of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		if err != nil {
			if n != nil {
				t.Fatal("network returned with error")
			}
			return
		}
		var b1 bytes.Buffer
		if err := WriteJSON(&b1, n); err != nil {
			t.Fatalf("cannot write what was read: %v", err)
		}
		m, err := ReadJSON(bytes.NewReader(b1.Bytes()))
		if err != nil {
			t.Fatalf("cannot read what was written: %v\n%s", err, b1.Bytes())
		}
		if d := fileEqual(n, m); d != "" {
			t.Fatal(d)
		}
		var b2 bytes.Buffer
		if err := WriteJSON(&b2, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatalf("second write differs:\n%s\n%s", b1.Bytes(), b2.Bytes())
		}
	})
}

// TestFileScanMatrix checks that the fast matrix parser agrees with the
// slow one.
func TestFileScanMatrix(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		rows, cols int
	}{
		{"[[1,2],[3,4]]", 2, 2},
		{" [ [ 1 , 2 ] ,\n\t[ 3 ,4 ] ] ", 2, 2},
		{"[[-0, 0.5e-3, 1E+2, -1.5E-2]]", 1, 4},
		{"[[1e400]]", 1, 1},
		{"[[-1e400]]", 1, 1},
		{"[[1e-400]]", 1, 1},
		{"[[5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]]", 1, 3},
		{"[[1,2],[3]]", 2, 2},
		{"[[1,2],[3,4,5]]", 2, 2},
		{"[[1,2]]", 2, 2},
		{"[[1,2],[3,4],[5,6]]", 2, 2},
		{"[[]]", 1, 0},
		{"[[1]]", 1, 1},
		{"[1]", 1, 1},
		{"[[[1]]]", 1, 1},
		{"[[null]]", 1, 1},
		{`[["1"]]`, 1, 1},
		{"[[true]]", 1, 1},
		{"[[{}]]", 1, 1},
		{"[]", 1, 1},
		{"{}", 1, 1},
		{"7", 1, 1},
		{"null", 1, 1},
	} {
		var scratch []num
		want, wantErr := decodeMatrix(json.RawMessage(tc.raw), "w", tc.rows, tc.cols, &scratch)
		got, ok := scanMatrix([]byte(tc.raw), tc.rows, tc.cols)
		if ok != (wantErr == nil) {
			t.Errorf("%s: fast path ok=%v, slow path err=%v", tc.raw, ok, wantErr)
			continue
		}
		if ok && !slices.Equal(got, want) {
			t.Errorf("%s: fast %v, slow %v", tc.raw, got, want)
		}
		for i := range got {
			if math.Signbit(got[i]) != math.Signbit(want[i]) {
				t.Errorf("%s: sign of element %d differs", tc.raw, i)
			}
		}
	}
}
