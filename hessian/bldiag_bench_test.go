package hessian

import (
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkBeckerLeCunLeNet times the LM diagonal of LeNet-300-100 on the
// 60 000 MNIST training images, the build of every OBD round of prune run,
// and reports its rate next to the DGEMM rate measured in the same run.
func BenchmarkBeckerLeCunLeNet(b *testing.B) { benchBL(b, blLM) }

// BenchmarkBeckerLeCunLeNetFull is BenchmarkBeckerLeCunLeNet for the full
// form (diag-bl).
func BenchmarkBeckerLeCunLeNetFull(b *testing.B) { benchBL(b, blFull) }

// BenchmarkGaussNewtonDiagLeNet is BenchmarkBeckerLeCunLeNet for the
// Gauss–Newton diagonal (gn, and exact on this network).
func BenchmarkGaussNewtonDiagLeNet(b *testing.B) { benchBL(b, blGN) }

func benchBL(b *testing.B, mode blMode) {
	data, err := datasets.Load("mnist", nil)
	if err != nil {
		b.Skipf("MNIST not available: %v", err)
	}
	net, err := nn.New([]int{784, 300, 100, 10}, []nn.Activation{nn.ReLU, nn.ReLU, nn.Softmax}, nn.CE)
	if err != nil {
		b.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	dgemm := benchtime.DGEMMRate(3)
	for _, live := range []float64{1, 0.1} {
		name := "dense"
		if live < 1 {
			name = "live=10%"
			rng := rand.New(rand.NewPCG(2, 2))
			for q := range net.NumParams() {
				if rng.Float64() > live {
					net.Prune(q)
				}
			}
		}
		b.Run(name, func(b *testing.B) {
			pr := Live(net, data.Train.X, data.Train.Y)
			dst := make([]float64, pr.Dim())
			b.ResetTimer()
			for range b.N {
				var err error
				if mode == blGN {
					err = GaussNewton{P: pr}.DiagTo(ctx, dst)
				} else {
					err = BeckerLeCun{P: pr, LM: mode == blLM}.DiagTo(ctx, dst)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(blFlops(pr, mode)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(dgemm, "DGEMM-GFLOP/s")
		})
	}
}

// blFlops counts the floating-point operations of a build's products: the
// forward pass, the diagonal blocks and the propagation back (with the
// squared weights, and for the full form δ; for Gauss–Newton the factor's
// Outputs rows per sample).
func blFlops(pr *Problem, mode blMode) float64 {
	N, _ := pr.X.Dims()
	pl := newBLPlan(pr, parallel.ChunkRows, false)
	in := pr.Net.Inputs()
	if pl.in != nil {
		in = len(pl.in)
	}
	var f float64
	for l, ly := range pr.Net.Layers() {
		n := ly.In
		if l == 0 {
			n = in
		}
		f += 2 * float64(n*ly.Out) // forward
		f += 2 * float64(len(pl.rows[l])*len(pl.cols[l]))
		if l > 0 {
			switch mode {
			case blLM:
				f += 2 * float64(ly.In*ly.Out)
			case blFull:
				f += 4 * float64(ly.In*ly.Out)
			case blGN:
				f += 2 * float64(pr.Net.Outputs()*ly.In*ly.Out)
			}
		}
	}
	return f * float64(N)
}

// BenchmarkBlockDiagonalRowsMLPNet builds the Gauss–Newton row blocks of
// MLPNet (784-40-20-10, biases pruned) on 1000 MNIST images, as a round of
// row-block OBS does, and reports the bytes allocated per build against
// BlockBytes, the plan.
func BenchmarkBlockDiagonalRowsMLPNet(b *testing.B) {
	data, err := datasets.Load("mnist", nil)
	if err != nil {
		b.Skipf("MNIST not available: %v", err)
	}
	net, err := nn.New([]int{784, 40, 20, 10}, []nn.Activation{nn.ReLU, nn.ReLU, nn.Softmax}, nn.CE)
	if err != nil {
		b.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	for q := range net.NumParams() {
		if net.ParamAt(q).Bias {
			net.Prune(q)
		}
	}
	_, xc := data.Train.X.Dims()
	_, yc := data.Train.Y.Dims()
	X := data.Train.X.Slice(0, 1000, 0, xc).(*mat.Dense)
	Y := data.Train.Y.Slice(0, 1000, 0, yc).(*mat.Dense)
	pr := Live(net, X, Y)
	blocks := RowBlocks(pr)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := BlockDiagonal(ctx, GaussNewton{P: pr}, blocks, -1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(BlockBytes(blocks, pr.Dim())), "plan-B")
}
