package prune_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// Stopping rules are values: here the pruning of a linear network stops at
// 1 live parameter, or earlier if the mean training loss rises by more
// than 0.1 (the removal that breaks that rule is undone), or when a rule of
// the program's own holds after a round.
func ExampleStopper() {
	// y = 2·x₀ − x₁ + 0.1·x₂, observed with a little noise.
	rng := rand.New(rand.NewPCG(3, 4))
	X := mat.NewDense(30, 3, nil)
	Y := mat.NewDense(30, 1, nil)
	for n := 0; n < 30; n++ {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		X.SetRow(n, x)
		Y.Set(n, 0, 2*x[0]-x[1]+0.1*x[2]+0.01*rng.NormFloat64())
	}
	net, err := nn.New([]int{3, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	if _, err := nn.Train(context.Background(), net, nn.Data{X: X, Y: Y}, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS}); err != nil {
		log.Fatal(err)
	}

	res, err := prune.Run(context.Background(), net, nn.Splits{Train: nn.Data{X: X, Y: Y}}, &prune.Settings{
		PerRound: 1,
		Stoppers: []prune.Stopper{
			prune.TargetCount(1),
			prune.ErrorRise{Measure: prune.MeanLoss, Max: 0.1},
			prune.StopFunc(func(s *prune.Status) (bool, string) {
				return s.Now.Train.Loss > 1e3, "loss above 1000"
			}),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range res.History {
		fmt.Printf("removed %s, undone %v\n", st.Name, st.Undone)
	}
	fmt.Println("stopped:", res.Stopped, "with", res.Net.NumLive(), "live")
	// Output:
	// removed b0[0], undone false
	// removed W0[0][2], undone false
	// removed W0[0][1], undone true
	// stopped: error-rise with 2 live
}
