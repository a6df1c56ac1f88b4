package nn_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// torchLoss returns E = Σₙ ℓₙ computed as torch computes CrossEntropyLoss
// and BCEWithLogitsLoss with reduction="sum": from the logits a of the
// network lin, whose output layer is linear and whose loss is MSE, so that
// its outputs are the logits themselves.
func torchLoss(lin *nn.Network, loss nn.Loss, X, Y *mat.Dense) float64 {
	A := lin.Forward(X)
	var e float64
	for i := range A.RawMatrix().Rows {
		a := A.RawRowView(i)
		switch loss {
		case nn.CE:
			var s float64
			for _, v := range a {
				s += math.Exp(v)
			}
			e += math.Log(s) - a[int(Y.At(i, 0))]
		case nn.BCE:
			for k, v := range a {
				y := Y.At(i, k)
				e += -y*math.Log(1/(1+math.Exp(-v))) - (1-y)*math.Log(1-1/(1+math.Exp(-v)))
			}
		}
	}
	return e
}

// TestLogits checks the logits convention: a network with a linear output
// layer under ce or bce has the loss, gradient and exact Hessian of torch's
// CrossEntropyLoss and BCEWithLogitsLoss on its logits (against finite
// differences), and the same Hessian as the network described with a
// softmax or sigmoid output layer.
func TestLogits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, loss := range []nn.Loss{nn.CE, nn.BCE} {
		for _, hidden := range []nn.Activation{nn.Tanh, nn.ReLU, nn.Sigmoid} {
			sizes := []int{3, 4, 3}
			n, err := nn.New(sizes, []nn.Activation{hidden, nn.Linear}, loss)
			if err != nil {
				t.Fatalf("%v linear output: %v", loss, err)
			}
			want, _ := loss.OutputActivation()
			if got := n.Layer(1).Act; got != want {
				t.Errorf("%v: linear output layer reads as %v, want %v", loss, got, want)
			}
			n.Init(rand.NewPCG(5, uint64(hidden)))
			lin, err := nn.New(sizes, []nn.Activation{hidden, nn.Linear}, nn.MSE)
			if err != nil {
				t.Fatal(err)
			}
			named, err := nn.New(sizes, []nn.Activation{hidden, want}, loss)
			if err != nil {
				t.Fatal(err)
			}
			theta := n.ParamsTo(nil)
			for q := range theta {
				theta[q] += 0.5 * rng.NormFloat64()
			}
			n.SetParams(theta)
			named.SetParams(theta)

			N := 6
			X := mat.NewDense(N, 3, nil)
			Y := mat.NewDense(N, loss.TargetCols(3), nil)
			for i := range N {
				for j := range 3 {
					X.Set(i, j, rng.NormFloat64())
				}
				for k := range loss.TargetCols(3) {
					if loss == nn.CE {
						Y.Set(i, k, float64(rng.IntN(3)))
					} else {
						Y.Set(i, k, rng.Float64())
					}
				}
			}
			f := func(p []float64) float64 {
				lin.SetParams(p)
				return torchLoss(lin, loss, X, Y)
			}
			if e, w := n.Objective(X, Y), f(theta); math.Abs(e-w) > 1e-12*math.Max(1, math.Abs(w)) {
				t.Errorf("%v %v: E = %v, torch's loss on the logits %v", loss, hidden, e, w)
			}
			g := make([]float64, len(theta))
			n.Gradient(g, X, Y)
			gw := fd.Gradient(nil, f, theta, &fd.Settings{Formula: fd.Central})
			for q := range g {
				if math.Abs(g[q]-gw[q]) > 1e-6 {
					t.Fatalf("%v %v: ∂E/∂θ[%d] = %v, finite differences %v", loss, hidden, q, g[q], gw[q])
				}
			}
			H, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.All(n, X, Y)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			Hn, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.All(named, X, Y)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			Hw := mat.NewSymDense(len(theta), nil)
			fd.Hessian(Hw, f, theta, &fd.Settings{Formula: fd.Central, Step: 1e-4})
			for i := range len(theta) {
				for j := range len(theta) {
					if d := math.Abs(H.At(i, j) - Hw.At(i, j)); d > 1e-5*math.Max(1, math.Abs(Hw.At(i, j))) {
						t.Fatalf("%v %v: H[%d][%d] = %v, finite differences %v", loss, hidden, i, j, H.At(i, j), Hw.At(i, j))
					}
					if H.At(i, j) != Hn.At(i, j) {
						t.Fatalf("%v %v: H[%d][%d] = %v with a linear output, %v with %v", loss, hidden, i, j, H.At(i, j), Hn.At(i, j), want)
					}
				}
			}
		}
	}
}

// TestActLossError checks that activations that do not fit the loss give
// an *ActLossError.
func TestActLossError(t *testing.T) {
	for _, c := range []struct {
		out  nn.Activation
		loss nn.Loss
	}{{nn.Tanh, nn.CE}, {nn.Tanh, nn.BCE}, {nn.Sigmoid, nn.CE}, {nn.Softmax, nn.MSE}, {nn.Softmax, nn.BCE}} {
		_, err := nn.New([]int{2, 2}, []nn.Activation{c.out}, c.loss)
		var ae *nn.ActLossError
		if !errors.As(err, &ae) {
			t.Errorf("%v output, %v: error %v, want an *ActLossError", c.out, c.loss, err)
		}
	}
}
