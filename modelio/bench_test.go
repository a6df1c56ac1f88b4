package modelio

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/nn"
)

// benchNet returns a 784-300-100-10 network, a tenth of its weights pruned,
// with the given dtype.
func benchNet(b *testing.B, dtype string) *nn.Network {
	n, err := nn.New([]int{784, 300, 100, 10}, []nn.Activation{nn.ReLU, nn.ReLU, nn.Softmax}, nn.CE)
	if err != nil {
		b.Fatal(err)
	}
	n.Init(rand.NewPCG(1, 2))
	for q := 0; q < n.NumParams(); q += 10 {
		n.Prune(q)
	}
	lay := DefaultLayout(n)
	lay.DType = dtype
	if err := SetLayout(n, lay); err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkWrite(b *testing.B) {
	for _, dtype := range []string{"float32", "float64"} {
		b.Run(dtype, func(b *testing.B) {
			n := benchNet(b, dtype)
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := Write(&buf, n); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, dtype := range []string{"float32", "float64"} {
		b.Run(dtype, func(b *testing.B) {
			var buf bytes.Buffer
			if err := Write(&buf, benchNet(b, dtype)); err != nil {
				b.Fatal(err)
			}
			data := buf.Bytes()
			b.SetBytes(int64(len(data)))
			spec := &Spec{Activations: "relu,relu,softmax", Loss: "ce"}
			for b.Loop() {
				if _, err := Read(bytes.NewReader(data), int64(len(data)), "b.npz", spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
