// Package laplace builds the Laplace approximation of the posterior over a
// trained network's weights (MacKay 1992; Bishop PRML §5.7) on the
// curvature of package hessian: predictive distributions, the model
// evidence and the re-estimation of the hyperparameters from the
// eigenvalues of the Hessian.
//
// The prior over the parameters θ is a zero-mean Gaussian of precision α,
// one α for all parameters or one per layer; for regression (loss mse) the
// targets carry Gaussian noise of precision β. With the toolkit's training
// loss E = Σₙ ℓₙ (for mse ½Σₙ‖ŷₙ−tₙ‖²) the negative log posterior is, up to
// a constant,
//
//	S(θ) = β E(θ) + ½ Σ_q α_q θ_q²     (regression),
//	S(θ) = E(θ) + ½ Σ_q α_q θ_q²       (classification: bce, ce),
//
// and around its minimum θ_MAP the posterior is approximated by
// N(θ_MAP, A⁻¹) with
//
//	A = β H + diag(α)     (regression),    A = H + diag(α)     (classification),
//
// H the exact Hessian ∇²E, the Gauss–Newton matrix or the diagonal of the
// Gauss–Newton matrix (see Curvature), over all parameters or only the live
// ones. The log evidence is
//
//	ln p(D|α,β) ≈ −S(θ_MAP) − ½ ln|A| + ½ Σ_q ln α_q + (NK/2) ln β − (NK/2) ln 2π,
//
// without the β terms for classification, for N samples of K targets
// (Bishop 5.175, 5.183); ln|A| comes from the Cholesky factor.
//
// Relation to the trainers. nn.Train and lm.Train minimise
// J = E/N + ½λ‖θ‖². Since N·β·J = βE + ½(Nβλ)‖θ‖², a network trained with
// weight decay λ is the MAP of the regression model with α = Nβλ, and of the
// classification model with α = Nλ; conversely the MAP for given α and β is
// found by training with λ = α/(Nβ) (λ = α/N for classification). Optimize
// retrains on S itself.
//
// References:
//
//	D. J. C. MacKay, A practical Bayesian framework for backpropagation
//	  networks, Neural Computation 4(3), 1992.
//	D. J. C. MacKay, The evidence framework applied to classification
//	  networks, Neural Computation 4(5), 1992.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §3.5, §4.5, §5.7, 2006.
package laplace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// Curvature selects the matrix H of the posterior precision.
type Curvature int

// The curvatures.
//
//	GaussNewton: Σₙ Jₙᵀ Λₙ Jₙ (hessian.GaussNewton), positive semi-definite;
//	Exact:       the exact Hessian ∇²E (hessian.Exact); A may then fail to be
//	             positive definite away from a minimum, which Fit reports;
//	Diagonal:    the diagonal of the Gauss–Newton matrix, O(W) memory, for
//	             networks too large for a dense W×W matrix.
const (
	GaussNewton Curvature = iota
	Exact
	Diagonal
)

var curvatureNames = [...]string{GaussNewton: "gn", Exact: "exact", Diagonal: "diag"}

// String returns the name used on the command line: gn, exact or diag.
func (c Curvature) String() string {
	if c < 0 || int(c) >= len(curvatureNames) {
		return fmt.Sprintf("Curvature(%d)", int(c))
	}
	return curvatureNames[c]
}

// ParseCurvature returns the curvature with the given name: gn, exact or
// diag.
func ParseCurvature(s string) (Curvature, error) {
	for i, n := range curvatureNames {
		if n == s {
			return Curvature(i), nil
		}
	}
	return 0, fmt.Errorf("unknown curvature %q (want exact, gn or diag)", s)
}

// DefaultAlpha is the prior precision when Settings.Alpha is zero: a
// standard normal prior on every parameter.
const DefaultAlpha = 1.0

// Settings holds the settings of Fit. A nil *Settings, and any zero field,
// selects the documented default.
type Settings struct {
	// Curvature is H, default GaussNewton.
	Curvature Curvature

	// Alpha is the isotropic prior precision α, default DefaultAlpha.
	Alpha float64

	// LayerAlpha, when not nil, holds one prior precision per layer of the
	// network and replaces Alpha.
	LayerAlpha []float64

	// Beta is the noise precision β of regression, default the maximum
	// likelihood value NK/Σₙ‖ŷₙ−tₙ‖² at the network's parameters. It must
	// be zero for classification.
	Beta float64

	// All makes the posterior cover every parameter; by default it covers
	// only the live (unpruned) ones, as a pruned network's posterior should.
	All bool

	// MemoryLimit bounds the dense W×W matrices as in hessian.CheckMemory
	// (0: hessian.DefaultMemoryLimit).
	MemoryLimit int64
}

// Posterior is the Laplace approximation N(θ_MAP, A⁻¹) of a network's
// posterior over the parameters it covers.
type Posterior struct {
	net       *nn.Network // a copy of the network
	X, Y      *mat.Dense  // the training data
	curvature Curvature
	params    []int // covered parameters, ascending
	layer     []int // layer of each covered parameter
	theta     []float64

	layerAlpha []float64 // per layer
	isotropic  bool      // all layerAlpha equal
	perLayer   bool      // re-estimate one α per layer
	beta       float64   // 1 for classification
	regression bool
	n, k       int       // samples, targets per sample
	ed         float64   // E(θ_MAP)
	gradNorm   float64   // largest |∂S/∂θ_q| at θ_MAP
	gradE      []float64 // ∇E at θ over the covered parameters

	h     *mat.SymDense // dense curvature
	hEig  []float64     // eigenvalues of h, computed on demand
	hDiag []float64     // diagonal curvature

	alpha    []float64 // per covered parameter
	chol     mat.Cholesky
	aDiag    []float64 // diagonal A
	ainvDiag []float64 // diagonal of A⁻¹
	logDetA  float64
}

// ErrNotPositiveDefinite is wrapped by the errors of Fit and SetHyper when
// the posterior precision A is not positive definite, as the exact Hessian
// can be away from a minimum.
var ErrNotPositiveDefinite = errors.New("laplace: the posterior precision A is not positive definite")

// Fit returns the Laplace approximation of the posterior of net, trained on
// the rows of X and Y, around its current parameters, which should be
// θ_MAP for the settings' α and β (see the package documentation). net is
// not changed; the posterior keeps a copy.
func Fit(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *Settings) (*Posterior, error) {
	var cfg Settings
	if s != nil {
		cfg = *s
	}
	if cfg.Curvature < GaussNewton || cfg.Curvature > Diagonal {
		return nil, fmt.Errorf("laplace: unknown curvature %v", cfg.Curvature)
	}
	if err := net.Check(X, Y); err != nil {
		return nil, fmt.Errorf("laplace: %w", err)
	}
	if err := net.CheckFinite(); err != nil {
		return nil, fmt.Errorf("laplace: %w", err)
	}
	p := &Posterior{
		net: net.Clone(), X: X, Y: Y, curvature: cfg.Curvature,
		regression: net.Loss() == nn.MSE,
	}
	p.n, _ = X.Dims()
	_, p.k = Y.Dims()
	if cfg.All {
		p.params = make([]int, net.NumParams())
		for q := range p.params {
			p.params[q] = q
		}
	} else {
		p.params = net.LiveIndices()
	}
	if len(p.params) == 0 {
		return nil, errors.New("laplace: the network has no live parameters")
	}
	th := p.net.RawParams()
	p.layer = make([]int, len(p.params))
	p.theta = make([]float64, len(p.params))
	for i, q := range p.params {
		p.layer[i] = p.net.ParamAt(q).Layer
		p.theta[i] = th[q]
	}
	p.ed = p.net.Objective(X, Y)
	if !finite(p.ed) {
		return nil, fmt.Errorf("laplace: the training loss is %v", p.ed)
	}

	// Hyperparameters.
	L := net.NumLayers()
	alpha, iso, err := layerAlphas(&cfg, L)
	if err != nil {
		return nil, err
	}
	beta := 1.0
	switch {
	case p.regression && cfg.Beta == 0:
		if p.ed == 0 {
			return nil, errors.New("laplace: the network fits the data exactly; give the noise precision β")
		}
		beta = float64(p.n*p.k) / (2 * p.ed)
	case p.regression:
		beta = cfg.Beta
		if !(beta > 0) || math.IsInf(beta, 1) {
			return nil, fmt.Errorf("laplace: noise precision β = %v is not a positive number", beta)
		}
	case cfg.Beta != 0:
		return nil, fmt.Errorf("laplace: noise precision β = %v given for loss %v; β is for regression (mse) only", cfg.Beta, net.Loss())
	}

	// Curvature.
	pr := &hessian.Problem{Net: p.net, Data: nn.Data{X: X, Y: Y}, Params: p.params}
	switch cfg.Curvature {
	case Diagonal:
		p.hDiag = make([]float64, len(p.params))
		if err := (hessian.GaussNewton{P: pr}).DiagTo(ctx, p.hDiag); err != nil {
			return nil, err
		}
	default:
		var c hessian.Curvature = hessian.GaussNewton{P: pr}
		if cfg.Curvature == Exact {
			c = hessian.Exact{P: pr}
		}
		h, err := hessian.Dense(ctx, c, cfg.MemoryLimit)
		if err != nil {
			return nil, err
		}
		p.h = h
	}
	p.perLayer = !iso
	if err := p.SetHyper(alpha, beta); err != nil {
		return nil, err
	}
	return p, nil
}

// layerAlphas returns one α per layer from the settings, and whether they
// come from the isotropic Alpha.
func layerAlphas(s *Settings, L int) ([]float64, bool, error) {
	a := make([]float64, L)
	if s.LayerAlpha != nil {
		if len(s.LayerAlpha) != L {
			return nil, false, fmt.Errorf("laplace: %d prior precisions for %d layers", len(s.LayerAlpha), L)
		}
		copy(a, s.LayerAlpha)
	} else {
		v := s.Alpha
		if v == 0 {
			v = DefaultAlpha
		}
		for l := range a {
			a[l] = v
		}
	}
	for l, v := range a {
		if !(v > 0) || math.IsInf(v, 1) {
			return nil, false, fmt.Errorf("laplace: prior precision α of layer %d is %v, not a positive number", l, v)
		}
	}
	return a, s.LayerAlpha == nil, nil
}

// SetHyper sets the prior precisions, one per layer, and the noise
// precision β (ignored for classification) and recomputes A, its factor and
// the evidence, keeping θ and the curvature H. A single-element or all-equal
// layerAlpha keeps an isotropic prior isotropic.
func (p *Posterior) SetHyper(layerAlpha []float64, beta float64) error {
	L := p.net.NumLayers()
	if len(layerAlpha) == 1 && L > 1 {
		v := layerAlpha[0]
		layerAlpha = make([]float64, L)
		for l := range layerAlpha {
			layerAlpha[l] = v
		}
	}
	if len(layerAlpha) != L {
		return fmt.Errorf("laplace: %d prior precisions for %d layers", len(layerAlpha), L)
	}
	for l, v := range layerAlpha {
		if !(v > 0) || math.IsInf(v, 1) {
			return fmt.Errorf("laplace: prior precision α of layer %d is %v, not a positive number", l, v)
		}
	}
	if !p.regression {
		beta = 1
	} else if !(beta > 0) || math.IsInf(beta, 1) {
		return fmt.Errorf("laplace: noise precision β = %v is not a positive number", beta)
	}
	p.layerAlpha = append(p.layerAlpha[:0], layerAlpha...)
	p.isotropic = true
	for _, v := range layerAlpha[1:] {
		if v != layerAlpha[0] {
			p.isotropic = false
		}
	}
	p.beta = beta
	k := len(p.params)
	p.alpha = make([]float64, k)
	for i, l := range p.layer {
		p.alpha[i] = layerAlpha[l]
	}

	// Gradient of S at θ: a check that θ is the MAP.
	if p.gradE == nil {
		full := make([]float64, p.net.NumParams())
		p.net.Gradient(full, p.X, p.Y)
		p.gradE = make([]float64, k)
		for i, q := range p.params {
			p.gradE[i] = full[q]
		}
	}
	p.gradNorm = 0
	for i, g := range p.gradE {
		p.gradNorm = math.Max(p.gradNorm, math.Abs(beta*g+p.alpha[i]*p.theta[i]))
	}

	if p.hDiag != nil {
		p.aDiag = make([]float64, k)
		p.ainvDiag = make([]float64, k)
		p.logDetA = 0
		for i, h := range p.hDiag {
			a := beta*h + p.alpha[i]
			if !(a > 0) {
				return fmt.Errorf("%w: diagonal entry %d is %v", ErrNotPositiveDefinite, i, a)
			}
			p.aDiag[i] = a
			p.ainvDiag[i] = 1 / a
			p.logDetA += math.Log(a)
		}
		return nil
	}
	A := mat.NewSymDense(k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			v := beta * p.h.At(i, j)
			if i == j {
				v += p.alpha[i]
			}
			A.SetSym(i, j, v)
		}
	}
	if !p.chol.Factorize(A) {
		msg := ""
		if p.curvature == Exact {
			msg = " (the exact Hessian is indefinite here; use the Gauss–Newton curvature or retrain to a minimum)"
		}
		return fmt.Errorf("%w%s", ErrNotPositiveDefinite, msg)
	}
	p.logDetA = p.chol.LogDet()
	var inv mat.SymDense
	if err := p.chol.InverseTo(&inv); err != nil {
		var cond mat.Condition
		if !errors.As(err, &cond) {
			return fmt.Errorf("laplace: inverse of A: %w", err)
		}
	}
	p.ainvDiag = make([]float64, k)
	for i := range k {
		p.ainvDiag[i] = inv.At(i, i)
	}
	return nil
}

// Net returns the network the posterior is centred on (a copy; changing it
// does not change the posterior).
func (p *Posterior) Net() *nn.Network { return p.net.Clone() }

// Dim returns the number of parameters the posterior covers, W.
func (p *Posterior) Dim() int { return len(p.params) }

// Params returns the flat indices of the covered parameters.
func (p *Posterior) Params() []int { return append([]int(nil), p.params...) }

// Curvature returns the curvature H of the posterior.
func (p *Posterior) Curvature() Curvature { return p.curvature }

// Regression reports whether the posterior has a noise precision β (loss
// mse).
func (p *Posterior) Regression() bool { return p.regression }

// Alpha returns the isotropic prior precision, or NaN when the layers have
// different ones (see LayerAlpha).
func (p *Posterior) Alpha() float64 {
	if !p.isotropic {
		return math.NaN()
	}
	return p.layerAlpha[0]
}

// LayerAlpha returns the prior precision of each layer.
func (p *Posterior) LayerAlpha() []float64 { return append([]float64(nil), p.layerAlpha...) }

// Beta returns the noise precision β; 1 for classification.
func (p *Posterior) Beta() float64 { return p.beta }

// Samples returns the number of training samples N and targets per sample K.
func (p *Posterior) Samples() (n, k int) { return p.n, p.k }

// GradNorm returns the largest absolute entry of ∇S at the posterior's θ;
// it is zero to rounding when θ is θ_MAP for the posterior's α and β.
func (p *Posterior) GradNorm() float64 { return p.gradNorm }

// Evidence is the log evidence ln p(D|α,β) of a posterior and its terms.
type Evidence struct {
	// LogEvidence is the sum of the terms below.
	LogEvidence float64
	// Data is −βE(θ_MAP) (−E for classification), Prior is −½Σα_qθ_q²,
	// LogDet is −½ln|A|, LogAlpha is ½Σ_q ln α_q and Noise is
	// (NK/2)(ln β − ln 2π), zero for classification.
	Data, Prior, LogDet, LogAlpha, Noise float64
	// Gamma is the effective number of parameters γ (see Gamma).
	Gamma float64
}

// Evidence returns the log evidence and its terms.
func (p *Posterior) Evidence() Evidence {
	var e Evidence
	e.Data = -p.beta * p.ed
	for i, th := range p.theta {
		e.Prior -= 0.5 * p.alpha[i] * th * th
		e.LogAlpha += 0.5 * math.Log(p.alpha[i])
	}
	e.LogDet = -0.5 * p.logDetA
	if p.regression {
		nk := float64(p.n * p.k)
		e.Noise = 0.5 * nk * (math.Log(p.beta) - math.Log(2*math.Pi))
	}
	e.LogEvidence = e.Data + e.Prior + e.LogDet + e.LogAlpha + e.Noise
	e.Gamma = p.Gamma()
	return e
}

// LogDetA returns ln|A|.
func (p *Posterior) LogDetA() float64 { return p.logDetA }

// LayerGamma returns the effective number of parameters of each layer,
//
//	γ_l = Σ_{q∈l} (1 − α_l [A⁻¹]_qq),
//
// which for an isotropic prior sums to γ = Σᵢ λᵢ/(λᵢ+α) over the
// eigenvalues λᵢ of βH (MacKay 1992).
func (p *Posterior) LayerGamma() []float64 {
	g := make([]float64, len(p.layerAlpha))
	for i, l := range p.layer {
		g[l] += 1 - p.alpha[i]*p.ainvDiag[i]
	}
	return g
}

// Gamma returns the effective number of well-determined parameters. For an
// isotropic prior and a dense curvature it is
//
//	γ = Σᵢ λᵢ/(λᵢ + α),   λᵢ the eigenvalues of βH,
//
// (Bishop 5.179), otherwise the sum of LayerGamma.
func (p *Posterior) Gamma() float64 {
	if p.isotropic && p.h != nil {
		if eig, err := p.eigenvalues(); err == nil {
			a := p.layerAlpha[0]
			var g float64
			for _, l := range eig {
				l *= p.beta
				g += l / (l + a)
			}
			return g
		}
	}
	return floats.Sum(p.LayerGamma())
}

// Eigenvalues returns the eigenvalues of H in ascending order (the diagonal
// itself, sorted, for the diagonal curvature).
func (p *Posterior) Eigenvalues() ([]float64, error) {
	if p.hDiag != nil {
		e := append([]float64(nil), p.hDiag...)
		sort.Float64s(e)
		return e, nil
	}
	e, err := p.eigenvalues()
	return append([]float64(nil), e...), err
}

func (p *Posterior) eigenvalues() ([]float64, error) {
	if p.hEig == nil {
		e, err := hessian.Eigenvalues(p.h)
		if err != nil {
			return nil, err
		}
		p.hEig = e
	}
	return p.hEig, nil
}

// Reestimate returns the hyperparameters of one step of MacKay's
// re-estimation from the posterior's θ_MAP and γ:
//
//	α_l ← γ_l / Σ_{q∈l} θ_q²        (α ← γ / ‖θ‖² for an isotropic prior),
//	β  ← (NK − γ) / Σₙ‖ŷₙ − tₙ‖²    (regression),
//
// (Bishop 5.178, 5.180), with one α per layer when the posterior was fitted
// with Settings.LayerAlpha. beta is 1 for classification.
func (p *Posterior) Reestimate() (layerAlpha []float64, beta float64, err error) {
	layerAlpha, beta, err = p.reestimateAlpha()
	if err != nil || !p.regression {
		return layerAlpha, beta, err
	}
	nk := float64(p.n * p.k)
	gamma := p.Gamma()
	if p.ed == 0 || nk <= gamma {
		return nil, 0, fmt.Errorf("laplace: β cannot be re-estimated: %d targets for γ = %.4g well-determined parameters and residual %v", p.n*p.k, gamma, 2*p.ed)
	}
	beta = (nk - gamma) / (2 * p.ed)
	if v := targetVariance(p.Y); v > 0 && beta*v > MaxSignalToNoise {
		return nil, 0, fmt.Errorf("laplace: the re-estimated noise precision β = %.3g is %.3g times the targets' precision: the network interpolates the data and the evidence grows without bound; fix β or use a classification loss", beta, beta*v)
	}
	return layerAlpha, beta, nil
}

// reestimateAlpha is Reestimate for α only; beta is the posterior's β.
func (p *Posterior) reestimateAlpha() (layerAlpha []float64, beta float64, err error) {
	L := len(p.layerAlpha)
	layerAlpha = make([]float64, L)
	gamma := p.Gamma()
	if !p.perLayer {
		ss := floats.Dot(p.theta, p.theta)
		if ss == 0 {
			return nil, 0, errors.New("laplace: all parameters are zero; α cannot be re-estimated")
		}
		for l := range layerAlpha {
			layerAlpha[l] = gamma / ss
		}
	} else {
		g := p.LayerGamma()
		ss := make([]float64, L)
		for i, l := range p.layer {
			ss[l] += p.theta[i] * p.theta[i]
		}
		for l := range layerAlpha {
			if ss[l] == 0 {
				return nil, 0, fmt.Errorf("laplace: the parameters of layer %d are all zero; its α cannot be re-estimated", l)
			}
			layerAlpha[l] = g[l] / ss[l]
		}
	}
	beta = p.beta
	for l, v := range layerAlpha {
		if !(v > 0) || math.IsInf(v, 1) {
			return nil, 0, fmt.Errorf("laplace: re-estimated α of layer %d is %v (γ_l ≤ 0: the curvature of that layer is not positive)", l, v)
		}
	}
	return layerAlpha, beta, nil
}

// MaxSignalToNoise bounds the ratio of the targets' variance to the noise
// variance 1/β that Reestimate accepts: beyond it the network interpolates
// the data, β grows at every step and the evidence without bound.
const MaxSignalToNoise = 1e12

// targetVariance returns the variance of all entries of Y.
func targetVariance(Y *mat.Dense) float64 {
	r, c := Y.Dims()
	var s, s2 float64
	for i := range r {
		for _, v := range Y.RawRowView(i) {
			s += v
			s2 += v * v
		}
	}
	n := float64(r * c)
	m := s / n
	return math.Max(s2/n-m*m, 0)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
