package hessian

import (
	"context"
	"fmt"
	"math"
	"runtime"

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

// BlockBytes returns the bytes BlockDiagonal holds for blocks over n
// positions: the block matrices, a chunk of rows over all positions, the
// gathered block columns, the position maps and the forward pass over the
// chunk's samples, the block columns once per worker (GOMAXPROCS).
func BlockBytes(blocks [][]int, n int) int64 {
	var b, maxB int64
	for _, blk := range blocks {
		k := int64(len(blk))
		b += 8 * k * k
		maxB = max(maxB, k)
	}
	rows := int64(blockChunk(n))
	// The column build needs two vectors instead of the rows' 16n.
	w := int64(blockWorkers(len(blocks)))
	return b + 8*rows*(int64(n)+w*maxB) + w*groupBytes*rows + 16*int64(n) + blockPassBytes
}

// blockChunkBytes bounds the chunk of rows of the block build, and
// blockPassBytes the forward pass and per-sample buffers that fill it:
// the pass runs over as many samples as fit (at least one).
const (
	blockChunkBytes = 64 << 20
	blockPassBytes  = 4 << 20
)

// blockChunk returns the number of rows of a chunk of the block build over
// n positions: parallel.ChunkRows, or fewer (but at least 32) so that the chunk stays
// within blockChunkBytes.
func blockChunk(n int) int {
	return min(parallel.ChunkRows, max(32, blockChunkBytes/(8*max(n, 1))))
}

// passRows returns how many of step samples a pass of perSample bytes a
// sample, besides fixed bytes, runs over within blockPassBytes.
func passRows(step int, fixed, perSample int64) int {
	return int(min(int64(step), max(1, (blockPassBytes-fixed)/max(perSample, 1))))
}

// passSizes returns the fixed bytes and the bytes per sample of the
// forward pass of the row build of c (zero for the column build).
func passSizes(c Curvature) (fixed, perSample int64) {
	var p *Problem
	switch cc := c.(type) {
	case Fisher:
		p = cc.P
	case GaussNewton:
		p = cc.P
	default:
		return 0, 0
	}
	var outs, ins int64
	for l := 0; l < p.Net.NumLayers(); l++ {
		outs += int64(p.Net.Layer(l).Out)
		ins += int64(p.Net.Layer(l).In)
	}
	if _, ok := c.(Fisher); ok {
		// gradRows: a trace and the deltas per sample, one gradient over
		// all parameters.
		return 8 * int64(p.Net.NumParams()), 24 * outs
	}
	// gnRows: B, B P_{L,l} and the layer inputs; the pass holds A, Z, f′,
	// f″ and δ per unit and sample.
	outL := int64(p.Net.Outputs())
	return 8 * (outL*outL + outL*outs + ins + 1), 40 * outs
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
		// A network whose one sample's pass exceeds blockPassBytes needs
		// that much more.
		fixed, per := passSizes(c)
		if b := BlockBytes(blocks, n) + max(0, fixed+per-blockPassBytes); b > limit {
			return nil, &MemoryError{What: fmt.Sprintf("block-diagonal curvature (%d blocks)", len(blocks)), Dim: n, Bytes: b, Limit: limit}
		}
	}
	switch cc := c.(type) {
	case Fisher:
		if err := cc.P.Check(); err != nil {
			return nil, err
		}
		fixed, per := passSizes(cc)
		gw := newGradRows(cc.P.Net, passRows(blockChunk(n), fixed, per))
		return blocksFromRows(ctx, cc.P, blocks, func(lo, hi int, dst []float64) int {
			gw.batchRows(dst[:(hi-lo)*n], cc.P, lo, hi, 1)
			return hi - lo
		}, 1)
	case GaussNewton:
		if err := cc.P.Check(); err != nil {
			return nil, err
		}
		out := cc.P.Net.Outputs()
		gw := newGNRows(cc.P, max(1, blockChunk(n)/out))
		return blocksFromRows(ctx, cc.P, blocks, gw.fill, out)
	}
	return blocksFromColumns(ctx, c, blocks)
}

// blocksFromRows accumulates the Gram matrices of the block columns of the
// rows fill writes, rowsPer rows per sample. Each chunk's blocks are shared
// among blockWorkers goroutines, each with its own gathered columns; a
// block's sum runs over the chunks in order whatever the number of workers.
func blocksFromRows(ctx context.Context, p *Problem, blocks [][]int, fill func(lo, hi int, dst []float64) int, rowsPer int) ([]*mat.SymDense, error) {
	n := p.Dim()
	N, _ := p.X.Dims()
	step := max(1, blockChunk(n)/rowsPer)
	R := make([]float64, step*rowsPer*n)
	maxB := 0
	for _, b := range blocks {
		maxB = max(maxB, len(b))
	}
	workers := blockWorkers(len(blocks))
	free := make(chan *collapser, workers)
	all := make([]*collapser, workers)
	for w := range all {
		all[w] = &collapser{rt: make([]float64, maxB*step*rowsPer), groups: make([]group, 0, step)}
	}
	out := make([]*mat.SymDense, len(blocks))
	for bi, b := range blocks {
		out[bi] = mat.NewSymDense(len(b), nil)
	}
	var r int
	task := func(cl *collapser, bi int) (struct{}, error) {
		b := blocks[bi]
		rt := cl.rt
		rr := r
		if rowsPer > 1 {
			rr = cl.collapse(rt, R, r, n, rowsPer, b)
		} else {
			// R_bᵀ, k×r.
			for a, q := range b {
				row := rt[a*r : (a+1)*r]
				for i := range row {
					row[i] = R[i*n+q]
				}
			}
		}
		if rr > 0 {
			gramUpper(out[bi].RawSymmetric(), blas64.General{Rows: len(b), Cols: rr, Stride: rr, Data: rt[:len(b)*rr]})
		}
		return struct{}{}, nil
	}
	for lo := 0; lo < N; lo += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r = fill(lo, min(lo+step, N), R)
		for _, cl := range all {
			free <- cl
		}
		_, err := parallel.Run(ctx, len(blocks), workers, func() *collapser { return <-free }, task, nil)
		for len(free) > 0 {
			<-free
		}
		if err != nil {
			return nil, err
		}
	}
	for _, m := range out {
		if !symFiniteBlock(m) {
			return nil, ErrNotFinite
		}
	}
	return out, nil
}

// blockWorkers returns the number of goroutines of the block build.
func blockWorkers(blocks int) int { return max(1, min(runtime.GOMAXPROCS(0), blocks)) }

// gramUpper adds A Aᵀ to the upper triangle of c, in tiles small enough
// that the pure-Go BLAS multiplies them serially, without allocating.
func gramUpper(c blas64.Symmetric, a blas64.General) {
	const ti, tj = 64, 128
	k := a.Rows
	for i0 := 0; i0 < k; i0 += ti {
		i1 := min(i0+ti, k)
		ai := blas64.General{Rows: i1 - i0, Cols: a.Cols, Stride: a.Stride, Data: a.Data[i0*a.Stride:]}
		for j0 := i0; j0 < k; j0 += tj {
			j1 := min(j0+tj, k)
			aj := blas64.General{Rows: j1 - j0, Cols: a.Cols, Stride: a.Stride, Data: a.Data[j0*a.Stride:]}
			ct := blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: c.Stride, Data: c.Data[i0*c.Stride+j0:]}
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, ai, aj, 1, ct)
		}
	}
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
	var c collapser
	return c.collapse(rt, R, r, n, rowsPer, b)
}

// group is a sample's rows in collapseParallel.
type group struct {
	lo    int     // first row of the group
	keep  bool    // parallel: one row, R[best]·scale
	best  int     // the group's row of largest norm
	scale float64 // √(Σ‖r_c‖²/‖r_best‖²)
}

// groupBytes bounds the bytes of a group.
const groupBytes = 40

// collapser holds a worker's gathered columns and the groups of
// collapseParallel across calls.
type collapser struct {
	rt     []float64
	groups []group
}

func (c *collapser) collapse(rt, R []float64, r, n, rowsPer int, b []int) int {
	// First the number of output rows, then the rows at their stride.
	groups := c.groups[:0]
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
		if math.IsNaN(sum) || math.IsInf(sum, 0) {
			// Not finite: the rows as they are, for the check of the
			// blocks to report.
			groups = append(groups, g)
			rr += hi - lo
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
	c.groups = groups[:0]
	return rr
}
