package modelio

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
	"github.com/secondorder/prune/nn"
)

// readAllocBound is the most bytes that Read of a file of size bytes may
// allocate: a fixed overhead and a small multiple of the size, for the
// decoder's buffer, the raw parts of the document and the parameters.
func readAllocBound(size int) uint64 { return 1<<20 + 40*uint64(size) }

// TestReadAllocBounded measures the allocation of reading a LeNet-300-100
// model file and of files made of short numbers.
func TestReadAllocBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, data := range [][]byte{
		fileWrite(t, fileRandNet(t, []int{784, 300, 100, 10}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Softmax}, nn.CE, true, rng)),
		[]byte(`{"format":"prune-mlp/1","loss":"mse","layers":[{"in":100000,"out":1,"activation":"linear","weight":[[` +
			strings.TrimSuffix(strings.Repeat("0,", 100000), ",") + `]],"bias":[0]}]}`),
	} {
		var err error
		got := memtest.Allocated(func() { _, err = ReadJSON(bytes.NewReader(data)) })
		if err != nil {
			t.Fatal(err)
		}
		if bound := readAllocBound(len(data)); got > bound {
			t.Errorf("read of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		t.Logf("read of %d bytes allocated %d (%.1f×)", len(data), got, float64(got)/float64(len(data)))
	}
}

// TestReadDuplicateKeys is the repro of duplicate JSON keys accepted, the
// last one winning: every object of the file is checked.
func TestReadDuplicateKeys(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"format":"prune-mlp/1","loss":"mse","loss":"ce","layers":[]}`, `key "loss" appears twice at the top level`},
		{`{"format":"prune-mlp/1","loss":"mse","layers":[{"in":1,"out":1,"activation":"linear","weight":[[1]],"bias":[0],"weight":[[2]]}]}`, `layers[0]: key "weight" appears twice`},
		{`{"format":"prune-mlp/1","loss":"mse","layers":[{"in":1,"out":1,"activation":"linear","weight":[[1]],"bias":[0]}],"meta":{"a":{"b":1,"\u0062":2}}}`, `meta.a: key "b" appears twice`},
	} {
		_, err := ReadJSON(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
	// The same key in different objects is fine.
	ok := `{"format":"prune-mlp/1","loss":"mse","layers":[{"in":1,"out":1,"activation":"linear","weight":[[1]],"bias":[0]},{"in":1,"out":1,"activation":"linear","weight":[[1]],"bias":["0"]}],"meta":{"x":{"format":1},"y":{"format":"a\"b"}}}`
	if _, err := ReadJSON(strings.NewReader(ok)); err != nil && strings.Contains(err.Error(), "twice") {
		t.Errorf("distinct objects: %v", err)
	}
}
