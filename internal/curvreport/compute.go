package curvreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/prune/hessian"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// ErrNotFinite is wrapped by the error of Compute when the curvature has a
// NaN or infinite entry.
var ErrNotFinite = errors.New("has NaN or infinite entries")

// Compute computes the curvature s describes on pr, with its summary. It
// returns a *hessian.MemoryError before any work when the W×W matrices held
// at once would exceed the limit.
func Compute(ctx context.Context, pr *hessian.Problem, s *Settings) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	kind, _ := KindNamed(s.Kind)
	bar := s.Progress
	if bar == nil {
		bar = noProgress{}
	}
	defer bar.Stop()
	W := pr.Dim()
	res := &Result{Summary: Summary{
		Kind: kind.Name, Curvature: kind.Desc, W: W, TotalParams: pr.Net.NumParams(),
		Inverse: s.Inverse, Spectrum: s.Spectrum(),
	}}
	sum := &res.Summary
	start := time.Now()
	if !kind.Matrix {
		v, err := buildVector(ctx, kind, s, pr, bar)
		if err != nil {
			return nil, err
		}
		sum.BuildSeconds = time.Since(start).Seconds()
		sum.Shape = []int{W}
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("the %s %w", kind.Desc, ErrNotFinite)
			}
		}
		if kind.Name == "hutchinson" {
			sum.Probes = cmpOr(s.Probes, hessian.DefaultProbes)
		}
		sum.SpectrumOf = "entries"
		vectorSummary(sum, v, sum.Spectrum != "none")
		if s.eigenK() > 0 {
			var base hessian.Curvature = hessian.Exact{P: pr}
			desc := "exact Hessian H"
			if kind.Name == "diag-lm" {
				base, desc = hessian.GaussNewton{P: pr}, "Gauss–Newton matrix G"
			}
			if sum.Eigen, err = lanczos(ctx, base, desc, s, bar); err != nil {
				return nil, err
			}
		}
		res.Vector = v
		return res, nil
	}
	if err := checkMemory(kind, s, pr); err != nil {
		return nil, err
	}
	H, err := buildMatrix(ctx, kind, s, pr, bar)
	if err != nil {
		return nil, err
	}
	sum.BuildSeconds = time.Since(start).Seconds()
	sum.Shape = []int{W, W}
	if !symIsFinite(H) {
		return nil, fmt.Errorf("the %s %w", kind.Desc, ErrNotFinite)
	}
	sum.SpectrumOf = "curvature"
	if kind.Name == "recursive" {
		sum.SpectrumOf = "output"
		a := cmpOr(s.Alpha, hessian.DefaultAlpha)
		sum.Alpha = &a
	}
	var op hessian.Curvature = symCurvature{H}
	switch kind.Name {
	case "exact":
		// The matrix-free products: the same matrix to rounding at a
		// fraction of the cost of a product with the formed matrix.
		op = hessian.Exact{P: pr}
	case "gn":
		op = hessian.GaussNewton{P: pr}
	}
	if err := matrixSpectrum(ctx, sum, H, op, kind, s, bar); err != nil {
		return nil, err
	}
	if s.Inverse {
		inv, lambda, err := invert(H, kind, s, bar)
		if err != nil {
			return nil, err
		}
		H = inv
		sum.Damping = &lambda
	}
	res.Matrix = H
	return res, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkMemory returns a *hessian.MemoryError when the W×W matrices held at
// once would need more than the limit: the matrix, a copy for its
// eigenvalues, and with an inverse the work matrix and the copy that
// DampedInverse takes for the eigenvalues of a failure. The exact build
// over the live parameters of a pruned network also needs a full-order
// scratch matrix.
func checkMemory(kind Kind, s *Settings, pr *hessian.Problem) error {
	limit := s.limit()
	if limit < 0 {
		return nil
	}
	W := pr.Dim()
	count, what := 1, kind.Desc
	switch {
	case s.Inverse:
		count, what = 3, what+" with its inverse"
	case s.Spectrum() == "dense":
		count, what = 2, what+" with its eigenvalues"
	}
	bytes := int64(count) * hessian.DenseBytes(W)
	if total := pr.Net.NumParams(); kind.Name == "exact" && W < total {
		bytes = max(bytes, hessian.DenseBytes(W)+hessian.DenseBytes(total))
	}
	if count > 1 {
		what += fmt.Sprintf(" (%d matrices)", count)
	}
	if bytes <= limit {
		return nil
	}
	err := &hessian.MemoryError{What: what, Dim: W, Bytes: bytes, Limit: limit}
	if count == 2 && hessian.DenseBytes(W) <= limit {
		return fmt.Errorf("%w; without Settings.FullSpectrum only the matrix is needed", err)
	}
	return err
}

// buildMatrix computes the dense matrix of a matrix kind; the memory was
// checked for all matrices together.
func buildMatrix(ctx context.Context, kind Kind, s *Settings, pr *hessian.Problem, bar Progress) (*mat.SymDense, error) {
	bar.Start(fmt.Sprintf("%s, W = %d", kind.Desc, pr.Dim()), -1)
	defer bar.Stop()
	if kind.Name == "recursive" {
		var dst mat.SymDense
		r := hessian.RecursiveInverse{P: pr, Alpha: s.Alpha, MaxBytes: -1}
		if err := r.InverseTo(ctx, &dst); err != nil {
			return nil, err
		}
		return &dst, nil
	}
	k, err := hessian.KindNamed(kind.Name)
	if err != nil {
		return nil, err
	}
	return hessian.Dense(ctx, k.New(pr, hessian.KindOptions{}), -1)
}

// buildVector computes the vector of a vector kind.
func buildVector(ctx context.Context, kind Kind, s *Settings, pr *hessian.Problem, bar Progress) ([]float64, error) {
	v := make([]float64, pr.Dim())
	if kind.Name == "hutchinson" {
		if err := pr.Check(); err != nil {
			return nil, err
		}
		probes := cmpOr(s.Probes, hessian.DefaultProbes)
		bar.Start(kind.Desc, probes)
		defer bar.Stop()
		h := hessian.Hutchinson{
			C:      counting{hessian.Exact{P: pr}, bar},
			Probes: probes,
			Src:    rand.NewPCG(s.seed(), streamProbes),
		}
		return v, h.EstimateDiagTo(ctx, v)
	}
	bar.Start(kind.Desc, -1)
	defer bar.Stop()
	name := kind.Name
	if name == "diag" {
		name = "exact"
	}
	k, err := hessian.KindNamed(name)
	if err != nil {
		return nil, err
	}
	return v, k.DiagTo(ctx, pr, hessian.KindOptions{}, v)
}

// matrixSpectrum fills the trace and the spectrum fields of sum for the
// matrix H, whose products with vectors op gives.
func matrixSpectrum(ctx context.Context, sum *Summary, H *mat.SymDense, op hessian.Curvature, kind Kind, s *Settings, bar Progress) error {
	n := H.SymmetricDim()
	sum.Trace = 0
	for i := 0; i < n; i++ {
		sum.Trace += H.At(i, i)
	}
	of := kind.Desc
	switch sum.Spectrum {
	case "none":
		return nil
	case "lanczos":
		rep, err := lanczos(ctx, op, of, s, bar)
		if err != nil {
			return err
		}
		if len(rep.Largest) > 0 {
			sum.Max, sum.Min = &rep.Largest[0], &rep.Smallest[0]
			lanczosDefiniteness(sum, rep, n)
		}
		if s.eigenK() > 0 {
			sum.Eigen = rep
		}
		return nil
	}
	bar.Start(fmt.Sprintf("eigenvalues of the %s", of), -1)
	vals, err := hessian.Eigenvalues(H)
	bar.Stop()
	if err != nil {
		return fmt.Errorf("eigenvalues of the %s: %v", of, err)
	}
	sum.SetSpectrum(hessian.SummarizeValues(vals, sum.Trace))
	if k := min(s.eigenK(), n); k > 0 {
		rep := &Eigen{Method: "dense", Of: of, Largest: make([]float64, k), Smallest: make([]float64, k)}
		for i := 0; i < k; i++ {
			rep.Smallest[i] = vals[i]
			rep.Largest[i] = vals[n-1-i]
		}
		sum.Eigen = rep
	}
	return nil
}

// lanczosDefiniteness sets what the Lanczos extremes of an n×n matrix
// decide: every Ritz value lies within the spectrum, so a smallest Ritz
// value below −tol proves the matrix indefinite (tol = n·ε·max|θ|, as for
// the dense spectrum); a converged positive one above tol makes it
// positive definite with the condition number θ_max / θ_min. Otherwise the
// fields stay unset.
func lanczosDefiniteness(sum *Summary, rep *Eigen, n int) {
	lo, hi := rep.Smallest[0], rep.Largest[0]
	tol := float64(n) * 0x1p-52 * math.Max(math.Abs(lo), math.Abs(hi))
	switch {
	case lo < -tol:
		no := false
		sum.PositiveDefinite = &no
	case lo > tol && rep.Converged != nil && *rep.Converged:
		yes := true
		sum.PositiveDefinite = &yes
		c := hi / lo
		sum.Condition = &c
		sum.conditionKnown = true
		sum.ConditionJSON = json.RawMessage(strconv.FormatFloat(c, 'g', -1, 64))
	}
}

// SetSpectrum copies the spectral fields of s into sum.
func (sum *Summary) SetSpectrum(s hessian.Summary) {
	sum.Trace = s.Trace
	sum.Min, sum.Max = &s.Min, &s.Max
	sum.conditionKnown = true
	sum.ConditionJSON = json.RawMessage("null")
	if !math.IsInf(s.Condition, 0) && !math.IsNaN(s.Condition) {
		sum.Condition = &s.Condition
		sum.ConditionJSON = json.RawMessage(strconv.FormatFloat(s.Condition, 'g', -1, 64))
	}
	sum.PositiveDefinite = &s.PositiveDefinite
	sum.NegativeCount, sum.ZeroCount = &s.NegativeCount, &s.ZeroCount
}

// vectorSummary fills the summary fields for the vector v, taken as the
// diagonal matrix diag(v): the trace is the sum, the extreme eigenvalues the
// extreme entries. Entries count as negative or zero exactly, without a
// tolerance. With spectrum false only the trace is set.
func vectorSummary(sum *Summary, v []float64, spectrum bool) {
	s := DiagSummary(v)
	if !spectrum || len(v) == 0 {
		sum.Trace = s.Trace
		return
	}
	sum.SetSpectrum(s)
	sum.Spectrum = "entries"
}

// DiagSummary returns the spectral summary of the diagonal matrix diag(v):
// the trace is the sum, the extreme eigenvalues the extreme entries, and
// entries count as negative or zero exactly, without a tolerance.
func DiagSummary(v []float64) hessian.Summary {
	s := hessian.Summary{Dim: len(v)}
	for _, x := range v {
		s.Trace += x
	}
	if len(v) == 0 {
		return s
	}
	s.Min, s.Max = slices.Min(v), slices.Max(v)
	small := math.Inf(1)
	for _, x := range v {
		small = math.Min(small, math.Abs(x))
		switch {
		case x < 0:
			s.NegativeCount++
		case x == 0:
			s.ZeroCount++
		}
	}
	s.PositiveDefinite = s.Min > 0
	if small == 0 {
		s.Condition = math.Inf(1)
	} else {
		s.Condition = math.Max(math.Abs(s.Min), math.Abs(s.Max)) / small
	}
	return s
}

// lanczos runs Lanczos on c for the settings' number of extreme
// eigenvalues.
func lanczos(ctx context.Context, c hessian.Curvature, of string, s *Settings, bar Progress) (*Eigen, error) {
	bar.Start("Lanczos on the "+of, -1)
	defer bar.Stop()
	res, err := hessian.Lanczos(ctx, counting{c, bar}, max(s.eigenK(), 1), &hessian.LanczosSettings{
		Src:      rand.NewPCG(s.seed(), streamLanczos),
		MaxBytes: s.limit(),
	})
	if err != nil {
		return nil, err
	}
	conv := res.Converged
	return &Eigen{
		Method: "lanczos", Of: of, Largest: res.Largest, Smallest: res.Smallest,
		Iterations: res.Iterations, Converged: &conv,
		LargestResiduals: res.LargestResiduals, SmallestResiduals: res.SmallestResiduals,
	}, nil
}

// invert returns (H + λI)⁻¹ and λ: the settings' damping, or with Escalate
// the first damping of the escalation that succeeds. H is left as it is.
func invert(H *mat.SymDense, kind Kind, s *Settings, bar Progress) (*mat.SymDense, float64, error) {
	bar.Start("inverting the "+kind.Desc, -1)
	defer bar.Stop()
	// A separate destination: DampedInverse overwrites it also when it
	// reports a near-singular matrix, and each step of the escalation
	// needs the undamped H.
	inv := mat.NewSymDense(H.SymmetricDim(), nil)
	if s.Escalate {
		e := &hessian.Escalation{Start: s.Damping}
		e.Log = func(l float64, err error) {
			if s.Log != nil {
				bar.Stop()
				s.Log(l, errors.New(InverseReason(err)))
			}
		}
		lambda, err := hessian.DampedInverseEscalating(inv, H, e)
		if err != nil {
			return nil, lambda, fmt.Errorf("Settings.Escalate: %v", strings.TrimPrefix(err.Error(), "hessian: "))
		}
		return inv, lambda, nil
	}
	lambda := s.Damping
	err := hessian.DampedInverse(inv, H, lambda)
	if err == nil {
		return inv, lambda, nil
	}
	var npd *hessian.NotPositiveDefiniteError
	var cond mat.Condition
	switch {
	case errors.As(err, &npd):
		return nil, lambda, fmt.Errorf("Settings.Inverse: %s; retry with Settings.Damping %g, or set Settings.Escalate", InverseReason(err), npd.Suggest)
	case errors.As(err, &cond):
		return nil, lambda, fmt.Errorf("Settings.Inverse: %s; give a larger Settings.Damping or set Settings.Escalate", InverseReason(err))
	case errors.Is(err, hessian.ErrNotFinite):
		return nil, lambda, fmt.Errorf("Settings.Inverse: the %s %w", kind.Desc, ErrNotFinite)
	}
	return nil, lambda, fmt.Errorf("Settings.Inverse: %v", err)
}

// InverseReason describes a failure of hessian.DampedInverse.
func InverseReason(err error) string {
	var npd *hessian.NotPositiveDefiniteError
	var cond mat.Condition
	switch {
	case errors.As(err, &npd):
		msg := fmt.Sprintf("C + λI is not positive definite at λ = %.4g", npd.Lambda)
		if !math.IsNaN(npd.MinEigenvalue) {
			msg += fmt.Sprintf(" (the smallest eigenvalue of C is %.6g)", npd.MinEigenvalue)
		}
		return msg
	case errors.As(err, &cond):
		return fmt.Sprintf("C + λI is near-singular (estimated condition number %.3g, above %.0g)", float64(cond), float64(hessian.MaxCondition))
	}
	return strings.TrimPrefix(err.Error(), "hessian: ")
}

// symIsFinite reports whether every entry of the upper triangle of a is
// finite.
func symIsFinite(a *mat.SymDense) bool {
	raw := a.RawSymmetric()
	for i := 0; i < raw.N; i++ {
		for _, v := range raw.Data[i*raw.Stride+i : i*raw.Stride+raw.N] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// symCurvature is a formed symmetric matrix as a hessian.Curvature.
type symCurvature struct{ m *mat.SymDense }

func (c symCurvature) Dim() int { return c.m.SymmetricDim() }

func (c symCurvature) MulVecTo(dst, v []float64) {
	n := c.Dim()
	blas64.Symv(1, c.m.RawSymmetric(), blas64.Vector{N: n, Inc: 1, Data: v}, 0, blas64.Vector{N: n, Inc: 1, Data: dst})
}

// counting advances a progress with every product of the curvature it
// wraps. It hides the wrapped curvature's fast paths, so it is only for
// consumers that use products alone.
type counting struct {
	c   hessian.Curvature
	bar Progress
}

func (c counting) Dim() int { return c.c.Dim() }

func (c counting) MulVecTo(dst, v []float64) {
	c.c.MulVecTo(dst, v)
	c.bar.Add()
}
