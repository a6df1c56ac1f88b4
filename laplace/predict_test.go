package laplace

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// TestLatentVarianceFD checks the linearised variances of LatentTo against
// gᵀA⁻¹g with g from central differences of the network's outputs: ŷ for
// mse, the logit log p − log(1−p) for bce and, since a softmax fixes its
// pre-activations only up to a shift, the differences aₖ − a₀ = log pₖ −
// log p₀ for ce (their variance is Σₖₖ + Σ₀₀ − 2Σₖ₀), on every curvature and
// on a pruned network.
func TestLatentVarianceFD(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 3))
	const N = 30
	X := mat.NewDense(N, 2, nil)
	for i := range N {
		X.Set(i, 0, rng.NormFloat64())
		X.Set(i, 1, rng.NormFloat64())
	}
	Xt := mat.NewDense(4, 2, nil)
	for i := range 4 {
		Xt.Set(i, 0, 2*rng.NormFloat64())
		Xt.Set(i, 1, 2*rng.NormFloat64())
	}
	cases := []struct {
		loss nn.Loss
		out  nn.Activation
		K    int
	}{{nn.MSE, nn.Tanh, 2}, {nn.BCE, nn.Sigmoid, 1}, {nn.CE, nn.Softmax, 3}}
	for _, c := range cases {
		net, err := nn.New([]int{2, 3, c.K}, []nn.Activation{nn.Tanh, c.out}, c.loss)
		if err != nil {
			t.Fatal(err)
		}
		net.Init(rand.NewPCG(4, uint64(c.loss)))
		net.Prune(1)
		Y := mat.NewDense(N, c.loss.TargetCols(c.K), nil)
		for i := range N {
			for k := range c.loss.TargetCols(c.K) {
				switch c.loss {
				case nn.CE:
					Y.Set(i, 0, float64(rng.IntN(c.K)))
				case nn.BCE:
					Y.Set(i, k, float64(rng.IntN(2)))
				default:
					Y.Set(i, k, rng.NormFloat64())
				}
			}
		}
		for _, curv := range []Curvature{GaussNewton, Diagonal} {
			s := &Settings{Curvature: curv, Alpha: 0.7}
			if c.loss == nn.MSE {
				s.Beta = 3
			}
			p, err := Fit(ctx, net, X, Y, s)
			if err != nil {
				t.Fatal(err)
			}
			// A⁻¹ over the covered (live) parameters.
			k := p.Dim()
			ainv := mat.NewSymDense(k, nil)
			if p.hDiag != nil {
				for i := range k {
					ainv.SetSym(i, i, p.ainvDiag[i])
				}
			} else if err := p.chol.InverseTo(ainv); err != nil {
				t.Fatal(err)
			}
			mean := mat.NewDense(4, c.K, nil)
			variance := mat.NewDense(4, c.K, nil)
			if err := p.LatentTo(ctx, mean, variance, Xt); err != nil {
				t.Fatal(err)
			}
			// Full covariances for ce from the package: Σ₀₀ + Σₖₖ − 2Σₖ₀
			// needs the off-diagonal, which the test gets through each.
			covs := make([][]float64, 4)
			if err := p.each(ctx, Xt, nil, func(i int, _, cov []float64) { covs[i] = append([]float64(nil), cov...) }, true); err != nil {
				t.Fatal(err)
			}
			th0 := net.ParamsTo(nil)
			for i := range 4 {
				x := mat.NewDense(1, 2, Xt.RawRowView(i))
				for out := range c.K {
					if c.loss == nn.CE && out == 0 {
						continue
					}
					f := func(v []float64) float64 {
						th := append([]float64(nil), th0...)
						for j, q := range p.params {
							th[q] = v[j]
						}
						m := net.Clone()
						m.SetParams(th)
						z := m.Forward(x).RawRowView(0)
						switch c.loss {
						case nn.BCE:
							return math.Log(z[out]) - math.Log1p(-z[out])
						case nn.CE:
							return math.Log(z[out]) - math.Log(z[0])
						}
						return z[out]
					}
					g := fd.Gradient(nil, f, append([]float64(nil), p.theta...), &fd.Settings{Formula: fd.Central, Step: 1e-6})
					gv := mat.NewVecDense(k, g)
					var ag mat.VecDense
					ag.MulVec(ainv, gv)
					want := mat.Dot(gv, &ag)
					got := variance.At(i, out)
					if c.loss == nn.CE {
						K := c.K
						got = covs[i][out*K+out] + covs[i][0] - 2*covs[i][out*K]
					}
					if math.Abs(got-want) > 1e-6*math.Max(1, want) {
						t.Errorf("%v %v x%d output %d: variance %.10g, by differences %.10g", c.loss, curv, i, out, got, want)
					}
				}
			}
		}
	}
}
