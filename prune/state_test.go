package prune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// A run resumed from the JSON state after its second round ends with the
// state, byte for byte, of the uninterrupted run, for GOMAXPROCS 1 and 2.
func TestRunResumeFromState(t *testing.T) {
	net, d := regressionMLP(t, 16)
	cases := []struct {
		name string
		s    func() *prune.Settings
	}{
		{"obs", func() *prune.Settings { return &prune.Settings{PerRound: 3, TargetLive: 8} }},
		{"obd-hutchinson-retrained", func() *prune.Settings {
			return &prune.Settings{
				Method:   prune.OBD{Curvature: prune.Hutchinson, Probes: 7, Src: rand.NewPCG(3, 4)},
				PerRound: 3, TargetLive: 8, ErrorRise: 0.5,
				Retrain: &nn.TrainSettings{Optimizer: nn.SGD, Epochs: 2, BatchSize: 8, LearningRate: 0.01, Src: rand.NewPCG(5, 6)},
			}
		}},
		{"rules-as-values", func() *prune.Settings {
			return &prune.Settings{
				Method: prune.OBD{Curvature: prune.Hutchinson, Probes: 5, Src: rand.NewPCG(7, 8)}, PerRound: 2,
				Retrain:  &nn.TrainSettings{Optimizer: nn.SGD, Epochs: 2, BatchSize: 8, LearningRate: 0.01, Src: rand.NewPCG(9, 10)},
				Stoppers: []prune.Stopper{prune.TargetCount(6), prune.Budget(5), prune.ErrorRise{Max: 0.3}},
			}
		}},
		{"woodbury-joint", func() *prune.Settings {
			return &prune.Settings{Method: prune.WoodburyOBS{Samples: 12, Src: rand.NewPCG(11, 12)}, Joint: true, PerRound: 3, TargetLive: 8}
		}},
		{"magnitude-audited", func() *prune.Settings {
			return &prune.Settings{Method: prune.Magnitude{}, Fraction: 0.3, Sparsity: 0.7, AuditRemovals: 2, AuditRows: 15}
		}},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range cases {
		var first []byte
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			var states [][]byte
			s := c.s()
			s.OnState = func(st *prune.State) error {
				b, err := json.Marshal(st)
				states = append(states, b)
				return err
			}
			res, err := prune.Run(context.Background(), net, d, s)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if len(states) < 3 {
				t.Fatalf("%s: %d states", c.name, len(states))
			}
			full := states[len(states)-1]
			if first == nil {
				first = full
			} else if !bytes.Equal(first, full) {
				t.Errorf("%s: the states differ between GOMAXPROCS 1 and 2", c.name)
			}

			// Interrupted after round 2, as by an error of the hook …
			stop := errors.New("stop")
			s = c.s()
			n := 0
			s.OnState = func(*prune.State) error {
				if n++; n == 2 {
					return stop
				}
				return nil
			}
			if _, err := prune.Run(context.Background(), net, d, s); !errors.Is(err, stop) {
				t.Fatalf("%s: interrupted run: %v", c.name, err)
			}
			// … and resumed from the JSON of its state.
			var st prune.State
			if err := json.Unmarshal(states[1], &st); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			s = c.s()
			s.Resume = &st
			var last []byte
			s.OnState = func(st *prune.State) error {
				b, err := json.Marshal(st)
				last = b
				return err
			}
			res2, err := prune.Run(context.Background(), net, d, s)
			if err != nil {
				t.Fatalf("%s: resumed: %v", c.name, err)
			}
			if !bytes.Equal(last, full) || res2.Stopped != res.Stopped || len(res2.History) != len(res.History) {
				t.Errorf("%s: the resumed run ends elsewhere:\n%s\nwant\n%s", c.name, last, full)
			}
			for i, rd := range res.Rounds {
				if got := res2.Rounds[i]; got.Joint != rd.Joint || got.Memory != rd.Memory {
					t.Errorf("%s: round %d resumed with joint %v, memory %d; want %v, %d", c.name, i+1, got.Joint, got.Memory, rd.Joint, rd.Memory)
				}
			}
		}
	}

	// A state that does not fit is an error, not a panic.
	other := regressionMLPWith(t, 17)
	var st prune.State
	st.Net = other
	if _, err := prune.Run(context.Background(), net, d, &prune.Settings{Resume: &st}); err == nil {
		t.Error("a state of another network was resumed")
	}
	if err := json.Unmarshal([]byte(`{"Format":"bogus"}`), &st); err == nil {
		t.Error("a state of format bogus was read")
	}
}

// regressionMLPWith returns a network of other shape than regressionMLP's.
func regressionMLPWith(t *testing.T, seed uint64) *nn.Network {
	n, err := nn.New([]int{3, 2, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(seed, seed))
	return n
}

// Layer-wise pruning with retraining as a library call gives Run's shape.
func TestLayerwiseRun(t *testing.T) {
	net, d := regressionMLP(t, 18)
	ls := &prune.LayerwiseSettings{Sparsity: 0.5}
	res, rep, err := prune.LayerwiseRun(context.Background(), net, d, ls, &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 20})
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := prune.Layerwise(context.Background(), net, d.Train.X, ls)
	if err != nil {
		t.Fatal(err)
	}
	rd := res.Rounds[0]
	if len(res.Rounds) != 1 || rd.Removed != net.NumLive()-plain.NumLive() || len(res.History) != rd.Removed || len(rep.Layers) != net.NumLayers() {
		t.Fatalf("rounds %+v, %d steps, %d layers", res.Rounds, len(res.History), len(rep.Layers))
	}
	if rd.Pruned.Train != plain.Evaluate(d.Train.X, d.Train.Y) || rd.Retrain == nil || !(rd.Retrained.Train.Loss <= rd.Pruned.Train.Loss) {
		t.Errorf("pruned %+v, retrained %+v", rd.Pruned.Train, rd.Retrained.Train)
	}
	for q := 0; q < net.NumParams(); q++ {
		if res.Net.IsLive(q) != plain.IsLive(q) {
			t.Fatalf("the mask differs from Layerwise's at %d", q)
		}
	}
	if res.Stopped != prune.StoppedTarget || res.Start.Train != net.Evaluate(d.Train.X, d.Train.Y) {
		t.Errorf("stopped %q, start %+v", res.Stopped, res.Start)
	}
	// Retraining that blows up is undone and reported.
	res, _, err = prune.LayerwiseRun(context.Background(), net, d, ls, &nn.TrainSettings{Optimizer: nn.SGD, LearningRate: 1e300, Epochs: 3, Momentum: nn.NoMomentum})
	if err == nil || res == nil || res.Stopped != prune.StoppedFailed || res.Health.OK() || res.Net.Evaluate(d.Train.X, d.Train.Y) != plain.Evaluate(d.Train.X, d.Train.Y) {
		t.Errorf("diverged retraining: err %v, result %+v", err, res)
	}
}
