// Package lm trains networks with second-order steps on the curvature of
// package hessian: Levenberg–Marquardt on the Gauss–Newton matrix, and
// Newton updates of a trained network after a few samples are added to or
// removed from its training set.
//
// Levenberg–Marquardt minimises an objective
//
//	S(θ) = c·E(θ) + ½ Σ_q d_q θ_q²,   E = Σₙ ℓₙ,
//
// over the live parameters by the steps δ that solve
//
//	(c·G + D + μI) δ = −∇S,   G = Σₙ Jₙᵀ Λₙ Jₙ (hessian.GaussNewton),
//
// exactly by a Cholesky factorization when there are few parameters, and by
// conjugate gradients on matrix-free Gauss–Newton products otherwise. The
// damping μ follows Nielsen's rule: after a step that lowers S with gain
// ratio ρ (actual over predicted decrease) μ ← μ·max(1/3, 1−(2ρ−1)³), after
// a rejected step μ ← μν, ν ← 2ν. Train minimises the objective of
// nn.Train, J = E/N + ½λ‖θ‖² (c = 1/N, d_q = λ), so that its weight decay
// means what it means for the other optimizers.
//
// References:
//
//	K. Levenberg, A method for the solution of certain non-linear problems
//	  in least squares, Quart. Appl. Math. 2, 1944.
//	D. W. Marquardt, An algorithm for least-squares estimation of nonlinear
//	  parameters, SIAM J. Appl. Math. 11, 1963.
//	H. B. Nielsen, Damping parameter in Marquardt's method, IMM-REP-1999-05,
//	  DTU, 1999.
//	C. M. Bishop, Pattern Recognition and Machine Learning, §5.4, 2006.
package lm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// Defaults of Settings.
const (
	DefaultEpochs       = 200  // Levenberg–Marquardt iterations
	DefaultDenseLimit   = 3000 // largest number of live parameters solved by Cholesky
	DefaultCGIterations = 100
	DefaultCGTolerance  = 1e-8 // relative residual of the conjugate-gradient solve
	DefaultTau          = 1e-3 // initial μ relative to the largest diagonal entry

	// GradientThreshold ends a run as converged when the largest absolute
	// entry of ∇S falls below it (the threshold of nn's L-BFGS).
	GradientThreshold = 1e-8

	// maxRejections is the number of consecutive rejected steps after
	// which the run counts as converged: μ has then grown by 2^maxRejections.
	maxRejections = 40
)

// Settings holds the settings of Train and Minimize. A nil *Settings, and
// any zero field, selects the documented default.
type Settings struct {
	// Epochs is the maximum number of accepted Levenberg–Marquardt steps,
	// default DefaultEpochs.
	Epochs int

	// WeightDecay is the λ of J = E/N + ½λ‖θ‖² (Train only), default 0.
	WeightDecay float64

	// Tolerance, when positive, stops Train after the first step whose
	// training mean loss E/N is below it.
	Tolerance float64

	// Patience turns on early stopping in Train as in nn.TrainSettings; it
	// needs validation data.
	Patience int

	// DenseLimit is the largest number of live parameters for which the
	// damped system is solved by a Cholesky factorization of the dense
	// Gauss–Newton matrix, default DefaultDenseLimit; above it the system
	// is solved by conjugate gradients on Gauss–Newton products. A
	// negative value always uses conjugate gradients.
	DenseLimit int

	// CGIterations and CGTolerance bound the conjugate-gradient solves:
	// at most CGIterations products, stopping when the residual falls
	// below CGTolerance times the right-hand side. Defaults
	// DefaultCGIterations and DefaultCGTolerance.
	CGIterations int
	CGTolerance  float64

	// Tau sets the initial damping μ₀ = Tau·max_q (c·G + D)_qq, default
	// DefaultTau.
	Tau float64

	// GradientThreshold ends a run as converged when the largest absolute
	// entry of ∇S falls below it, default GradientThreshold; a negative
	// value runs until no step lowers S by more than its rounding.
	GradientThreshold float64

	// MemoryLimit bounds the dense Gauss–Newton matrix as in
	// hessian.CheckMemory (0: hessian.DefaultMemoryLimit).
	MemoryLimit int64

	// Recorder, if not nil, receives the Progress of every accepted step
	// of Train.
	Recorder nn.Recorder
}

// Validate returns an error describing the first invalid setting.
func (s *Settings) Validate() error {
	if s == nil {
		return nil
	}
	switch {
	case s.Epochs < 0:
		return fmt.Errorf("epochs %d is negative", s.Epochs)
	case !(s.WeightDecay >= 0) || math.IsInf(s.WeightDecay, 1):
		return fmt.Errorf("weight decay %v is not a non-negative number", s.WeightDecay)
	case !(s.Tolerance >= 0) || math.IsInf(s.Tolerance, 1):
		return fmt.Errorf("tolerance %v is not a non-negative number", s.Tolerance)
	case s.Patience < 0:
		return fmt.Errorf("patience %d is negative", s.Patience)
	case s.CGIterations < 0:
		return fmt.Errorf("conjugate-gradient iterations %d is negative", s.CGIterations)
	case !(s.CGTolerance >= 0) || math.IsInf(s.CGTolerance, 1):
		return fmt.Errorf("conjugate-gradient tolerance %v is not a non-negative number", s.CGTolerance)
	case !(s.Tau >= 0) || math.IsInf(s.Tau, 1):
		return fmt.Errorf("initial damping factor %v is not a non-negative number", s.Tau)
	}
	return nil
}

func (s *Settings) withDefaults() Settings {
	var c Settings
	if s != nil {
		c = *s
	}
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
	}
	if c.DenseLimit == 0 {
		c.DenseLimit = DefaultDenseLimit
	}
	if c.CGIterations == 0 {
		c.CGIterations = DefaultCGIterations
	}
	if c.CGTolerance == 0 {
		c.CGTolerance = DefaultCGTolerance
	}
	if c.Tau == 0 {
		c.Tau = DefaultTau
	}
	if c.GradientThreshold == 0 {
		c.GradientThreshold = GradientThreshold
	}
	return c
}

// Objective is S(θ) = Scale·E(θ) + ½ Σ_q Decay[q] θ_q² over the rows of X
// and Y, minimised over the live parameters of Net.
type Objective struct {
	Net  *nn.Network
	X, Y *mat.Dense

	// Scale is the factor c of E; it must be positive.
	Scale float64

	// Decay holds d_q for every parameter (length Net.NumParams()), or is
	// nil for none.
	Decay []float64
}

// Value returns S at the network's current parameters.
func (o *Objective) Value() float64 {
	s := o.Scale * o.Net.Objective(o.X, o.Y)
	if o.Decay != nil {
		for q, th := range o.Net.RawParams() {
			s += 0.5 * o.Decay[q] * th * th
		}
	}
	return s
}

// Result describes a Minimize run.
type Result struct {
	// Steps is the number of accepted steps and Evaluations the number of
	// objective evaluations, rejected trial steps included.
	Steps, Evaluations int
	// Value is the final S and GradNorm the largest absolute entry of ∇S.
	Value, GradNorm float64
	// Mu is the final damping.
	Mu float64
	// Stopped is nn.StoppedConverged or nn.StoppedEpochs (or canceled).
	Stopped string
	// Dense reports whether the steps were solved by Cholesky.
	Dense bool
}

// ErrNotFinite is wrapped by the errors of runs whose objective or
// gradient became NaN or infinite.
var ErrNotFinite = errors.New("lm: objective is not finite")

// Minimize minimises o over the live parameters of o.Net by
// Levenberg–Marquardt steps, starting from its current parameters, and
// leaves the network at the minimum found. Pruned parameters stay zero.
// Only Epochs, DenseLimit, CG*, Tau, GradientThreshold and MemoryLimit of s
// are used.
func Minimize(ctx context.Context, o *Objective, s *Settings) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, fmt.Errorf("lm: %w", err)
	}
	if err := checkObjective(o); err != nil {
		return Result{}, err
	}
	cfg := s.withDefaults()
	r := newRun(o, &cfg)
	return r.minimize(ctx, nil)
}

func checkObjective(o *Objective) error {
	if !(o.Scale > 0) || math.IsInf(o.Scale, 1) {
		return fmt.Errorf("lm: scale %v is not a positive number", o.Scale)
	}
	if o.Decay != nil {
		if len(o.Decay) != o.Net.NumParams() {
			panic("lm: decay length does not match the parameters")
		}
		for q, d := range o.Decay {
			if !(d >= 0) || math.IsInf(d, 1) {
				return fmt.Errorf("lm: decay of parameter %d is %v, not a non-negative number", q, d)
			}
		}
	}
	if err := o.Net.Check(o.X, o.Y); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	return o.Net.CheckFinite()
}

// run is the state of one Levenberg–Marquardt minimisation.
type run struct {
	o    *Objective
	cfg  *Settings
	pr   *hessian.Problem
	live []int
	d    []float64 // decay over the live parameters

	x, g, step, trial []float64 // over the live parameters
	full              []float64 // full-length gradient
	G                 *mat.SymDense
	M                 *mat.SymDense // c·G + D + μI
	chol              mat.Cholesky
	cg                *cgWork
}

func newRun(o *Objective, cfg *Settings) *run {
	live := o.Net.LiveIndices()
	k := len(live)
	r := &run{
		o: o, cfg: cfg, live: live,
		pr: &hessian.Problem{Net: o.Net, Data: nn.Data{X: o.X, Y: o.Y}, Params: live},
		d:  make([]float64, k),
		x:  make([]float64, k), g: make([]float64, k), step: make([]float64, k), trial: make([]float64, k),
		full: make([]float64, o.Net.NumParams()),
	}
	if o.Decay != nil {
		for i, q := range live {
			r.d[i] = o.Decay[q]
		}
	}
	return r
}

// dense reports whether the steps are solved by Cholesky.
func (r *run) dense() bool {
	k := len(r.live)
	if r.cfg.DenseLimit < 0 || k > r.cfg.DenseLimit {
		return false
	}
	return hessian.CheckMemory("Gauss–Newton matrix", k, r.cfg.MemoryLimit) == nil
}

// gradient sets r.g = ∇S at r.x (which the network holds) and returns S.
func (r *run) gradient() float64 {
	E := r.o.Net.Gradient(r.full, r.o.X, r.o.Y)
	c := r.o.Scale
	S := c * E
	for i, q := range r.live {
		r.g[i] = c*r.full[q] + r.d[i]*r.x[i]
		S += 0.5 * r.d[i] * r.x[i] * r.x[i]
	}
	return S
}

func (r *run) setParams(x []float64) {
	th := r.o.Net.RawParams()
	for i, q := range r.live {
		th[q] = x[i]
	}
}

// hook is called after every accepted step; it may stop the run.
type hook func(res *Result) (stop bool, err error)

func (r *run) minimize(ctx context.Context, after hook) (Result, error) {
	res := Result{Dense: r.dense()}
	k := len(r.live)
	th := r.o.Net.RawParams()
	for i, q := range r.live {
		r.x[i] = th[q]
	}
	if k == 0 {
		res.Value = r.o.Value()
		res.Stopped = nn.StoppedConverged
		return res, nil
	}
	S := r.gradient()
	res.Evaluations = 1
	if !finite(S) {
		return res, fmt.Errorf("%w at the starting parameters: %v", ErrNotFinite, S)
	}
	c := r.o.Scale
	if res.Dense {
		r.G = mat.NewSymDense(k, nil)
		r.M = mat.NewSymDense(k, nil)
	} else {
		r.cg = newCGWork(k)
	}
	mu, nu := -1.0, 2.0
	rejections, small := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			res.Stopped = nn.StoppedCanceled
			return res, err
		}
		res.GradNorm = floats.Norm(r.g, math.Inf(1))
		res.Value = S
		if res.GradNorm < r.cfg.GradientThreshold {
			res.Stopped = nn.StoppedConverged
			break
		}
		if res.Steps >= r.cfg.Epochs {
			res.Stopped = nn.StoppedEpochs
			break
		}
		// The curvature at the current point.
		var maxDiag float64
		if res.Dense {
			if err := (hessian.GaussNewton{P: r.pr}).DenseTo(ctx, r.G); err != nil {
				return res, err
			}
			for i := range k {
				maxDiag = math.Max(maxDiag, c*r.G.At(i, i)+r.d[i])
			}
		} else if mu < 0 {
			diag := make([]float64, k)
			if err := (hessian.GaussNewton{P: r.pr}).DiagTo(ctx, diag); err != nil {
				return res, err
			}
			for i, v := range diag {
				maxDiag = math.Max(maxDiag, c*v+r.d[i])
			}
		}
		if mu < 0 {
			mu = r.cfg.Tau * math.Max(maxDiag, 1e-300)
		}
		accepted := false
		for !accepted {
			if err := ctx.Err(); err != nil {
				res.Stopped = nn.StoppedCanceled
				r.setParams(r.x)
				return res, err
			}
			ok := r.solve(ctx, mu)
			if err := ctx.Err(); err != nil {
				res.Stopped = nn.StoppedCanceled
				r.setParams(r.x)
				return res, err
			}
			if !ok {
				mu *= nu
				nu *= 2
				rejections++
				if rejections > maxRejections {
					break
				}
				continue
			}
			// Predicted decrease ½δᵀ(μδ − g).
			pred := 0.5 * (mu*floats.Dot(r.step, r.step) - floats.Dot(r.step, r.g))
			floats.AddTo(r.trial, r.x, r.step)
			r.setParams(r.trial)
			St := r.o.Value()
			res.Evaluations++
			rho := (S - St) / pred
			// A step that leaves S unchanged is taken: near the minimum S is
			// flat to rounding while θ can still be √ε away from it, and the
			// Gauss–Newton step closes that gap (the five-small-steps rule
			// below ends the run).
			if finite(St) && St <= S && pred > 0 {
				accepted = true
				rejections = 0
				copy(r.x, r.trial)
				mu *= math.Max(1.0/3, 1-math.Pow(2*rho-1, 3))
				nu = 2
			} else {
				r.setParams(r.x)
				mu *= nu
				nu *= 2
				rejections++
				if rejections > maxRejections {
					break
				}
			}
		}
		if !accepted {
			// Every step raises S: a minimum to rounding.
			res.Stopped = nn.StoppedConverged
			break
		}
		res.Steps++
		prev := S
		S = r.gradient()
		res.Evaluations++
		res.Value = S
		res.GradNorm = floats.Norm(r.g, math.Inf(1))
		if !finite(S) {
			return res, fmt.Errorf("%w at step %d: %v", ErrNotFinite, res.Steps, S)
		}
		if after != nil {
			stop, err := after(&res)
			if err != nil || stop {
				res.Mu = mu
				return res, err
			}
		}
		if prev-S <= 1e-13*math.Abs(prev) {
			small++
		} else {
			small = 0
		}
		if small >= 5 {
			// Five steps in a row lowered S by less than its rounding.
			res.Stopped = nn.StoppedConverged
			break
		}
	}
	res.Mu = mu
	r.setParams(r.x)
	return res, nil
}

// solve sets r.step to the solution of (c·G + D + μI)δ = −g and reports
// whether it succeeded.
func (r *run) solve(ctx context.Context, mu float64) bool {
	k := len(r.live)
	c := r.o.Scale
	if r.M != nil {
		for i := range k {
			for j := i; j < k; j++ {
				v := c * r.G.At(i, j)
				if i == j {
					v += r.d[i] + mu
				}
				r.M.SetSym(i, j, v)
			}
		}
		if !r.chol.Factorize(r.M) {
			return false
		}
		rhs := mat.NewVecDense(k, r.trial)
		for i, v := range r.g {
			rhs.SetVec(i, -v)
		}
		dst := mat.NewVecDense(k, r.step)
		if err := r.chol.SolveVecTo(dst, rhs); err != nil {
			var cond mat.Condition
			if !errors.As(err, &cond) {
				return false
			}
		}
		return allFinite(r.step)
	}
	gn := hessian.GaussNewton{P: r.pr}
	mul := func(dst, v []float64) {
		gn.MulVecTo(dst, v)
		for i := range dst {
			dst[i] = c*dst[i] + (r.d[i]+mu)*v[i]
		}
	}
	r.cg.solve(ctx, r.step, r.g, mul, r.cfg.CGIterations, r.cfg.CGTolerance)
	return ctx.Err() == nil && allFinite(r.step)
}

// cgWork holds the vectors of a conjugate-gradient solve.
type cgWork struct{ res, p, ap []float64 }

func newCGWork(k int) *cgWork {
	return &cgWork{res: make([]float64, k), p: make([]float64, k), ap: make([]float64, k)}
}

// solve sets x to the approximate solution of M x = −g by at most iters
// conjugate-gradient steps from x = 0, stopping when ‖r‖ ≤ tol·‖g‖ or when
// ctx is done (checked before every product).
func (w *cgWork) solve(ctx context.Context, x, g []float64, mul func(dst, v []float64), iters int, tol float64) {
	clear(x)
	for i, v := range g {
		w.res[i] = -v
	}
	copy(w.p, w.res)
	rr := floats.Dot(w.res, w.res)
	stop := tol * tol * rr
	for it := 0; it < iters && rr > stop; it++ {
		if ctx.Err() != nil {
			return
		}
		mul(w.ap, w.p)
		pap := floats.Dot(w.p, w.ap)
		if !(pap > 0) {
			break
		}
		a := rr / pap
		floats.AddScaled(x, a, w.p)
		floats.AddScaled(w.res, -a, w.ap)
		rn := floats.Dot(w.res, w.res)
		b := rn / rr
		rr = rn
		for i := range w.p {
			w.p[i] = w.res[i] + b*w.p[i]
		}
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func allFinite(v []float64) bool {
	for _, x := range v {
		if !finite(x) {
			return false
		}
	}
	return true
}
