package lm

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// TestUpdaterLinear checks on a network without hidden layers, where S is
// quadratic and its Gauss–Newton matrix exact, that the updated inverse
// equals the inverse built afresh on the changed data and that one Newton
// step lands on the retrained optimum.
func TestUpdaterLinear(t *testing.T) {
	ctx := context.Background()
	X, Y := linearData(40, 3, 1)
	const lambda = 0.05
	net, _ := nn.New([]int{3, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(1, 1))
	if _, err := Train(ctx, net, nn.Data{X: X, Y: Y}, nn.Data{}, &Settings{WeightDecay: lambda, GradientThreshold: -1}); err != nil {
		t.Fatal(err)
	}
	u, err := NewUpdater(ctx, net, X, Y, &UpdaterSettings{WeightDecay: lambda})
	if err != nil {
		t.Fatal(err)
	}
	addX, addY := linearData(5, 3, 2)
	if err := u.Add(ctx, addX, addY); err != nil {
		t.Fatal(err)
	}
	remX := mat.DenseCopyOf(X.Slice(3, 7, 0, 3))
	remY := mat.DenseCopyOf(Y.Slice(3, 7, 0, 1))
	if err := u.Remove(ctx, remX, remY); err != nil {
		t.Fatal(err)
	}
	nX, nY := u.Data()
	if n, _ := nX.Dims(); n != 41 {
		t.Fatalf("%d samples after adding 5 and removing 4 of 40", n)
	}
	// P against the inverse built afresh.
	H, err := hessian.Dense(ctx, hessian.GaussNewton{P: hessian.All(net, nX, nY)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := hessian.DampedInverse(H, H, u.Alpha()); err != nil {
		t.Fatal(err)
	}
	if !mat.EqualApprox(H, u.p, 1e-10) {
		t.Errorf("updated inverse differs from the fresh one:\n%v\n%v", mat.Formatted(H), mat.Formatted(u.p))
	}
	res, err := u.Step(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := net.Clone()
	if _, err := Train(ctx, ref, nn.Data{X: nX, Y: nY}, nn.Data{}, &Settings{WeightDecay: u.WeightDecay(), GradientThreshold: -1}); err != nil {
		t.Fatal(err)
	}
	got := u.Net().RawParams()
	for q, v := range ref.RawParams() {
		if math.Abs(got[q]-v) > 1e-10 {
			t.Errorf("θ[%d]: Newton %.12g, retrained %.12g", q, got[q], v)
		}
	}
	if res.End >= res.Start || res.GradNorm > 1e-9 {
		t.Errorf("Newton step: S' %v → %v, gradient %v", res.Start, res.End, res.GradNorm)
	}
	// A sample that is not in the data.
	if err := u.Remove(ctx, addX.Slice(0, 1, 0, 3).(*mat.Dense), mat.NewDense(1, 1, []float64{1e9})); err == nil {
		t.Error("removing a sample not in the data succeeded")
	}
}

// TestUpdaterSine checks on a tanh network that a few Newton steps after
// adding samples close most of the gap in the objective between the old
// parameters and those retrained on the changed data.
func TestUpdaterSine(t *testing.T) {
	ctx := context.Background()
	sp, err := datasets.Sine(100, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	const lambda = 1e-3
	net, _ := nn.New([]int{1, 8, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(2, 2))
	if _, err := Train(ctx, net, sp.Train, nn.Data{}, &Settings{WeightDecay: lambda, GradientThreshold: -1, Epochs: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, exact := range []bool{false, true} {
		u, err := NewUpdater(ctx, net, sp.Train.X, sp.Train.Y, &UpdaterSettings{WeightDecay: lambda, Exact: exact})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Add(ctx, sp.Test.X, sp.Test.Y); err != nil {
			t.Fatal(err)
		}
		res, err := u.Step(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		nX, nY := u.Data()
		ref := net.Clone()
		if _, err := Train(ctx, ref, nn.Data{X: nX, Y: nY}, nn.Data{}, &Settings{WeightDecay: u.WeightDecay(), GradientThreshold: -1, Epochs: 1000}); err != nil {
			t.Fatal(err)
		}
		o := &Objective{Net: ref, X: nX, Y: nY, Scale: 1, Decay: constant(ref.NumParams(), u.Alpha())}
		full := o.Value()
		closed := (res.Start - res.End) / (res.Start - full)
		t.Logf("exact %v: S' old %.6f, Newton (%d steps) %.6f, retrained %.6f: %.1f%% of the gap closed",
			exact, res.Start, res.Steps, res.End, full, 100*closed)
		if closed < 0.8 {
			t.Errorf("exact %v: Newton steps close %.1f%% of the gap in S'", exact, 100*closed)
		}
	}
}

func constant(n int, v float64) []float64 {
	d := make([]float64, n)
	for i := range d {
		d[i] = v
	}
	return d
}
