package hessian

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// blockAlloc returns the bytes BlockDiagonal allocates for the row blocks
// of c.
func blockAlloc(t *testing.T, c Curvature, blocks [][]int) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := BlockDiagonal(ctx, c, blocks, -1); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBlockDiagonalAllocation checks that the row-block builds allocate
// their work space once: what they allocate stays within BlockBytes and
// does not grow with the number of chunks of samples, over all parameters
// and over the live ones of a pruned network.
func TestBlockDiagonalAllocation(t *testing.T) {
	net, err := nn.New([]int{30, 40, 20, 10}, []nn.Activation{nn.ReLU, nn.Tanh, nn.Softmax}, nn.CE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(5, 6))
	rng := rand.New(rand.NewPCG(7, 8))
	const N = 400
	X := mat.NewDense(N, 30, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		for j := range 30 {
			X.Set(i, j, rng.NormFloat64())
		}
		Y.Set(i, 0, float64(rng.IntN(10)))
	}
	pruned := net.Clone()
	for q := 0; q < pruned.NumParams(); q += 7 {
		pruned.Prune(q)
	}
	for _, tc := range []struct {
		name string
		mk   func(*Problem) Curvature
	}{
		{"gn", func(p *Problem) Curvature { return GaussNewton{p} }},
		{"fisher", func(p *Problem) Curvature { return Fisher{p} }},
	} {
		for _, live := range []bool{false, true} {
			p := func(rows int) *Problem {
				x, y := rowsOf(X, 0, rows), rowsOf(Y, 0, rows)
				if live {
					return Live(pruned, x, y)
				}
				return All(net, x, y)
			}
			half, whole := p(N/2), p(N)
			blocks := RowBlocks(whole)
			plan := BlockBytes(blocks, whole.Dim())
			a1 := blockAlloc(t, tc.mk(half), blocks)
			a2 := blockAlloc(t, tc.mk(whole), blocks)
			chunks := N / max(1, blockChunk(whole.Dim())/whole.Net.Outputs())
			t.Logf("%s, live %v: %d and %d bytes for %d and %d samples (about %d chunks), plan %d", tc.name, live, a1, a2, N/2, N, chunks, plan)
			if int64(a2) > plan {
				t.Errorf("%s, live %v: the build allocated %d bytes, above its plan BlockBytes %d", tc.name, live, a2, plan)
			}
			// The task bookkeeping of the workers costs a few hundred bytes
			// a chunk; a chunk's rows alone are tens of kilobytes.
			if grow := int64(a2) - int64(a1); grow > 4<<10*int64(chunks) {
				t.Errorf("%s, live %v: %d more bytes for %d more samples: the build allocates per chunk", tc.name, live, grow, N/2)
			}
		}
	}
}

// TestBlockDiagonalSameBits checks that the row-block builds give the same
// bits for any number of workers.
func TestBlockDiagonalSameBits(t *testing.T) {
	for _, pr := range lowRankCases(t)[:6] {
		for _, c := range []Curvature{GaussNewton{pr}, Fisher{pr}} {
			blocks := RowBlocks(pr)
			var got [][]*mat.SymDense
			for _, procs := range []int{1, 3} {
				old := runtime.GOMAXPROCS(procs)
				H, err := BlockDiagonal(ctx, c, blocks, -1)
				runtime.GOMAXPROCS(old)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, H)
			}
			for bi := range blocks {
				if !mat.Equal(got[0][bi], got[1][bi]) {
					t.Errorf("%T, %v: block %d differs between 1 and 3 workers", c, pr.Net.Loss(), bi)
				}
			}
		}
	}
}

// TestBlockDiagonalCountsWidePass checks that a network whose one sample's
// pass exceeds the pass allowance of BlockBytes is refused with its real
// need, before anything is allocated.
func TestBlockDiagonalCountsWidePass(t *testing.T) {
	net, err := nn.New([]int{3, 200000, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	pr := All(net, mat.NewDense(2, 3, nil), mat.NewDense(2, 2, nil))
	blocks := ConsecutiveBlocks(pr.Dim(), 4)
	plan := BlockBytes(blocks, pr.Dim())
	for _, c := range []Curvature{GaussNewton{pr}, Fisher{pr}} {
		_, err := BlockDiagonal(ctx, c, blocks, plan)
		var me *MemoryError
		if !errors.As(err, &me) || me.Bytes <= plan {
			t.Errorf("%T: got %v, want a *MemoryError above BlockBytes %d", c, err, plan)
		}
	}
}
