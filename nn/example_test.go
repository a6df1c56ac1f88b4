package nn_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// Example trains a 2-3-1 network on XOR with L-BFGS and evaluates it.
func Example() {
	net, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(2, 2))
	xor := nn.Data{
		X: mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1}),
		Y: mat.NewDense(4, 1, []float64{0, 1, 1, 0}),
	}
	if _, err := nn.Train(context.Background(), net, xor, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS}); err != nil {
		log.Fatal(err)
	}
	m := net.Evaluate(xor.X, xor.Y)
	fmt.Printf("parameters %d, accuracy %.2f, loss below 0.01: %v\n", net.NumParams(), m.Accuracy, m.Loss < 0.01)

	// Output:
	// parameters 13, accuracy 1.00, loss below 0.01: true
}
