package hessian

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// benchSizes are the benchmark networks: tanh MLPs in-h-1 with about W
// parameters, N = 256 samples.
var benchSizes = []struct{ W, in, h int }{
	{100, 10, 8}, {1000, 30, 31}, {5000, 50, 96}, {20000, 100, 196},
}

func benchProblem(b *testing.B, in, h int) *Problem {
	net, err := nn.New([]int{in, h, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		b.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	rng := rand.New(rand.NewPCG(2, 2))
	N := 256
	X := mat.NewDense(N, in, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := 0; i < N; i++ {
		for j := 0; j < in; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		Y.Set(i, 0, rng.NormFloat64())
	}
	return All(net, X, Y)
}

func benchAll(b *testing.B, fn func(b *testing.B, pr *Problem)) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("W=%d", s.W), func(b *testing.B) {
			pr := benchProblem(b, s.in, s.h)
			b.ResetTimer()
			fn(b, pr)
		})
	}
}

func BenchmarkGradient(b *testing.B) {
	benchAll(b, func(b *testing.B, pr *Problem) {
		g := make([]float64, pr.Dim())
		for i := 0; i < b.N; i++ {
			pr.Net.Gradient(g, pr.X, pr.Y)
		}
	})
}

func BenchmarkHv(b *testing.B) {
	benchAll(b, func(b *testing.B, pr *Problem) {
		v := make([]float64, pr.Dim())
		for i := range v {
			v[i] = 1
		}
		dst := make([]float64, pr.Dim())
		for i := 0; i < b.N; i++ {
			Exact{pr}.MulVecTo(dst, v)
		}
	})
}

func benchDense(b *testing.B, mk func(*Problem) Denser) {
	benchAll(b, func(b *testing.B, pr *Problem) {
		dst := mat.NewSymDense(pr.Dim(), nil)
		for i := 0; i < b.N; i++ {
			if err := mk(pr).DenseTo(context.Background(), dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExactDense(b *testing.B) { benchDense(b, func(p *Problem) Denser { return Exact{p} }) }
func BenchmarkGNDense(b *testing.B)    { benchDense(b, func(p *Problem) Denser { return GaussNewton{p} }) }
func BenchmarkFisherDense(b *testing.B) {
	benchDense(b, func(p *Problem) Denser { return Fisher{p} })
}
