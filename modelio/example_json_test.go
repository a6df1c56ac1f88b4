package modelio_test

import (
	"bytes"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

func ExampleReadJSON() {
	n, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		log.Fatal(err)
	}
	n.Init(rand.NewPCG(1, 2))
	n.Prune(n.WeightIndex(0, 1, 0))
	n.Meta = map[string]any{"seed": 1}

	var buf bytes.Buffer
	if err := modelio.WriteJSON(&buf, n); err != nil {
		log.Fatal(err)
	}
	m, err := modelio.ReadJSON(&buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("architecture:", m.Arch(), "loss:", m.Loss())
	fmt.Println("parameters:", m.NumParams(), "live:", m.NumLive())
	fmt.Println("same parameters:", slices.Equal(n.RawParams(), m.RawParams()))
	fmt.Println("same mask:", slices.Equal(n.Mask(), m.Mask()))
	fmt.Println("meta:", m.Meta)

	// Output:
	// architecture: 2-3-1 loss: bce
	// parameters: 13 live: 12
	// same parameters: true
	// same mask: true
	// meta: map[seed:1]
}

func ExampleWriteJSON() {
	n, err := nn.New([]int{2, 1}, []nn.Activation{nn.Sigmoid}, nn.BCE)
	if err != nil {
		log.Fatal(err)
	}
	n.SetParams([]float64{0.5, -1.25, 0.1})
	n.Prune(n.WeightIndex(0, 0, 1))
	n.Meta = map[string]any{"data": "and"}
	var buf bytes.Buffer
	if err := modelio.WriteJSON(&buf, n); err != nil {
		log.Fatal(err)
	}
	fmt.Print(buf.String())

	// Output:
	// {
	//   "format": "prune-mlp/1",
	//   "loss": "bce",
	//   "layers": [
	//     {
	//       "in": 2,
	//       "out": 1,
	//       "activation": "sigmoid",
	//       "weight": [
	//         [0.5, 0]
	//       ],
	//       "bias": [0.1],
	//       "weight_mask": [
	//         [1, 0]
	//       ],
	//       "bias_mask": [1]
	//     }
	//   ],
	//   "meta": {
	//     "data": "and"
	//   }
	// }
}
