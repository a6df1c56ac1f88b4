package hessian

import (
	"context"
	"math/rand/v2"
	"slices"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// BeckerLeCun is the O(W) back-propagated diagonal approximation of the
// Hessian used by Optimal Brain Damage. Second derivatives with respect to
// the unit inputs a are propagated backwards with squared weights and the
// off-diagonal terms dropped:
//
//	output:  g_L = diag(∂²ℓ/∂a_L²)
//	hidden:  g_l[j] = f′(a_l[j])² Σ_k W_{l+1}[k][j]² g_{l+1}[k] + f″(a_l[j]) ∂ℓ/∂z_l[j]
//	h_qq   = Σₙ g_l[j] z̃_{l−1}[i]²    for q = W_l[j][i] (z̃ = 1 for the bias)
//
// With LM set it is the Levenberg–Marquardt form: the f″ terms are dropped
// (including the residual term of an MSE output), and every entry is ≥ 0.
// It equals the exact diagonal for a network with no hidden layer (the full
// form) and is an approximation otherwise.
//
// As a Curvature it is the diagonal matrix diag(h).
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

// MulVecTo sets dst = diag(h) v. It computes the diagonal on the first
// call and keeps it with the problem, and computes it again only when the
// network's parameters, the data matrices (X and Y, compared by identity,
// not by content) or the covered parameters have changed, so that
// iterative methods such as Lanczos cost O(W) per product. Like every
// MulVecTo it panics on data that do not fit the network; DiagTo and
// Operator return the error instead.
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

// Operator computes the diagonal once and returns it as a diagonal
// curvature, for use with Lanczos, Hutchinson or a solver.
func (d BeckerLeCun) Operator(ctx context.Context) (DiagCurvature, error) {
	h := make([]float64, d.P.Dim())
	if err := d.DiagTo(ctx, h); err != nil {
		return nil, err
	}
	return DiagCurvature(h), nil
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
	if err := pr.Check(); err != nil {
		return err
	}
	net := pr.Net
	W := net.NumParams()
	full := make([]float64, W)
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	p := newPass(net, rows)
	L := len(p.layers) - 1
	var g, sq, ework []*mat.Dense
	var w2 []blas64.General
	for l, ly := range p.layers {
		g = append(g, mat.NewDense(rows, ly.Out, nil))
		ework = append(ework, mat.NewDense(rows, ly.Out, nil))
		sq = append(sq, mat.NewDense(rows, ly.In, nil))
		w := weights(net, l)
		ws := blas64.General{Rows: w.Rows, Cols: w.Cols, Stride: w.Cols, Data: make([]float64, len(w.Data))}
		for i, x := range w.Data {
			ws.Data[i] = x * x
		}
		w2 = append(w2, ws)
	}
	outL := p.layers[L].Out
	oc := make([]float64, outL*outL)
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		nr := hi - lo
		p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
		gL := head(g[L], nr)
		for i := 0; i < nr; i++ {
			p.outputCurv(oc, i, d.LM)
			r := gL.RawRowView(i)
			for k := range r {
				r[k] = oc[k*outL+k]
			}
		}
		for l := L; l >= 0; l-- {
			ly := p.layers[l]
			gl := head(g[l], nr)
			z := p.input(l)
			zs := head(sq[l], nr)
			for i := 0; i < nr; i++ {
				zr, sr := z.RawRowView(i), zs.RawRowView(i)
				for k, v := range zr {
					sr[k] = v * v
				}
			}
			o := net.Offset(l)
			gW := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: full[o : o+ly.Out*ly.In]}
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, gl.RawMatrix(), zs.RawMatrix(), 1, gW)
			gb := full[o+ly.Out*ly.In : o+ly.NumParams()]
			for i := 0; i < nr; i++ {
				for j, x := range gl.RawRowView(i) {
					gb[j] += x
				}
			}
			if l == 0 {
				break
			}
			gp := head(g[l-1], nr)
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, gl.RawMatrix(), w2[l], 0, gp.RawMatrix())
			// e = δ_l W_l = ∂ℓ/∂z_{l−1}.
			var e *mat.Dense
			if !d.LM {
				e = head(ework[l-1], nr)
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[l].RawMatrix(), weights(net, l), 0, e.RawMatrix())
			}
			for i := 0; i < nr; i++ {
				r, d1, d2 := gp.RawRowView(i), p.d1[l-1].RawRowView(i), p.d2[l-1].RawRowView(i)
				for j := range r {
					r[j] *= d1[j] * d1[j]
					if e != nil {
						r[j] += d2[j] * e.At(i, j)
					}
				}
			}
		}
	}
	pr.gather(dst, full)
	return nil
}

// Hutchinson estimates the diagonal (and trace) of a curvature from
// products with random Rademacher vectors v (entries ±1):
//
//	diag(C) ≈ (1/S) Σₛ vₛ ⊙ C vₛ,    tr(C) ≈ (1/S) Σₛ vₛᵀ C vₛ.
//
// Both estimates are unbiased; their standard error falls as 1/√S.
//
// References:
//
//	M. F. Hutchinson, A stochastic estimator of the trace of the influence
//	  matrix for Laplacian smoothing splines, 1990.
type Hutchinson struct {
	C      Curvature
	Probes int         // S; zero means 100
	Src    rand.Source // nil means a fixed seed
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

// EstimateDiagTo writes the estimate of the diagonal to dst. (Hutchinson is
// deliberately not a Diagonaler: its diagonal is an estimate, not the
// curvature's own.)
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
