package prune_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// Half the weights of every layer removed by layer-wise OBS on 200
// calibration inputs, each layer's remaining weights updated to
// reconstruct its outputs.
func ExampleLayerwise() {
	net, err := nn.New([]int{8, 6, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	rng := rand.New(rand.NewPCG(3, 4))
	X := mat.NewDense(200, 8, nil)
	for n := 0; n < 200; n++ {
		for i := 0; i < 8; i++ {
			X.Set(n, i, rng.NormFloat64())
		}
	}

	pruned, rep, err := prune.Layerwise(context.Background(), net, X, &prune.LayerwiseSettings{Sparsity: 0.5})
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range rep.Layers {
		// Each OBS removal is exact on the damped quadratic.
		exact := math.Abs(l.Predicted-(l.Actual+l.DampingTerm)) <= 1e-8*l.Predicted
		fmt.Printf("layer %d (%v): %d of %d weights live, predicted error exact: %v\n",
			l.Layer, l.Method, l.WeightsAfter, l.WeightsBefore, exact)
	}
	fmt.Printf("live parameters: %d of %d\n", pruned.NumLive(), net.NumParams())
	// Output:
	// layer 0 (obc): 24 of 48 weights live, predicted error exact: true
	// layer 1 (obc): 6 of 12 weights live, predicted error exact: true
	// live parameters: 38 of 68
}
