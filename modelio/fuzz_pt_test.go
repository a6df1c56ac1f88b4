package modelio

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
)

// seedFiles adds the files of testdata matching pattern to the corpus of f.
func seedFiles(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", pattern, err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzReadPT(f *testing.F) {
	seedFiles(f, "*.pt")
	f.Add(statePickle([]outTensor{{key: "a.weight", dtype: dtF32, shape: []int{1, 2}, values: []float64{1, 2}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReadWith(t, data, "fuzz.pt", ReadPT, WritePT)
	})
}

func FuzzReadSafetensors(f *testing.F) {
	seedFiles(f, "*.safetensors")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReadWith(t, data, "fuzz.safetensors", ReadSafetensors, WriteSafetensors)
	})
}

// checkReadWith checks that data reads as a valid network that writes and
// reads back the same, or gives an error that names the file.
func checkReadWith(t *testing.T, data []byte, name string,
	read func(io.ReaderAt, int64, string, *Spec) (*nn.Network, error), write func(io.Writer, *nn.Network) error) {
	n, err := read(bytes.NewReader(data), int64(len(data)), name, tanhMSE)
	if err != nil {
		if !strings.HasPrefix(err.Error(), name+": ") {
			t.Fatalf("error %q does not name the file", err)
		}
		return
	}
	for q, v := range n.RawParams() {
		if math.IsNaN(v) || math.IsInf(v, 0) || (!n.IsLive(q) && v != 0) {
			t.Fatalf("parameter %d (%v) is %v, live %v", q, n.ParamAt(q), v, n.IsLive(q))
		}
	}
	var buf bytes.Buffer
	if err := write(&buf, n); err != nil {
		t.Fatal(err)
	}
	m, err := read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "again", tanhMSE)
	if err != nil {
		t.Fatal(err)
	}
	sameNet(t, m, n)
}
