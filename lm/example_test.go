package lm_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/lm"
	"github.com/secondorder/prune/nn"
)

func Example() {
	sp, err := datasets.Sine(100, 20, 1)
	if err != nil {
		log.Fatal(err)
	}
	net, err := nn.New([]int{1, 6, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	ctx := context.Background()
	train := sp.Train

	// Levenberg–Marquardt on J = E/N + ½λ‖θ‖².
	res, err := lm.Train(ctx, net, train, nn.Data{}, &lm.Settings{WeightDecay: 1e-4, Tolerance: 0.006})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d steps: mean loss %.4f\n", res.Stopped, res.Epochs, res.Train.MeanLoss)

	// Add the test samples to the training set and update by a Newton step.
	u, err := lm.NewUpdater(ctx, net, train.X, train.Y, &lm.UpdaterSettings{WeightDecay: 1e-4})
	if err != nil {
		log.Fatal(err)
	}
	if err := u.Add(ctx, sp.Test.X, sp.Test.Y); err != nil {
		log.Fatal(err)
	}
	st, err := u.Step(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("S' on 120 samples: %.4f → %.4f\n", st.Start, st.End)
	// Output:
	// tolerance after 39 steps: mean loss 0.0060
	// S' on 120 samples: 0.7481 → 0.7475
}
