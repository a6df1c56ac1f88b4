package hessian

import (
	"context"
	"math/rand/v2"
	"slices"
)

// BeckerLeCun is the O(W) diagonal approximation of the Hessian used by
// Optimal Brain Damage, back-propagated without off-diagonal terms:
//
//	output:  g_L = diag(∂²ℓ/∂a_L²)
//	hidden:  g_l[j] = f′(a_l[j])² Σ_k W_{l+1}[k][j]² g_{l+1}[k] + f″(a_l[j]) ∂ℓ/∂z_l[j]
//	h_qq   = Σₙ g_l[j] z̃_{l−1}[i]²    for q = W_l[j][i] (z̃ = 1 for the bias)
//
// LM drops the f″ terms (and an MSE output's residual term), so that every
// entry is ≥ 0; the full form is exact without hidden layers.
//
// References:
//
//	S. Becker and Y. LeCun, Improving the convergence of back-propagation
//	  learning with second order methods, 1988.
//	Y. LeCun, J. S. Denker and S. A. Solla, Optimal Brain Damage, NIPS 2, 1989.
type BeckerLeCun struct {
	P  *Problem
	LM bool
}

// Dim returns the number of parameters covered.
func (d BeckerLeCun) Dim() int { return d.P.Dim() }

// MulVecTo sets dst = diag(h) v, h computed once per state of the problem.
func (d BeckerLeCun) MulVecTo(dst, v []float64) {
	pr := d.P
	if len(dst) != pr.Dim() || len(v) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	h := d.cached()
	for i, x := range v {
		dst[i] = h[i] * x
	}
}

// blCache is a Becker–LeCun diagonal with the state it was computed for.
type blCache struct {
	theta  []float64
	X, Y   any
	params []int
	diag   []float64
}

// cached returns the diagonal, computing it when the cache does not match
// the problem's current state.
func (d BeckerLeCun) cached() []float64 {
	pr := d.P
	i := 0
	if d.LM {
		i = 1
	}
	ropMu.Lock()
	c := pr.bl[i]
	ropMu.Unlock()
	theta := pr.Net.RawParams()
	if c != nil && c.X == any(pr.X) && c.Y == any(pr.Y) && slices.Equal(c.params, pr.Params) && slices.Equal(c.theta, theta) {
		return c.diag
	}
	h := make([]float64, pr.Dim())
	if err := d.DiagTo(context.Background(), h); err != nil {
		panic(err)
	}
	c = &blCache{theta: slices.Clone(theta), X: pr.X, Y: pr.Y, params: slices.Clone(pr.Params), diag: h}
	ropMu.Lock()
	pr.bl[i] = c
	ropMu.Unlock()
	return h
}

// DiagCurvature is the diagonal matrix diag(d) as a curvature.
type DiagCurvature []float64

// Dim returns len(d).
func (d DiagCurvature) Dim() int { return len(d) }

// MulVecTo sets dst = diag(d) v.
func (d DiagCurvature) MulVecTo(dst, v []float64) {
	if len(dst) != len(d) || len(v) != len(d) {
		panic("hessian: vector length mismatch")
	}
	for i, x := range v {
		dst[i] = d[i] * x
	}
}

// DiagTo copies d to dst.
func (d DiagCurvature) DiagTo(_ context.Context, dst []float64) error {
	if len(dst) != len(d) {
		panic("hessian: vector length mismatch")
	}
	copy(dst, d)
	return nil
}

// DiagTo writes the Becker–LeCun diagonal to dst.
func (d BeckerLeCun) DiagTo(ctx context.Context, dst []float64) error {
	pr := d.P
	if len(dst) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	// A diagonal kept for the problem's current state was built on
	// checked data: it needs no second check.
	if h := blKept(pr, d.mode()); h != nil {
		copy(dst, h)
		return nil
	}
	if err := pr.Check(); err != nil {
		return err
	}
	full := make([]float64, pr.Net.NumParams())
	if err := blDiag(ctx, pr, d.mode(), full, blWorkers()); err != nil {
		return err
	}
	pr.gather(dst, full)
	return nil
}

func (d BeckerLeCun) mode() blMode {
	if d.LM {
		return blLM
	}
	return blFull
}

// Hutchinson estimates the diagonal and trace of C from S = Probes (zero:
// DefaultProbes) Rademacher vectors vₛ from Src (nil: a fixed seed),
// unbiased, with a standard error falling as 1/√S:
//
//	diag(C) ≈ (1/S) Σₛ vₛ ⊙ C vₛ,    tr(C) ≈ (1/S) Σₛ vₛᵀ C vₛ.
//
// References:
//
//	M. F. Hutchinson, A stochastic estimator of the trace of the influence
//	  matrix for Laplacian smoothing splines, 1990.
type Hutchinson struct {
	C      Curvature
	Probes int
	Src    rand.Source
}

// Dim returns the dimension of the underlying curvature.
func (h Hutchinson) Dim() int { return h.C.Dim() }

// MulVecTo sets dst = C v with the underlying curvature.
func (h Hutchinson) MulVecTo(dst, v []float64) { h.C.MulVecTo(dst, v) }

func (h Hutchinson) probes() int {
	if h.Probes <= 0 {
		return 100
	}
	return h.Probes
}

func (h Hutchinson) rng() *rand.Rand {
	if h.Src == nil {
		return rand.New(rand.NewPCG(1, 2))
	}
	return rand.New(h.Src)
}

// EstimateDiagTo writes the estimate of the diagonal to dst.
func (h Hutchinson) EstimateDiagTo(ctx context.Context, dst []float64) error {
	_, err := h.estimate(ctx, dst)
	return err
}

// Trace returns the estimate of the trace.
func (h Hutchinson) Trace(ctx context.Context) (float64, error) {
	return h.estimate(ctx, nil)
}

func (h Hutchinson) estimate(ctx context.Context, diag []float64) (float64, error) {
	n := h.C.Dim()
	rng := h.rng()
	v := make([]float64, n)
	cv := make([]float64, n)
	if diag != nil {
		clear(diag)
	}
	var tr float64
	S := h.probes()
	for s := 0; s < S; s++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i := range v {
			if rng.Uint64()&1 == 0 {
				v[i] = 1
			} else {
				v[i] = -1
			}
		}
		h.C.MulVecTo(cv, v)
		for i := range v {
			x := v[i] * cv[i]
			tr += x
			if diag != nil {
				diag[i] += x
			}
		}
	}
	for i := range diag {
		diag[i] /= float64(S)
	}
	return tr / float64(S), nil
}
