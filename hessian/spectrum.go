package hessian

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/secondorder/prune/internal/sysmem"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// errEigen is returned when the symmetric eigenvalue iteration fails.
var errEigen = errors.New("hessian: symmetric eigenvalue iteration did not converge")

// Eigenvalues returns the eigenvalues of H in ascending order by
// mat.EigenSym, or ErrNotFinite for an H with a NaN or infinite entry.
func Eigenvalues(H mat.Symmetric) ([]float64, error) {
	if H.SymmetricDim() == 0 {
		return nil, nil
	}
	if !symFinite(H) {
		return nil, ErrNotFinite
	}
	var eig mat.EigenSym
	if !eig.Factorize(H, false) {
		return nil, errEigen
	}
	return eig.Values(nil), nil
}

// Summary describes the spectrum of a symmetric matrix: trace, extreme
// eigenvalues, condition number max|λᵢ|/min|λᵢ| (+Inf for an exact zero)
// and the negative and zero eigenvalues, zero within n·ε·max|λᵢ|.
type Summary struct {
	Dim                      int
	Trace, Min, Max          float64
	Condition                float64
	PositiveDefinite         bool
	NegativeCount, ZeroCount int
}

// Summarize returns the spectral summary of H from its eigenvalues.
func Summarize(H mat.Symmetric) (Summary, error) {
	n := H.SymmetricDim()
	if n == 0 {
		return Summary{}, nil
	}
	vals, err := Eigenvalues(H)
	if err != nil {
		return Summary{Dim: n}, err
	}
	var trace float64
	for i := 0; i < n; i++ {
		trace += H.At(i, i)
	}
	return SummarizeValues(vals, trace), nil
}

// SummarizeValues returns the summary of the ascending eigenvalues vals of
// a matrix of the given trace.
func SummarizeValues(vals []float64, trace float64) Summary {
	n := len(vals)
	s := Summary{Dim: n, Trace: trace}
	if n == 0 {
		return s
	}
	s.Min, s.Max = vals[0], vals[n-1]
	big := math.Max(math.Abs(s.Min), math.Abs(s.Max))
	small := math.Inf(1)
	tol := float64(n) * eps * big
	for _, v := range vals {
		small = math.Min(small, math.Abs(v))
		switch {
		case v < -tol:
			s.NegativeCount++
		case v <= tol:
			s.ZeroCount++
		}
	}
	s.PositiveDefinite = s.Min > tol
	if small == 0 {
		s.Condition = math.Inf(1)
	} else {
		s.Condition = big / small
	}
	return s
}

// eps is the machine epsilon of float64, 2⁻⁵².
const eps = 0x1p-52

// LanczosSettings configures Lanczos; zero fields select the defaults.
// MaxIter bounds the steps (default min(Dim, max(200, 10k))); Tol is the
// residual tolerance relative to the largest |Ritz value| (default 1e-10);
// Src draws the start vector (nil: a fixed seed); MaxBytes limits the
// 8·MaxIter·Dim bytes of the Lanczos vectors as in CheckMemory.
type LanczosSettings struct {
	MaxIter  int
	Tol      float64
	Src      rand.Source
	MaxBytes int64
}

// LanczosResult holds the k largest Ritz values, descending, and the k
// smallest, ascending (overlapping when there are fewer than 2k), the
// residual norms ‖C y − θ y‖ of their unit Ritz vectors (bounds on the
// distance from θ to an eigenvalue), the steps and whether all converged.
type LanczosResult struct {
	Largest, Smallest                   []float64
	LargestResiduals, SmallestResiduals []float64
	Iterations                          int
	Converged                           bool
}

// Lanczos estimates the k largest and the k smallest eigenvalues of c
// (k ≥ 1, clamped to Dim) from products only, by the symmetric Lanczos
// process with full reorthogonalization and orthogonal restarts, so that
// MaxIter = Dim finds the whole spectrum; step j costs O(jW) flops.
//
// References:
//
//	C. Lanczos, An iteration method for the solution of the eigenvalue
//	  problem of linear differential and integral operators, 1950.
//	G. H. Golub and C. F. Van Loan, Matrix Computations, 4th ed., §10.1–10.3.
func Lanczos(ctx context.Context, c Curvature, k int, s *LanczosSettings) (LanczosResult, error) {
	// Full reorthogonalization keeps spurious copies of eigenvalues out;
	// without a restart a repeated eigenvalue is reported once. The run
	// stops when the residuals of the 2k wanted Ritz values are below Tol
	// times the largest |Ritz value|, and checks ctx once per step.
	// βⱼ qⱼ₊₁ = C qⱼ − αⱼ qⱼ − βⱼ₋₁ qⱼ₋₁, reorthogonalized by classical
	// Gram–Schmidt applied twice against all previous vectors. The Ritz
	// values are the eigenvalues of the tridiagonal T of the α and β
	// (mat.EigenSym); the residual of a Ritz pair is |β_m s_m|, s_m the last
	// entry of its eigenvector of T. βⱼ below 10⁻¹² of the norm estimate
	// means an invariant Krylov space, whose Ritz values are eigenvalues.
	if k <= 0 {
		panic("hessian: Lanczos needs k > 0")
	}
	var set LanczosSettings
	if s != nil {
		set = *s
	}
	n := c.Dim()
	var res LanczosResult
	if n == 0 {
		res.Converged = true
		return res, nil
	}
	k = min(k, n)
	m := set.MaxIter
	if m <= 0 {
		m = max(200, 10*k)
	}
	m = min(m, n)
	tol := set.Tol
	if tol == 0 {
		tol = 1e-10
	}
	if set.MaxBytes >= 0 {
		limit := set.MaxBytes
		if limit == 0 {
			limit = DefaultMemoryLimit()
		}
		if b := 8 * int64(m) * int64(n); b > limit {
			return res, fmt.Errorf("hessian: %d Lanczos vectors of %d parameters need %s, above the memory limit of %s; lower MaxIter",
				m, n, sysmem.FormatBytes(b), sysmem.FormatBytes(limit))
		}
	}
	src := set.Src
	if src == nil {
		src = rand.NewPCG(1, 2)
	}
	rng := rand.New(src)

	Q := make([]float64, m*n) // Lanczos vectors, one per row
	w := make([]float64, n)
	h := make([]float64, m)
	alpha := make([]float64, m)
	beta := make([]float64, m) // beta[j] couples steps j and j+1
	wv := blas64.Vector{N: n, Inc: 1, Data: w}

	randomUnit(rng, Q[:n], nil, nil)
	var norm float64 // max |αⱼ| + βⱼ₋₁ + βⱼ, within a factor 3 of ‖C‖
	lastCheck := 0
	steps := 0
	ritz := newRitzWork(m)
	for j := 0; j < m; j++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		qj := Q[j*n : (j+1)*n]
		c.MulVecTo(w, qj)
		basis := blas64.General{Rows: j + 1, Cols: n, Stride: n, Data: Q[:(j+1)*n]}
		hv := blas64.Vector{N: j + 1, Inc: 1, Data: h[:j+1]}
		for pass := 0; pass < 2; pass++ {
			blas64.Gemv(blas.NoTrans, 1, basis, wv, 0, hv)
			blas64.Gemv(blas.Trans, -1, basis, hv, 1, wv)
			alpha[j] += h[j]
		}
		beta[j] = blas64.Nrm2(wv)
		prev := 0.0
		if j > 0 {
			prev = beta[j-1]
		}
		norm = math.Max(norm, math.Abs(alpha[j])+prev+beta[j])
		steps = j + 1
		if j+1 == m {
			break
		}
		next := Q[(j+1)*n : (j+2)*n]
		if beta[j] <= 1e-12*norm {
			// Invariant subspace: restart orthogonally to it.
			beta[j] = 0
			if !randomUnit(rng, next, Q[:(j+1)*n], h) {
				break
			}
			continue
		}
		for i, x := range w {
			next[i] = x / beta[j]
		}
		if steps >= min(n, 2*k) && steps-lastCheck >= max(10, steps/8) {
			lastCheck = steps
			if err := ritz.compute(alpha[:steps], beta[:steps]); err != nil {
				return res, err
			}
			if ritz.converged(k, tol) {
				break
			}
		}
	}
	if lastCheck != steps {
		if err := ritz.compute(alpha[:steps], beta[:steps]); err != nil {
			return res, err
		}
	}
	res = ritz.result(k, tol)
	res.Iterations = steps
	return res, nil
}

// randomUnit fills v with a random unit vector orthogonal to the rows of
// basis (n columns, nil for none), using h (at least as long as the number
// of rows) as workspace, and reports whether one was found.
func randomUnit(rng *rand.Rand, v, basis, h []float64) bool {
	n := len(v)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	vv := blas64.Vector{N: n, Inc: 1, Data: v}
	before := blas64.Nrm2(vv)
	if r := len(basis) / n; r > 0 {
		B := blas64.General{Rows: r, Cols: n, Stride: n, Data: basis}
		hv := blas64.Vector{N: r, Inc: 1, Data: h[:r]}
		for pass := 0; pass < 2; pass++ {
			blas64.Gemv(blas.NoTrans, 1, B, vv, 0, hv)
			blas64.Gemv(blas.Trans, -1, B, hv, 1, vv)
		}
	}
	nrm := blas64.Nrm2(vv)
	if !(nrm > 1e-8*before) {
		return false
	}
	blas64.Scal(1/nrm, vv)
	return true
}

// ritzWork holds the Ritz values and residual norms of a Lanczos
// tridiagonal matrix, and the workspace of their computation, allocated
// once for the largest number of steps so that the checks during the
// iteration allocate nothing.
type ritzWork struct {
	vals, resid []float64
	e, z, work  []float64
}

func newRitzWork(m int) ritzWork {
	return ritzWork{
		vals: make([]float64, m), resid: make([]float64, m),
		e: make([]float64, m), z: make([]float64, m*m), work: make([]float64, max(1, 2*m)),
	}
}

// compute finds the eigenpairs of the m×m tridiagonal matrix with diagonal
// alpha and off-diagonal beta[:m−1] by the implicit QL/QR method (LAPACK's
// Dsteqr); beta[m−1] scales the residuals.
func (r *ritzWork) compute(alpha, beta []float64) error {
	m := len(alpha)
	d := r.vals[:m]
	copy(d, alpha)
	e := r.e[:max(0, m-1)]
	copy(e, beta[:max(0, m-1)])
	z := r.z[:m*m]
	if !(gonum.Implementation{}).Dsteqr(lapack.EVTridiag, m, d, e, z, m, r.work[:max(1, 2*m-2)]) {
		return errEigen
	}
	r.vals = r.vals[:cap(r.vals)]
	r.resid = r.resid[:m]
	for i := range r.resid {
		r.resid[i] = math.Abs(beta[m-1] * z[(m-1)*m+i])
	}
	r.vals = d
	return nil
}

func (r *ritzWork) scale() float64 {
	m := len(r.vals)
	return math.Max(math.Abs(r.vals[0]), math.Abs(r.vals[m-1]))
}

// converged reports whether the k smallest and k largest Ritz pairs have
// relative residuals within tol.
func (r *ritzWork) converged(k int, tol float64) bool {
	m := len(r.vals)
	lim := tol * r.scale()
	for i := 0; i < min(k, m); i++ {
		if r.resid[i] > lim || r.resid[m-1-i] > lim {
			return false
		}
	}
	return true
}

func (r *ritzWork) result(k int, tol float64) LanczosResult {
	m := len(r.vals)
	k = min(k, m)
	res := LanczosResult{
		Largest:           make([]float64, k),
		Smallest:          make([]float64, k),
		LargestResiduals:  make([]float64, k),
		SmallestResiduals: make([]float64, k),
		Converged:         r.converged(k, tol),
	}
	for i := 0; i < k; i++ {
		res.Smallest[i], res.SmallestResiduals[i] = r.vals[i], r.resid[i]
		res.Largest[i], res.LargestResiduals[i] = r.vals[m-1-i], r.resid[m-1-i]
	}
	return res
}

// Trace returns the trace of c, the sum of Diag (see also Hutchinson).
func Trace(ctx context.Context, c Curvature) (float64, error) {
	d, err := Diag(ctx, c)
	if err != nil {
		return 0, err
	}
	var tr float64
	for _, v := range d {
		tr += v
	}
	return tr, nil
}
