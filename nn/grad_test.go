package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
)

// randomCase returns a random network with the given hidden activation,
// depth and loss, and matching random data.
func randomCase(t testing.TB, hidden Activation, depth int, loss Loss, seed uint64) (*Network, *mat.Dense, *mat.Dense) {
	rng := rand.New(rand.NewPCG(seed, 7))
	sizes := []int{3}
	acts := []Activation{}
	for d := 0; d < depth; d++ {
		sizes = append(sizes, 2+rng.IntN(3))
		acts = append(acts, hidden)
	}
	out := 2
	sizes = append(sizes, out)
	switch loss {
	case MSE:
		acts = append(acts, []Activation{Linear, Tanh, Sigmoid}[rng.IntN(3)])
	case BCE:
		acts = append(acts, Sigmoid)
	case CE:
		acts = append(acts, Softmax)
	}
	n, err := New(sizes, acts, loss)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(seed, 1))
	for q := range n.theta {
		n.theta[q] += 0.3 * rng.NormFloat64() // non-zero biases
	}
	N := 7
	X := mat.NewDense(N, 3, nil)
	Y := mat.NewDense(N, loss.TargetCols(out), nil)
	for i := 0; i < N; i++ {
		for j := 0; j < 3; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		for k := 0; k < loss.TargetCols(out); k++ {
			switch loss {
			case MSE:
				Y.Set(i, k, rng.NormFloat64())
			case BCE:
				Y.Set(i, k, rng.Float64())
			case CE:
				Y.Set(i, k, float64(rng.IntN(out)))
			}
		}
	}
	return n, X, Y
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, loss := range []Loss{MSE, BCE, CE} {
		for _, act := range []Activation{Tanh, Sigmoid, ReLU, Linear} {
			for depth := 1; depth <= 3; depth++ {
				t.Run(fmt.Sprintf("%v/%v/%d", loss, act, depth), func(t *testing.T) {
					n, X, Y := randomCase(t, act, depth, loss, uint64(depth*100+int(act)*10+int(loss)))
					g := make([]float64, n.NumParams())
					E := n.Gradient(g, X, Y)
					if e2 := n.Objective(X, Y); math.Abs(E-e2) > 1e-12*math.Abs(E) {
						t.Errorf("Gradient returned E=%v, Objective %v", E, e2)
					}
					c := n.Clone()
					f := func(th []float64) float64 {
						copy(c.theta, th)
						return c.Objective(X, Y)
					}
					want := fd.Gradient(nil, f, n.ParamsTo(nil), &fd.Settings{Formula: fd.Central, Step: 1e-5})
					var num, den float64
					for q := range g {
						num += (g[q] - want[q]) * (g[q] - want[q])
						den += want[q] * want[q]
					}
					if rel := math.Sqrt(num / den); rel > 1e-6 {
						t.Errorf("relative gradient error %.3g > 1e-6", rel)
					}
				})
			}
		}
	}
}

func TestGradientChunkedIsDeterministic(t *testing.T) {
	n, _, _ := randomCase(t, Tanh, 2, MSE, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	N := 3*parallel.ChunkRows + 17
	X := mat.NewDense(N, n.Inputs(), nil)
	Y := mat.NewDense(N, n.Outputs(), nil)
	for i := 0; i < N; i++ {
		for j := 0; j < n.Inputs(); j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		for j := 0; j < n.Outputs(); j++ {
			Y.Set(i, j, rng.NormFloat64())
		}
	}
	g := make([]float64, n.NumParams())
	E := n.Gradient(g, X, Y)
	// Sum of per-sample gradients.
	want := make([]float64, n.NumParams())
	gi := make([]float64, n.NumParams())
	var Ew float64
	for i := 0; i < N; i++ {
		Ew += n.Gradient(gi, rowsOf(X, i, i+1), rowsOf(Y, i, i+1))
		for q := range gi {
			want[q] += gi[q]
		}
	}
	if math.Abs(E-Ew) > 1e-10*Ew {
		t.Errorf("E = %v, per-sample sum %v", E, Ew)
	}
	for q := range g {
		if math.Abs(g[q]-want[q]) > 1e-9*(1+math.Abs(want[q])) {
			t.Fatalf("g[%d] = %v, per-sample sum %v", q, g[q], want[q])
		}
	}
	g2 := make([]float64, n.NumParams())
	n.Gradient(g2, X, Y)
	for q := range g {
		if g[q] != g2[q] {
			t.Fatalf("gradient not reproducible at %d", q)
		}
	}
}

func TestMaskedGradientIsZero(t *testing.T) {
	n, X, Y := randomCase(t, Tanh, 1, MSE, 5)
	n.Prune(0)
	n.Prune(n.NumParams() - 1)
	if n.theta[0] != 0 || n.theta[n.NumParams()-1] != 0 {
		t.Fatal("pruned parameter not zero")
	}
	g := make([]float64, n.NumParams())
	n.Gradient(g, X, Y)
	if g[0] != 0 || g[len(g)-1] != 0 {
		t.Errorf("gradient of pruned parameters = %v, %v; want 0", g[0], g[len(g)-1])
	}
	if n.NumLive() != n.NumParams()-2 {
		t.Errorf("NumLive = %d, want %d", n.NumLive(), n.NumParams()-2)
	}
}

func TestNewRejectsBadArchitectures(t *testing.T) {
	cases := []struct {
		sizes []int
		acts  []Activation
		loss  Loss
	}{
		{[]int{3}, nil, MSE},
		{[]int{3, 2}, []Activation{Tanh, Tanh}, MSE},
		{[]int{3, 2, 1}, []Activation{Softmax, Linear}, MSE},
		{[]int{3, 2}, []Activation{Tanh}, BCE},
		{[]int{3, 2}, []Activation{Sigmoid}, CE},
		{[]int{3, 2}, []Activation{Softmax}, MSE},
		{[]int{3, 0}, []Activation{Tanh}, MSE},
	}
	for i, c := range cases {
		if _, err := New(c.sizes, c.acts, c.loss); err == nil {
			t.Errorf("case %d: New(%v, %v, %v) succeeded, want error", i, c.sizes, c.acts, c.loss)
		}
	}
}

func TestParamIndexing(t *testing.T) {
	n, err := New([]int{3, 2, 1}, []Activation{Tanh, Linear}, MSE)
	if err != nil {
		t.Fatal(err)
	}
	if n.NumParams() != 3*2+2+2*1+1 {
		t.Fatalf("NumParams = %d", n.NumParams())
	}
	for q := 0; q < n.NumParams(); q++ {
		p := n.ParamAt(q)
		var back int
		if p.Bias {
			back = n.BiasIndex(p.Layer, p.Row)
		} else {
			back = n.WeightIndex(p.Layer, p.Row, p.Col)
		}
		if back != q {
			t.Errorf("ParamAt(%d) = %v maps back to %d", q, p, back)
		}
	}
	n.Weights(1).Set(0, 1, 5)
	if got := n.RawParams()[n.WeightIndex(1, 0, 1)]; got != 5 {
		t.Errorf("Weights view write not visible: %v", got)
	}
	n.Bias(0)[1] = 7
	if got := n.RawParams()[n.BiasIndex(0, 1)]; got != 7 {
		t.Errorf("Bias view write not visible: %v", got)
	}
}
