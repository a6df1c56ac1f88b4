package prune

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
)

// Defaults and special values of the saliencies' settings, where a zero
// field selects the default.
const (
	DefaultDamping          = 1e-4 // λ of OBS.Damping and BlockOBS.Damping
	NoDamping               = -1.0 // as OBS.Damping or BlockOBS.Damping: λ = 0
	DefaultBlock            = 100  // BlockOBS.Block without Rows
	DefaultWoodburySamples  = 1000 // WoodburyOBS.Samples, as in WoodFisher and M-FAC
	DefaultRelativeDamping  = 1e-2 // WoodburyOBS.RelativeDamping
	DefaultWoodburyFraction = 0.5  // Settings.Fraction with WoodburyOBS and no count per round
	DefaultLayerwiseDamping = 0.01 // LayerwiseSettings.Damping, as in OBC and SparseGPT
)

// OBS is Optimal Brain Surgeon, with the saliency L_q and update δθ of the
// package doc: a round removes parameters one after another from one
// inverse H⁻¹, built at its start and downdated after each removal
// (hessian.Downdate). H is the objective's curvature, that of Curvature
// plus Env.Decay·I. H⁻¹ is (C + λI)⁻¹ of the dense matrix C for Exact (the
// default), GaussNewton, Fisher or the curvature of Builder (made dense by
// hessian.Dense), with λ = Damping; for Recursive it is (PαI + G)⁻¹ from
// hessian.RecursiveInverse over the P training samples, with α = Alpha.
// When C + λI is not positive definite, or its condition number is above
// hessian.MaxCondition, λ is raised tenfold until it is, every attempt
// reported as an Issue; with FixedDamping the former is an error and an
// ill-conditioned inverse is used.
//
// With the objective's gradient g (Env.Gradient) the first removal of a
// round minimises gᵀδ + ½δᵀHδ with δ_q = −w_q instead: with u = H⁻¹g,
//
//	L_q = (w_q − u_q)² / (2 [H⁻¹]_qq) − ½ gᵀu,
//	δθ = −u − ((w_q − u_q) / [H⁻¹]_qq) H⁻¹ e_q,
//
// after which the model's gradient is zero and the later removals use the
// classic formulas.
//
// References:
//
//	B. Hassibi and D. G. Stork, Second order derivatives for network
//	  pruning: Optimal Brain Surgeon, NIPS 5, 1993.
type OBS struct {
	Curvature    Curvature
	Builder      Builder
	Damping      float64
	FixedDamping bool
	Alpha        float64
}

// Need returns NeedInverse.
func (OBS) Need() Need { return NeedInverse }

// Validate returns an error when the settings are invalid.
func (o OBS) Validate() error {
	if o.Builder == nil {
		k, err := o.Curvature.Kind()
		if err != nil || !(k.Dense || k.InverseOnly) {
			return fieldErrorf("OBS", "Curvature", "%v cannot serve OBS; it needs a dense matrix or the recursive inverse: %s", o.Curvature,
				hessian.KindList(func(k hessian.Kind) bool { return k.Dense || k.InverseOnly }))
		}
	}
	if o.Damping != NoDamping && (!(o.Damping >= 0) || math.IsInf(o.Damping, 1)) {
		return fieldErrorf("OBS", "Damping", "%v is not a non-negative number", o.Damping)
	}
	if !(o.Alpha >= 0) || math.IsInf(o.Alpha, 1) {
		return fieldErrorf("OBS", "Alpha", "%v is not a non-negative number", o.Alpha)
	}
	return nil
}

// MemoryBytes returns the memory a round of o needs on p: the dense
// curvature (with its build buffer) and its inverse, or the recursive inverse.
func (o OBS) MemoryBytes(p *hessian.Problem) int64 {
	n := p.Dim()
	k, err := o.Curvature.Kind()
	switch {
	case o.Curvature == Recursive && o.Builder == nil:
		return hessian.DenseBytes(n)
	case o.Builder != nil || err != nil:
		return 2 * hessian.DenseBytes(n)
	}
	return hessian.DenseBytes(n) + k.DenseMemory(p)
}

func (o OBS) damping() float64 {
	switch o.Damping {
	case 0:
		return DefaultDamping
	case NoDamping:
		return 0
	}
	return o.Damping
}

// Begin builds the inverse curvature over the live parameters of p.
func (o OBS) Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error) {
	hinv, lambda, err := o.Inverse(ctx, p, env)
	if err != nil {
		return nil, err
	}
	n := p.Dim()
	s := &obsScorer{p: p, hinv: hinv, lambda: lambda, removed: make([]bool, n), col: make([]float64, n)}
	if g := env.gradient(); g != nil {
		if len(g) != n {
			panic("prune: OBS gradient length mismatch")
		}
		s.u = make([]float64, n)
		uv := mat.NewVecDense(n, s.u)
		uv.MulVec(hinv, mat.NewVecDense(n, g))
		for i, v := range g {
			s.gu += v * s.u[i]
		}
	}
	return s, nil
}

// Inverse returns the inverse curvature OBS uses over the parameters of p
// (see OBS) and the damping it carries. env may be nil.
func (o OBS) Inverse(ctx context.Context, p *hessian.Problem, env *Env) (*mat.SymDense, float64, error) {
	if err := o.Validate(); err != nil {
		return nil, 0, err
	}
	n := p.Dim()
	limit := env.maxBytes()
	bytes := o.MemoryBytes(p)
	if o.Curvature == Recursive && o.Builder == nil {
		if err := checkDense("OBS recursive inverse", n, bytes, limit); err != nil {
			return nil, 0, err
		}
		N, _ := p.X.Dims()
		P := float64(N)
		alpha := o.Alpha
		if alpha == 0 {
			alpha = 1e-4
		}
		// The penalty's μI joins the αI of the recursion: PαI + μI + G.
		r := hessian.RecursiveInverse{P: p, Alpha: alpha + env.decay()/P, MaxBytes: limit}
		var hinv mat.SymDense
		if err := r.InverseTo(ctx, &hinv); err != nil {
			return nil, 0, fmt.Errorf("OBS recursive inverse: %w", err)
		}
		return &hinv, P * alpha, nil
	}

	// The dense matrix and its inverse; the exact build also needs a
	// buffer over all parameters.
	var c hessian.Curvature
	if o.Builder != nil {
		if c = o.Builder(p); c.Dim() != n {
			return nil, 0, fmt.Errorf("OBS: the curvature built has dimension %d, the problem %d", c.Dim(), n)
		}
	} else {
		k, _ := o.Curvature.Kind()
		c = k.New(p, hessian.KindOptions{})
	}
	if err := checkDense(fmt.Sprintf("OBS curvature (%v) and its inverse", o.Curvature), n, bytes, limit); err != nil {
		return nil, 0, err
	}
	H, err := hessian.Dense(ctx, c, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("OBS curvature (%v): %w", o.Curvature, err)
	}
	if err := hessian.CheckMemory("OBS inverse curvature", n, limit); err != nil {
		return nil, 0, err
	}
	if mu := env.decay(); mu != 0 {
		for i := 0; i < n; i++ {
			H.SetSym(i, i, H.At(i, i)+mu)
		}
	}
	hinv := mat.NewSymDense(n, nil)
	lambda := o.damping()
	if o.FixedDamping {
		err = hessian.DampedInverse(hinv, H, lambda)
		var cond mat.Condition
		if errors.As(err, &cond) && !math.IsInf(float64(cond), 1) {
			env.report(dampingIssue(o.Curvature, lambda, err))
			err = nil
		}
	} else {
		start := lambda
		lambda, err = hessian.DampedInverseEscalating(hinv, H, &hessian.Escalation{
			Start: start,
			Log:   func(l float64, err error) { env.report(dampingIssue(o.Curvature, l, err)) },
		})
		if err == nil && lambda != start {
			msg := fmt.Sprintf("OBS damping of %v raised from %g to %g, as the curvature + λI was not positive definite or was ill-conditioned; the trained objective (--objective trained, with the model's weight decay) or --curvature gn, which is positive semi-definite, may need none", o.Curvature, start, lambda)
			if lambda < start {
				msg = fmt.Sprintf("OBS damping of %v lowered from %g to %g, the largest the escalation allows (hessian.Escalation.Max); give a smaller --damping", o.Curvature, start, lambda)
			}
			env.report(Issue{Kind: IssueDamping, Index: -1, Lambda: lambda, Message: msg})
		}
	}
	if err != nil {
		if errors.Is(err, hessian.ErrNotFinite) {
			env.report(Issue{Kind: IssueNotFinite, Index: -1, Lambda: lambda,
				Message: fmt.Sprintf("OBS curvature (%v) has a NaN or infinite entry", o.Curvature)})
		}
		return nil, lambda, fmt.Errorf("OBS inverse curvature (%v): %w", o.Curvature, err)
	}
	return hinv, lambda, nil
}

// dampingIssue describes a failed damping.
func dampingIssue(c Curvature, lambda float64, err error) Issue {
	var npd *hessian.NotPositiveDefiniteError
	if errors.As(err, &npd) {
		return Issue{Kind: IssueIndefinite, Index: -1, Lambda: lambda,
			Message: fmt.Sprintf("%v curvature + λI is not positive definite at λ = %g (smallest eigenvalue of the curvature %.6g); --curvature gn is positive semi-definite, and --objective trained adds the model's weight decay λN·I",
				c, lambda, npd.MinEigenvalue)}
	}
	return Issue{Kind: IssueIllConditioned, Index: -1, Lambda: lambda,
		Message: fmt.Sprintf("%v curvature + λI at λ = %g: %v; a larger --damping or --curvature gn makes it better conditioned", c, lambda, err)}
}

// checkDense returns a *hessian.MemoryError when bytes, the memory of dense
// matrices over n parameters, exceed limit (zero: the default limit,
// negative: none).
func checkDense(what string, n int, bytes, limit int64) error {
	if limit < 0 {
		return nil
	}
	if limit == 0 {
		limit = hessian.DefaultMemoryLimit()
	}
	if bytes > limit {
		return &hessian.MemoryError{What: what, Dim: n, Bytes: bytes, Limit: limit}
	}
	return nil
}

type obsScorer struct {
	p       *hessian.Problem
	hinv    *mat.SymDense
	lambda  float64
	removed []bool
	col     []float64
	u       []float64 // H⁻¹g before the round's first removal, nil after it
	gu      float64   // gᵀH⁻¹g
}

// Damping returns the damping of the inverse.
func (s *obsScorer) Damping() float64 { return s.lambda }

func (s *obsScorer) pivot(i int) (float64, error) {
	h := s.hinv.RawSymmetric()
	d := h.Data[i*h.Stride+i]
	if !(d > 0) || math.IsInf(d, 1) {
		return d, &hessian.PivotError{Index: paramIndex(s.p, i), Pivot: d}
	}
	return d, nil
}

func (s *obsScorer) Score(sal, pred, w []float64) error {
	for i, v := range w {
		if s.removed[i] {
			continue
		}
		d, err := s.pivot(i)
		if err != nil {
			return err
		}
		if s.u != nil {
			v -= s.u[i]
		}
		sal[i] = v*v/(2*d) - 0.5*s.gu
		pred[i] = sal[i]
	}
	return nil
}

func (s *obsScorer) Remove(i int, w []float64) error {
	d, err := s.pivot(i)
	if err != nil {
		return err
	}
	symColumn(s.col, s.hinv, i)
	if s.u != nil {
		f := -(w[i] - s.u[i]) / d
		for j, c := range s.col {
			w[j] += f*c - s.u[j]
		}
		s.u, s.gu = nil, 0
	} else {
		f := -w[i] / d
		for j, c := range s.col {
			w[j] += f * c
		}
	}
	w[i] = 0
	if err := hessian.Downdate(s.hinv, i); err != nil {
		return err
	}
	s.removed[i] = true
	return nil
}

// symColumn copies column i of the symmetric matrix a to dst.
func symColumn(dst []float64, a *mat.SymDense, i int) {
	h := a.RawSymmetric()
	n := h.N
	for j := 0; j < i; j++ {
		dst[j] = h.Data[j*h.Stride+i]
	}
	copy(dst[i:n], h.Data[i*h.Stride+i:i*h.Stride+n])
}

// OBSStep returns the live parameter q of least OBS saliency L_q (see the
// package doc; ties to the lowest index), L_q and the update δ, whose entry
// q is exactly −w_q and whose entries at parameters not live are zero. hinv
// is the inverse curvature over the parameters of w, rows and columns of
// removed ones zero as hessian.Downdate leaves them; a nil live means all
// live. Parameters whose [H⁻¹]_qq is not positive and finite are skipped;
// q is −1, L NaN and δ nil when none is left. Neither hinv nor w changes:
// add δ to w and call hessian.Downdate(hinv, q). It panics when the lengths
// of w and live do not match hinv.
func OBSStep(hinv *mat.SymDense, w []float64, live []bool) (q int, L float64, delta []float64) {
	n := hinv.SymmetricDim()
	if len(w) != n || (live != nil && len(live) != n) {
		panic("prune: OBSStep length mismatch")
	}
	h := hinv.RawSymmetric()
	q, L = -1, math.Inf(1)
	for i, v := range w {
		if live != nil && !live[i] {
			continue
		}
		d := h.Data[i*h.Stride+i]
		if !(d > 0) || math.IsInf(d, 1) {
			continue
		}
		if s := v * v / (2 * d); s < L {
			q, L = i, s
		}
	}
	if q < 0 {
		return -1, math.NaN(), nil
	}
	delta = make([]float64, n)
	symColumn(delta, hinv, q)
	f := -w[q] / h.Data[q*h.Stride+q]
	for j := range delta {
		if live != nil && !live[j] {
			delta[j] = 0
			continue
		}
		delta[j] *= f
	}
	delta[q] = -w[q]
	return q, L, delta
}

// OBSSet returns the OBS update δ and saliency L_S of removing the live
// parameters S together (see the package doc), with δ exactly −w_S at S; an
// empty S gives zero. hinv and w are not modified. It returns an error when
// [H⁻¹]_SS is not positive definite or the result is not finite, and panics
// when w does not match hinv or S holds an index out of range or repeated.
func OBSSet(hinv *mat.SymDense, w []float64, S []int) (delta []float64, saliency float64, err error) {
	n := hinv.SymmetricDim()
	if len(w) != n {
		panic("prune: OBSSet length mismatch")
	}
	seen := make(map[int]bool, len(S))
	for _, q := range S {
		if q < 0 || q >= n || seen[q] {
			panic("prune: OBSSet index out of range or repeated")
		}
		seen[q] = true
	}
	delta = make([]float64, n)
	k := len(S)
	if k == 0 {
		return delta, 0, nil
	}
	M := mat.NewSymDense(k, nil)
	ws := mat.NewVecDense(k, nil)
	for a, qa := range S {
		ws.SetVec(a, w[qa])
		for b := a; b < k; b++ {
			M.SetSym(a, b, hinv.At(qa, S[b]))
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(M) {
		return nil, math.NaN(), fmt.Errorf("prune: [H⁻¹]_SS over %d parameters is not positive definite", k)
	}
	var z mat.VecDense
	if err := chol.SolveVecTo(&z, ws); err != nil {
		var cond mat.Condition
		if !errors.As(err, &cond) {
			return nil, math.NaN(), err
		}
		// A near-singular [H⁻¹]_SS still gives a usable solution; the
		// finiteness check below catches a useless one.
	}
	saliency = 0.5 * mat.Dot(ws, &z)
	col := make([]float64, n)
	for a, qa := range S {
		symColumn(col, hinv, qa)
		za := z.AtVec(a)
		for j, c := range col {
			delta[j] -= c * za
		}
	}
	for _, q := range S {
		delta[q] = -w[q]
	}
	if math.IsNaN(saliency) || math.IsInf(saliency, 0) {
		return nil, math.NaN(), fmt.Errorf("prune: OBS saliency of the set is %v", saliency)
	}
	for _, v := range delta {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, math.NaN(), errors.New("prune: OBS update of the set is not finite")
		}
	}
	return delta, saliency, nil
}

// DowndateSet removes the parameters S from the inverse curvature hinv in
// place, H⁻¹ ← H⁻¹ − H⁻¹_{:,S} ([H⁻¹]_SS)⁻¹ H⁻¹_{S,:}, by one
// hessian.Downdate each, and zeroes their rows and columns. On a
// *hessian.PivotError those of S before the failing one are removed.
func DowndateSet(hinv *mat.SymDense, S []int) error {
	for _, q := range S {
		if err := hessian.Downdate(hinv, q); err != nil {
			return err
		}
	}
	return nil
}
