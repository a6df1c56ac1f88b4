package prune_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

func xorData() nn.Data {
	return nn.Data{
		X: mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1}),
		Y: mat.NewDense(4, 1, []float64{0, 1, 1, 0}),
	}
}

// fitXOR trains a 2-2-1 network, tanh hidden, with L-BFGS on the mean
// squared error plus weight decay, and reports whether it fits XOR.
func fitXOR(t testing.TB, seed uint64, out nn.Activation, decay float64) (*nn.Network, bool) {
	t.Helper()
	d := xorData()
	net, err := nn.New([]int{2, 2, 1}, []nn.Activation{nn.Tanh, out}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, 1))
	if _, err := nn.Train(context.Background(), net, d, nn.Data{}, &nn.TrainSettings{
		Optimizer: nn.LBFGS, Epochs: 2000, WeightDecay: decay,
	}); err != nil {
		t.Fatal(err)
	}
	return net, xorHolds(net)
}

// xorHolds reports whether the four outputs fall on the right side of 0.5.
func xorHolds(net *nn.Network) bool {
	d := xorData()
	return net.Evaluate(d.X, d.Y).Accuracy == 1
}

// removeOne removes one parameter with method, the curvature built at the
// network's current parameters, without retraining.
func removeOne(t testing.TB, net *nn.Network, method prune.Saliency) (*nn.Network, prune.Step) {
	t.Helper()
	res, err := prune.Run(context.Background(), net, nn.Splits{Train: xorData()},
		&prune.Settings{Method: method, PerRound: 1, MaxRounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	return res.Net, res.History[0]
}

// someRemovalKeeps reports whether removing some live parameter with its
// OBS update, on the curvature OBS uses, keeps XOR.
func someRemovalKeeps(t testing.TB, net *nn.Network) bool {
	t.Helper()
	d := xorData()
	pr := hessian.Live(net, d.X, d.Y)
	hinv, _, err := prune.OBS{}.Inverse(context.Background(), pr, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float64, len(pr.Params))
	for i, q := range pr.Params {
		w[i] = net.RawParams()[q]
	}
	for i, q := range pr.Params {
		delta, _, err := prune.OBSSet(hinv, w, []int{i})
		if err != nil {
			continue
		}
		c := net.Clone()
		wi := append([]float64(nil), w...)
		floats.Add(wi, delta)
		for j, qj := range pr.Params {
			c.RawParams()[qj] = wi[j]
		}
		c.Prune(q)
		if xorHolds(c) {
			return true
		}
	}
	return false
}

// removalsKept returns the number of removals, one at a time without
// retraining, before XOR first breaks.
func removalsKept(t testing.TB, net *nn.Network, method prune.Saliency) int {
	k := 0
	for net.NumLive() > 1 {
		next, _ := removeOne(t, net, method)
		if !xorHolds(next) {
			break
		}
		net = next
		k++
	}
	return k
}

// TestXOROBSKeepsFunction checks Hassibi and Stork's XOR claim on 2-2-1
// networks with a sigmoid or linear output trained to a non-degenerate
// minimum (weight decay 1e-3 on the mean loss): OBS's first removal keeps
// XOR on every seed that fits, and OBS never breaks XOR while a removal that
// keeps it exists. Magnitude pruning is counted for comparison.
func TestXOROBSKeepsFunction(t *testing.T) {
	for _, out := range []nn.Activation{nn.Sigmoid, nn.Linear} {
		fitted, obsFirst, magFirst, obsKept, magKept := 0, 0, 0, 0, 0
		for seed := uint64(1); seed <= 30; seed++ {
			net, ok := fitXOR(t, seed, out, 1e-3)
			if !ok {
				continue
			}
			fitted++
			first, _ := removeOne(t, net, prune.OBS{})
			if xorHolds(first) {
				obsFirst++
			} else {
				t.Errorf("%v seed %d: OBS's first removal breaks XOR", out, seed)
			}
			if m, _ := removeOne(t, net, prune.Magnitude{}); xorHolds(m) {
				magFirst++
			}
			// Removal by removal: whenever OBS breaks XOR, no removal
			// keeps it.
			c := net
			for c.NumLive() > 1 {
				keeps := someRemovalKeeps(t, c)
				next, st := removeOne(t, c, prune.OBS{})
				if !xorHolds(next) {
					if keeps {
						t.Errorf("%v seed %d: OBS removed %s and broke XOR although a removal keeping it exists", out, seed, st.Name)
					}
					break
				}
				c = next
				obsKept++
			}
			magKept += removalsKept(t, net, prune.Magnitude{})
		}
		t.Logf("XOR 2-2-1 tanh/%v, weight decay 1e-3, seeds 1-30: %d fit; first removal keeps XOR: OBS %d, magnitude %d; removals before XOR breaks: OBS %d, magnitude %d",
			out, fitted, obsFirst, magFirst, obsKept, magKept)
		if fitted < 10 {
			t.Errorf("%v: only %d seeds fit XOR", out, fitted)
		}
		if obsFirst < magFirst || obsKept < magKept {
			t.Errorf("%v: OBS keeps XOR less often than magnitude pruning", out)
		}
	}
}

// TestXORExactFit counts the same on networks fitted exactly (linear output,
// no weight decay), where H is singular at the minimum and the quadratic
// model is poor: OBS is not always right, but still beats magnitude pruning.
func TestXORExactFit(t *testing.T) {
	fitted, obsFirst, magFirst, obsKept, magKept := 0, 0, 0, 0, 0
	for seed := uint64(1); seed <= 30; seed++ {
		net, ok := fitXOR(t, seed, nn.Linear, 0)
		if !ok {
			continue
		}
		fitted++
		if first, _ := removeOne(t, net, prune.OBS{}); xorHolds(first) {
			obsFirst++
		}
		if first, _ := removeOne(t, net, prune.Magnitude{}); xorHolds(first) {
			magFirst++
		}
		obsKept += removalsKept(t, net, prune.OBS{})
		magKept += removalsKept(t, net, prune.Magnitude{})
	}
	t.Logf("XOR 2-2-1 tanh/linear fitted exactly, seeds 1-30: %d fit; first removal keeps XOR: OBS %d, magnitude %d; removals before XOR breaks: OBS %d, magnitude %d",
		fitted, obsFirst, magFirst, obsKept, magKept)
	if obsFirst < magFirst || obsKept < magKept {
		t.Errorf("OBS keeps XOR less often than magnitude pruning")
	}
}
