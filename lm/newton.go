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

// Updater retrains a trained network after a few samples are added to or
// removed from its training set by Newton steps from the old optimum
// (Bishop §5.4, the Hessian's use for fast retraining). It keeps the
// inverse
//
//	P = (H + αI)⁻¹
//
// of the curvature of S(θ) = E(θ) + ½α‖θ‖² over the live parameters, with
// α = Nλ for a network trained by nn.Train or Train with weight decay λ on
// N samples. Add and Remove change the data and update P by the samples'
// Gauss–Newton terms, one row x = Bₙ Jₙ per sample and output, with the
// rank-one recursion of the Optimal Brain Surgeon,
//
//	P ← P − s·P x xᵀ P / (1 + s·xᵀ P x),   s = +1 to add, −1 to remove,
//
// at O(W²) per row. Step then moves θ by
//
//	θ ← θ − P ∇S'(θ),
//
// S' the objective on the changed data. The prior precision α stays
// fixed, as in a Bayesian update of the posterior: the new objective is
// nn's J with weight decay λ' = α/N'.
type Updater struct {
	net    *nn.Network
	X, Y   *mat.Dense
	alpha  float64
	params []int
	p      *mat.SymDense
	full   []float64
}

// UpdaterSettings holds the settings of NewUpdater; zero fields select the
// defaults.
type UpdaterSettings struct {
	// WeightDecay is the λ the network was trained with; α = Nλ.
	WeightDecay float64
	// Exact selects the exact Hessian of the old data for H; by default
	// the Gauss–Newton matrix, which matches the rank-one terms.
	Exact bool
	// Damping is added to α in P only (not in S), to keep P positive
	// definite when α is zero, default 0.
	Damping float64
	// MemoryLimit bounds the dense matrices as in hessian.CheckMemory.
	MemoryLimit int64
}

// NewUpdater returns an Updater for net at its current parameters, which
// should minimise J on the data X, Y. net is not changed; the updater keeps
// a copy.
func NewUpdater(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *UpdaterSettings) (*Updater, error) {
	var cfg UpdaterSettings
	if s != nil {
		cfg = *s
	}
	if !(cfg.WeightDecay >= 0) || math.IsInf(cfg.WeightDecay, 1) || !(cfg.Damping >= 0) || math.IsInf(cfg.Damping, 1) {
		return nil, fmt.Errorf("lm: weight decay %v and damping %v must be non-negative numbers", cfg.WeightDecay, cfg.Damping)
	}
	if err := net.Check(X, Y); err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	N, _ := X.Dims()
	u := &Updater{
		net: net.Clone(), X: mat.DenseCopyOf(X), Y: mat.DenseCopyOf(Y),
		alpha: float64(N) * cfg.WeightDecay, params: net.LiveIndices(),
		full: make([]float64, net.NumParams()),
	}
	pr := &hessian.Problem{Net: u.net, Data: nn.Data{X: u.X, Y: u.Y}, Params: u.params}
	var c hessian.Curvature = hessian.GaussNewton{P: pr}
	if cfg.Exact {
		c = hessian.Exact{P: pr}
	}
	H, err := hessian.Dense(ctx, c, cfg.MemoryLimit)
	if err != nil {
		return nil, err
	}
	if err := hessian.DampedInverse(H, H, u.alpha+cfg.Damping); err != nil {
		var cond mat.Condition
		if !errors.As(err, &cond) {
			return nil, fmt.Errorf("lm: inverse of H + αI: %w", err)
		}
	}
	u.p = H
	return u, nil
}

// Alpha returns the prior precision α = Nλ of the objective S.
func (u *Updater) Alpha() float64 { return u.alpha }

// Net returns a copy of the network at the current parameters.
func (u *Updater) Net() *nn.Network { return u.net.Clone() }

// Data returns the current training data (the updater's own copies).
func (u *Updater) Data() (X, Y *mat.Dense) { return u.X, u.Y }

// WeightDecay returns the weight decay λ' = α/N' of nn's objective J on the
// current data.
func (u *Updater) WeightDecay() float64 {
	N, _ := u.X.Dims()
	return u.alpha / float64(N)
}

// Add appends the samples X, Y to the training data and updates P by
// their Gauss–Newton terms at the current parameters.
func (u *Updater) Add(ctx context.Context, X, Y *mat.Dense) error {
	if err := u.net.Check(X, Y); err != nil {
		return fmt.Errorf("lm: samples to add: %w", err)
	}
	if err := u.rankUpdate(ctx, X, Y, 1); err != nil {
		return err
	}
	u.X = stack(u.X, X)
	u.Y = stack(u.Y, Y)
	return nil
}

// Remove removes the samples X, Y from the training data, each matched to
// the first equal row of inputs and targets not yet removed, and downdates
// P by their Gauss–Newton terms. It returns an error, with nothing changed,
// when a sample is not in the data or when the remaining curvature would
// not be positive definite.
func (u *Updater) Remove(ctx context.Context, X, Y *mat.Dense) error {
	if err := u.net.Check(X, Y); err != nil {
		return fmt.Errorf("lm: samples to remove: %w", err)
	}
	n, _ := X.Dims()
	N, _ := u.X.Dims()
	gone := make([]bool, N)
	for i := range n {
		found := false
		for j := range N {
			if !gone[j] && floats.Equal(u.X.RawRowView(j), X.RawRowView(i)) && floats.Equal(u.Y.RawRowView(j), Y.RawRowView(i)) {
				gone[j], found = true, true
				break
			}
		}
		if !found {
			return fmt.Errorf("lm: sample %d to remove is not in the training data", i)
		}
	}
	if n >= N {
		return errors.New("lm: removing every training sample")
	}
	old := mat.NewSymDense(u.p.SymmetricDim(), nil)
	old.CopySym(u.p)
	if err := u.rankUpdate(ctx, X, Y, -1); err != nil {
		u.p = old
		return err
	}
	keep := make([]int, 0, N-n)
	for j, g := range gone {
		if !g {
			keep = append(keep, j)
		}
	}
	u.X, u.Y = rows(u.X, keep), rows(u.Y, keep)
	return nil
}

// rankUpdate applies the rank-one recursion with sign s for every
// Gauss–Newton row of the samples.
func (u *Updater) rankUpdate(ctx context.Context, X, Y *mat.Dense, s float64) error {
	n, _ := X.Dims()
	k := len(u.params)
	px := mat.NewVecDense(k, nil)
	const chunk = 64
	for lo := 0; lo < n; lo += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+chunk, n)
		pr := &hessian.Problem{Net: u.net, Data: nn.Data{X: X, Y: Y}, Params: u.params}
		J := hessian.WeightedJacobian(pr, lo, hi)
		r, _ := J.Dims()
		for i := range r {
			x := mat.NewVecDense(k, J.RawRowView(i))
			px.MulVec(u.p, x)
			d := 1 + s*mat.Dot(x, px)
			if !(d > 0) {
				return fmt.Errorf("lm: the curvature without sample %d is not positive definite (pivot %.3g); give a weight decay or a damping", lo+i/u.net.Outputs(), d)
			}
			u.p.SymRankOne(u.p, -s/d, px)
		}
	}
	return nil
}

// StepResult describes the Newton steps of Step.
type StepResult struct {
	// Steps is the number of steps accepted.
	Steps int
	// Start and End are S' = E' + ½α‖θ‖² before and after the steps,
	// and GradNorm the largest absolute entry of ∇S' after them.
	Start, End, GradNorm float64
}

// Step takes up to steps Newton steps θ ← θ − t·P∇S'(θ) on the current
// data, reusing P (computed at the old optimum) for every step, with t = 1
// or, when that does not lower S', the first of 1/2, 1/4, … (down to 1/512)
// that does. It stops early when no such t lowers S'.
func (u *Updater) Step(ctx context.Context, steps int) (StepResult, error) {
	if steps < 1 {
		return StepResult{}, fmt.Errorf("lm: %d Newton steps", steps)
	}
	k := len(u.params)
	g := mat.NewVecDense(k, nil)
	d := mat.NewVecDense(k, nil)
	th := u.net.RawParams()
	var res StepResult
	grad := func() float64 {
		E := u.net.Gradient(u.full, u.X, u.Y)
		S := E
		for i, q := range u.params {
			g.SetVec(i, u.full[q]+u.alpha*th[q])
			S += 0.5 * u.alpha * th[q] * th[q]
		}
		return S
	}
	res.Start = grad()
	S := res.Start
	x0 := make([]float64, k)
	for range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		d.MulVec(u.p, g)
		for i, q := range u.params {
			x0[i] = th[q]
		}
		// Backtrack: halve the step until S' falls.
		accepted := false
		for t := 1.0; t > 1e-3; t /= 2 {
			for i, q := range u.params {
				th[q] = x0[i] - t*d.AtVec(i)
			}
			if St := u.objective(); finite(St) && St < S {
				accepted = true
				break
			}
		}
		if !accepted {
			for i, q := range u.params {
				th[q] = x0[i]
			}
			break
		}
		res.Steps++
		S = grad()
	}
	res.End = S
	res.GradNorm = floats.Norm(g.RawVector().Data, math.Inf(1))
	return res, nil
}

// objective returns S' = E' + ½α‖θ‖² at the current parameters.
func (u *Updater) objective() float64 {
	S := u.net.Objective(u.X, u.Y)
	th := u.net.RawParams()
	for _, q := range u.params {
		S += 0.5 * u.alpha * th[q] * th[q]
	}
	return S
}

func stack(a, b *mat.Dense) *mat.Dense {
	ra, c := a.Dims()
	rb, _ := b.Dims()
	out := mat.NewDense(ra+rb, c, nil)
	out.Slice(0, ra, 0, c).(*mat.Dense).Copy(a)
	out.Slice(ra, ra+rb, 0, c).(*mat.Dense).Copy(b)
	return out
}

func rows(a *mat.Dense, idx []int) *mat.Dense {
	_, c := a.Dims()
	out := mat.NewDense(len(idx), c, nil)
	for i, j := range idx {
		out.SetRow(i, a.RawRowView(j))
	}
	return out
}
