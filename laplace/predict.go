package laplace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// Method selects how a classification predictive is computed.
type Method int

// The predictive methods of ProbTo.
//
//	Probit: MacKay's probit approximation of ∫σ(a)N(a|a_MAP,σₐ²)da,
//	        σ(κ(σₐ²)·a_MAP) with κ(s) = (1 + πs/8)^(−1/2) (Bishop 4.153), per
//	        sigmoid output; for softmax the extended probit
//	        softmaxₖ(κ(Σₖₖ)·aₖ) (Gibbs 1997), a further approximation.
//	MonteCarlo: the average of σ(a) or softmax(a) over Samples draws of the
//	        output pre-activations a ~ N(a_MAP, Σ), Σ = J A⁻¹ Jᵀ.
const (
	Probit Method = iota
	MonteCarlo
)

var methodNames = [...]string{Probit: "probit", MonteCarlo: "mc"}

// String returns the name of the method: probit or mc.
func (m Method) String() string {
	if m < 0 || int(m) >= len(methodNames) {
		return fmt.Sprintf("Method(%d)", int(m))
	}
	return methodNames[m]
}

// ParseMethod returns the method with the given name: probit or mc.
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if n == s {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("unknown predictive method %q (want probit or mc)", s)
}

// DefaultSamples is the number of Monte Carlo draws per sample when
// PredictSettings.Samples is zero.
const DefaultSamples = 1000

// PredictSettings holds the settings of ProbTo; nil or zero fields select
// the defaults.
type PredictSettings struct {
	// Method is the predictive method, default Probit.
	Method Method
	// Samples is the number of Monte Carlo draws per sample, default
	// DefaultSamples.
	Samples int
	// Src is the source of the Monte Carlo draws, default a PCG source
	// seeded with 1; ProbTo draws from it, changing its state.
	Src rand.Source
}

// kappa returns MacKay's κ(s) = (1 + πs/8)^(−1/2).
func kappa(s float64) float64 { return 1 / math.Sqrt(1+math.Pi*math.Max(s, 0)/8) }

// ErrNotRegression and ErrNotClassification are returned by the predictive
// methods that do not fit the posterior's loss.
var (
	ErrNotRegression     = errors.New("laplace: the predictive mean and variance are for regression (loss mse); use ProbTo")
	ErrNotClassification = errors.New("laplace: predictive probabilities are for classification (loss bce or ce); use PredictTo")
)

// PredictTo writes, for each row of X and each output k, the linearised
// predictive mean ŷₖ(x, θ_MAP) to mean and the predictive variance
//
//	σₖ²(x) = 1/β + gₖᵀ A⁻¹ gₖ,   gₖ = ∂ŷₖ/∂θ at θ_MAP,
//
// to variance (Bishop 5.173); both are rows(X)×K. Either may be nil. It
// returns ErrNotRegression for a classification posterior.
func (p *Posterior) PredictTo(ctx context.Context, mean, variance *mat.Dense, X *mat.Dense) error {
	if !p.regression {
		return ErrNotRegression
	}
	err := p.LatentTo(ctx, mean, variance, X)
	if err == nil && variance != nil {
		r, c := variance.Dims()
		for i := range r {
			for k := range c {
				variance.Set(i, k, variance.At(i, k)+1/p.beta)
			}
		}
	}
	return err
}

// LatentTo writes, for each row of X, the network's outputs at θ_MAP (for
// classification the output pre-activations a) to mean and the variances
// gᵀA⁻¹g of their linearisation, without the noise 1/β, to variance;
// both are rows(X)×K and either may be nil.
func (p *Posterior) LatentTo(ctx context.Context, mean, variance *mat.Dense, X *mat.Dense) error {
	K := p.net.Outputs()
	return p.each(ctx, X, mean, func(i int, _ []float64, cov []float64) {
		if variance != nil {
			for k := range K {
				variance.Set(i, k, cov[k*K+k])
			}
		}
	}, variance != nil)
}

// ProbTo writes the predictive class probabilities of each row of X to dst
// (rows(X)×K): for bce the probability of target 1 of each output, for ce
// the probability of each class. It returns ErrNotClassification for a
// regression posterior.
func (p *Posterior) ProbTo(ctx context.Context, dst *mat.Dense, X *mat.Dense, s *PredictSettings) error {
	if p.regression {
		return ErrNotClassification
	}
	var cfg PredictSettings
	if s != nil {
		cfg = *s
	}
	if cfg.Samples < 0 {
		return fmt.Errorf("laplace: %d Monte Carlo samples", cfg.Samples)
	}
	if cfg.Samples == 0 {
		cfg.Samples = DefaultSamples
	}
	if cfg.Method != Probit && cfg.Method != MonteCarlo {
		return fmt.Errorf("laplace: unknown predictive method %v", cfg.Method)
	}
	if cfg.Src == nil {
		cfg.Src = rand.NewPCG(1, 1)
	}
	rng := rand.New(cfg.Src)
	K := p.net.Outputs()
	ce := p.net.Loss() == nn.CE
	a := make([]float64, K)
	z := make([]float64, K)
	out := make([]float64, K)
	var chol mat.Cholesky
	var L mat.TriDense
	covSym := mat.NewSymDense(K, nil)
	return p.each(ctx, X, nil, func(i int, am []float64, cov []float64) {
		switch {
		case cfg.Method == Probit && !ce:
			for k := range K {
				dst.Set(i, k, sigmoid(kappa(cov[k*K+k])*am[k]))
			}
			return
		case cfg.Method == Probit:
			for k := range K {
				a[k] = kappa(cov[k*K+k]) * am[k]
			}
			softmax(out, a)
			dst.SetRow(i, out)
			return
		}
		clear(out)
		if ce {
			for r := range K {
				for c := r; c < K; c++ {
					covSym.SetSym(r, c, cov[r*K+c])
				}
			}
			factorJitter(&chol, covSym)
			chol.LTo(&L)
		}
		for range cfg.Samples {
			for k := range K {
				z[k] = rng.NormFloat64()
			}
			if ce {
				for r := range K {
					v := am[r]
					for c := 0; c <= r; c++ {
						v += L.At(r, c) * z[c]
					}
					a[r] = v
				}
				softmax(a, a)
				for k := range K {
					out[k] += a[k]
				}
				continue
			}
			for k := range K {
				out[k] += sigmoid(am[k] + math.Sqrt(math.Max(cov[k*K+k], 0))*z[k])
			}
		}
		for k := range K {
			dst.Set(i, k, out[k]/float64(cfg.Samples))
		}
	}, true)
}

// factorJitter factorizes the K×K covariance c, adding to its diagonal the
// smallest jitter 10⁻¹²·(1 + max c_kk)·10^j that makes it positive definite
// when it is only semi-definite (a softmax's a is determined up to a shift).
func factorJitter(chol *mat.Cholesky, c *mat.SymDense) {
	if chol.Factorize(c) {
		return
	}
	K := c.SymmetricDim()
	m := 0.0
	for k := range K {
		m = math.Max(m, c.At(k, k))
	}
	j := mat.NewSymDense(K, nil)
	e := 1e-12 * (1 + m)
	for range 20 {
		j.CopySym(c)
		for k := range K {
			j.SetSym(k, k, j.At(k, k)+e)
		}
		if chol.Factorize(j) {
			return
		}
		e *= 10
	}
	// Not even nearly semi-definite: keep the variances only.
	for a := range K {
		for b := a; b < K; b++ {
			v := 0.0
			if a == b {
				v = math.Abs(c.At(a, a)) + e
			}
			j.SetSym(a, b, v)
		}
	}
	chol.Factorize(j)
}

// each computes, for each row i of X, the outputs at θ_MAP (pre-activations
// for classification), written to mean when not nil, and, when withCov, the
// K×K covariance J A⁻¹ Jᵀ of their linearisation, and calls fn with them.
func (p *Posterior) each(ctx context.Context, X, mean *mat.Dense, fn func(i int, out, cov []float64), withCov bool) error {
	if _, c := X.Dims(); c != p.net.Inputs() {
		return fmt.Errorf("laplace: data have %d input columns, network %s has %d inputs", c, p.net.Arch(), p.net.Inputs())
	}
	N, _ := X.Dims()
	K := p.net.Outputs()
	jnet := p.net
	if !p.regression {
		// The Gauss–Newton rows of a linear output under mse are ∂a/∂θ.
		layers := p.net.Layers()
		layers[len(layers)-1].Act = nn.Linear
		var err error
		jnet, err = nn.FromLayers(layers, nn.MSE)
		if err != nil {
			return err
		}
		jnet.SetMask(p.net.Mask())
		jnet.SetParams(p.net.RawParams())
	}
	out := jnet.Forward(X)
	if mean != nil {
		mean.Copy(out)
	}
	W := len(p.params)
	rows := max(1, min(256, (1<<23)/max(1, K*W)))
	cov := make([]float64, K*K)
	var S mat.Dense
	covSym := mat.NewSymDense(K, nil)
	covDense := mat.NewDense(K, K, nil)
	var sqrtAinv []float64
	if p.hDiag != nil {
		sqrtAinv = make([]float64, W)
		for q, v := range p.ainvDiag {
			sqrtAinv[q] = math.Sqrt(v)
		}
	}
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		if !withCov {
			for i := lo; i < hi; i++ {
				fn(i, out.RawRowView(i), cov)
			}
			continue
		}
		Y := mat.NewDense(hi-lo, K, nil)
		pr := &hessian.Problem{Net: jnet, Data: nn.Data{X: rowsOf(X, lo, hi), Y: Y}, Params: p.params}
		J := hessian.WeightedJacobian(pr, 0, hi-lo)
		if p.hDiag != nil {
			// Scale column q by √[A⁻¹]_qq, so that J_i J_iᵀ is the covariance.
			nr, _ := J.Dims()
			for r := range nr {
				row := J.RawRowView(r)
				for q := range row {
					row[q] *= sqrtAinv[q]
				}
			}
		} else {
			S.Reset()
			if err := p.chol.SolveTo(&S, J.T()); err != nil {
				var cond mat.Condition
				if !errors.As(err, &cond) {
					return fmt.Errorf("laplace: %w", err)
				}
			}
		}
		for i := lo; i < hi; i++ {
			Ji := J.Slice((i-lo)*K, (i-lo+1)*K, 0, W)
			if p.hDiag != nil {
				covSym.SymOuterK(1, Ji)
				for a := range K {
					for b := a; b < K; b++ {
						v := covSym.At(a, b)
						cov[a*K+b], cov[b*K+a] = v, v
					}
				}
			} else {
				Si := S.Slice(0, W, (i-lo)*K, (i-lo+1)*K)
				covDense.Mul(Ji, Si)
				for a := range K {
					for b := a; b < K; b++ {
						v := 0.5 * (covDense.At(a, b) + covDense.At(b, a))
						cov[a*K+b], cov[b*K+a] = v, v
					}
				}
			}
			fn(i, out.RawRowView(i), cov)
		}
	}
	return nil
}

func rowsOf(m *mat.Dense, lo, hi int) *mat.Dense {
	_, c := m.Dims()
	return m.Slice(lo, hi, 0, c).(*mat.Dense)
}

func sigmoid(a float64) float64 { return nn.Sigmoid.Eval(a) }

// softmax writes the softmax of a to z; z may be a.
func softmax(z, a []float64) {
	m := math.Inf(-1)
	for _, v := range a {
		m = math.Max(m, v)
	}
	var s float64
	for i, v := range a {
		e := math.Exp(v - m)
		z[i] = e
		s += e
	}
	for i := range z {
		z[i] /= s
	}
}
