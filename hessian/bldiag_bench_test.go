package hessian

import (
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/nn"
)

// BenchmarkBeckerLeCunLeNet times the LM diagonal of LeNet-300-100 on the
// 60 000 MNIST training images, the build of every OBD round of prune run,
// and reports its rate next to the DGEMM rate measured in the same run.
func BenchmarkBeckerLeCunLeNet(b *testing.B) { benchBL(b, true) }

// BenchmarkBeckerLeCunLeNetFull is BenchmarkBeckerLeCunLeNet for the full
// form (diag-bl).
func BenchmarkBeckerLeCunLeNetFull(b *testing.B) { benchBL(b, false) }

func benchBL(b *testing.B, lm bool) {
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
				if err := (BeckerLeCun{P: pr, LM: lm}).DiagTo(ctx, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(blFlops(pr, lm)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(dgemm, "DGEMM-GFLOP/s")
		})
	}
}

// blFlops counts the floating-point operations of a Becker–LeCun build:
// the forward pass, the products of the diagonal blocks and the
// propagation with the squared weights (and for the full form δ).
func blFlops(pr *Problem, lm bool) float64 {
	N, _ := pr.X.Dims()
	pl := newBLPlan(pr, Rows)
	var f float64
	for l, ly := range pr.Net.Layers() {
		f += 2 * float64(ly.In*ly.Out) // forward
		f += 2 * float64(len(pl.rows[l])*len(pl.cols[l]))
		if l > 0 {
			f += 2 * float64(ly.In*ly.Out)
			if !lm {
				f += 2 * float64(ly.In*ly.Out)
			}
		}
	}
	return f * float64(N)
}
