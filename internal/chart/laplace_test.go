package chart

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// TestLaplace checks that a one-input regression gives its band chart, a
// classifier its reliability diagram, and a wider regression an error.
func TestLaplace(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		in   int
		act  nn.Activation
		loss nn.Loss
		ok   bool
	}{{1, nn.Linear, nn.MSE, true}, {2, nn.Sigmoid, nn.BCE, true}, {2, nn.Linear, nn.MSE, false}} {
		net, err := nn.New([]int{tc.in, 3, 1}, []nn.Activation{nn.Tanh, tc.act}, tc.loss)
		if err != nil {
			t.Fatal(err)
		}
		net.Init(rand.NewPCG(1, 2))
		r := rand.New(rand.NewPCG(3, 4))
		X, Y := mat.NewDense(20, tc.in, nil), mat.NewDense(20, 1, nil)
		for i := range 20 {
			for j := range tc.in {
				X.Set(i, j, r.NormFloat64())
			}
			if tc.loss == nn.BCE {
				Y.Set(i, 0, float64(i%2))
			} else {
				Y.Set(i, 0, math.Sin(X.At(i, 0)))
			}
		}
		post, err := laplace.Fit(ctx, net, X, Y, &laplace.Settings{Alpha: 1})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := laplace.PredictiveOf(ctx, post, X, Y, laplace.Probit, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		pr.Metrics.Split = "train"
		data := &nn.Data{X: X, Y: Y}
		png, err := Laplace(ctx, post, data, data, pr)
		if tc.ok && (err != nil || !bytes.HasPrefix(png, []byte("\x89PNG"))) {
			t.Errorf("%d inputs, %v: %v", tc.in, tc.loss, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%d inputs, %v: no error", tc.in, tc.loss)
		}
	}
}

// TestEvidence checks that the evidence chart draws rows in any order,
// against either axis, without changing them.
func TestEvidence(t *testing.T) {
	var rows []laplace.EvidenceRow
	for i, h := range []int{8, 2, 4} {
		r := laplace.EvidenceRow{Live: 10 * h, Error: 0.1 * float64(i), ErrorName: "misclassification", Split: "test", BestByEvid: h == 4}
		r.Hidden, r.LogEvidence = h, -float64(h)
		rows = append(rows, r)
	}
	for _, byParams := range []bool{false, true} {
		png, err := Evidence(rows, byParams)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("by params %v: %v", byParams, err)
		}
	}
	if rows[0].Hidden != 8 {
		t.Errorf("rows reordered: %+v", rows)
	}
}
