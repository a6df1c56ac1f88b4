package lm

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/nn"
)

// linearData returns N samples of t = Φw + noise with d inputs.
func linearData(N, d int, seed uint64) (*mat.Dense, *mat.Dense) {
	rng := rand.New(rand.NewPCG(seed, 7))
	X := mat.NewDense(N, d, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		t := 0.3
		for j := range d {
			x := rng.NormFloat64()
			X.Set(i, j, x)
			t += float64(j+1) * 0.5 * x
		}
		Y.Set(i, 0, t+0.1*rng.NormFloat64())
	}
	return X, Y
}

// TestLinearLeastSquares checks that LM reaches the ridge solution
// (ΦᵀΦ/N + λI)⁻¹Φᵀt/N of a network with no hidden layer, both with the
// Cholesky and with the conjugate-gradient solve.
func TestLinearLeastSquares(t *testing.T) {
	X, Y := linearData(50, 3, 1)
	N, d := X.Dims()
	const lambda = 0.01
	Phi := mat.NewDense(N, d+1, nil)
	for i := range N {
		for j := range d {
			Phi.Set(i, j, X.At(i, j))
		}
		Phi.Set(i, d, 1)
	}
	var A mat.Dense
	A.Mul(Phi.T(), Phi)
	A.Scale(1/float64(N), &A)
	for i := range d + 1 {
		A.Set(i, i, A.At(i, i)+lambda)
	}
	var b mat.VecDense
	b.MulVec(Phi.T(), Y.ColView(0))
	b.ScaleVec(1/float64(N), &b)
	var want mat.VecDense
	if err := want.SolveVec(&A, &b); err != nil {
		t.Fatal(err)
	}
	for _, dense := range []int{0, -1} {
		net, _ := nn.New([]int{d, 1}, []nn.Activation{nn.Linear}, nn.MSE)
		net.Init(rand.NewPCG(2, 3))
		res, err := Train(context.Background(), net, nn.Data{X: X, Y: Y}, nn.Data{}, &Settings{WeightDecay: lambda, DenseLimit: dense})
		if err != nil {
			t.Fatal(err)
		}
		th := net.RawParams()
		for i := range d + 1 {
			if math.Abs(th[i]-want.AtVec(i)) > 1e-9 {
				t.Errorf("dense limit %d: θ[%d] = %.12g, want %.12g", dense, i, th[i], want.AtVec(i))
			}
		}
		if res.Stopped != nn.StoppedConverged {
			t.Errorf("dense limit %d: stopped by %q, want converged", dense, res.Stopped)
		}
	}
}

// TestLossesAndMask trains every loss with a pruned parameter, by Cholesky
// and by conjugate-gradient steps, and checks that the loss falls below a
// fifth of that of the initial network and that the pruned parameter stays
// zero.
func TestLossesAndMask(t *testing.T) {
	m1 := datasets.Monks(1, 1)
	sine, err := datasets.Sine(60, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A three-class problem: the class of MONK's attribute a5 ≤ 2, 3, 4.
	ceX := m1.Train.X
	N, _ := ceX.Dims()
	ceY := mat.NewDense(N, 1, nil)
	for i := range N {
		row := ceX.RawRowView(i)
		// a5 is one-hot in columns 11..14.
		switch {
		case row[13] == 1:
			ceY.Set(i, 0, 1)
		case row[14] == 1:
			ceY.Set(i, 0, 2)
		}
	}
	cases := []struct {
		name  string
		sizes []int
		acts  []nn.Activation
		loss  nn.Loss
		X, Y  *mat.Dense
	}{
		{"mse sine", []int{1, 8, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, sine.Train.X, sine.Train.Y},
		{"bce monks1", []int{17, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE, m1.Train.X, m1.Train.Y},
		{"ce a5", []int{17, 3, 3}, []nn.Activation{nn.Tanh, nn.Softmax}, nn.CE, ceX, ceY},
	}
	for _, c := range cases {
		for _, dense := range []int{0, -1} {
			net, err := nn.New(c.sizes, c.acts, c.loss)
			if err != nil {
				t.Fatal(err)
			}
			net.Init(rand.NewPCG(1, 1))
			net.Prune(2)
			start := net.Evaluate(c.X, c.Y).MeanLoss
			res, err := Train(context.Background(), net, nn.Data{X: c.X, Y: c.Y}, nn.Data{},
				&Settings{Epochs: 100, WeightDecay: 1e-4, DenseLimit: dense})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if net.RawParams()[2] != 0 || net.IsLive(2) {
				t.Errorf("%s: pruned parameter moved to %v", c.name, net.RawParams()[2])
			}
			if res.Train.MeanLoss > 0.2*start {
				t.Errorf("%s dense limit %d: mean loss %.4g from %.4g after %d steps", c.name, dense, res.Train.MeanLoss, start, res.Epochs)
			}
		}
	}
}

// TestCanceled checks that a done context stops training with the
// context's error.
func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m1 := datasets.Monks(1, 1)
	net, _ := nn.New([]int{17, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.MSE)
	net.Init(rand.NewPCG(1, 1))
	res, err := Train(ctx, net, m1.Train, nn.Data{}, nil)
	if err != context.Canceled || res.Stopped != nn.StoppedCanceled {
		t.Errorf("got %v, %q", err, res.Stopped)
	}
}
