package prune_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// offMinimum returns a fitted linear network moved away from the least
// squares minimum, so that the gradient of E + ½λN‖θ‖² is not zero while
// the objective stays exactly quadratic.
func offMinimum(t *testing.T, seed uint64) (*nn.Network, *mat.Dense, *mat.Dense) {
	net, X, Y := quadratic(t, seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	theta := net.RawParams()
	for q := range theta {
		theta[q] += 0.3 * rng.NormFloat64()
	}
	return net, X, Y
}

// On a quadratic objective with a non-zero gradient and weight decay, the
// predicted increase of the objective of OBS (every removal) and OBD (one
// removal per round) equals the real one.
func TestTrainedObjectiveQuadraticExact(t *testing.T) {
	const lambda = 0.05
	for _, seed := range []uint64{1, 2} {
		net, X, Y := offMinimum(t, seed)
		N, _ := X.Dims()
		mu := lambda * float64(N)
		J := func(n *nn.Network) float64 {
			var s float64
			for _, v := range n.RawParams() {
				s += v * v
			}
			return n.Objective(X, Y) + 0.5*mu*s
		}
		for _, tc := range []struct {
			name string
			s    prune.Settings
		}{
			{"obs", prune.Settings{Method: undamped, PerRound: 3, MaxRounds: 2}},
			{"obd", prune.Settings{Method: prune.OBD{}, PerRound: 1, MaxRounds: 4}},
		} {
			s := tc.s
			s.WeightDecay, s.Objective = lambda, prune.GradientObjective
			s.AuditRows, s.AuditRemovals = prune.AuditAll, prune.AuditAll
			res, err := prune.Run(context.Background(), net, nn.Splits{Train: nn.Data{X: X, Y: Y}}, &s)
			if err != nil {
				t.Fatal(err)
			}
			J0 := J(net)
			var sumPred float64
			for _, st := range res.History {
				sumPred += st.Predicted
				if !closeDelta(st.Predicted, st.Real, J0) {
					t.Errorf("seed %d %s: step %d predicted %.15g, real %.15g", seed, tc.name, st.Step, st.Predicted, st.Real)
				}
			}
			if got := J(res.Net) - J0; !closeDelta(sumPred, got, J0) {
				t.Errorf("seed %d %s: total predicted %.15g, real change of the objective %.15g", seed, tc.name, sumPred, got)
			}
			if res.Rounds[0].Decay != mu {
				t.Errorf("seed %d %s: round decay %v, want %v", seed, tc.name, res.Rounds[0].Decay, mu)
			}

			// Without the gradient the predictions miss.
			s.Objective = prune.TrainedObjective
			loss, err := prune.Run(context.Background(), net, nn.Splits{Train: nn.Data{X: X, Y: Y}}, &s)
			if err != nil {
				t.Fatal(err)
			}
			if st := loss.History[0]; closeDelta(st.Predicted, st.Real, J0) {
				t.Errorf("seed %d %s: the loss objective predicts %v for the real %v too", seed, tc.name, st.Predicted, st.Real)
			}
		}
	}
}

// On a network trained to convergence with weight decay, the Hessian of
// the trained objective is positive definite where that of E is not, and
// OBS on the trained objective needs no raised damping.
func TestTrainedObjectivePositiveDefinite(t *testing.T) {
	// MONK-1 17-3-1, as the demo trains it.
	const lambda = 1e-3
	sp, err := datasets.Load("monks1", &datasets.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := sp.Train
	x, err := nn.New([]int{17, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	x.Init(rand.NewPCG(1, 1))
	if _, err := nn.Train(context.Background(), x, d, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 3000, WeightDecay: lambda}); err != nil {
		t.Fatal(err)
	}
	N, _ := d.X.Dims()
	H, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.Live(x, d.X, d.Y)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var eig mat.EigenSym
	if !eig.Factorize(H, false) {
		t.Fatal("no eigenvalues")
	}
	minE := eig.Values(nil)[0]
	if !(minE < 0) {
		t.Fatalf("smallest eigenvalue of H is %g; want an indefinite H for this test", minE)
	}
	if minJ := minE + lambda*float64(N); !(minJ > 0) {
		t.Errorf("smallest eigenvalue of H + λN·I is %g", minJ)
	}
	for _, tc := range []struct {
		obj    prune.Objective
		issues bool
	}{{prune.TrainedObjective, false}, {prune.LossObjective, true}} {
		res, err := prune.Run(context.Background(), x, nn.Splits{Train: d}, &prune.Settings{
			Method: prune.OBS{}, Objective: tc.obj, WeightDecay: lambda, PerRound: 1, MaxRounds: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := !res.Health.OK(); got != tc.issues {
			t.Errorf("objective %v: health issues %v, want %v: %+v", tc.obj, got, tc.issues, res.Health.Issues)
		}
	}
}

func TestWeightDecayOf(t *testing.T) {
	net, err := nn.New([]int{2, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := prune.WeightDecayOf(net); ok {
		t.Error("a network without metadata has a weight decay")
	}
	net.Meta = map[string]any{"trainer": map[string]any{"weight_decay": 0.25}}
	if v, ok := prune.WeightDecayOf(net); !ok || v != 0.25 {
		t.Errorf("weight decay %v %v", v, ok)
	}
	net.Meta = map[string]any{"trainer": map[string]any{"weight_decay": -1.0}}
	if _, ok := prune.WeightDecayOf(net); ok {
		t.Error("a negative weight decay is accepted")
	}
}
