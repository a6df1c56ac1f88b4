package nn

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func BenchmarkFileRead(b *testing.B) {
	n, _ := New([]int{784, 300, 100, 10}, []Activation{Tanh, Tanh, Softmax}, CE)
	n.Init(rand.NewPCG(1, 1))
	var buf bytes.Buffer
	n.Write(&buf)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
