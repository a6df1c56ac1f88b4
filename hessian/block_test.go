package hessian

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/secondorder/prune/nn"
)

func TestBlockDiagonalMatchesDense(t *testing.T) {
	worstRelErr = 0
	defer func() { t.Logf("largest relative error against the dense blocks: %.2g", worstRelErr) }()
	kinds := []struct {
		name string
		mk   func(*Problem) Curvature
	}{
		{"exact", func(p *Problem) Curvature { return Exact{p} }},
		{"gn", func(p *Problem) Curvature { return GaussNewton{p} }},
		{"fisher", func(p *Problem) Curvature { return Fisher{p} }},
	}
	for pi, pr := range lowRankCases(t) {
		for _, k := range kinds {
			c := k.mk(pr)
			D, err := Dense(ctx, c, 0)
			if err != nil {
				t.Fatal(err)
			}
			n := pr.Dim()
			for _, layout := range []struct {
				name   string
				blocks [][]int
			}{
				{"B=1", ConsecutiveBlocks(n, 1)},
				{"B=5", ConsecutiveBlocks(n, 5)},
				{"B=W", ConsecutiveBlocks(n, n)},
				{"rows", RowBlocks(pr)},
			} {
				name := fmt.Sprintf("%d/%s/%v/%s", pi, k.name, pr.Net.Loss(), layout.name)
				if err := checkBlocks(layout.blocks, n); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := BlockDiagonal(ctx, c, layout.blocks, 0)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for bi, b := range layout.blocks {
					var g, w []float64
					for a, qa := range b {
						for a2, qb := range b {
							g = append(g, got[bi].At(a, a2))
							w = append(w, D.At(qa, qb))
						}
					}
					if e := relErr(g, w); e > 1e-12 {
						t.Errorf("%s: block %d: relative error %.3g", name, bi, e)
					}
				}
			}
		}
	}
}

func TestRowBlocks(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 1, nn.MSE, 4, 2)
	net := pr.Net
	net.Prune(net.WeightIndex(0, 1, 0))
	live := Live(net, pr.X, pr.Y)
	blocks := RowBlocks(live)
	units := 0
	for l := 0; l < net.NumLayers(); l++ {
		units += net.Layer(l).Out
	}
	if len(blocks) != units {
		t.Fatalf("%d row blocks, want %d", len(blocks), units)
	}
	if err := checkBlocks(blocks, live.Dim()); err != nil {
		t.Fatal(err)
	}
	// Unit 1 of layer 0 lost one weight: its block has In weights and its
	// bias, less one.
	if got, want := len(blocks[1]), net.Layer(0).In; got != want {
		t.Errorf("block of unit 1: %d positions, want %d", got, want)
	}
	for _, b := range blocks {
		p0 := net.ParamAt(live.Params[b[0]])
		for _, a := range b {
			p := net.ParamAt(live.Params[a])
			if p.Layer != p0.Layer || p.Row != p0.Row {
				t.Errorf("block mixes %v and %v", p0, p)
			}
		}
	}
}

func TestBlockDiagonalErrors(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 1, nn.MSE, 4, 2)
	n := pr.Dim()
	if _, err := BlockDiagonal(ctx, Fisher{pr}, [][]int{{0, 1}}, 0); err == nil {
		t.Error("blocks that do not cover: no error")
	}
	if _, err := BlockDiagonal(ctx, Fisher{pr}, [][]int{{0, 0}, {1}}, 0); err == nil {
		t.Error("repeated position: no error")
	}
	_, err := BlockDiagonal(ctx, Fisher{pr}, ConsecutiveBlocks(n, n), 8)
	var me *MemoryError
	if !errors.As(err, &me) || me.Bytes != BlockBytes(ConsecutiveBlocks(n, n), n) {
		t.Errorf("memory limit: got %v", err)
	}
}

// The Gauss–Newton rows of one unit's weights are parallel (δ_c·x): a row
// block keeps one row per sample, a block across units all of them.
func TestCollapseParallelRows(t *testing.T) {
	pr := lowRankCases(t)[0]
	n := pr.Dim()
	J := WeightedJacobian(pr, 0, 3)
	r, _ := J.Dims()
	out := pr.Net.Outputs()
	R := J.RawMatrix().Data
	if J.RawMatrix().Stride != n {
		t.Fatalf("stride %d, want %d", J.RawMatrix().Stride, n)
	}
	rt := make([]float64, n*r)
	row := RowBlocks(pr)[0]
	if got := collapseParallel(rt, R, r, n, out, row); got != 3 {
		t.Errorf("row block: %d rows, want 3 (one per sample)", got)
	}
	if got := collapseParallel(rt, R, r, n, out, ConsecutiveBlocks(n, n)[0]); got != r {
		t.Errorf("all parameters: %d rows, want %d", got, r)
	}
}

// Infinite weights give ErrNotFinite, not a panic or NaN blocks, also
// where a row block collapses the rows of each sample.
func TestBlockDiagonalNotFinite(t *testing.T) {
	pr := randomProblem(t, nn.ReLU, 1, nn.CE, 6, 4)
	theta := append([]float64(nil), pr.Net.RawParams()...)
	for q := range theta {
		theta[q] = math.Inf(1)
	}
	pr.Net.SetParams(theta)
	if _, err := BlockDiagonal(ctx, GaussNewton{pr}, RowBlocks(pr), 0); !errors.Is(err, ErrNotFinite) {
		t.Errorf("got %v, want ErrNotFinite", err)
	}
	// Rows with a NaN are kept as they are.
	R := []float64{math.NaN(), 1, 2, 3, 4, 5}
	rt := make([]float64, 6)
	if r := collapseParallel(rt, R, 2, 3, 2, []int{0, 1, 2}); r != 2 || !math.IsNaN(rt[0]) {
		t.Errorf("%d rows %v, want the 2 rows with their NaN", r, rt)
	}
}
