package prune_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// obsBenchSizes are tanh MLPs in-h-1 with W = h(in+2)+1 ≈ 100, 500 and
// 2000 parameters.
var obsBenchSizes = []struct{ in, h int }{{10, 8}, {20, 23}, {50, 38}}

// benchDamping is the damping of the benchmark curvature.
const benchDamping = 1e-2

// obsBench is a network on N = 256 random samples with its damped
// Gauss–Newton matrix inverted.
type obsBench struct {
	net  *nn.Network
	X, Y *mat.Dense
	hinv *mat.SymDense
}

func newOBSBench(b *testing.B, in, h int) *obsBench {
	net, err := nn.New([]int{in, h, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		b.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	rng := rand.New(rand.NewPCG(2, 2))
	const N = 256
	X := mat.NewDense(N, in, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := 0; i < N; i++ {
		for j := 0; j < in; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		Y.Set(i, 0, rng.NormFloat64())
	}
	o := prune.OBS{Curvature: prune.GaussNewton, Damping: benchDamping, FixedDamping: true}
	hinv, _, err := o.Inverse(context.Background(), hessian.All(net, X, Y), nil)
	if err != nil {
		b.Fatal(err)
	}
	return &obsBench{net: net, X: X, Y: Y, hinv: hinv}
}

// benchOBS times one OBS removal per iteration, starting again from the
// full network after every W/2 removals (outside the timer). With rebuild
// each removal rebuilds the damped Gauss–Newton matrix over the live
// parameters at the current weights and inverts it; otherwise it uses the
// inverse downdated after the previous removal.
func benchOBS(b *testing.B, rebuild bool) {
	for _, s := range obsBenchSizes {
		ob := newOBSBench(b, s.in, s.h)
		W := ob.net.NumParams()
		b.Run(fmt.Sprintf("W=%d", W), func(b *testing.B) {
			var (
				net     *nn.Network
				hinv    *mat.SymDense
				w       []float64
				live    []bool
				removed int
			)
			reset := func() {
				net = ob.net.Clone()
				hinv = mat.NewSymDense(W, nil)
				hinv.CopySym(ob.hinv)
				w = net.ParamsTo(nil)
				live = make([]bool, W)
				for i := range live {
					live[i] = true
				}
				removed = 0
			}
			reset()
			o := prune.OBS{Curvature: prune.GaussNewton, Damping: benchDamping, FixedDamping: true}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if removed == W/2 {
					b.StopTimer()
					reset()
					b.StartTimer()
				}
				if !rebuild {
					q, _, delta := prune.OBSStep(hinv, w, live)
					floats.Add(w, delta)
					live[q] = false
					if err := hessian.Downdate(hinv, q); err != nil {
						b.Fatal(err)
					}
				} else {
					pr := hessian.Live(net, ob.X, ob.Y)
					inv, _, err := o.Inverse(context.Background(), pr, nil)
					if err != nil {
						b.Fatal(err)
					}
					wl := make([]float64, len(pr.Params))
					for a, q := range pr.Params {
						wl[a] = w[q]
					}
					a, _, delta := prune.OBSStep(inv, wl, nil)
					for c, q := range pr.Params {
						w[q] += delta[c]
					}
					net.SetParams(w)
					net.Prune(pr.Params[a])
				}
				removed++
			}
		})
	}
}

func BenchmarkOBSDowndate(b *testing.B) { benchOBS(b, false) }
func BenchmarkOBSRebuild(b *testing.B)  { benchOBS(b, true) }
