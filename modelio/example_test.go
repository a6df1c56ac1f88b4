package modelio_test

import (
	"bytes"
	"fmt"
	"log"
	"slices"

	"codeberg.org/sbinet/npyio/npz"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

func Example() {
	// A 2-3-1 network, one weight pruned.
	n, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		log.Fatal(err)
	}
	n.SetParams([]float64{0.5, -1, 0.25, 2, -0.75, 1.5, 0.1, 0.2, 0.3, 1, -1, 0.5, 0})
	n.Prune(n.WeightIndex(0, 1, 0))

	// The state_dict of nn.Sequential(Linear(2, 3), Tanh(), Linear(3, 1), Sigmoid()).
	var buf bytes.Buffer
	if err := modelio.Write(&buf, n); err != nil {
		log.Fatal(err)
	}
	zr, err := npz.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range zr.Keys() {
		fmt.Println(k, zr.Header(k).Descr.Shape)
	}

	// Read back: the archive does not hold the activations and the loss.
	spec := &modelio.Spec{Activations: "tanh,sigmoid", Loss: "bce"}
	m, err := modelio.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "m.npz", spec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("architecture:", m.Arch(), "live:", m.NumLive(), "of", m.NumParams())
	fmt.Println("same parameters:", slices.Equal(m.RawParams(), n.RawParams()))
	lay, err := modelio.LayoutOf(m)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("layout: %+v\n", lay)

	// Output:
	// 0.weight_orig.npy [3 2]
	// 0.weight_mask.npy [3 2]
	// 0.bias.npy [3]
	// 2.weight.npy [1 3]
	// 2.bias.npy [1]
	// architecture: 2-3-1 live: 12 of 13
	// same parameters: true
	// layout: {Prefix: Modules:[0 2] Names:[] DType:float64 Masked:[0.weight] Masks:}
}
