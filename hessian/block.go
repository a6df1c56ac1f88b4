package hessian

import (
	"context"
	"fmt"
	"math"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// ConsecutiveBlocks partitions 0..n−1 into blocks of B consecutive
// positions, the last one shorter; it panics when B < 1.
func ConsecutiveBlocks(n, B int) [][]int {
	if B < 1 {
		panic("hessian: block size below 1")
	}
	var blocks [][]int
	for lo := 0; lo < n; lo += B {
		b := make([]int, min(B, n-lo))
		for i := range b {
			b[i] = lo + i
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// RowBlocks partitions the positions of p into one block per unit, the
// covered weights of row j of W_l and bias b_l[j] (the row-wise OBS of OBC).
func RowBlocks(p *Problem) [][]int {
	net := p.Net
	W := net.NumParams()
	pos := make([]int, W)
	for q := range pos {
		pos[q] = -1
	}
	if p.Params == nil {
		for q := range pos {
			pos[q] = q
		}
	} else {
		for i, q := range p.Params {
			pos[q] = i
		}
	}
	var blocks [][]int
	for l := 0; l < net.NumLayers(); l++ {
		ly := net.Layer(l)
		o := net.Offset(l)
		for j := 0; j < ly.Out; j++ {
			var b []int
			for i := 0; i < ly.In; i++ {
				if a := pos[o+j*ly.In+i]; a >= 0 {
					b = append(b, a)
				}
			}
			if a := pos[o+ly.Out*ly.In+j]; a >= 0 {
				b = append(b, a)
			}
			if len(b) > 0 {
				blocks = append(blocks, b)
			}
		}
	}
	return blocks
}

// BlockBytes returns the bytes of the block matrices of blocks and of the
// work space of BlockDiagonal over n positions.
func BlockBytes(blocks [][]int, n int) int64 {
	var b, maxB int64
	for _, blk := range blocks {
		k := int64(len(blk))
		b += 8 * k * k
		maxB = max(maxB, k)
	}
	// A chunk of rows over all positions and the gathered block columns;
	// the unit-vector build needs two vectors instead.
	return b + 8*int64(blockChunk(n))*(int64(n)+maxB) + 16*int64(n)
}

// blockChunkBytes bounds the chunk of rows of the block build.
const blockChunkBytes = 64 << 20

// blockChunk returns the number of rows of a chunk of the block build over
// n positions: parallel.ChunkRows, or fewer (but at least 32) so that the chunk stays
// within blockChunkBytes.
func blockChunk(n int) int {
	return min(parallel.ChunkRows, max(32, blockChunkBytes/(8*max(n, 1))))
}

// checkBlocks returns an error when blocks is not a partition of the
// positions 0..n−1 into non-empty blocks.
func checkBlocks(blocks [][]int, n int) error {
	seen := make([]bool, n)
	count := 0
	for bi, b := range blocks {
		if len(b) == 0 {
			return fmt.Errorf("hessian: block %d is empty", bi)
		}
		for _, q := range b {
			if q < 0 || q >= n || seen[q] {
				return fmt.Errorf("hessian: block %d: position %d out of range or in two blocks", bi, q)
			}
			seen[q] = true
			count++
		}
	}
	if count != n {
		return fmt.Errorf("hessian: blocks cover %d of %d positions", count, n)
	}
	return nil
}

// BlockDiagonal returns the diagonal blocks C_bb of c, one dense matrix per
// block (in the order of blocks[b]), without forming c: O(Σ B²) memory,
// O(N·Σ B²) time from the rows of Fisher and GaussNewton, Dim products for
// other curvatures. It returns a *MemoryError when BlockBytes exceeds limit
// (see CheckMemory) and an error when blocks is not a partition.
func BlockDiagonal(ctx context.Context, c Curvature, blocks [][]int, limit int64) ([]*mat.SymDense, error) {
	n := c.Dim()
	if err := checkBlocks(blocks, n); err != nil {
		return nil, err
	}
	if limit >= 0 {
		if limit == 0 {
			limit = DefaultMemoryLimit()
		}
		if b := BlockBytes(blocks, n); b > limit {
			return nil, &MemoryError{What: fmt.Sprintf("block-diagonal curvature (%d blocks)", len(blocks)), Dim: n, Bytes: b, Limit: limit}
		}
	}
	switch cc := c.(type) {
	case Fisher:
		gw := newGradRows(cc.P.Net, parallel.ChunkRows)
		return blocksFromRows(ctx, cc.P, blocks, func(lo, hi int, dst []float64) int {
			gw.batchRows(dst[:(hi-lo)*cc.P.Dim()], cc.P, lo, hi, 1)
			return hi - lo
		}, 1)
	case GaussNewton:
		out := cc.P.Net.Outputs()
		return blocksFromRows(ctx, cc.P, blocks, func(lo, hi int, dst []float64) int {
			J := WeightedJacobian(cc.P, lo, hi)
			r, k := J.Dims()
			raw := J.RawMatrix()
			for i := 0; i < r; i++ {
				copy(dst[i*k:(i+1)*k], raw.Data[i*raw.Stride:i*raw.Stride+k])
			}
			return r
		}, out)
	}
	return blocksFromColumns(ctx, c, blocks)
}

// blocksFromRows accumulates the Gram matrices of the block columns of the
// rows fill writes, rowsPer rows per sample.
func blocksFromRows(ctx context.Context, p *Problem, blocks [][]int, fill func(lo, hi int, dst []float64) int, rowsPer int) ([]*mat.SymDense, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	n := p.Dim()
	N, _ := p.X.Dims()
	step := max(1, blockChunk(n)/rowsPer)
	R := make([]float64, step*rowsPer*n)
	maxB := 0
	for _, b := range blocks {
		maxB = max(maxB, len(b))
	}
	rt := make([]float64, maxB*step*rowsPer)
	out := make([]*mat.SymDense, len(blocks))
	for bi, b := range blocks {
		out[bi] = mat.NewSymDense(len(b), nil)
	}
	for lo := 0; lo < N; lo += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+step, N)
		r := fill(lo, hi, R)
		for bi, b := range blocks {
			k := len(b)
			rr := r
			if rowsPer > 1 {
				rr = collapseParallel(rt, R, r, n, rowsPer, b)
			} else {
				// R_bᵀ, k×r.
				for a, q := range b {
					row := rt[a*r : (a+1)*r]
					for i := range row {
						row[i] = R[i*n+q]
					}
				}
			}
			if rr == 0 {
				continue
			}
			at := blas64.General{Rows: k, Cols: rr, Stride: rr, Data: rt[:k*rr]}
			raw := out[bi].RawSymmetric()
			c := blas64.General{Rows: k, Cols: k, Stride: raw.Stride, Data: raw.Data}
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, at, at, 1, c)
		}
	}
	return out, nil
}

// blocksFromColumns builds the blocks from products with unit vectors.
func blocksFromColumns(ctx context.Context, c Curvature, blocks [][]int) ([]*mat.SymDense, error) {
	n := c.Dim()
	out := make([]*mat.SymDense, len(blocks))
	for bi, b := range blocks {
		out[bi] = mat.NewSymDense(len(b), nil)
	}
	v := make([]float64, n)
	col := make([]float64, n)
	done := 0
	for bi, b := range blocks {
		for a, q := range b {
			if done%64 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			done++
			v[q] = 1
			c.MulVecTo(col, v)
			v[q] = 0
			// Column a of the block; average with the row written
			// before so that the block is exactly symmetric.
			for a2 := 0; a2 < a; a2++ {
				out[bi].SetSym(a2, a, 0.5*(out[bi].At(a2, a)+col[b[a2]]))
			}
			for a2 := a; a2 < len(b); a2++ {
				out[bi].SetSym(a, a2, col[b[a2]])
			}
		}
	}
	for _, m := range out {
		if !symFiniteBlock(m) {
			return nil, ErrNotFinite
		}
	}
	return out, nil
}

func symFiniteBlock(m *mat.SymDense) bool {
	n := m.SymmetricDim()
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			if x := m.At(i, j); math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
	}
	return true
}

// collapseParallel writes R_bᵀ (k×r′) into rt and returns r′: the r rows
// of R restricted to the block b, in groups of rowsPer per sample, each
// group whose rows are parallel (as for the Gauss–Newton rows of one unit's
// weights, δ_c·x) replaced by the one row u with uuᵀ = Σ_c r_c r_cᵀ, zero
// groups dropped. The Gram matrix is unchanged up to rounding; the rows of a
// row block cost a rowsPer-th of the multiplication.
func collapseParallel(rt, R []float64, r, n, rowsPer int, b []int) int {
	// First the number of output rows, then the rows at their stride.
	type group struct {
		lo    int     // first row of the group
		keep  bool    // parallel: one row, R[best]·scale
		best  int     // the group's row of largest norm
		scale float64 // √(Σ‖r_c‖²/‖r_best‖²)
	}
	groups := make([]group, 0, r/rowsPer)
	rr := 0
	for lo := 0; lo < r; lo += rowsPer {
		hi := min(lo+rowsPer, r)
		g := group{lo: lo, best: -1}
		var sum, top float64
		for i := lo; i < hi; i++ {
			var s float64
			for _, q := range b {
				s += R[i*n+q] * R[i*n+q]
			}
			sum += s
			if s > top {
				top, g.best = s, i
			}
		}
		if sum == 0 {
			continue
		}
		g.keep = true
		for i := lo; i < hi && g.keep; i++ {
			if i == g.best {
				continue
			}
			var dot, ni float64
			for _, q := range b {
				dot += R[i*n+q] * R[g.best*n+q]
				ni += R[i*n+q] * R[i*n+q]
			}
			c := dot / top
			var res float64
			for _, q := range b {
				e := R[i*n+q] - c*R[g.best*n+q]
				res += e * e
			}
			g.keep = res <= 1e-24*ni
		}
		g.scale = math.Sqrt(sum / top)
		groups = append(groups, g)
		if g.keep {
			rr++
		} else {
			rr += hi - lo
		}
	}
	col := 0
	for _, g := range groups {
		if g.keep {
			for a, q := range b {
				rt[a*rr+col] = R[g.best*n+q] * g.scale
			}
			col++
			continue
		}
		for i := g.lo; i < min(g.lo+rowsPer, r); i++ {
			for a, q := range b {
				rt[a*rr+col] = R[i*n+q]
			}
			col++
		}
	}
	return rr
}
