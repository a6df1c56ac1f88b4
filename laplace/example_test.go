package laplace_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/nn"
)

func Example() {
	// A noisy line, fitted by a network with no hidden layer: Bayesian
	// linear regression.
	rng := rand.New(rand.NewPCG(1, 1))
	const N = 50
	X := mat.NewDense(N, 1, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		x := 2*rng.Float64() - 1
		X.Set(i, 0, x)
		Y.Set(i, 0, 0.5*x-0.2+0.1*rng.NormFloat64())
	}
	net, err := nn.New([]int{1, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Re-estimate α and β, retraining to the MAP between steps.
	post, steps, err := laplace.Optimize(ctx, net, X, Y, nil, &laplace.OptimizeSettings{Retrain: true})
	if err != nil {
		log.Fatal(err)
	}
	ev := post.Evidence()
	fmt.Printf("converged in %d steps: α %.3f, β %.1f, γ %.3f of %d\n", len(steps), post.Alpha(), post.Beta(), ev.Gamma, post.Dim())
	fmt.Printf("log evidence %.3f\n", ev.LogEvidence)

	// The predictive at x = 0 and far outside the data.
	Xt := mat.NewDense(2, 1, []float64{0, 5})
	mean := mat.NewDense(2, 1, nil)
	variance := mat.NewDense(2, 1, nil)
	if err := post.PredictTo(ctx, mean, variance, Xt); err != nil {
		log.Fatal(err)
	}
	for i := range 2 {
		fmt.Printf("x = %g: mean %.3f, σ %.3f\n", Xt.At(i, 0), mean.At(i, 0), math.Sqrt(variance.At(i, 0)))
	}
	// Output:
	// converged in 5 steps: α 6.911, β 105.8, γ 1.995 of 2
	// log evidence 39.488
	// x = 0: mean -0.189, σ 0.098
	// x = 5: mean 2.324, σ 0.154
}
