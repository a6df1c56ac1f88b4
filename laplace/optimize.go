package laplace

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/lm"
	"github.com/secondorder/prune/nn"
)

// Defaults of OptimizeSettings.
const (
	DefaultIterations = 100
	DefaultTolerance  = 1e-9
)

// OptimizeSettings holds the settings of Optimize; nil or zero fields
// select the defaults.
type OptimizeSettings struct {
	// Retrain moves θ to the MAP of the current α and β before every
	// re-estimation (and the curvature with it), by Levenberg–Marquardt
	// steps on S(θ); without it θ and H stay those of the given network
	// and only α and β are iterated.
	Retrain bool

	// FixBeta keeps β at its starting value and re-estimates α only.
	FixBeta bool

	// Iterations is the largest number of re-estimation steps, default
	// DefaultIterations.
	Iterations int

	// Tolerance ends the iteration when no hyperparameter changes by more
	// than this fraction of its value, default DefaultTolerance.
	Tolerance float64

	// Train holds the settings of the retraining (lm.Minimize); nil for
	// its defaults with the gradient threshold off, so that θ reaches the
	// MAP to rounding.
	Train *lm.Settings

	// Recorder, when not nil, is called after every step.
	Recorder func(Step)
}

// Step describes one re-estimation step of Optimize: the hyperparameters
// used, the evidence and γ they gave, and the next ones.
type Step struct {
	Iteration       int
	LayerAlpha      []float64
	Beta            float64
	LogEvidence     float64
	Gamma           float64
	NextLayerAlpha  []float64
	NextBeta        float64
	RetrainSteps    int // Levenberg–Marquardt steps of the retraining
	GradNormAtStart float64
}

// Optimize iterates MacKay's re-estimation of α (one per layer with
// s.LayerAlpha) and, for regression, β (Reestimate), starting from the
// settings' values, until they change by less than the tolerance: with
// o.Retrain, retraining θ to the MAP of S(θ) between steps (Bishop §5.7.2),
// otherwise keeping θ and H fixed. It returns the posterior at the final
// hyperparameters (its Net the retrained network) and the steps taken;
// net is not changed. It returns an error when the iteration does not
// converge within the iterations, together with the last posterior.
func Optimize(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *Settings, o *OptimizeSettings) (*Posterior, []Step, error) {
	var cfg OptimizeSettings
	if o != nil {
		cfg = *o
	}
	if cfg.Iterations < 0 || cfg.Tolerance < 0 || math.IsNaN(cfg.Tolerance) {
		return nil, nil, fmt.Errorf("laplace: optimize: iterations %d and tolerance %v must not be negative", cfg.Iterations, cfg.Tolerance)
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = DefaultIterations
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = DefaultTolerance
	}
	train := cfg.Train
	if train == nil {
		train = &lm.Settings{GradientThreshold: -1}
	}
	var fs Settings
	if s != nil {
		fs = *s
	}
	work := net.Clone()
	alpha, _, err := layerAlphas(&fs, net.NumLayers())
	if err != nil {
		return nil, nil, err
	}
	beta := fs.Beta
	if net.Loss() == nn.MSE && beta == 0 {
		N, _ := X.Dims()
		_, K := Y.Dims()
		ed := net.Objective(X, Y)
		if ed == 0 {
			return nil, nil, fmt.Errorf("laplace: the network fits the data exactly; give the noise precision β")
		}
		beta = float64(N*K) / (2 * ed)
	}
	var steps []Step
	var post *Posterior
	for it := 1; it <= cfg.Iterations; it++ {
		st := Step{Iteration: it, LayerAlpha: append([]float64(nil), alpha...), Beta: beta}
		if cfg.Retrain || post == nil {
			if cfg.Retrain {
				res, err := retrain(ctx, work, X, Y, alpha, beta, train)
				if err != nil {
					return post, steps, err
				}
				st.RetrainSteps = res.Steps
			}
			fs.LayerAlpha, fs.Alpha = alpha, 0
			if net.Loss() == nn.MSE {
				fs.Beta = beta
			}
			p, err := Fit(ctx, work, X, Y, &fs)
			if err != nil {
				return post, steps, err
			}
			// Fit with LayerAlpha marks the prior per layer; keep the
			// caller's choice.
			p.perLayer = s != nil && s.LayerAlpha != nil
			post = p
		} else if err := post.SetHyper(alpha, beta); err != nil {
			return post, steps, err
		}
		st.GradNormAtStart = post.GradNorm()
		ev := post.Evidence()
		st.LogEvidence, st.Gamma = ev.LogEvidence, ev.Gamma
		var na []float64
		var nb float64
		if cfg.FixBeta {
			na, nb, err = post.reestimateAlpha()
		} else {
			na, nb, err = post.Reestimate()
		}
		if err != nil {
			return post, steps, err
		}
		st.NextLayerAlpha, st.NextBeta = na, nb
		steps = append(steps, st)
		if cfg.Recorder != nil {
			cfg.Recorder(st)
		}
		change := relChange(nb, beta)
		for l := range na {
			change = math.Max(change, relChange(na[l], alpha[l]))
		}
		alpha, beta = na, nb
		if change <= cfg.Tolerance {
			if cfg.Retrain {
				if _, err := retrain(ctx, work, X, Y, alpha, beta, train); err != nil {
					return post, steps, err
				}
				fs.LayerAlpha = alpha
				if net.Loss() == nn.MSE {
					fs.Beta = beta
				}
				p, err := Fit(ctx, work, X, Y, &fs)
				if err != nil {
					return post, steps, err
				}
				p.perLayer = s != nil && s.LayerAlpha != nil
				return p, steps, nil
			}
			return post, steps, post.SetHyper(alpha, beta)
		}
	}
	return post, steps, fmt.Errorf("laplace: the re-estimation of the hyperparameters did not converge in %d iterations", cfg.Iterations)
}

func relChange(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
}

// retrain moves the parameters of net to the minimum of
// S = βE + ½Σα_qθ_q² by Levenberg–Marquardt steps. Parameters outside the
// posterior (pruned ones, unless all) stay as they are.
func retrain(ctx context.Context, net *nn.Network, X, Y *mat.Dense, layerAlpha []float64, beta float64, s *lm.Settings) (lm.Result, error) {
	decay := make([]float64, net.NumParams())
	for q := range decay {
		decay[q] = layerAlpha[net.ParamAt(q).Layer]
	}
	if net.Loss() != nn.MSE {
		beta = 1
	}
	return lm.Minimize(ctx, &lm.Objective{Net: net, X: X, Y: Y, Scale: beta, Decay: decay}, s)
}

// MAP trains net in place to the minimum of S(θ) for the prior precisions
// layerAlpha (one per layer, or one for all) and the noise precision beta
// (ignored for classification) by Levenberg–Marquardt steps over its live
// parameters, with settings s (nil: run to rounding).
func MAP(ctx context.Context, net *nn.Network, X, Y *mat.Dense, layerAlpha []float64, beta float64, s *lm.Settings) (lm.Result, error) {
	L := net.NumLayers()
	a := layerAlpha
	if len(a) == 1 {
		a = make([]float64, L)
		for l := range a {
			a[l] = layerAlpha[0]
		}
	}
	if len(a) != L {
		return lm.Result{}, fmt.Errorf("laplace: %d prior precisions for %d layers", len(layerAlpha), L)
	}
	if s == nil {
		s = &lm.Settings{GradientThreshold: -1}
	}
	return retrain(ctx, net, X, Y, a, beta, s)
}
