package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
)

// BlockOBS is OBS on the block-diagonal part of a curvature, Exact (the
// default), GaussNewton or Fisher: blocks of Block consecutive parameters
// (default DefaultBlock), or with Rows one per unit (hessian.RowBlocks, as
// OBC) and, given a Block, one per layer of at most Block live parameters.
// Each block C_bb is built without the whole matrix (hessian.BlockDiagonal)
// and inverted exactly; a removal moves and downdates its block only, and
// the scorer is a SetRemover. Memory O(B·W); Fisher and GaussNewton blocks
// cost O(N·B·W), Exact ones O(N·W²). One block of all parameters is OBS,
// blocks of one OBD on the diagonal of C + λI. Damping, FixedDamping and
// the gradient term (Env.Gradient, u = C⁻¹g by blocks) are those of OBS.
// Samples, when positive and below the number of rows N, builds C on that
// many rows drawn by Src (nil: a fixed seed), scaled by N/Samples; with Hard,
// that many of them are the rows of largest loss, weight 1, the others drawn
// from the rest, weight (N − Hard)/(Samples − Hard).
//
// References:
//
//	E. Frantar and D. Alistarh, Optimal Brain Compression: A framework
//	  for accurate post-training quantization and pruning, NeurIPS 2022.
//	S. P. Singh and D. Alistarh, WoodFisher, NeurIPS 2020 (blockwise
//	  WoodFisher).
type BlockOBS struct {
	Curvature    Curvature
	Block        int
	Rows         bool
	Damping      float64
	FixedDamping bool
	Samples      int
	Hard         int
	Src          rand.Source
}

// Need returns NeedInverse.
func (BlockOBS) Need() Need { return NeedInverse }

// Validate returns an error when the settings are invalid.
func (o BlockOBS) Validate() error {
	switch o.Curvature {
	case Exact, GaussNewton, Fisher:
	default:
		return fieldErrorf("BlockOBS", "Curvature", "%v cannot serve block OBS; it needs exact, gn or fisher", o.Curvature)
	}
	if o.Block < 0 {
		return fieldErrorf("BlockOBS", "Block", "%d is negative", o.Block)
	}
	if o.Damping != NoDamping && (!(o.Damping >= 0) || math.IsInf(o.Damping, 1)) {
		return fieldErrorf("BlockOBS", "Damping", "%v is not a non-negative number", o.Damping)
	}
	if o.Samples < 0 {
		return fieldErrorf("BlockOBS", "Samples", "%d is negative", o.Samples)
	}
	if o.Hard < 0 || o.Hard > o.Samples {
		return fieldErrorf("BlockOBS", "Hard", "%d of %d samples", o.Hard, o.Samples)
	}
	return nil
}

func (o BlockOBS) damping() float64 { return OBS{Damping: o.Damping}.damping() }

// Blocks returns the blocks of positions of p that o uses.
func (o BlockOBS) Blocks(p *hessian.Problem) [][]int {
	if o.Rows {
		rows := hessian.RowBlocks(p)
		if o.Block == 0 {
			return rows
		}
		// A layer of at most Block live parameters is one block.
		size := map[int]int{}
		layer := make([]int, len(rows))
		for i, b := range rows {
			layer[i] = p.Net.ParamAt(paramIndex(p, b[0])).Layer
			size[layer[i]] += len(b)
		}
		var out [][]int
		for i, b := range rows {
			if size[layer[i]] > o.Block || i == 0 || layer[i] != layer[i-1] {
				out = append(out, slices.Clone(b))
				continue
			}
			out[len(out)-1] = append(out[len(out)-1], b...)
		}
		return out
	}
	B := o.Block
	if B == 0 {
		B = DefaultBlock
	}
	return hessian.ConsecutiveBlocks(p.Dim(), B)
}

// MemoryBytes returns the memory a round of o needs on p, before anything
// is allocated: the blocks, their inverses and the build's work space.
func (o BlockOBS) MemoryBytes(p *hessian.Problem) int64 {
	blocks := o.Blocks(p)
	b := blockBytes(blocks, p.Dim())
	if N, xc := p.X.Dims(); o.Samples > 0 && o.Samples < N {
		// The copied rows and the draw's permutation; with Hard also the
		// losses and their order, and the blocks of the other rows until
		// they join the hard rows'.
		_, yc := p.Y.Dims()
		b += 8*int64(o.Samples)*int64(xc+yc) + 8*int64(N)
		if o.Hard > 0 {
			b += 16*int64(N) + hessian.BlockBytes(blocks, p.Dim())
		}
	}
	return b
}

func blockBytes(blocks [][]int, n int) int64 {
	var inv int64
	for _, b := range blocks {
		inv += 8 * int64(len(b)) * int64(len(b))
	}
	// The blocks, then their inverses, built while the blocks are alive,
	// and the position maps.
	return hessian.BlockBytes(blocks, n) + inv + 8*3*int64(n)
}

// Begin builds and inverts the blocks over the live parameters of p, the
// objective's Env.Decay added to their diagonals. It
// returns a *hessian.MemoryError, before allocating, when MemoryBytes
// exceeds env's limit.
func (o BlockOBS) Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	n := p.Dim()
	blocks := o.Blocks(p)
	if err := checkDense(fmt.Sprintf("block OBS (%d blocks)", len(blocks)), n, o.MemoryBytes(p), env.maxBytes()); err != nil {
		return nil, err
	}
	H, err := o.build(ctx, p, blocks)
	if err != nil {
		if errors.Is(err, hessian.ErrNotFinite) {
			env.report(Issue{Kind: IssueNotFinite, Index: -1, Lambda: math.NaN(),
				Message: fmt.Sprintf("block OBS curvature (%v) has a NaN or infinite entry", o.Curvature)})
		}
		return nil, fmt.Errorf("block OBS curvature (%v): %w", o.Curvature, err)
	}
	if mu := env.decay(); mu != 0 {
		// The objective's penalty ½μ‖θ‖² adds μI to every block.
		for _, h := range H {
			for i := 0; i < h.SymmetricDim(); i++ {
				h.SetSym(i, i, h.At(i, i)+mu)
			}
		}
	}
	s := &blockScorer{p: p, blocks: blocks, hinv: make([]*mat.SymDense, len(blocks)),
		block: make([]int, n), local: make([]int, n), removed: make([]bool, n)}
	start := o.damping()
	s.lambda = start
	raised, lowered, least := 0, 0, start
	// The escalation's ceiling is that of the whole block-diagonal matrix,
	// 10‖C‖_F, so that every block keeps the same λ unless its own must
	// rise: a block of nearly dead units is not damped less than the rest.
	var ss float64
	for _, h := range H {
		f := mat.Norm(h, 2)
		ss += f * f
	}
	ceiling := 10 * math.Sqrt(ss)
	if ceiling == 0 {
		ceiling = 10
	}
	for bi, b := range blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for a, q := range b {
			s.block[q], s.local[q] = bi, a
		}
		hinv := mat.NewSymDense(len(b), nil)
		lambda := start
		if o.FixedDamping {
			err = hessian.DampedInverse(hinv, H[bi], lambda)
			var cond mat.Condition
			if errors.As(err, &cond) && !math.IsInf(float64(cond), 1) {
				env.report(dampingIssue(o.Curvature, lambda, err))
				err = nil
			}
		} else {
			lambda, err = hessian.DampedInverseEscalating(hinv, H[bi], &hessian.Escalation{Start: start, Max: ceiling})
			switch {
			case err == nil && lambda > start:
				raised++
			case err == nil && lambda < start:
				lowered++
				least = math.Min(least, lambda)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("block OBS inverse of block %d (%d parameters from %v): %w", bi, len(b), p.Net.ParamAt(paramIndex(p, b[0])), err)
		}
		s.lambda = math.Max(s.lambda, lambda)
		s.hinv[bi] = hinv
		H[bi] = nil
	}
	if g := env.gradient(); g != nil {
		if len(g) != n {
			panic("prune: BlockOBS gradient length mismatch")
		}
		s.u = make([]float64, n)
		for bi, b := range blocks {
			gb := mat.NewVecDense(len(b), nil)
			for a, q := range b {
				gb.SetVec(a, g[q])
			}
			var ub mat.VecDense
			ub.MulVec(s.hinv[bi], gb)
			for a, q := range b {
				s.u[q] = ub.AtVec(a)
			}
			s.gu += mat.Dot(gb, &ub)
		}
	}
	if raised > 0 {
		env.report(Issue{Kind: IssueDamping, Index: -1, Lambda: s.lambda,
			Message: fmt.Sprintf("block OBS damping of %v raised from %g in %d of %d blocks, up to %g", o.Curvature, start, raised, len(blocks), s.lambda)})
	}
	if lowered > 0 {
		env.report(Issue{Kind: IssueDamping, Index: -1, Lambda: least,
			Message: fmt.Sprintf("block OBS damping of %v lowered from %g in %d of %d blocks, down to %g: 10‖C‖_F of the block-diagonal matrix, the most the escalation allows, is below it", o.Curvature, start, lowered, len(blocks), least)})
	}
	return s, nil
}

// build returns the blocks of the curvature on the rows o samples, in the
// units of E over all the rows of p.
func (o BlockOBS) build(ctx context.Context, p *hessian.Problem, blocks [][]int) ([]*mat.SymDense, error) {
	N, _ := p.X.Dims()
	type part struct {
		p     *hessian.Problem
		scale float64
	}
	parts := []part{{p, 1}}
	switch {
	case o.Samples <= 0 || o.Samples >= N:
	case o.Hard > 0:
		hard, rest := hardRows(p, o.Hard, o.Samples, o.Src)
		parts = []part{{rowsProblem(p, hard), 1}}
		if len(rest) > 0 {
			parts = append(parts, part{rowsProblem(p, rest), float64(N-o.Hard) / float64(len(rest))})
		}
	default:
		parts = []part{{subsample(p, o.Samples, o.Src), float64(N) / float64(o.Samples)}}
	}
	kind, err := o.Curvature.Kind()
	if err != nil {
		return nil, err
	}
	var H []*mat.SymDense
	for i, pt := range parts {
		Hp, err := hessian.BlockDiagonal(ctx, kind.New(pt.p, hessian.KindOptions{}), blocks, -1)
		if err != nil {
			return nil, err
		}
		for bi, h := range Hp {
			if pt.scale != 1 {
				h.ScaleSym(pt.scale, h)
			}
			if i > 0 {
				H[bi].AddSym(H[bi], h)
			}
		}
		if i == 0 {
			H = Hp
		}
	}
	return H, nil
}

type blockScorer struct {
	p       *hessian.Problem
	blocks  [][]int
	hinv    []*mat.SymDense
	block   []int // position → block
	local   []int // position → index in its block
	removed []bool
	lambda  float64
	col     []float64
	u       []float64 // C⁻¹g block by block before the round's first removal, nil after it
	gu      float64   // gᵀC⁻¹g
}

// shift moves w by the Newton step −C⁻¹g of the gradient term, once, before
// the round's first removal; the model's gradient is zero after it.
func (s *blockScorer) shift(w []float64) {
	if s.u == nil {
		return
	}
	for i, v := range s.u {
		if !s.removed[i] {
			w[i] -= v
		}
	}
	s.u, s.gu = nil, 0
}

// Damping returns the largest damping of the blocks.
func (s *blockScorer) Damping() float64 { return s.lambda }

func (s *blockScorer) diag(i int) float64 { return s.hinv[s.block[i]].At(s.local[i], s.local[i]) }

func (s *blockScorer) pivot(i int) (float64, error) {
	d := s.diag(i)
	if !(d > 0) || math.IsInf(d, 1) {
		return d, &hessian.PivotError{Index: paramIndex(s.p, i), Pivot: d}
	}
	return d, nil
}

func (s *blockScorer) Score(sal, pred, w []float64) error {
	if s.u != nil {
		w = slices.Clone(w)
		for i, v := range s.u {
			w[i] -= v
		}
	}
	if err := obsScores(sal, pred, w, func(i int) bool { return s.removed[i] }, s.diag, func(i int) int { return paramIndex(s.p, i) }); err != nil {
		return err
	}
	if s.gu != 0 {
		for i := range sal {
			if !s.removed[i] {
				sal[i] -= 0.5 * s.gu
				pred[i] = sal[i]
			}
		}
	}
	return nil
}

func (s *blockScorer) Remove(i int, w []float64) error {
	d, err := s.pivot(i)
	if err != nil {
		return err
	}
	s.shift(w)
	b := s.blocks[s.block[i]]
	h := s.hinv[s.block[i]]
	a := s.local[i]
	f := -w[i] / d
	for a2, q := range b {
		if !s.removed[q] {
			w[q] += f * h.At(a2, a)
		}
	}
	w[i] = 0
	if err := hessian.Downdate(h, a); err != nil {
		return err
	}
	s.removed[i] = true
	return nil
}

// RemoveSet removes S jointly: OBSSet on each block's inverse, then the
// block's downdate (downdateSet). The prediction is the sum over the blocks, exact for the
// block-diagonal quadratic model.
func (s *blockScorer) RemoveSet(ctx context.Context, S []int, w []float64) (float64, error) {
	per := map[int][]int{}
	var order []int
	for _, q := range S {
		if s.removed[q] {
			return math.NaN(), fmt.Errorf("prune: position %d already removed", q)
		}
		bi := s.block[q]
		if _, ok := per[bi]; !ok {
			order = append(order, bi)
		}
		per[bi] = append(per[bi], s.local[q])
	}
	pred := -0.5 * s.gu
	s.shift(w)
	type upd struct {
		bi    int
		delta []float64
	}
	var ups []upd
	for _, bi := range order {
		if err := ctx.Err(); err != nil {
			return math.NaN(), err
		}
		b := s.blocks[bi]
		wb := make([]float64, len(b))
		for a, q := range b {
			wb[a] = w[q]
		}
		delta, sal, err := OBSSet(s.hinv[bi], wb, per[bi])
		if err != nil {
			return math.NaN(), fmt.Errorf("block %d: %w", bi, err)
		}
		pred += sal
		ups = append(ups, upd{bi, delta})
	}
	for _, u := range ups {
		b := s.blocks[u.bi]
		for a, q := range b {
			if !s.removed[q] {
				w[q] += u.delta[a]
			}
		}
		if err := s.downdateSet(u.bi, per[u.bi]); err != nil {
			return math.NaN(), err
		}
	}
	for _, q := range S {
		w[q] = 0
		s.removed[q] = true
	}
	return pred, nil
}

// downdateSet removes the local positions S from the inverse of block bi,
// as DowndateSet does, by the Schur complement on the live positions R
// that remain,
//
//	H⁻¹_RR ← H⁻¹_RR − Z Zᵀ,    Z = H⁻¹_RS L⁻ᵀ,    LLᵀ = [H⁻¹]_SS,
//
// with matrix–matrix products, O(k³ + r·k² + r²·k) for k removed and r
// remaining positions instead of k rank-one updates of the whole block.
func (s *blockScorer) downdateSet(bi int, S []int) error {
	h := s.hinv[bi]
	b := s.blocks[bi]
	inS := make(map[int]bool, len(S))
	for _, a := range S {
		inS[a] = true
	}
	var R []int
	for a, q := range b {
		if !inS[a] && !s.removed[q] {
			R = append(R, a)
		}
	}
	k, r := len(S), len(R)
	M := mat.NewSymDense(k, nil)
	for i, a := range S {
		for j := i; j < k; j++ {
			M.SetSym(i, j, h.At(a, S[j]))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(M) {
		return fmt.Errorf("prune: [H⁻¹]_SS of block %d over %d parameters is not positive definite", bi, k)
	}
	if r > 0 {
		var L mat.TriDense
		ch.LTo(&L)
		Z := mat.NewDense(r, k, nil)
		for i, a := range R {
			for j, c := range S {
				Z.Set(i, j, h.At(a, c))
			}
		}
		// Z ← Z L⁻ᵀ.
		blas64.Trsm(blas.Right, blas.Trans, 1, L.RawTriangular(), Z.RawMatrix())
		var ZZ mat.SymDense
		ZZ.SymOuterK(1, Z)
		for i, a := range R {
			for j := i; j < r; j++ {
				h.SetSym(a, R[j], h.At(a, R[j])-ZZ.At(i, j))
			}
		}
	}
	n := h.SymmetricDim()
	for _, a := range S {
		for j := 0; j < n; j++ {
			h.SetSym(a, j, 0)
		}
	}
	return nil
}
