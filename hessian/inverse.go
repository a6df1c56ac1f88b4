package hessian

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// MaxCondition is the condition number above which DampedInverse reports
// the damped matrix as near-singular (relative error ≳ MaxCondition·ε).
const MaxCondition = 1e14

// Errors: a matrix with a NaN or infinite entry, and the error a
// *PivotError wraps.
var (
	ErrNotFinite        = errors.New("hessian: matrix has a NaN or infinite entry")
	ErrNonPositivePivot = errors.New("hessian: non-positive pivot")
)

// NotPositiveDefiniteError reports that H + λI, λ = Lambda, is not positive
// definite. MinEigenvalue is the smallest eigenvalue of H (NaN: unknown);
// Suggest is a damping that gives a condition number of about 2·10⁸ at most.
type NotPositiveDefiniteError struct {
	Lambda, MinEigenvalue, Suggest float64
}

func (e *NotPositiveDefiniteError) Error() string {
	if math.IsNaN(e.MinEigenvalue) {
		return fmt.Sprintf("hessian: H + λI is not positive definite at λ = %g; retry with λ = %g",
			e.Lambda, e.Suggest)
	}
	return fmt.Sprintf("hessian: H + λI is not positive definite at λ = %g: the smallest eigenvalue of H is %.6g; "+
		"retry with λ = %g", e.Lambda, e.MinEigenvalue, e.Suggest)
}

// DampedInverse sets dst (empty or H's size, possibly H) to (H + λI)⁻¹, λ ≥ 0,
// by a Cholesky factorization. It returns a *NotPositiveDefiniteError (dst
// unspecified) when H + λI is not positive definite, a mat.Condition (dst
// the computed inverse) when LAPACK's condition estimate is above
// MaxCondition, and ErrNotFinite for an H with a NaN or infinite entry.
func DampedInverse(dst *mat.SymDense, H mat.Symmetric, lambda float64) error {
	if !(lambda >= 0) {
		panic("hessian: negative or NaN damping")
	}
	n := H.SymmetricDim()
	if dst.IsEmpty() {
		dst.ReuseAsSym(n)
	} else if dst.SymmetricDim() != n {
		panic(mat.ErrShape)
	}
	if n == 0 {
		return nil
	}
	if !symFinite(H) {
		return ErrNotFinite
	}
	work := dst
	aliased := sameSym(dst, H)
	if aliased {
		work = mat.NewSymDense(n, nil)
	}
	work.CopySym(H)
	a := work.RawSymmetric()
	for i := 0; i < n; i++ {
		a.Data[i*a.Stride+i] += lambda
	}
	fwork := make([]float64, 3*n)
	iwork := make([]int, n)
	anorm := lapack64.Lansy(lapack.MaxColumnSum, a, fwork)
	t, ok := lapack64.Potrf(a)
	if !ok {
		return notPD(H, lambda)
	}
	cond := 1 / lapack64.Pocon(a, anorm, fwork, iwork)
	if _, ok := lapack64.Potri(t); !ok {
		return mat.Condition(math.Inf(1))
	}
	if aliased {
		dst.CopySym(work)
	}
	if cond > MaxCondition {
		return mat.Condition(cond)
	}
	return nil
}

// notPD builds the error for an H + λI that is not positive definite. Suggest
// is the power of ten at or above max(2·max(−λ_min, 0), 10⁻⁸·max|λᵢ|), with
// Gershgorin's bounds when the eigenvalues are unavailable.
func notPD(H mat.Symmetric, lambda float64) *NotPositiveDefiniteError {
	e := &NotPositiveDefiniteError{Lambda: lambda, MinEigenvalue: math.NaN()}
	var lmin, rho float64
	var eig mat.EigenSym
	if eig.Factorize(H, false) {
		vals := eig.RawValues()
		lmin = vals[0]
		rho = math.Max(math.Abs(vals[0]), math.Abs(vals[len(vals)-1]))
		e.MinEigenvalue = lmin
	} else {
		lmin, rho = gershgorin(H)
	}
	lower := math.Max(2*math.Max(-lmin, 0), 1e-8*rho)
	if lower == 0 {
		e.Suggest = 1
	} else {
		e.Suggest = math.Pow(10, math.Ceil(math.Log10(lower)))
	}
	return e
}

// gershgorin returns Gershgorin's lower bound on the smallest eigenvalue of
// a and its bound on the spectral radius.
func gershgorin(a mat.Symmetric) (lower, radius float64) {
	n := a.SymmetricDim()
	lower = math.Inf(1)
	for i := 0; i < n; i++ {
		var off float64
		for j := 0; j < n; j++ {
			if j != i {
				off += math.Abs(a.At(i, j))
			}
		}
		d := a.At(i, i)
		lower = math.Min(lower, d-off)
		radius = math.Max(radius, math.Abs(d)+off)
	}
	return lower, radius
}

// symFinite reports whether every entry of a is finite.
func symFinite(a mat.Symmetric) bool {
	n := a.SymmetricDim()
	if r, ok := a.(mat.RawSymmetricer); ok {
		raw := r.RawSymmetric()
		for i := 0; i < n; i++ {
			lo, hi := i, n
			if raw.Uplo == blas.Lower {
				lo, hi = 0, i+1
			}
			for _, v := range raw.Data[i*raw.Stride+lo : i*raw.Stride+hi] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return false
				}
			}
		}
		return true
	}
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			if v := a.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// sameSym reports whether dst and a share their first element.
func sameSym(dst *mat.SymDense, a mat.Symmetric) bool {
	r, ok := a.(mat.RawSymmetricer)
	if !ok || dst.IsEmpty() {
		return false
	}
	ad, dd := r.RawSymmetric().Data, dst.RawSymmetric().Data
	return len(ad) > 0 && len(dd) > 0 && &ad[0] == &dd[0]
}

// Escalation is a schedule of dampings for DampedInverseEscalating: Start
// (zero: none), then Factor (> 1; zero: 10) times the last (10⁻⁸·‖H‖_F after
// zero) up to Max (zero: 10·‖H‖_F, enough for any finite H). Log, when not
// nil, receives each failed damping and its error.
type Escalation struct {
	Start, Factor, Max float64
	Log                func(lambda float64, err error)
}

// DampedInverseEscalating sets dst to (H + λI)⁻¹ for the first λ of the
// schedule e (nil: the defaults) at which DampedInverse succeeds and returns
// λ, or the last λ tried and an error wrapping its failure.
func DampedInverseEscalating(dst *mat.SymDense, H mat.Symmetric, e *Escalation) (lambda float64, err error) {
	var sch Escalation
	if e != nil {
		sch = *e
	}
	if sch.Factor == 0 {
		sch.Factor = 10
	}
	if !(sch.Factor > 1) || !(sch.Start >= 0) || !(sch.Max >= 0) {
		panic("hessian: invalid escalation schedule")
	}
	if H.SymmetricDim() == 0 {
		return sch.Start, DampedInverse(dst, H, sch.Start)
	}
	if !symFinite(H) {
		return sch.Start, ErrNotFinite
	}
	if sameSym(dst, H) {
		// A failed attempt may leave its result in dst; keep H intact for
		// the next one.
		H = mat.NewSymDense(H.SymmetricDim(), nil)
		H.(*mat.SymDense).CopySym(dst)
	}
	s := mat.Norm(H, 2) // the Frobenius norm
	if s == 0 {
		s = 1
	}
	if sch.Max == 0 {
		sch.Max = 10 * s
	}
	lambda = math.Min(sch.Start, sch.Max)
	for {
		err = DampedInverse(dst, H, lambda)
		if err == nil {
			return lambda, nil
		}
		var npd *NotPositiveDefiniteError
		var cond mat.Condition
		if !errors.As(err, &npd) && !errors.As(err, &cond) {
			return lambda, err
		}
		if sch.Log != nil {
			sch.Log(lambda, err)
		}
		if lambda >= sch.Max {
			return lambda, fmt.Errorf("hessian: no damping up to %g gives a usable inverse: %w", sch.Max, err)
		}
		if lambda == 0 {
			lambda = 1e-8 * s
		} else {
			lambda *= sch.Factor
		}
		lambda = math.Min(lambda, sch.Max)
	}
}

// RecursiveInverse is the inverse Hessian of Optimal Brain Surgeon by
// Hassibi and Stork's recursion over the rows X = Bₙ Jₙ of WeightedJacobian
// (P samples), without forming the Hessian:
//
//	H⁻¹₀ = (Pα)⁻¹I,
//	H⁻¹ₘ₊₁ = H⁻¹ₘ − H⁻¹ₘ Xₘ₊₁ Xₘ₊₁ᵀ H⁻¹ₘ / (1 + Xₘ₊₁ᵀ H⁻¹ₘ Xₘ₊₁),
//	H⁻¹ = (PαI + G)⁻¹ after all of them,
//
// G the Gauss–Newton matrix of the summed loss (the paper's mean-loss
// inverse divided by P). Alpha is α (zero: DefaultAlpha); Block is the
// samples per Woodbury update (1: rank-one steps; zero: min(64, max(1,
// W/(16o))) for o outputs); MaxBytes is as in CheckMemory. It costs about
// 4·P·o·W² flops.
//
// References:
//
//	B. Hassibi and D. G. Stork, Second order derivatives for network
//	  pruning: Optimal Brain Surgeon, NIPS 5, 1993.
//	B. Hassibi, D. G. Stork and G. J. Wolff, Optimal Brain Surgeon and
//	  general network pruning, IEEE ICNN, 1993.
type RecursiveInverse struct {
	P        *Problem
	Alpha    float64
	Block    int
	MaxBytes int64
}

// Dim returns the number of parameters covered.
func (r RecursiveInverse) Dim() int { return r.P.Dim() }

// alpha returns α. Hassibi and Stork used 10⁻⁸ ≤ α ≤ 10⁻⁴; the condition
// number of the result is at most 1 + ρ(G)/(Pα).
func (r RecursiveInverse) alpha() float64 {
	if r.Alpha == 0 {
		return 1e-4
	}
	return r.Alpha
}

// block returns the samples per update: an update of k = Block·o rows costs
// about 4kW² flops in matrix products plus 3k²W in the k×k system, and
// k ≤ W/16 keeps the latter below a twentieth of the former.
func (r RecursiveInverse) block() int {
	if r.Block <= 0 {
		return min(64, max(1, r.P.Dim()/(16*r.P.Net.Outputs())))
	}
	return r.Block
}

// InverseTo sets dst (empty, or Dim×Dim) to (PαI + G)⁻¹ by the recursion.
// It returns an error when the data do not fit the network or the recursion
// loses positive definiteness (a non-finite Jacobian, or α too small).
func (r RecursiveInverse) InverseTo(ctx context.Context, dst *mat.SymDense) error {
	pr := r.P
	alpha := r.alpha()
	if !(alpha > 0) || math.IsInf(alpha, 1) {
		panic("hessian: RecursiveInverse needs a positive finite Alpha")
	}
	if err := pr.Check(); err != nil {
		return err
	}
	W := pr.Dim()
	if dst.IsEmpty() {
		if err := CheckMemory("recursive inverse", W, r.MaxBytes); err != nil {
			return err
		}
		dst.ReuseAsSym(W)
	} else if dst.SymmetricDim() != W {
		panic("hessian: destination has the wrong size")
	}
	b := r.block()
	h := dst.RawSymmetric()
	N, _ := pr.X.Dims()
	// With no samples the result is (αI)⁻¹, as for P = 1.
	d0 := 1 / (float64(max(N, 1)) * alpha)
	for i := 0; i < W; i++ {
		row := h.Data[i*h.Stride : i*h.Stride+W]
		clear(row)
		row[i] = d0
	}
	if N == 0 || W == 0 {
		return nil
	}
	outL := pr.Net.Outputs()
	// Jacobian chunks hold a whole number of blocks.
	chunk := b * max(1, parallel.ChunkRows/b)
	chunk = min(chunk, N)
	jw := newJacobianWork(pr, chunk)
	if b == 1 {
		hx := blas64.Vector{N: W, Inc: 1, Data: make([]float64, W)}
		for lo := 0; lo < N; lo += chunk {
			hi := min(lo+chunk, N)
			J := jw.fill(lo, hi).RawMatrix()
			for row := 0; row < J.Rows; row++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				x := blas64.Vector{N: W, Inc: 1, Data: J.Data[row*J.Stride : row*J.Stride+W]}
				blas64.Symv(1, h, x, 0, hx)
				d := 1 + blas64.Dot(x, hx)
				if !(d > 0) || math.IsInf(d, 1) {
					return recursionError(lo+row/outL, d)
				}
				blas64.Syr(-1/d, hx, h)
			}
		}
		return finishRecursion(dst, N)
	}
	// The Woodbury updates keep both triangles of H⁻¹ in dst's storage so
	// that its products are general matrix products.
	hg := blas64.General{Rows: W, Cols: W, Stride: h.Stride, Data: h.Data}
	kmax := min(b, N) * outL
	v := make([]float64, kmax*W)
	s := make([]float64, kmax*kmax)
	for lo := 0; lo < N; lo += chunk {
		hi := min(lo+chunk, N)
		J := jw.fill(lo, hi).RawMatrix()
		for s0 := lo; s0 < hi; s0 += b {
			if err := ctx.Err(); err != nil {
				return err
			}
			s1 := min(s0+b, hi)
			r0, r1 := (s0-lo)*outL, (s1-lo)*outL
			k := r1 - r0
			U := blas64.General{Rows: k, Cols: W, Stride: J.Stride, Data: J.Data[r0*J.Stride:]}
			V := blas64.General{Rows: k, Cols: W, Stride: W, Data: v[:k*W]}
			// V = Uᵀ H⁻¹ (k×W), S = I + Uᵀ H⁻¹ U (k×k).
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, U, hg, 0, V)
			S := blas64.General{Rows: k, Cols: k, Stride: k, Data: s[:k*k]}
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, U, V, 0, S)
			for i := 0; i < k; i++ {
				S.Data[i*k+i]++
			}
			// S = RᵀR; H⁻¹ ← H⁻¹ − ZᵀZ with Z = R⁻ᵀV.
			R, ok := lapack64.Potrf(blas64.Symmetric{N: k, Uplo: blas.Upper, Stride: k, Data: S.Data})
			if !ok {
				return recursionError(s0, math.NaN())
			}
			blas64.Trsm(blas.Left, blas.Trans, 1, R, V)
			blas64.Gemm(blas.Trans, blas.NoTrans, -1, V, V, 1, hg)
		}
	}
	return finishRecursion(dst, N)
}

// finishRecursion checks the result of the recursion over N samples.
func finishRecursion(dst *mat.SymDense, N int) error {
	if !symFinite(dst) {
		return recursionError(N, math.NaN())
	}
	return nil
}

func recursionError(sample int, d float64) error {
	return fmt.Errorf("hessian: recursive inverse lost positive definiteness at sample %d (pivot %g): "+
		"non-finite Jacobian or Alpha too small", sample, d)
}

// PivotError reports a pivot [H⁻¹]_qq that is not positive and finite.
type PivotError struct {
	Index int
	Pivot float64
}

func (e *PivotError) Error() string {
	return fmt.Sprintf("hessian: cannot remove parameter %d: pivot [H⁻¹]_qq = %g is not positive", e.Index, e.Pivot)
}

// Unwrap returns ErrNonPositivePivot.
func (e *PivotError) Unwrap() error { return ErrNonPositivePivot }

// Downdate removes parameter q from the inverse Hessian hinv in place, in
// O(W²), and zeroes row and column q; the rest is the inverse of H without q:
//
//	H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq.
//
// It returns a *PivotError and leaves hinv unchanged when [H⁻¹]_qq is not
// positive and finite.
func Downdate(hinv *mat.SymDense, q int) error {
	n := hinv.SymmetricDim()
	if q < 0 || q >= n {
		panic(mat.ErrIndexOutOfRange)
	}
	h := hinv.RawSymmetric()
	p := h.Data[q*h.Stride+q]
	if !(p > 0) || math.IsInf(p, 1) {
		return &PivotError{Index: q, Pivot: p}
	}
	x := make([]float64, n)
	for i := 0; i < q; i++ {
		x[i] = h.Data[i*h.Stride+q]
	}
	copy(x[q:], h.Data[q*h.Stride+q:q*h.Stride+n])
	blas64.Syr(-1/p, blas64.Vector{N: n, Inc: 1, Data: x}, h)
	for i := 0; i < q; i++ {
		h.Data[i*h.Stride+q] = 0
	}
	clear(h.Data[q*h.Stride+q : q*h.Stride+n])
	return nil
}

// Reduce sets dst (empty or len(keep)², possibly a itself) to the principal
// submatrix dst[i][j] = a[keep[i]][keep[j]].
func Reduce(dst *mat.SymDense, a mat.Symmetric, keep []int) {
	n := a.SymmetricDim()
	for _, q := range keep {
		if q < 0 || q >= n {
			panic(mat.ErrIndexOutOfRange)
		}
	}
	k := len(keep)
	if !dst.IsEmpty() && dst.SymmetricDim() != k {
		panic(mat.ErrShape)
	}
	if sameSym(dst, a) {
		c := mat.NewSymDense(n, nil)
		c.CopySym(a)
		a = c
	}
	if dst.IsEmpty() {
		dst.ReuseAsSym(k)
	}
	for i, qi := range keep {
		for j := i; j < k; j++ {
			dst.SetSym(i, j, a.At(qi, keep[j]))
		}
	}
}
