package modelio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
	"github.com/secondorder/prune/nn"
)

func FuzzReadNPZ(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.npz"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(savez(mlp("net.", "<f4")...))
	f.Add(savez(
		arr("0.weight_orig", "<f8", []int{1, 2}, 1, 2),
		arr("0.weight_mask", "<f8", []int{1, 2}, 0, 1),
		arr("0.bias_orig", "<f8", []int{1}, 3),
		arr("0.bias_mask", "<f8", []int{1}, 0),
	))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, data)
	})
}

// FuzzReadNPY fuzzes one array of an archive, whose checksum FuzzReadNPZ
// seldom gets right: the array key holds the .npy file data, next to the
// arrays of a 2-3-1 network.
func FuzzReadNPY(f *testing.F) {
	for _, e := range mlp("", "<f4") {
		f.Add(e.key, e.npy)
	}
	f.Add("0.weight", npyArray("<f8", true, []int{3, 2}, f8(1, 2, 3, 4, 5, 6)))
	f.Add("2.bias", npyArray(">f8", false, []int{1}, f8be(1)))
	f.Add("0.weight_mask", npyArray("<f4", false, []int{3, 2}, f4(1, 0, 1, 1, 1, 0)))
	f.Add("2.bias_mask", npyRaw(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4(0)))
	f.Add("1.running_mean", npyArray("<f2", false, []int{3}, make([]byte, 6)))
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		es := mlp("", "<f4")
		switch key {
		case "0.weight_mask":
			es[0].key = "0.weight_orig"
		case "2.bias_mask":
			es[3].key = "2.bias_orig"
		}
		if i := slices.IndexFunc(es, func(e entry) bool { return e.key == key }); i >= 0 {
			es[i].npy = data
		} else {
			es = append(es, entry{key: key, npy: data})
		}
		checkRead(t, savez(es...))
	})
}

// checkRead checks that data reads as a valid network that writes and reads
// back the same, or gives an error that names the archive.
func checkRead(t *testing.T, data []byte) {
	var (
		n   *nn.Network
		err error
	)
	// Memory is bounded by what the archive really holds.
	if got, bound := memtest.Allocated(func() { n, err = readBytes(data, "fuzz.npz", tanhMSE) }), allocBound(data); got > bound {
		t.Fatalf("read of %d bytes allocated %d, above %d", len(data), got, bound)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "fuzz.npz: ") {
			t.Fatalf("error %q does not name the file", err)
		}
		return
	}
	for q, v := range n.RawParams() {
		if math.IsNaN(v) || math.IsInf(v, 0) || (!n.IsLive(q) && v != 0) {
			t.Fatalf("parameter %d (%v) is %v, live %v", q, n.ParamAt(q), v, n.IsLive(q))
		}
	}
	// What reads writes, and reads back the same.
	var buf bytes.Buffer
	if err := Write(&buf, n); err != nil {
		t.Fatal(err)
	}
	m, err := readBytes(buf.Bytes(), "again.npz", tanhMSE)
	if err != nil {
		t.Fatal(err)
	}
	sameNet(t, m, n)
	lm, _ := LayoutOf(m)
	ln, _ := LayoutOf(n)
	if lm.Prefix != ln.Prefix || lm.DType != ln.DType || len(lm.Modules) != len(ln.Modules) {
		t.Fatalf("layout %+v, then %+v", ln, lm)
	}
}

// FuzzParseSpec fuzzes the reader of spec files, which must not panic and
// must accept only what it can describe.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"activations": ["tanh", "sigmoid"], "loss": "mse"}`))
	f.Add([]byte(`{"activations": ["relu"], "loss": "ce", "meta": {"a": 1}, "model_sha256": "` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`{"loss": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			sc  *sidecar
			err error
		)
		if got, bound := memtest.Allocated(func() { sc, err = parseSidecar(data) }), uint64(1<<20+64*len(data)); got > bound {
			t.Fatalf("parse of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		if err != nil {
			return
		}
		if sc.sum != "" && !isSHA256(sc.sum) {
			t.Fatalf("model_sha256 %q accepted", sc.sum)
		}
		for _, a := range sc.acts {
			if _, err := nn.ParseActivation(a); err != nil {
				t.Fatalf("activation %q accepted", a)
			}
		}
	})
}
