package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// WoodburyOBS is global OBS on a low-rank plus damping curvature in its
// Woodbury form (hessian.LowRank): the empirical Fisher F = λI + s Σᵢ gᵢgᵢᵀ
// of m = Samples gradients (of Batch samples summed each), or with
// GaussNewton the Gauss–Newton matrix of m samples (m × outputs rows), with
// the saliency and update of OBS. A round costs O(m·W) memory, O(m²·W) to
// build and O(m·W) per greedy removal; its scorer is a SetRemover. The
// samples are drawn by Src (nil: a fixed seed) without replacement from the
// problem's rows and s = N/(m·Batch) puts F in the units of E = Σₙ ℓₙ (all
// rows once, s = 1, when there are no more). Damping is λ, by default
// RelativeDamping times the mean diagonal entry of s·GᵀG.
//
// Hard (Fisher without Batch) takes that many of the samples as those of
// largest loss, weight 1, and draws the rest at random, weighted
// (N − Hard)/(m − Hard). SampledLabels (Fisher) draws each target from the
// network's predictive distribution, so that E[ggᵀ] is the Gauss–Newton
// matrix. Greedy makes Run remove one parameter at a time; by default its
// rounds remove their sets jointly, DefaultWoodburyFraction each, unless a
// budget, the error-rise rule or RebuildEvery needs single removals.
// Results and the choice of settings on MNIST: results/mlpnet.md.
type WoodburyOBS struct {
	GaussNewton              bool
	Samples, Batch           int
	Damping, RelativeDamping float64
	Src                      rand.Source
	Hard                     int
	SampledLabels, Greedy    bool
}

// Need returns NeedInverse.
func (WoodburyOBS) Need() Need { return NeedInverse }

// Validate returns an error when the settings are invalid.
func (o WoodburyOBS) Validate() error {
	if o.Samples < 0 {
		return fieldErrorf("WoodburyOBS", "Samples", "%d is negative", o.Samples)
	}
	if o.GaussNewton && o.SampledLabels {
		return fieldErrorf("WoodburyOBS", "SampledLabels", "are for the Fisher matrix, not the Gauss–Newton rows")
	}
	if o.Hard < 0 || o.Hard > o.samples() || (o.Hard > 0 && (o.GaussNewton || o.Batch > 1)) {
		return fieldErrorf("WoodburyOBS", "Hard", "%d of %d samples (not with Gauss–Newton rows or batches)", o.Hard, o.samples())
	}
	if o.Batch < 0 || (o.GaussNewton && o.Batch > 1) {
		return fieldErrorf("WoodburyOBS", "Batch", "%d is invalid (per-batch gradients are for the Fisher matrix only)", o.Batch)
	}
	if !(o.Damping >= 0) || math.IsInf(o.Damping, 1) {
		return fieldErrorf("WoodburyOBS", "Damping", "%v is not a non-negative number", o.Damping)
	}
	if !(o.RelativeDamping >= 0) || math.IsInf(o.RelativeDamping, 1) {
		return fieldErrorf("WoodburyOBS", "RelativeDamping", "%v is not a non-negative number", o.RelativeDamping)
	}
	return nil
}

func (o WoodburyOBS) samples() int { return cmp.Or(o.Samples, DefaultWoodburySamples) }
func (o WoodburyOBS) batch() int   { return max(o.Batch, 1) }

// rank returns m and the number of samples used from N rows.
func (o WoodburyOBS) rank(p *hessian.Problem) (m, used int) {
	N, _ := p.X.Dims()
	used = min(N, o.samples()*o.batch())
	if o.GaussNewton {
		return used * p.Net.Outputs(), used
	}
	return hessian.FisherRows(used, o.batch()), used
}

// MemoryBytes returns the memory a round of o needs on p, before anything
// is allocated (hessian.LowRankBytes).
func (o WoodburyOBS) MemoryBytes(p *hessian.Problem) int64 {
	m, _ := o.rank(p)
	return hessian.LowRankBytes(p.Dim(), m)
}

// Begin builds the Woodbury form over the live parameters of p, the
// objective's Env.Decay added to its λ. It returns
// a *hessian.LowRankMemoryError, before allocating, when MemoryBytes
// exceeds env's limit.
func (o WoodburyOBS) Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error) {
	lr, err := o.LowRank(ctx, p, env)
	if err != nil {
		return nil, err
	}
	return &woodburyScorer{lr: lr, p: p, decay: env.decay()}, nil
}

// LowRank returns the Woodbury form of the curvature o uses on p; env may
// be nil.
func (o WoodburyOBS) LowRank(ctx context.Context, p *hessian.Problem, env *Env) (*hessian.LowRank, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	N, _ := p.X.Dims()
	_, used := o.rank(p)
	src := o.Src
	if src == nil {
		src = rand.NewPCG(1, 2)
	}
	var rowScale []float64
	var sub *hessian.Problem
	if o.Hard > 0 && used < N {
		sub, rowScale = hardSubsample(p, o.Hard, used, src)
	} else {
		sub = subsample(p, used, src)
	}
	if o.SampledLabels {
		sub = sampledLabels(sub, rand.New(src))
	}
	s := &hessian.LowRankSettings{
		Damping:         o.Damping,
		RelativeDamping: cmp.Or(o.RelativeDamping, DefaultRelativeDamping),
		Scale:           float64(N) / float64(used),
		RowScale:        rowScale,
		Batch:           o.batch(),
		MaxBytes:        env.maxBytes(),
		Shift:           env.decay(),
	}
	var lr *hessian.LowRank
	var err error
	if o.GaussNewton {
		lr, err = hessian.LowRankGaussNewton(ctx, sub, s)
	} else {
		lr, err = hessian.LowRankFisher(ctx, sub, s)
	}
	if err != nil {
		if err == hessian.ErrNotFinite {
			env.report(Issue{Kind: IssueNotFinite, Index: -1, Lambda: math.NaN(),
				Message: "Woodbury OBS: a gradient row has a NaN or infinite entry"})
		}
		return nil, fmt.Errorf("Woodbury OBS: %w", err)
	}
	return lr, nil
}

// sampledLabels returns p with targets drawn from the network's outputs
// (see WoodburyOBS.SampledLabels).
func sampledLabels(p *hessian.Problem, rng *rand.Rand) *hessian.Problem {
	out := p.Net.Forward(p.X)
	N, k := out.Dims()
	_, yc := p.Y.Dims()
	Y := mat.NewDense(N, yc, nil)
	for i := 0; i < N; i++ {
		o, y := out.RawRowView(i), Y.RawRowView(i)
		switch p.Net.Loss() {
		case nn.CE:
			u, c := rng.Float64(), 0
			for c < k-1 && u >= o[c] {
				u -= o[c]
				c++
			}
			y[0] = float64(c)
		case nn.BCE:
			for j, v := range o {
				if rng.Float64() < v {
					y[j] = 1
				}
			}
		default:
			for j, v := range o {
				y[j] = v + rng.NormFloat64()
			}
		}
	}
	return &hessian.Problem{Net: p.Net, Data: nn.Data{X: p.X, Y: Y}, Params: p.Params}
}

// hardSubsample returns p restricted to the h rows of largest loss and
// k − h others drawn from src, in ascending order, and the row scales that
// make (N/k)·scale the weights of WoodburyOBS.Hard.
func hardSubsample(p *hessian.Problem, h, k int, src rand.Source) (*hessian.Problem, []float64) {
	N, _ := p.X.Dims()
	hard, rest := hardRows(p, h, k, src)
	isHard := map[int]bool{}
	for _, r := range hard {
		isHard[r] = true
	}
	rows := slices.Concat(hard, rest)
	slices.Sort(rows)
	// The low-rank Fisher scales every row by N/k; the hard rows want 1,
	// the others (N − h)/(k − h).
	scale := make([]float64, k)
	for i, r := range rows {
		if isHard[r] {
			scale[i] = float64(k) / float64(N)
		} else {
			scale[i] = float64(N-h) / float64(k-h) * float64(k) / float64(N)
		}
	}
	return rowsProblem(p, rows), scale
}

// hardRows returns the h rows of p of largest loss and k − h of the others
// drawn from src, each set in ascending order.
func hardRows(p *hessian.Problem, h, k int, src rand.Source) (hard, rest []int) {
	N, _ := p.X.Dims()
	loss := make([]float64, N)
	const chunk = 1024
	tr := p.Net.NewTrace(chunk)
	_, xc := p.X.Dims()
	_, yc := p.Y.Dims()
	for lo := 0; lo < N; lo += chunk {
		hi := min(lo+chunk, N)
		p.Net.ForwardTrace(tr, p.X.Slice(lo, hi, 0, xc).(*mat.Dense))
		Y := p.Y.Slice(lo, hi, 0, yc).(*mat.Dense)
		for i := lo; i < hi; i++ {
			loss[i] = p.Net.SampleLoss(tr, Y, i-lo)
		}
	}
	order := make([]int, N)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(loss[b], loss[a]) })
	hard = slices.Clone(order[:h])
	slices.Sort(hard)
	others := order[h:]
	slices.Sort(others)
	if src == nil {
		src = rand.NewPCG(1, 2)
	}
	for _, j := range rand.New(src).Perm(len(others))[:k-h] {
		rest = append(rest, others[j])
	}
	slices.Sort(rest)
	return hard, rest
}

// rowsProblem returns p restricted to the given rows.
func rowsProblem(p *hessian.Problem, rows []int) *hessian.Problem {
	_, xc := p.X.Dims()
	_, yc := p.Y.Dims()
	X := mat.NewDense(len(rows), xc, nil)
	Y := mat.NewDense(len(rows), yc, nil)
	for i, r := range rows {
		X.SetRow(i, p.X.RawRowView(r))
		Y.SetRow(i, p.Y.RawRowView(r))
	}
	return &hessian.Problem{Net: p.Net, Data: nn.Data{X: X, Y: Y}, Params: p.Params}
}

// subsample returns p restricted to k of its rows: all of them when k is
// the number of rows, else k drawn without replacement from src (nil: a
// fixed seed) in ascending order.
func subsample(p *hessian.Problem, k int, src rand.Source) *hessian.Problem {
	N, _ := p.X.Dims()
	if k >= N {
		return p
	}
	if src == nil {
		src = rand.NewPCG(1, 2)
	}
	rows := rand.New(src).Perm(N)[:k]
	slices.Sort(rows)
	return rowsProblem(p, rows)
}

// SetRemover is a Scorer that also removes a set of positions S jointly
// with the multi-weight OBS update of the package doc and returns its
// predicted L_S; on error w and the scorer are unchanged.
type SetRemover interface {
	Scorer
	RemoveSet(ctx context.Context, S []int, w []float64) (predicted float64, err error)
}

// woodburyScorer defers the restriction of the form after RemoveSet until
// the form is used again: a joint round of Run or OneShot never uses it
// again, and the restriction costs as much as half a build.
type woodburyScorer struct {
	lr      *hessian.LowRank
	p       *hessian.Problem
	decay   float64 // Env.Decay, part of the form's λ
	pending []int   // removed jointly, not yet restricted
}

// errReleased is returned by a scorer used after release.
var errReleased = errors.New("prune: Woodbury OBS scorer used after its round ended")

// release frees the form once the round that built it is over.
func (s *woodburyScorer) release() { s.lr, s.pending = nil, nil }

// restrict restricts the form to the complement of the pending set.
func (s *woodburyScorer) restrict(ctx context.Context) error {
	if s.lr == nil {
		return errReleased
	}
	if s.pending == nil {
		return nil
	}
	S := s.pending
	s.pending = nil
	_, err := s.lr.RemoveSet(ctx, S, nil)
	return err
}

// Damping returns the damping λ of the curvature, without the objective's
// Env.Decay, which the form's λ also holds.
func (s *woodburyScorer) Damping() float64 {
	if s.lr == nil {
		return math.NaN()
	}
	return s.lr.Damping() - s.decay
}

func (s *woodburyScorer) Score(sal, pred, w []float64) error {
	if err := s.restrict(context.Background()); err != nil {
		return err
	}
	return obsScores(sal, pred, w, s.lr.Removed, s.lr.InverseDiag, func(i int) int { return paramIndex(s.p, i) })
}

// obsScores writes the OBS saliencies w_i²/(2 d_i) of the positions not
// removed, d_i = [H⁻¹]_ii from diag, to sal and pred; a d_i that is not
// positive and finite gives a *hessian.PivotError naming index(i).
func obsScores(sal, pred, w []float64, removed func(int) bool, diag func(int) float64, index func(int) int) error {
	for i, v := range w {
		if removed(i) {
			continue
		}
		d := diag(i)
		if !(d > 0) || math.IsInf(d, 1) {
			return &hessian.PivotError{Index: index(i), Pivot: d}
		}
		sal[i] = v * v / (2 * d)
		pred[i] = sal[i]
	}
	return nil
}

func (s *woodburyScorer) Remove(i int, w []float64) error {
	if err := s.restrict(context.Background()); err != nil {
		return err
	}
	_, err := s.lr.Remove(i, w)
	return err
}

func (s *woodburyScorer) RemoveSet(ctx context.Context, S []int, w []float64) (float64, error) {
	if err := s.restrict(ctx); err != nil {
		return math.NaN(), err
	}
	wv := w
	if wv == nil {
		wv = make([]float64, s.lr.Dim())
	}
	delta, pred, err := s.lr.SetUpdate(wv, S)
	if err != nil {
		return math.NaN(), err
	}
	if w != nil {
		for j, x := range delta {
			w[j] += x
		}
		for _, q := range S {
			w[q] = 0
		}
	}
	s.pending = slices.Clone(S)
	return pred, nil
}

// RemoveMany removes k live positions of sc from w in steps scorings
// (steps < 1 means 1, steps ≥ k is greedy): each step removes the next
// share of least saliency together, jointly when sc is a SetRemover, else
// one by one. It returns the positions removed, in order, and the sum of
// the steps' predicted ΔE. A nil live means all live; live is updated.
func RemoveMany(ctx context.Context, sc Scorer, w []float64, live []bool, k, steps int) (removed []int, predicted float64, err error) {
	n := len(w)
	if live == nil {
		live = make([]bool, n)
		for i := range live {
			live[i] = true
		}
	}
	if len(live) != n {
		panic("prune: RemoveMany length mismatch")
	}
	nlive := 0
	for _, l := range live {
		if l {
			nlive++
		}
	}
	if k < 0 || k > nlive {
		return nil, math.NaN(), fmt.Errorf("prune: %d removals asked of %d live positions", k, nlive)
	}
	steps = max(1, min(steps, k))
	sal := make([]float64, n)
	pred := make([]float64, n)
	order := make([]int, 0, n)
	sr, joint := sc.(SetRemover)
	for st := 0; st < steps; st++ {
		if err := ctx.Err(); err != nil {
			return removed, predicted, err
		}
		kk := (k*(st+1))/steps - (k*st)/steps
		if kk == 0 {
			continue
		}
		if rs, ok := sc.(interface{ restrict(context.Context) error }); ok {
			if err := rs.restrict(ctx); err != nil {
				return removed, predicted, err
			}
		}
		if err := sc.Score(sal, pred, w); err != nil {
			return removed, predicted, err
		}
		order = order[:0]
		for i, l := range live {
			if l {
				order = append(order, i)
			}
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sal[a], sal[b]) })
		S := slices.Clone(order[:kk])
		if joint && kk > 1 {
			p, err := sr.RemoveSet(ctx, S, w)
			if err != nil {
				return removed, predicted, err
			}
			predicted += p
		} else {
			// Sequential removals of a fixed set: the predicted increase
			// of the set is the sum of each removal's prediction at the
			// time it is made, so rescore the set's entries only.
			for _, q := range S {
				if err := sc.Score(sal, pred, w); err != nil {
					return removed, predicted, err
				}
				predicted += pred[q]
				if err := sc.Remove(q, w); err != nil {
					return removed, predicted, err
				}
				live[q] = false
			}
		}
		for _, q := range S {
			live[q] = false
		}
		removed = append(removed, S...)
	}
	return removed, predicted, nil
}

// OneShotSettings are the settings of OneShot: Rounds curvature builds
// (zero: 1), each removing its share of the k parameters jointly on the
// network the earlier rounds left (RemoveMany with Steps scorings; zero:
// 1), or with Geometric the same fraction of those still allowed. Params
// restricts the removals to these flat indices (nil: every live
// parameter; the curvature covers every live one either way). With
// Gradient each round's saliency gets the gradient of E on X, Y at the
// round's start (Env.Gradient, used by OBS and BlockOBS): the round's
// removal then minimises gᵀδ + ½δᵀCδ (WoodTaylor). MaxBytes is as in Env;
// Report receives the numerical issues of the builds.
type OneShotSettings struct {
	Rounds    int
	Geometric bool
	Steps     int
	Params    []int
	Gradient  bool
	MaxBytes  int64
	Report    func(Issue)
}

// OneShotRound describes one round of OneShot: the parameters removed, the
// predicted ΔE of the set, the real one on X and Y, the damping (NaN: none)
// and the memory the saliency planned (0: not reported).
type OneShotRound struct {
	Removed                  int
	Predicted, Real, Damping float64
	Planned                  int64
}

// OneShot removes k live parameters of a copy of net without retraining,
// in rounds of one curvature build each, with the joint update of sal's
// scorer, and returns it with the rounds. A Planner's memory need is
// checked before its curvature is allocated.
func OneShot(ctx context.Context, net *nn.Network, X, Y *mat.Dense, sal Saliency, k int, s *OneShotSettings) (*nn.Network, []OneShotRound, error) {
	var cfg OneShotSettings
	if s != nil {
		cfg = *s
	}
	if cfg.Rounds < 0 || cfg.Steps < 0 {
		return nil, nil, fmt.Errorf("prune: one-shot with %d rounds and %d steps", cfg.Rounds, cfg.Steps)
	}
	rounds := max(cfg.Rounds, 1)
	if err := net.Check(X, Y); err != nil {
		return nil, nil, fmt.Errorf("prune: data: %w", err)
	}
	cur := net.Clone()
	allowed := map[int]bool{}
	for _, q := range cfg.Params {
		allowed[q] = true
	}
	nAllowed := 0
	for _, q := range cur.LiveIndices() {
		if cfg.Params == nil || allowed[q] {
			nAllowed++
		}
	}
	if k < 0 || k > nAllowed {
		return nil, nil, fmt.Errorf("prune: %d removals asked of %d live parameters", k, nAllowed)
	}
	env := &Env{MaxBytes: cfg.MaxBytes, Report: cfg.Report}
	E := cur.Objective(X, Y)
	var out []OneShotRound
	done := 0
	for r := 0; r < rounds; r++ {
		kr := k*(r+1)/rounds - done
		if cfg.Geometric && r+1 < rounds && k < nAllowed {
			left := float64(nAllowed-k) / float64(nAllowed)
			kr = int(math.Round(float64(nAllowed)*(1-math.Pow(left, float64(r+1)/float64(rounds))))) - done
		}
		if kr == 0 {
			continue
		}
		p := hessian.Live(cur, X, Y)
		rd := OneShotRound{Damping: math.NaN()}
		if pl, ok := sal.(interface {
			MemoryBytes(*hessian.Problem) int64
		}); ok {
			rd.Planned = pl.MemoryBytes(p)
		}
		env.Gradient = nil
		if cfg.Gradient {
			if !takesGradient(sal) {
				return nil, out, fmt.Errorf("prune: one-shot with the gradient term needs OBS or BlockOBS, not %T", sal)
			}
			env.Gradient = objectiveGradient(cur, nn.Data{X: X, Y: Y}, 0, p.Params)
		}
		sc, err := sal.Begin(ctx, p, env)
		if err != nil {
			return nil, out, err
		}
		if d, ok := sc.(interface{ Damping() float64 }); ok {
			rd.Damping = d.Damping()
		}
		raw := cur.RawParams()
		w := make([]float64, p.Dim())
		live := make([]bool, p.Dim())
		for i, q := range p.Params {
			w[i] = raw[q]
			live[i] = cfg.Params == nil || allowed[q]
		}
		removed, pred, err := RemoveMany(ctx, sc, w, live, kr, cfg.Steps)
		if err != nil {
			return nil, out, err
		}
		for i, q := range p.Params {
			raw[q] = w[i]
		}
		for _, i := range removed {
			cur.Prune(p.Params[i])
		}
		sc = nil
		after := cur.Objective(X, Y)
		rd.Removed, rd.Predicted, rd.Real = len(removed), pred, after-E
		E = after
		out = append(out, rd)
		done += kr
	}
	return cur, out, nil
}
