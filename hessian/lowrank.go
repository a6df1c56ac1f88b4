package hessian

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/nn"
)

// LowRank is the damped low-rank curvature C = λI + GᵀG over n parameters,
// G the m×n matrix of scaled per-sample (or per-batch) gradients or of the
// Gauss–Newton rows Bₙ Jₙ, kept in the Woodbury form
//
//	C⁻¹ = (1/λ) (I − UᵀU),    U = L⁻¹G,    LLᵀ = λI_m + GGᵀ,
//
// in O(m·n) memory, built in O(m²·n): the diagonal and columns of C⁻¹, C⁻¹v
// and the OBS update of one parameter cost O(m·n). Remove and RemoveSet
// restrict C to the remaining parameters; removed positions are zero in
// the diagonal and columns.
//
// References:
//
//	S. P. Singh and D. Alistarh, WoodFisher: Efficient second-order
//	  approximation for neural network compression, NeurIPS 2020.
//	E. Frantar, E. Kurtic and D. Alistarh, M-FAC: Efficient matrix-free
//	  approximations of second-order information, NeurIPS 2021.
type LowRank struct {
	n, m    int
	lambda  float64
	u       []float64 // m×n, row-major
	l       []float64 // m×m, general: LLᵀ = λI + G_R G_Rᵀ
	diag    []float64 // [C⁻¹]_qq, zero at removed positions
	removed []bool
	nlive   int
	v, t    []float64 // work: n and m
}

// LowRankBytes returns the bytes of a LowRank of rank m over n parameters
// and of its builders' work space.
func LowRankBytes(n, m int) int64 {
	N, M := int64(n), int64(m)
	// U, L and the m×m Gram matrix, the diagonal and work vectors, the
	// mask, and a chunk of the row builders (at most parallel.ChunkRows rows of n).
	return 8*(M*N+2*M*M+3*N+2*M) + N + 8*int64(min(m, parallel.ChunkRows))*N
}

// LowRankSettings are the settings of LowRankFisher and LowRankGaussNewton.
// Damping is λ, or when zero RelativeDamping times tr(s·GᵀG)/n (one must be
// positive). Scale s multiplies GᵀG (zero: 1; N/m makes m of N samples an
// estimate over all N), RowScale, when not nil, each row of LowRankFisher
// too; Batch is the samples summed per row of LowRankFisher (zero: 1).
// MaxBytes limits LowRankBytes as in CheckMemory. Shift ≥ 0 is added to λ
// once chosen, such as the Hessian μI of a penalty ½μ‖θ‖².
type LowRankSettings struct {
	Damping, RelativeDamping, Scale float64
	RowScale                        []float64
	Batch                           int
	MaxBytes                        int64
	Shift                           float64
}

func (s *LowRankSettings) check(what string) (scale float64, batch int, err error) {
	switch {
	case s.Damping == 0 && s.RelativeDamping > 0 && !math.IsInf(s.RelativeDamping, 1):
	case !(s.Damping > 0) || math.IsInf(s.Damping, 1):
		return 0, 0, fmt.Errorf("hessian: %s damping %v is not a positive number", what, s.Damping)
	}
	if !(s.Shift >= 0) || math.IsInf(s.Shift, 1) {
		return 0, 0, fmt.Errorf("hessian: %s shift %v is not a non-negative number", what, s.Shift)
	}
	scale = s.Scale
	if scale == 0 {
		scale = 1
	}
	if !(scale > 0) || math.IsInf(scale, 1) {
		return 0, 0, fmt.Errorf("hessian: %s scale %v is not a positive number", what, s.Scale)
	}
	batch = s.Batch
	if batch == 0 {
		batch = 1
	}
	if batch < 0 {
		return 0, 0, fmt.Errorf("hessian: %s batch of %d samples", what, s.Batch)
	}
	return scale, batch, nil
}

// LowRankMemoryError reports a LowRank whose LowRankBytes exceed the limit.
type LowRankMemoryError struct {
	What         string
	Dim, Rank    int
	Bytes, Limit int64
}

func (e *LowRankMemoryError) Error() string {
	return fmt.Sprintf("%s of rank %d over %d parameters needs %s, above the memory limit of %s; use fewer samples or raise the limit",
		e.What, e.Rank, e.Dim, sysmem.FormatBytes(e.Bytes), sysmem.FormatBytes(e.Limit))
}

func checkLowRank(what string, n, m int, limit int64) error {
	if limit < 0 {
		return nil
	}
	if limit == 0 {
		limit = DefaultMemoryLimit()
	}
	if b := LowRankBytes(n, m); b > limit {
		return &LowRankMemoryError{What: what, Dim: n, Rank: m, Bytes: b, Limit: limit}
	}
	return nil
}

// FisherRows returns ⌈N/batch⌉, the rows of LowRankFisher.
func FisherRows(N, batch int) int { return (N + max(batch, 1) - 1) / max(batch, 1) }

// LowRankFisher returns the Woodbury form of the damped empirical Fisher
// matrix of p, the rows of p.X in consecutive batches of s.Batch:
//
//	F = λI + s Σᵢ gᵢgᵢᵀ,    gᵢ = Σ_{n ∈ batch i} ∇ℓₙ.
func LowRankFisher(ctx context.Context, p *Problem, s *LowRankSettings) (*LowRank, error) {
	scale, batch, err := s.check("low-rank Fisher")
	if err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	N, _ := p.X.Dims()
	n, m := p.Dim(), FisherRows(N, batch)
	if err := checkLowRank("low-rank Fisher", n, m, s.MaxBytes); err != nil {
		return nil, err
	}
	g := make([]float64, m*n)
	gw := newGradRows(p.Net, parallel.ChunkRows)
	f := math.Sqrt(scale)
	for lo := 0; lo < m; lo += parallel.ChunkRows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+parallel.ChunkRows, m)
		gw.batchRows(g[lo*n:hi*n], p, lo*batch, min(hi*batch, N), batch)
	}
	if s.RowScale != nil {
		if len(s.RowScale) != m {
			return nil, fmt.Errorf("hessian: low-rank Fisher: %d row scales for %d rows", len(s.RowScale), m)
		}
		for i, r := range s.RowScale {
			if !(r >= 0) || math.IsInf(r, 1) {
				return nil, fmt.Errorf("hessian: low-rank Fisher: row scale %d is %v, not a non-negative number", i, r)
			}
			blas64.Scal(f*math.Sqrt(r), blas64.Vector{N: n, Inc: 1, Data: g[i*n : (i+1)*n]})
		}
	} else if f != 1 {
		blas64.Scal(f, blas64.Vector{N: m * n, Inc: 1, Data: g})
	}
	return newLowRank(ctx, g, m, n, s.damping(g, n))
}

// LowRankGaussNewton returns the Woodbury form of λI + s·G, G the
// GaussNewton matrix of p from its N·outputs rows (WeightedJacobian).
func LowRankGaussNewton(ctx context.Context, p *Problem, s *LowRankSettings) (*LowRank, error) {
	scale, _, err := s.check("low-rank Gauss–Newton")
	if err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	N, _ := p.X.Dims()
	out := p.Net.Outputs()
	n, m := p.Dim(), N*out
	if err := checkLowRank("low-rank Gauss–Newton", n, m, s.MaxBytes); err != nil {
		return nil, err
	}
	g := make([]float64, m*n)
	f := math.Sqrt(scale)
	step := max(1, parallel.ChunkRows/out)
	for lo := 0; lo < N; lo += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+step, N)
		J := WeightedJacobian(p, lo, hi)
		r := J.RawMatrix()
		for i := 0; i < (hi-lo)*out; i++ {
			dst := g[(lo*out+i)*n : (lo*out+i+1)*n]
			for j, x := range r.Data[i*r.Stride : i*r.Stride+n] {
				dst[j] = f * x
			}
		}
	}
	return newLowRank(ctx, g, m, n, s.damping(g, n))
}

// damping returns λ for the scaled rows g over n positions.
func (s *LowRankSettings) damping(g []float64, n int) float64 {
	if s.Damping > 0 {
		return s.Damping + s.Shift
	}
	var tr float64
	for _, x := range g {
		tr += x * x
	}
	lambda := s.RelativeDamping * tr / float64(max(n, 1))
	if !(lambda > 0) {
		// Zero rows: any positive λ gives the exact inverse λ⁻¹I.
		lambda = s.RelativeDamping
	}
	return lambda + s.Shift
}

// NewLowRank returns the Woodbury form of λI + GᵀG for the m×n matrix G.
func NewLowRank(ctx context.Context, G mat.Matrix, lambda float64) (*LowRank, error) {
	if !(lambda > 0) || math.IsInf(lambda, 1) {
		return nil, fmt.Errorf("hessian: low-rank damping %v is not a positive number", lambda)
	}
	m, n := G.Dims()
	g := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g[i*n+j] = G.At(i, j)
		}
	}
	return newLowRank(ctx, g, m, n, lambda)
}

// lowRankTile is the number of rows of U solved together in the blocked
// triangular solves.
const lowRankTile = 64

// lowRankCols is the number of columns (parameters) of G and U that one
// product of the build works on, so that the context is checked every few
// 10⁸ flops however large the network.
const lowRankCols = 4096

// newLowRank builds the form from g (m×n), which it takes over.
func newLowRank(ctx context.Context, g []float64, m, n int, lambda float64) (*LowRank, error) {
	for _, x := range g {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, ErrNotFinite
		}
	}
	lr := &LowRank{n: n, m: m, lambda: lambda, u: g, diag: make([]float64, n),
		removed: make([]bool, n), nlive: n, v: make([]float64, n), t: make([]float64, m)}
	// K = λI + GGᵀ, upper triangle by row tiles of general products.
	k := make([]float64, m*m)
	G := blas64.General{Rows: m, Cols: n, Stride: n, Data: g}
	for i0 := 0; i0 < m; i0 += lowRankTile * 4 {
		i1 := min(i0+lowRankTile*4, m)
		c := blas64.General{Rows: i1 - i0, Cols: m - i0, Stride: m, Data: k[i0*m+i0:]}
		for j0 := 0; j0 < n; j0 += lowRankCols {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			j1 := min(j0+lowRankCols, n)
			a := blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: n, Data: g[i0*n+j0:]}
			b := blas64.General{Rows: m - i0, Cols: j1 - j0, Stride: n, Data: g[i0*n+j0:]}
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, a, b, 1, c)
		}
	}
	for i := 0; i < m; i++ {
		k[i*m+i] += lambda
		for j := 0; j < i; j++ {
			k[i*m+j] = k[j*m+i]
		}
	}
	// K = LLᵀ.
	if _, ok := lapack64.Potrf(blas64.Symmetric{N: m, Stride: m, Uplo: blas.Lower, Data: k}); !ok {
		return nil, errors.New("hessian: λI + GGᵀ is not positive definite; the rows are not finite or λ is too small")
	}
	for i := 0; i < m; i++ {
		clear(k[i*m+i+1 : (i+1)*m])
	}
	lr.l = k
	// U = L⁻¹G.
	if err := lowerSolve(ctx, k, m, G); err != nil {
		return nil, err
	}
	lr.fillDiag()
	return lr, nil
}

// lowerSolve sets B ← T⁻¹B for the m×m lower-triangular T (stride m,
// general storage, nothing above the diagonal read) by row tiles: each tile
// is updated with one general product with the tiles above it and then
// solved with a small triangular solve.
//
// The columns of B are independent, so they are solved in chunks of
// lowRankCols columns, with the context checked between row tiles of each.
func lowerSolve(ctx context.Context, t []float64, m int, B blas64.General) error {
	for j0 := 0; j0 < B.Cols; j0 += lowRankCols {
		j1 := min(j0+lowRankCols, B.Cols)
		n := j1 - j0
		for i0 := 0; i0 < m; i0 += lowRankTile {
			if err := ctx.Err(); err != nil {
				return err
			}
			i1 := min(i0+lowRankTile, m)
			bi := blas64.General{Rows: i1 - i0, Cols: n, Stride: B.Stride, Data: B.Data[i0*B.Stride+j0:]}
			if i0 > 0 {
				ti := blas64.General{Rows: i1 - i0, Cols: i0, Stride: m, Data: t[i0*m:]}
				top := blas64.General{Rows: i0, Cols: n, Stride: B.Stride, Data: B.Data[j0:]}
				blas64.Gemm(blas.NoTrans, blas.NoTrans, -1, ti, top, 1, bi)
			}
			tri := blas64.Triangular{N: i1 - i0, Stride: m, Uplo: blas.Lower, Diag: blas.NonUnit, Data: t[i0*m+i0:]}
			blas64.Trsm(blas.Left, blas.NoTrans, 1, tri, bi)
		}
	}
	return nil
}

// fillDiag sets the diagonal from the column norms of U.
func (lr *LowRank) fillDiag() {
	n := lr.n
	d := lr.diag
	for q := range d {
		d[q] = 0
	}
	for i := 0; i < lr.m; i++ {
		row := lr.u[i*n : (i+1)*n]
		for q, x := range row {
			d[q] += x * x
		}
	}
	for q := range d {
		if lr.removed[q] {
			d[q] = 0
			continue
		}
		d[q] = (1 - d[q]) / lr.lambda
	}
}

// Dim returns the number of parameters n, removed ones included.
func (lr *LowRank) Dim() int { return lr.n }

// Rank returns m, the number of rows of G.
func (lr *LowRank) Rank() int { return lr.m }

// Damping returns λ.
func (lr *LowRank) Damping() float64 { return lr.lambda }

// Removed reports whether position q has been removed.
func (lr *LowRank) Removed(q int) bool { return lr.removed[q] }

// Bytes returns the memory held by lr.
func (lr *LowRank) Bytes() int64 {
	return 8*int64(len(lr.u)+len(lr.l)+len(lr.diag)+len(lr.v)+len(lr.t)) + int64(len(lr.removed))
}

// MulVecTo sets dst = C v = λv + G_RᵀG_R v over the live positions, zero at
// removed ones (whose entries of v are ignored, as in the Inverse methods).
func (lr *LowRank) MulVecTo(dst, v []float64) {
	n, m := lr.n, lr.m
	if len(dst) != n || len(v) != n {
		panic("hessian: vector length mismatch")
	}
	x := lr.liveCopy(v)
	U := blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}
	L := blas64.General{Rows: m, Cols: m, Stride: m, Data: lr.l}
	a, b := make([]float64, m), make([]float64, m)
	blas64.Gemv(blas.NoTrans, 1, U, vec(x), 0, vec(a))
	blas64.Gemv(blas.NoTrans, 1, L, vec(a), 0, vec(b))
	blas64.Gemv(blas.Trans, 1, L, vec(b), 0, vec(a))
	blas64.Gemv(blas.Trans, 1, U, vec(a), 0, vec(dst))
	for q := range dst {
		if lr.removed[q] {
			dst[q] = 0
			continue
		}
		dst[q] += lr.lambda * x[q]
	}
}

// liveCopy returns a copy of v with the entries of removed positions zero.
func (lr *LowRank) liveCopy(v []float64) []float64 {
	x := make([]float64, lr.n)
	for q, r := range lr.removed {
		if !r {
			x[q] = v[q]
		}
	}
	return x
}

func vec(x []float64) blas64.Vector { return blas64.Vector{N: len(x), Inc: 1, Data: x} }

// InverseDiagTo writes the diagonal of C⁻¹ to dst, zero at removed
// positions.
func (lr *LowRank) InverseDiagTo(dst []float64) {
	if len(dst) != lr.n {
		panic("hessian: vector length mismatch")
	}
	copy(dst, lr.diag)
}

// InverseDiag returns [C⁻¹]_qq, zero for a removed q.
func (lr *LowRank) InverseDiag(q int) float64 { return lr.diag[q] }

// InverseMulVecTo sets dst = C⁻¹v = (v − Uᵀ(Uv))/λ over the live positions.
func (lr *LowRank) InverseMulVecTo(dst, v []float64) {
	n, m := lr.n, lr.m
	if len(dst) != n || len(v) != n {
		panic("hessian: vector length mismatch")
	}
	x := lr.liveCopy(v)
	U := blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}
	a := make([]float64, m)
	blas64.Gemv(blas.NoTrans, 1, U, vec(x), 0, vec(a))
	blas64.Gemv(blas.Trans, -1, U, vec(a), 1, vec(x))
	for q := range dst {
		if lr.removed[q] {
			dst[q] = 0
			continue
		}
		dst[q] = x[q] / lr.lambda
	}
}

// InverseColumnTo writes column q of C⁻¹, (e_q − Uᵀ U e_q)/λ, to dst.
func (lr *LowRank) InverseColumnTo(dst []float64, q int) {
	if len(dst) != lr.n {
		panic("hessian: vector length mismatch")
	}
	if lr.removed[q] {
		clear(dst)
		return
	}
	lr.uTu(dst, q)
	for j := range dst {
		if lr.removed[j] {
			dst[j] = 0
			continue
		}
		dst[j] = -dst[j] / lr.lambda
	}
	dst[q] = lr.diag[q]
}

// uTu sets lr.t = U e_q and dst = Uᵀ U e_q.
func (lr *LowRank) uTu(dst []float64, q int) {
	n, m := lr.n, lr.m
	for i := 0; i < m; i++ {
		lr.t[i] = lr.u[i*n+q]
	}
	U := blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}
	blas64.Gemv(blas.Trans, 1, U, vec(lr.t), 0, vec(dst))
}

func (lr *LowRank) pivot(q int) (float64, error) {
	if q < 0 || q >= lr.n {
		panic(mat.ErrIndexOutOfRange)
	}
	if lr.removed[q] {
		return 0, fmt.Errorf("hessian: position %d already removed", q)
	}
	d := lr.diag[q]
	if !(d > 0) || math.IsInf(d, 1) {
		return d, &PivotError{Index: q, Pivot: d}
	}
	return d, nil
}

// Remove removes position q by the OBS step: it adds δ = −(w_q/[C⁻¹]_qq)
// C⁻¹e_q to w (nil: downdate only), restricts C to the remaining positions
// by a rank-one update and returns w_q²/(2[C⁻¹]_qq). A pivot that is not
// positive and finite gives a *PivotError and changes nothing.
func (lr *LowRank) Remove(q int, w []float64) (float64, error) {
	// With u = U e_q and s = √(1 − ‖u‖²), I − uuᵀ = MMᵀ for
	// M = I − uuᵀ/(1+s), M⁻¹ = I + uuᵀ/(s(1+s)), and the restricted form is
	// U ← M⁻¹ U_R, L ← L M: an O(m·n) rank-one update that keeps rank m.
	if w != nil && len(w) != lr.n {
		panic("hessian: vector length mismatch")
	}
	d, err := lr.pivot(q)
	if err != nil {
		return math.NaN(), err
	}
	n, m := lr.n, lr.m
	v := lr.v
	lr.uTu(v, q) // v = Uᵀu, v_q = ‖u‖²
	u := lr.t
	s2 := lr.lambda * d // 1 − ‖u‖²
	var pred float64
	if w != nil {
		wq := w[q]
		pred = wq * wq / (2 * d)
		f := wq / s2
		for j, x := range v {
			if !lr.removed[j] {
				w[j] += f * x
			}
		}
		w[q] = 0
	}
	// Diagonal: d_j ← d_j − (v_j/λ)²/d = d_j − v_j²/(λ s2).
	for j, x := range v {
		if !lr.removed[j] {
			lr.diag[j] -= x * x / (lr.lambda * s2)
		}
	}
	s := math.Sqrt(s2)
	gamma := 1 / (s * (1 + s))
	alpha := 1 / (1 + s)
	// U ← U + γ u vᵀ, then column q zero.
	U := blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}
	blas64.Ger(gamma, vec(u), vec(v), U)
	for i := 0; i < m; i++ {
		lr.u[i*n+q] = 0
	}
	// L ← L − α (Lu) uᵀ.
	L := blas64.General{Rows: m, Cols: m, Stride: m, Data: lr.l}
	lu := make([]float64, m)
	blas64.Gemv(blas.NoTrans, 1, L, vec(u), 0, vec(lu))
	blas64.Ger(-alpha, vec(lu), vec(u), L)
	lr.removed[q] = true
	lr.diag[q] = 0
	lr.nlive--
	return pred, nil
}

// SetUpdate returns, without changing lr, the OBS update and saliency of
// removing the live positions S together,
//
//	δ = −C⁻¹_{:,S} ([C⁻¹]_SS)⁻¹ w_S,    L_S = ½ w_Sᵀ ([C⁻¹]_SS)⁻¹ w_S,
//
// δ zero at removed positions, in O(m·n + m²·k + min(k, m)³) time and
// O(m² + m·min(k, m)) memory besides δ. It returns an error when [C⁻¹]_SS
// is not positive definite, and panics on a position out of range,
// repeated or removed.
func (lr *LowRank) SetUpdate(w []float64, S []int) (delta []float64, saliency float64, err error) {
	// With λ[C⁻¹]_SS = I − U_SᵀU_S, the k×k system is solved directly when
	// k ≤ m and otherwise through the m×m matrix I − U_S U_Sᵀ (the
	// push-through identity), gathering the columns U_S a few thousand at
	// a time.
	lr.checkSet(w, S)
	k, m := len(S), lr.m
	if k == 0 {
		return make([]float64, lr.n), 0, nil
	}
	if k > m {
		c, err := lr.setFactor(S)
		if err != nil {
			return nil, math.NaN(), err
		}
		return lr.setUpdateFactor(w, S, c)
	}
	us := lr.columnsTo(make([]float64, m*k), S)
	ws := make([]float64, k)
	for a, q := range S {
		ws[a] = w[q]
	}
	// z = ([C⁻¹]_SS)⁻¹ w_S = λ (I − U_SᵀU_S)⁻¹ w_S.
	B := make([]float64, k*k)
	blas64.Gemm(blas.Trans, blas.NoTrans, -1, us, us, 0, blas64.General{Rows: k, Cols: k, Stride: k, Data: B})
	for a := 0; a < k; a++ {
		B[a*k+a] += 1
	}
	z := slices.Clone(ws)
	if err := cholSolve(B, k, z); err != nil {
		return nil, math.NaN(), fmt.Errorf("hessian: [C⁻¹]_SS over %d positions: %w", k, err)
	}
	blas64.Scal(lr.lambda, vec(z))
	y := make([]float64, m)
	blas64.Gemv(blas.NoTrans, 1, us, vec(z), 0, vec(y))
	return lr.finishSet(w, S, ws, z, y)
}

// checkSet panics on a set that SetUpdate does not accept.
func (lr *LowRank) checkSet(w []float64, S []int) {
	if len(w) != lr.n {
		panic("hessian: vector length mismatch")
	}
	seen := make(map[int]bool, len(S))
	for _, q := range S {
		if q < 0 || q >= lr.n || seen[q] || lr.removed[q] {
			panic("hessian: set position out of range, repeated or removed")
		}
		seen[q] = true
	}
}

// setChunk is the number of columns of U gathered at a time by the set
// operations; a variable so that tests can exercise the chunking.
var setChunk = 2048

// forChunks calls fn for consecutive chunks S[lo:lo+len] of S with the
// gathered columns U_chunk (m × len).
func (lr *LowRank) forChunks(S []int, fn func(lo int, uc blas64.General)) {
	buf := make([]float64, lr.m*min(len(S), setChunk))
	for lo := 0; lo < len(S); lo += setChunk {
		hi := min(lo+setChunk, len(S))
		fn(lo, lr.columnsTo(buf[:lr.m*(hi-lo)], S[lo:hi]))
	}
}

// setFactor returns the lower Cholesky factor of I − U_S U_Sᵀ (m×m,
// row-major, zero above the diagonal).
func (lr *LowRank) setFactor(S []int) ([]float64, error) {
	m := lr.m
	A := make([]float64, m*m)
	sa := blas64.Symmetric{N: m, Stride: m, Uplo: blas.Lower, Data: A}
	lr.forChunks(S, func(_ int, uc blas64.General) {
		blas64.Syrk(blas.NoTrans, -1, uc, 1, sa)
	})
	for i := 0; i < m; i++ {
		A[i*m+i] += 1
	}
	if _, ok := lapack64.Potrf(blas64.Symmetric{N: m, Stride: m, Uplo: blas.Lower, Data: A}); !ok {
		return nil, fmt.Errorf("hessian: [C⁻¹]_SS over %d positions is not positive definite", len(S))
	}
	for i := 0; i < m; i++ {
		clear(A[i*m+i+1 : (i+1)*m])
	}
	return A, nil
}

// setUpdateFactor is SetUpdate through the factor c of I − U_S U_Sᵀ:
// z = λ (w_S + U_Sᵀ (I − U_S U_Sᵀ)⁻¹ U_S w_S).
func (lr *LowRank) setUpdateFactor(w []float64, S []int, c []float64) ([]float64, float64, error) {
	m, k := lr.m, len(S)
	ws := make([]float64, k)
	for a, q := range S {
		ws[a] = w[q]
	}
	y := make([]float64, m)
	lr.forChunks(S, func(lo int, uc blas64.General) {
		blas64.Gemv(blas.NoTrans, 1, uc, vec(ws[lo:lo+uc.Cols]), 1, vec(y))
	})
	tri := blas64.Triangular{N: m, Stride: m, Uplo: blas.Lower, Diag: blas.NonUnit, Data: c}
	blas64.Trsv(blas.NoTrans, tri, vec(y))
	blas64.Trsv(blas.Trans, tri, vec(y))
	z := slices.Clone(ws)
	t := make([]float64, m)
	lr.forChunks(S, func(lo int, uc blas64.General) {
		zc := z[lo : lo+uc.Cols]
		blas64.Gemv(blas.Trans, 1, uc, vec(y), 1, vec(zc))
		blas64.Scal(lr.lambda, vec(zc))
		blas64.Gemv(blas.NoTrans, 1, uc, vec(zc), 1, vec(t))
	})
	return lr.finishSet(w, S, ws, z, t)
}

// finishSet returns δ = (1/λ) Uᵀ(U_S z) off S and −w_S on S, and the
// saliency ½ w_Sᵀz, given y = U_S z.
func (lr *LowRank) finishSet(w []float64, S []int, ws, z, y []float64) ([]float64, float64, error) {
	n, m := lr.n, lr.m
	saliency := 0.5 * blas64.Dot(vec(ws), vec(z))
	delta := make([]float64, n)
	U := blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}
	blas64.Gemv(blas.Trans, 1/lr.lambda, U, vec(y), 0, vec(delta))
	for j := range delta {
		if lr.removed[j] {
			delta[j] = 0
		}
	}
	for a, q := range S {
		delta[q] = -ws[a]
	}
	if math.IsNaN(saliency) || math.IsInf(saliency, 0) {
		return nil, math.NaN(), fmt.Errorf("hessian: OBS saliency of the set is %v", saliency)
	}
	for _, x := range delta {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, math.NaN(), errors.New("hessian: OBS update of the set is not finite")
		}
	}
	return delta, saliency, nil
}

// columnsTo writes U_S to dst (m×k row-major) and returns it.
func (lr *LowRank) columnsTo(dst []float64, S []int) blas64.General {
	n, m, k := lr.n, lr.m, len(S)
	for i := 0; i < m; i++ {
		row := lr.u[i*n : (i+1)*n]
		out := dst[i*k : (i+1)*k]
		for a, q := range S {
			out[a] = row[q]
		}
	}
	return blas64.General{Rows: m, Cols: k, Stride: k, Data: dst[:m*k]}
}

// cholSolve solves A x = b in place for the symmetric positive definite
// k×k matrix A (row-major, overwritten by its factor).
func cholSolve(A []float64, k int, b []float64) error {
	s := blas64.Symmetric{N: k, Stride: k, Uplo: blas.Lower, Data: A}
	t, ok := lapack64.Potrf(s)
	if !ok {
		return errors.New("not positive definite")
	}
	bm := blas64.General{Rows: k, Cols: 1, Stride: 1, Data: b}
	lapack64.Potrs(t, bm)
	return nil
}

// RemoveSet adds the update of SetUpdate to w (nil: downdate only), restricts
// C to the remaining positions and returns L_S; on error nothing changes.
func (lr *LowRank) RemoveSet(ctx context.Context, S []int, w []float64) (float64, error) {
	// Up to m/4 positions are downdated one by one as in Remove, more with
	// the Cholesky factor M of I − U_S U_Sᵀ = MMᵀ, shared with the update,
	// and one blocked triangular solve U ← M⁻¹ U_R, L ← L M (O(m²·n));
	// both give the same restricted matrix.
	wv := w
	if wv == nil {
		wv = make([]float64, lr.n)
	}
	lr.checkSet(wv, S)
	if len(S) == 0 {
		return 0, nil
	}
	var delta []float64
	var pred float64
	var err error
	var c []float64
	if 4*len(S) <= lr.m {
		delta, pred, err = lr.SetUpdate(wv, S)
	} else if c, err = lr.setFactor(S); err == nil {
		delta, pred, err = lr.setUpdateFactor(wv, S, c)
	}
	if err != nil {
		return math.NaN(), err
	}
	if c == nil {
		for _, q := range S {
			if _, err := lr.Remove(q, nil); err != nil {
				return math.NaN(), err
			}
		}
	} else if err := lr.downdateFactor(ctx, S, c); err != nil {
		return math.NaN(), err
	}
	if w != nil {
		for j, x := range delta {
			w[j] += x
		}
		for _, q := range S {
			w[q] = 0
		}
	}
	return pred, nil
}

// downdateFactor restricts the form to the complement of S given the
// factor c of I − U_S U_Sᵀ: U ← c⁻¹U_R, L ← L·c.
func (lr *LowRank) downdateFactor(ctx context.Context, S []int, c []float64) error {
	n, m := lr.n, lr.m
	for _, q := range S {
		for i := 0; i < m; i++ {
			lr.u[i*n+q] = 0
		}
		lr.removed[q] = true
	}
	if err := lowerSolve(ctx, c, m, blas64.General{Rows: m, Cols: n, Stride: n, Data: lr.u}); err != nil {
		return err
	}
	L := make([]float64, m*m)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: m, Cols: m, Stride: m, Data: lr.l},
		blas64.General{Rows: m, Cols: m, Stride: m, Data: c}, 0,
		blas64.General{Rows: m, Cols: m, Stride: m, Data: L})
	lr.l = L
	lr.nlive -= len(S)
	lr.fillDiag()
	return nil
}

// gradRows computes per-sample or per-batch gradient rows with the
// network's public forward pass and a back-propagation over a chunk of
// samples, the per-sample gradient of W_l being the outer product of the
// layer's δ and its input.
type gradRows struct {
	net  *nn.Network
	tr   *nn.Trace
	d    []*mat.Dense
	full []float64 // one row over all parameters
}

func newGradRows(net *nn.Network, rows int) *gradRows {
	g := &gradRows{net: net, tr: net.NewTrace(rows), full: make([]float64, net.NumParams())}
	for l := 0; l < net.NumLayers(); l++ {
		g.d = append(g.d, mat.NewDense(rows, net.Layer(l).Out, nil))
	}
	return g
}

// batchRows writes to dst the gradients of the samples lo..hi−1 of p over
// its covered parameters, summed in consecutive groups of batch samples:
// ⌈(hi−lo)/batch⌉ rows of p.Dim().
func (g *gradRows) batchRows(dst []float64, p *Problem, lo, hi, batch int) {
	n := p.Dim()
	clear(dst)
	_, tc := p.X.Dims()
	_, yc := p.Y.Dims()
	chunk, _ := g.d[0].Dims()
	for c0 := lo; c0 < hi; c0 += chunk {
		c1 := min(c0+chunk, hi)
		X := p.X.Slice(c0, c1, 0, tc).(*mat.Dense)
		Y := p.Y.Slice(c0, c1, 0, yc).(*mat.Dense)
		g.deltas(X, Y)
		for i := 0; i < c1-c0; i++ {
			g.sampleGradient(X, i)
			row := dst[((c0+i-lo)/batch)*n:][:n]
			if p.Params == nil {
				for q, x := range g.full {
					row[q] += x
				}
				continue
			}
			for a, q := range p.Params {
				row[a] += g.full[q]
			}
		}
	}
}

// deltas runs the forward and backward passes over X, Y and leaves
// dℓₙ/dA_l in g.d.
func (g *gradRows) deltas(X, Y *mat.Dense) {
	net := g.net
	rows, _ := X.Dims()
	net.ForwardTrace(g.tr, X)
	L := net.NumLayers() - 1
	D := g.d[L].Slice(0, rows, 0, net.Layer(L).Out).(*mat.Dense)
	net.OutputDelta(D, g.tr, Y)
	for l := L; l > 0; l-- {
		prev := net.Layer(l - 1)
		Dp := g.d[l-1].Slice(0, rows, 0, prev.Out).(*mat.Dense)
		Dp.Mul(D, net.Weights(l))
		A, Z := g.tr.A[l-1], g.tr.Z[l-1]
		for i := 0; i < rows; i++ {
			drow := Dp.RawRowView(i)
			arow, zrow := A.RawRowView(i), Z.RawRowView(i)
			for j := range drow {
				drow[j] *= prev.Act.Deriv(arow[j], zrow[j])
			}
		}
		D = Dp
	}
}

// sampleGradient writes the gradient of sample i of the last deltas to
// g.full, zero at pruned parameters.
func (g *gradRows) sampleGradient(X *mat.Dense, i int) {
	net := g.net
	for l := 0; l < net.NumLayers(); l++ {
		ly := net.Layer(l)
		var z []float64
		if l == 0 {
			z = X.RawRowView(i)
		} else {
			z = g.tr.Z[l-1].RawRowView(i)
		}
		d := g.d[l].RawRowView(i)
		o := net.Offset(l)
		for j, dj := range d {
			seg := g.full[o+j*ly.In : o+(j+1)*ly.In]
			for h, zv := range z {
				seg[h] = dj * zv
			}
			g.full[o+ly.Out*ly.In+j] = dj
		}
	}
	for q := range g.full {
		if !net.IsLive(q) {
			g.full[q] = 0
		}
	}
}
