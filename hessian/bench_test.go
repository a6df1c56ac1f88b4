package hessian

import (
	"context"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// benchSizes are the benchmark networks: tanh MLPs with a linear output
// and about W parameters, N = 256 samples.
var benchSizes = []struct {
	name  string
	sizes []int
}{
	{"W=100", []int{10, 8, 1}},
	{"W=1000", []int{30, 31, 1}},
	{"W=5000", []int{50, 96, 1}},
	{"W=5000/2hidden", []int{36, 64, 40, 1}},
	{"W=20000", []int{100, 196, 1}},
}

// benchProblem returns the network with the given layer sizes and N = 256
// random samples.
func benchProblem(b *testing.B, sizes []int) *Problem {
	acts := make([]nn.Activation, len(sizes)-1)
	for i := range acts {
		acts[i] = nn.Tanh
	}
	acts[len(acts)-1] = nn.Linear
	net, err := nn.New(sizes, acts, nn.MSE)
	if err != nil {
		b.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	rng := rand.New(rand.NewPCG(2, 2))
	const N = 256
	in := sizes[0]
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

func benchAll(b *testing.B, maxW int, fn func(b *testing.B, pr *Problem)) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			pr := benchProblem(b, s.sizes)
			if pr.Dim() > maxW {
				b.Skipf("W = %d: the dense benchmarks stop at W = %d", pr.Dim(), maxW)
			}
			b.ResetTimer()
			fn(b, pr)
		})
	}
}

func BenchmarkGradient(b *testing.B) {
	benchAll(b, 1<<30, func(b *testing.B, pr *Problem) {
		g := make([]float64, pr.Dim())
		for i := 0; i < b.N; i++ {
			pr.Net.Gradient(g, pr.X, pr.Y)
		}
	})
}

func BenchmarkHv(b *testing.B) {
	benchAll(b, 1<<30, func(b *testing.B, pr *Problem) {
		v := make([]float64, pr.Dim())
		for i := range v {
			v[i] = 1
		}
		dst := make([]float64, pr.Dim())
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			Exact{P: pr}.MulVecTo(dst, v)
		}
	})
}

// benchDense times a dense build and reports its rate counting N·W² flops
// (a multiply–add per sample and entry of the upper triangle).
func benchDense(b *testing.B, mk func(*Problem) Denser) {
	benchAll(b, 10000, func(b *testing.B, pr *Problem) {
		dst := mat.NewSymDense(pr.Dim(), nil)
		for i := 0; i < b.N; i++ {
			if err := mk(pr).DenseTo(context.Background(), dst); err != nil {
				b.Fatal(err)
			}
		}
		N, _ := pr.X.Dims()
		W := float64(pr.Dim())
		b.ReportMetric(float64(N)*W*W*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

func BenchmarkExactDense(b *testing.B) { benchDense(b, func(p *Problem) Denser { return Exact{P: p} }) }
func BenchmarkGNDense(b *testing.B) {
	benchDense(b, func(p *Problem) Denser { return GaussNewton{P: p} })
}
func BenchmarkFisherDense(b *testing.B) {
	benchDense(b, func(p *Problem) Denser { return Fisher{P: p} })
}

// BenchmarkDGEMM measures the BLAS's matrix-multiply rate on 2000×2000
// matrices (2n³ flops), the reference for the rates of the dense builds.
func BenchmarkDGEMM(b *testing.B) {
	const n = 2000
	rng := rand.New(rand.NewPCG(3, 3))
	mk := func() blas64.General {
		g := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		for i := range g.Data {
			g.Data[i] = rng.NormFloat64()
		}
		return g
	}
	A, B, C := mk(), mk(), mk()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, A, B, 0, C)
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkDampedInverse times (G + 10⁻⁴I)⁻¹ of the Gauss–Newton matrix,
// reporting W³ flops (Cholesky W³/3 and inverse 2W³/3).
func BenchmarkDampedInverse(b *testing.B) {
	benchAll(b, 5009, func(b *testing.B, pr *Problem) {
		G := mat.NewSymDense(pr.Dim(), nil)
		if err := (GaussNewton{P: pr}).DenseTo(context.Background(), G); err != nil {
			b.Fatal(err)
		}
		dst := mat.NewSymDense(pr.Dim(), nil)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := DampedInverse(dst, G, 1e-4); err != nil {
				b.Fatal(err)
			}
		}
		W := float64(pr.Dim())
		b.ReportMetric(W*W*W*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
