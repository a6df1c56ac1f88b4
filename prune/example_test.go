package prune_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

func Example() {
	// y = 2·x₀ − x₁ + 0.1·x₂ + 0.05, observed with a little noise: x₂ and
	// the bias matter least.
	rng := rand.New(rand.NewPCG(1, 2))
	X := mat.NewDense(20, 3, nil)
	Y := mat.NewDense(20, 1, nil)
	for n := 0; n < 20; n++ {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		X.SetRow(n, x)
		Y.Set(n, 0, 2*x[0]-x[1]+0.1*x[2]+0.05+0.01*rng.NormFloat64())
	}
	train := nn.Data{X: X, Y: Y}

	// A linear network, trained to the least-squares minimum.
	net, err := nn.New([]int{3, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	if _, err := nn.Train(context.Background(), net, train, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS}); err != nil {
		log.Fatal(err)
	}

	// Remove two parameters with Optimal Brain Surgeon on the exact
	// Hessian, the default method.
	res, err := prune.Run(context.Background(), net, nn.Splits{Train: train}, &prune.Settings{
		TargetLive: net.NumParams() - 2,
		PerRound:   2,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range res.History {
		fmt.Printf("removed %s: predicted ΔE %.4f, real ΔE %.4f\n", st.Name, st.Predicted, st.Real)
	}
	fmt.Printf("live parameters: %d of %d, stopped: %s\n", res.Net.NumLive(), net.NumParams(), res.Stopped)
	fmt.Printf("weights: %.2f\n", res.Net.Weights(0).RawRowView(0))

	// Output:
	// removed b0[0]: predicted ΔE 0.0229, real ΔE 0.0229
	// removed W0[0][2]: predicted ΔE 0.0703, real ΔE 0.0703
	// live parameters: 2 of 4, stopped: target
	// weights: [1.99 -1.03 0.00]
}

// A run checkpointed after every round and continued from its JSON state.
func ExampleState() {
	rng := rand.New(rand.NewPCG(3, 4))
	X := mat.NewDense(30, 4, nil)
	Y := mat.NewDense(30, 1, nil)
	for n := 0; n < 30; n++ {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		X.SetRow(n, x)
		Y.Set(n, 0, x[0]-0.5*x[1]+0.2*x[2]+0.01*rng.NormFloat64())
	}
	data := nn.Splits{Train: nn.Data{X: X, Y: Y}}
	net, err := nn.New([]int{4, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := nn.Train(context.Background(), net, data.Train, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS}); err != nil {
		log.Fatal(err)
	}

	// The hook keeps the JSON of the state after round 1, as a checkpoint
	// file would.
	var checkpoint []byte
	settings := func() *prune.Settings {
		return &prune.Settings{Method: prune.OBD{}, PerRound: 1, TargetLive: 2}
	}
	s := settings()
	s.OnState = func(st *prune.State) error {
		if st.Rounds == 1 {
			checkpoint, err = json.Marshal(st)
		}
		return err
	}
	full, err := prune.Run(context.Background(), net, data, s)
	if err != nil {
		log.Fatal(err)
	}

	var st prune.State
	if err := json.Unmarshal(checkpoint, &st); err != nil {
		log.Fatal(err)
	}
	s = settings()
	s.Resume = &st
	resumed, err := prune.Run(context.Background(), net, data, s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("uninterrupted: %d rounds, %d live; resumed after round %d: %d rounds, %d live\n",
		len(full.Rounds), full.Net.NumLive(), st.Rounds, len(resumed.Rounds), resumed.Net.NumLive())
	// Output:
	// uninterrupted: 3 rounds, 2 live; resumed after round 1: 3 rounds, 2 live
}
