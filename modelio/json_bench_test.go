package modelio

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/nn"
)

func BenchmarkReadJSON(b *testing.B) {
	n, _ := nn.New([]int{784, 300, 100, 10}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Softmax}, nn.CE)
	n.Init(rand.NewPCG(1, 1))
	var buf bytes.Buffer
	WriteJSON(&buf, n)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadJSON(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
