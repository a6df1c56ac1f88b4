package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// Run prunes a copy of net on data in rounds (see Settings; nil for the
// defaults) until a stopping rule holds, and returns the pruned network
// with the record of every removal and round. net is not modified.
//
// Run returns a nil Result with the error when s is invalid, the data do
// not fit net, or ctx is done before net is evaluated. An error while
// pruning ends the run with the Result so far, Stopped StoppedFailed and
// Net the last network that passed every check; when ctx is done (checked
// before every removal and within the curvature builds and retraining),
// Stopped is StoppedCanceled and the error ctx.Err().
func Run(ctx context.Context, net *nn.Network, data nn.Splits, s *Settings) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("prune settings: %w", err)
	}
	cfg := s.withDefaults()
	if err := checkSplits(net, data, &cfg); err != nil {
		return nil, err
	}
	if err := net.CheckFinite(); err != nil {
		return nil, fmt.Errorf("prune: network: %w", err)
	}
	r := &runner{
		cfg:      cfg,
		data:     data,
		net:      net.Clone(),
		W:        net.NumParams(),
		live:     net.NumLive(),
		target:   -1,
		hasValid: data.Valid.X != nil,
		hasTest:  data.Test.X != nil,
	}
	auto := MeanLoss
	if IsClassification(net, data.Train.Y) {
		auto = Misclassification
	}
	if cfg.ErrorMeasure == AutoMeasure {
		r.cfg.ErrorMeasure = auto
	}
	r.setStoppers(auto)
	if cfg.Objective != LossObjective {
		N, _ := data.Train.X.Dims()
		r.decay = cfg.WeightDecay * float64(N)
	}
	r.res = &Result{Net: r.net}
	if cfg.Resume != nil {
		if err := r.resume(cfg.Resume); err != nil {
			return nil, err
		}
	} else {
		start, err := evalContext(ctx, r)
		if err != nil {
			return nil, err
		}
		r.res.Start, r.cur = start, start
		r.ref = ErrorRise{Measure: r.cfg.ErrorMeasure, Split: r.cfg.ErrorSplit}.Reference(&Status{Start: start})
	}
	err := r.run(ctx)
	r.res.Final = r.cur
	if err != nil {
		r.res.Stopped = StoppedFailed
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			r.res.Stopped = StoppedCanceled
		}
		r.res.Final = r.eval() // the round may be incomplete
	}
	r.record(Event{Kind: EventDone, Stopped: r.res.Stopped})
	return r.res, err
}

func checkSplits(net *nn.Network, d nn.Splits, cfg *Settings) error {
	if d.Train.X == nil || d.Train.Y == nil {
		return errors.New("prune: no training data")
	}
	if err := net.Check(d.Train.X, d.Train.Y); err != nil {
		return fmt.Errorf("prune: training data: %w", err)
	}
	for _, sp := range []struct {
		name string
		d    nn.Data
	}{{"validation", d.Valid}, {"test", d.Test}} {
		if sp.d.X == nil {
			continue
		}
		if sp.d.Y == nil {
			return fmt.Errorf("prune: %s data have no targets", sp.name)
		}
		if err := net.Check(sp.d.X, sp.d.Y); err != nil {
			return fmt.Errorf("prune: %s data: %w", sp.name, err)
		}
	}
	for _, st := range cfg.stoppers() {
		if e, ok := st.(ErrorRise); ok && e.Split == ValidSplit && d.Valid.X == nil {
			return errors.New("prune: the error-rise rule on the validation split needs validation data")
		}
	}
	return nil
}

// runner holds the state of one Run.
type runner struct {
	cfg  Settings
	data nn.Splits
	net  *nn.Network
	res  *Result

	W        int     // parameters
	live     int     // live parameters
	decay    float64 // μ = λN of the objective's penalty ½μ‖θ‖²
	cur      Eval    // metrics of the current network
	aud      *auditor
	target   int     // live parameters to stop at, −1 for none
	ref      float64 // error of the starting network (State.Reference)
	stops    []Stopper
	needs    []StopNeeds
	undoing  bool    // some rule undoes
	asks     [6]bool // by Point: some rule that does not undo is asked there
	predNeed bool    // some rule needs predictions
	hasValid bool
	hasTest  bool

	totalPred float64 // sum of the predicted ΔE of all removals
	step      int     // removals so far
	issueStep int     // step attached to curvature issues
	round     int
	next      *hessian.Problem // the next round's problem, its diagonal kept by evalPruned
}

func (r *runner) record(e Event) {
	if r.cfg.Recorder == nil {
		return
	}
	e.Round = r.round
	e.Live = r.live
	e.Total = r.W
	e.Target = r.target
	r.cfg.Recorder.Record(e)
}

func (r *runner) issue(is Issue) {
	is.Round = r.round
	r.res.Health.Issues = append(r.res.Health.Issues, is)
}

// eval returns the metrics of the network on every split present.
func (r *runner) eval() Eval {
	return r.evalWith(r.net.Evaluate(r.data.Train.X, r.data.Train.Y))
}

// evalPruned is eval at the end of a round's removals. When the next round
// builds OBD's Becker–LeCun diagonal at these parameters, the build runs
// now and its forward pass gives the training metrics (Evaluate's bits).
func (r *runner) evalPruned(ctx context.Context) (Eval, error) {
	o, ok := r.cfg.Method.(OBD)
	if !ok || o.Builder != nil || (o.Curvature != BeckerLeCun && o.Curvature != LevenbergMarquardt) ||
		r.cfg.Retrain != nil || r.left() == 0 {
		return r.eval(), nil
	}
	pr := &hessian.Problem{Net: r.net, Data: r.data.Train, Params: r.net.LiveIndices()}
	bl := hessian.BeckerLeCun{P: pr, LM: o.Curvature == LevenbergMarquardt}
	m, err := bl.DiagMetricsTo(ctx, make([]float64, pr.Dim()))
	if err != nil {
		if ctx.Err() != nil {
			return Eval{}, err
		}
		return r.eval(), nil // the next round's build reports it
	}
	r.next = pr
	return r.evalWith(m), nil
}

// evalWith returns the metrics of the network with train those of the
// training split.
func (r *runner) evalWith(train nn.Metrics) Eval {
	e := Eval{Train: train}
	if r.hasValid {
		e.Valid = r.net.Evaluate(r.data.Valid.X, r.data.Valid.Y)
	}
	if r.hasTest {
		e.Test = r.net.Evaluate(r.data.Test.X, r.data.Test.Y)
	}
	return e
}

func (r *runner) run(ctx context.Context) error {
	r.aud = newAuditor(r.net, r.data.Train, r.cfg.AuditRows, r.cfg.AuditSeed)
	if r.res.Stopped != "" {
		return nil
	}
	if l := r.res.Start.Train.Loss; math.IsNaN(l) || math.IsInf(l, 0) {
		return fmt.Errorf("prune: the training loss of the network is %v", l)
	}
	defer func() { r.aud = nil }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if stop := r.stopBefore(); stop != "" {
			r.res.Stopped = stop
			return r.onState()
		}
		stop, err := r.doRound(ctx)
		if err != nil {
			return err
		}
		if stop != "" {
			r.res.Stopped = stop
			return r.onState()
		}
		if err := r.onState(); err != nil {
			return err
		}
	}
}

// onState hands the state of the run to Settings.OnState.
func (r *runner) onState() error {
	if r.cfg.OnState == nil {
		return nil
	}
	st, err := r.state()
	if err != nil {
		return err
	}
	if err := r.cfg.OnState(st); err != nil {
		return fmt.Errorf("prune: round %d: %w", r.round, err)
	}
	return nil
}

// stopBefore returns the stopping rule that holds before a round, if any.
func (r *runner) stopBefore() string {
	if r.asks[BeforeRound] {
		s := r.status(BeforeRound, r.cur)
		s.Round++
		if why := r.ask(BeforeRound, s); why != "" {
			return why
		}
	}
	for q := 0; q < r.W; q++ {
		if r.prunable(q) {
			return ""
		}
	}
	return StoppedExhausted
}

// prunable reports whether parameter q may be removed.
func (r *runner) prunable(q int) bool {
	return r.net.IsLive(q) && !(r.cfg.ProtectBiases && r.net.ParamAt(q).Bias)
}

// positions holds the live parameters of a round, by position.
type positions struct {
	live      []int // flat indices
	layer     []int
	cand      []bool // prunable
	removed   []bool
	w         []float64
	sal, pred []float64
}

func (r *runner) positions() *positions {
	live := r.net.LiveIndices()
	n := len(live)
	p := &positions{
		live: live, layer: make([]int, n), cand: make([]bool, n), removed: make([]bool, n),
		w: make([]float64, n), sal: make([]float64, n), pred: make([]float64, n),
	}
	theta := r.net.RawParams()
	for i, q := range live {
		p.layer[i] = r.net.ParamAt(q).Layer
		p.cand[i] = r.prunable(q)
		p.w[i] = theta[q]
	}
	return p
}

// begin builds the saliency's scorer over the live parameters of p.
func (r *runner) begin(ctx context.Context, p *positions, rd *Round) (Scorer, error) {
	pr := &hessian.Problem{Net: r.net, Data: r.data.Train, Params: p.live}
	if r.next != nil && slices.Equal(r.next.Params, p.live) {
		pr = r.next // its diagonal is kept for the parameters it was built at
	}
	r.next = nil
	env := &Env{MaxBytes: r.cfg.MaxBytes, Decay: r.decay, Report: func(is Issue) {
		is.Step = r.issueStep
		r.issue(is)
	}}
	rd.Decay = r.decay
	if r.cfg.Objective == GradientObjective && r.cfg.Method.Need() != NeedNone {
		env.Gradient = objectiveGradient(r.net, r.data.Train, r.decay, p.live)
	}
	sc, err := r.cfg.Method.Begin(ctx, pr, env)
	if err != nil {
		return nil, err
	}
	if d, ok := sc.(interface{ Damping() float64 }); ok {
		rd.Damping = d.Damping()
	}
	rd.Memory, _ = PlannedBytes(r.cfg.Method, pr)
	return sc, nil
}

// apportion shares k among layers in proportion to counts by largest
// remainders, ties to the lower layer.
func apportion(k int, counts []int) []int {
	total := 0
	for _, c := range counts {
		total += c
	}
	quota := make([]int, len(counts))
	if total == 0 {
		return quota
	}
	k = min(k, total)
	rem := make([]int, len(counts))
	given := 0
	for l, c := range counts {
		quota[l] = k * c / total
		rem[l] = k * c % total
		given += quota[l]
	}
	for ; given < k; given++ {
		best := -1
		for l := range counts {
			if quota[l] < counts[l] && (best < 0 || rem[l] > rem[best]) {
				best = l
			}
		}
		quota[best]++
		rem[best] = -1
	}
	return quota
}

// staticScorer is implemented by a Scorer whose Remove only sets w[i] to
// zero, so that the saliencies of the other positions do not change within
// a round: Run then ranks them once per round.
type staticScorer interface {
	Static() bool
}

func isStatic(sc Scorer) bool {
	s, ok := sc.(staticScorer)
	return ok && s.Static()
}

// removal is a removal of the current round: the position, the flat index
// and the value it had.
type removal struct {
	pos, q int
	old    float64
	pred   float64
}

// doRound runs one round and returns the stopping rule that ended the run,
// if any.
func (r *runner) doRound(ctx context.Context) (stop string, err error) {
	r.round++
	r.issueStep = 0
	r.record(Event{Kind: EventRoundStart})
	rd := Round{Round: r.round, Damping: math.NaN()}

	p := r.positions()
	sc, err := r.begin(ctx, p, &rd)
	if err != nil {
		return "", err
	}
	static := isStatic(sc)

	// The round's limit and, per layer, its shares.
	counts := make([]int, r.net.NumLayers())
	nCand := 0
	for i, c := range p.cand {
		if c {
			counts[p.layer[i]]++
			nCand++
		}
	}
	limit := nCand
	switch {
	case r.cfg.PerRound > 0:
		limit = r.cfg.PerRound
	case r.cfg.Fraction > 0:
		limit = max(1, ceilCount(r.cfg.Fraction*float64(nCand)))
	}
	limit = min(limit, r.left())
	limit = min(limit, nCand)
	var quota []int
	if r.cfg.PerLayer {
		quota = apportion(limit, counts)
	}

	// The audit: which removals, and how.
	auditOn := !r.cfg.NoAudit
	var sample []bool
	if auditOn {
		sample = auditSample(limit, r.cfg.AuditRemovals, r.cfg.AuditSeed, r.round)
	}
	isolated := static && sample != nil
	var base float64 // isolated: the subsample's loss at the round's start
	r.aud.net = r.net
	if isolated {
		r.aud.net = r.net.Clone()
	}
	if auditOn && static {
		base = r.aud.sync()
	}
	auditE, auditKnown := 0.0, false // the audited loss of the current network
	if auditOn && r.aud.all {
		auditE, auditKnown = r.cur.Train.Loss, true
	} else if auditOn && static {
		auditE, auditKnown = base, true
	}

	E0 := r.cur.Train.Loss
	theta := r.net.RawParams()
	// With RetrainRescues the error-rise rule waits for the retraining,
	// and a round that breaks it is undone from its start.
	rescue := r.undoing && r.cfg.Retrain != nil && r.cfg.RetrainRescues
	riseNow := r.undoing && !rescue
	undid := false // a rule that undoes held
	var theta0 []float64
	var mask0 []bool
	firstStep := len(r.res.History)
	if rescue {
		theta0, mask0 = slices.Clone(theta), r.net.Mask()
	}
	mu := r.decay
	var sq0, auditSq float64 // ‖θ‖² at the round's start and at auditE
	if mu != 0 {
		sq0 = sumSquares(theta)
		auditSq = sq0
	}
	var prev []float64
	if !static {
		prev = make([]float64, len(theta))
	}
	var done []removal // the round's removals, for a static scorer
	var order []int    // positions by saliency, for a static scorer
	next := 0
	rank := func() error {
		if err := sc.Score(p.sal, p.pred, p.w); err != nil {
			return fmt.Errorf("prune: round %d: %w", r.round, err)
		}
		order = order[:0]
		for j, s := range p.sal {
			if !p.cand[j] || p.removed[j] {
				continue
			}
			if math.IsNaN(s) {
				return fmt.Errorf("prune: round %d: the saliency of %v is NaN", r.round, r.net.ParamAt(p.live[j]))
			}
			order = append(order, j)
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.sal[a], p.sal[b]) })
		next = 0
		return nil
	}
	if static {
		if err := rank(); err != nil {
			return "", err
		}
	}
	removed := 0
	if n, joint, err := r.jointRound(ctx, sc, p, limit, quota, &rd); joint {
		if err != nil {
			return "", err
		}
		removed, limit = n, n
	}
	roundWhy := "" // a rule that ends only the round held
	pivotRebuilt := false
	for removed < limit {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		i := -1
		if static {
			for ; next < len(order); next++ {
				if j := order[next]; quota == nil || quota[p.layer[j]] > 0 {
					i = j
					next++
					break
				}
			}
		} else {
			if err := sc.Score(p.sal, p.pred, p.w); err != nil {
				var pe *hessian.PivotError
				if errors.As(err, &pe) && !pivotRebuilt {
					r.issueStep = r.step
					r.issue(Issue{Step: r.step, Kind: IssuePivot, Index: pe.Index, Lambda: rd.Damping,
						Message: fmt.Sprintf("[H⁻¹]_qq of %v is %g, not positive; rebuilding the curvature", r.net.ParamAt(pe.Index), pe.Pivot)})
					p = r.positions()
					if sc, err = r.begin(ctx, p, &rd); err != nil {
						return "", err
					}
					rd.Rebuilds++
					pivotRebuilt = true
					continue
				}
				return "", fmt.Errorf("prune: round %d: %w", r.round, err)
			}
			for j, s := range p.sal {
				if !p.cand[j] || p.removed[j] || (quota != nil && quota[p.layer[j]] == 0) {
					continue
				}
				if math.IsNaN(s) {
					return "", fmt.Errorf("prune: round %d: the saliency of %v is NaN", r.round, r.net.ParamAt(p.live[j]))
				}
				if i < 0 || s < p.sal[i] {
					i = j
				}
			}
		}
		if i < 0 {
			break
		}
		pred := p.pred[i]
		if r.predNeed && math.IsNaN(pred) {
			return "", errNoPrediction
		}
		if r.asks[BeforeRemoval] {
			s := r.status(BeforeRemoval, Eval{})
			s.Next, s.RoundPredicted = pred, rd.Predicted
			why, endsRound := r.askRound(BeforeRemoval, s)
			if endsRound {
				roundWhy = why
				break
			}
			if stop = why; stop != "" {
				break
			}
		}

		q := p.live[i]
		sal := p.sal[i]
		old := theta[q]
		audit := auditOn && (sample == nil || sample[removed])
		if audit && !static && !auditKnown {
			auditE, auditKnown = r.aud.loss(), true
			if mu != 0 {
				auditSq = sumSquares(theta)
			}
		}
		if !static {
			copy(prev, theta)
		}
		if err := sc.Remove(i, p.w); err != nil {
			return "", fmt.Errorf("prune: round %d: removing %v: %w", r.round, r.net.ParamAt(q), err)
		}
		if static {
			p.w[i] = 0
		} else {
			for j, qj := range p.live {
				theta[qj] = p.w[j]
			}
		}
		r.net.Prune(q)
		r.live--
		r.step++
		if !static {
			if err := r.net.CheckFinite(); err != nil {
				r.undo(prev, q)
				r.issue(Issue{Step: r.step, Kind: IssueNotFinite, Index: q, Lambda: math.NaN(),
					Message: fmt.Sprintf("removing %v made a parameter not finite: %v; try a larger --damping or --curvature gn", r.net.ParamAt(q), err)})
				return "", fmt.Errorf("prune: round %d: removing %v: %w", r.round, r.net.ParamAt(q), err)
			}
		}
		st := Step{
			Step: r.step, Round: r.round, Index: q, Name: r.net.ParamAt(q).String(),
			Saliency: sal, Predicted: pred, Real: math.NaN(), Loss: math.NaN(),
			Error: math.NaN(), Live: r.live,
		}
		if math.IsInf(sal, 1) {
			r.issue(Issue{Step: r.step, Kind: IssueNotFinite, Index: q, Lambda: rd.Damping,
				Message: fmt.Sprintf("%v was removed with saliency +Inf: every remaining parameter has an infinite saliency; stop earlier (a lower --target-sparsity) or use a larger --damping", st.Name)})
		}
		var mt nn.Metrics // the whole training split, when measured
		measured := false
		if audit {
			var after float64
			switch {
			case isolated:
				after = r.aud.try(q, -old)
				st.Real = r.aud.scale*(after-base) - 0.5*mu*old*old
			case static:
				after = r.aud.change(q, -old)
				st.Real = r.aud.scale*(after-auditE) - 0.5*mu*old*old
				auditE = after
			default:
				if r.aud.all {
					mt, measured = r.net.Evaluate(r.data.Train.X, r.data.Train.Y), true
					after = mt.Loss
				} else {
					after = r.aud.loss()
				}
				st.Real = r.aud.scale * (after - auditE)
				auditE = after
				if mu != 0 {
					sq := sumSquares(theta)
					st.Real += 0.5 * mu * (sq - auditSq)
					auditSq = sq
				}
			}
			if r.aud.all && !isolated {
				st.Loss = after
			}
			if math.IsNaN(after) || math.IsInf(after, 0) {
				r.undoStep(static, prev, q, old)
				r.issue(Issue{Step: r.step, Kind: IssueNotFinite, Index: q, Lambda: math.NaN(),
					Message: fmt.Sprintf("removing %v made the training loss %v", st.Name, after)})
				return "", fmt.Errorf("prune: round %d: removing %v made the training loss %v", r.round, st.Name, after)
			}
		} else if !isolated {
			auditKnown = false
		}
		if riseNow && !static {
			if !measured {
				mt = r.net.Evaluate(r.data.Train.X, r.data.Train.Y)
			}
			s := r.status(AfterRemoval, Eval{})
			s.m[TrainSplit], s.have[TrainSplit] = mt, true
			why := r.broken(s)
			st.Error = r.watched(s)
			if why != "" {
				r.undo(prev, q)
				st.Undone = true
				st.Live = r.live
				r.res.History = append(r.res.History, st)
				r.record(Event{Kind: EventRemoval, Step: &st})
				stop, undid = why, true
				break
			}
		}
		r.res.History = append(r.res.History, st)
		r.record(Event{Kind: EventRemoval, Step: &st})
		removed++
		rd.Predicted += pred
		r.totalPred += pred
		p.removed[i] = true
		if static {
			done = append(done, removal{pos: i, q: q, old: old, pred: pred})
		}
		if quota != nil {
			quota[p.layer[i]]--
		}
		pivotRebuilt = false
		if r.asks[AfterRemoval] {
			if stop = r.ask(AfterRemoval, r.status(AfterRemoval, Eval{})); stop != "" {
				break
			}
		}
		if r.cfg.RebuildEvery > 0 && removed%r.cfg.RebuildEvery == 0 && removed < limit {
			r.issueStep = r.step
			p = r.positions()
			if sc, err = r.begin(ctx, p, &rd); err != nil {
				return "", err
			}
			rd.Rebuilds++
			if static = isStatic(sc); static {
				if err := rank(); err != nil {
					return "", err
				}
			} else if prev == nil {
				prev = make([]float64, len(theta))
			}
			// The removals before the rebuild can no longer be undone
			// one by one: the error-rise rule keeps them.
			done = done[:0]
			if auditOn && static && !isolated {
				r.aud.net = r.net
				auditE = r.aud.sync()
				auditKnown = true
			}
		}
	}
	if rd.Pruned, err = r.evalPruned(ctx); err != nil {
		return "", err
	}
	if riseNow && static && len(done) > 0 {
		if why := r.broken(r.status(AfterPruning, rd.Pruned)); why != "" {
			kept := r.bisect(done)
			for _, d := range done[kept:] {
				r.totalPred -= d.pred
				rd.Predicted -= d.pred
			}
			removed -= len(done) - kept
			rd.Pruned = r.eval()
			stop, undid = why, true
		}
	}
	if stop == "" && r.asks[AfterPruning] {
		stop = r.ask(AfterPruning, r.status(AfterPruning, rd.Pruned))
	}
	rd.Removed = removed
	rd.Real = rd.Pruned.Train.Loss - E0
	if mu != 0 {
		rd.Real += 0.5 * mu * (sumSquares(theta) - sq0)
	}
	rd.Retrained = rd.Pruned

	if r.cfg.Retrain != nil && removed > 0 && !undid {
		why, err := r.retrain(ctx, &rd)
		if err != nil {
			return "", err
		}
		if why != "" {
			stop = why
		}
		if stop == "" && r.asks[AfterRetraining] {
			s := r.status(AfterRetraining, rd.Retrained)
			stop = r.ask(AfterRetraining, s)
		}
		if why != "" && rescue {
			// The round and its retraining are undone.
			r.net.SetMask(mask0)
			r.net.SetParams(theta0)
			r.live = r.net.NumLive()
			for k := firstStep; k < len(r.res.History); k++ {
				st := &r.res.History[k]
				if !st.Undone {
					r.totalPred -= st.Predicted
				}
				st.Undone = true
				st.Live = r.live
			}
			rd.Removed = 0
			rd.Predicted, rd.Real = 0, 0
			rd.Pruned = r.cur
			rd.Retrained = r.cur
		}
	}
	r.cur = rd.Retrained
	rd.Live = r.live
	r.res.Rounds = append(r.res.Rounds, rd)
	r.record(Event{Kind: EventRoundEnd, Summary: &rd})
	switch {
	case stop != "":
		return stop, nil
	case removed == 0 && roundWhy != "":
		return roundWhy, nil
	case removed == 0:
		return StoppedExhausted, nil
	}
	return "", nil
}

// setStoppers sets the list of stopping rules of the run, the error-rise
// rules of measure AutoMeasure resolved to auto.
func (r *runner) setStoppers(auto Measure) {
	r.stops = r.cfg.stoppers()
	r.needs = make([]StopNeeds, len(r.stops))
	for i, st := range r.stops {
		if e, ok := st.(ErrorRise); ok && e.Measure == AutoMeasure {
			e.Measure = auto
			r.stops[i] = e
		}
		n := needsOf(st)
		r.needs[i] = n
		r.predNeed = r.predNeed || n.Predictions
		if n.Undo {
			r.undoing = true
			continue
		}
		for p := BeforeRound; p <= AfterRetraining; p++ {
			r.asks[p] = r.asks[p] || n.At.Has(p)
		}
		var t TargetCount
		switch v := st.(type) {
		case TargetCount:
			t = v
		case TargetSparsity:
			t = v.count(r.W)
		default:
			continue
		}
		r.target = max(r.target, int(t))
	}
}

// status returns the status of the run at the point at, with the current
// metrics now unless at is BeforeRemoval or AfterRemoval.
func (r *runner) status(at Point, now Eval) *Status {
	s := &Status{At: at, Round: r.round, Retrained: at == AfterRetraining, Live: r.live, Total: r.W,
		Predicted: r.totalPred, Start: r.res.Start, Net: r.net, data: &r.data}
	if at != BeforeRemoval && at != AfterRemoval {
		s.setNow(now)
	}
	return s
}

// ask returns the reason of the first stopping rule that does not undo,
// is asked at the point at and holds, or "".
func (r *runner) ask(at Point, s *Status) string {
	why, _ := r.askRound(at, s)
	return why
}

// askRound is ask that also reports whether the rule that holds ends only
// the round (StopNeeds.Round).
func (r *runner) askRound(at Point, s *Status) (string, bool) {
	for i, st := range r.stops {
		if r.needs[i].Undo || !r.needs[i].At.Has(at) {
			continue
		}
		if ok, why := st.Stop(s); ok {
			return reasonOr(why), r.needs[i].Round
		}
	}
	return "", false
}

// broken returns the reason of the first stopping rule that undoes and
// holds, or "".
func (r *runner) broken(s *Status) string {
	for i, st := range r.stops {
		if !r.needs[i].Undo {
			continue
		}
		if ok, why := st.Stop(s); ok {
			return reasonOr(why)
		}
	}
	return ""
}

func reasonOr(why string) string {
	if why == "" {
		return StoppedRule
	}
	return why
}

// watched returns the error the first ErrorRise rule watches (Step.Error),
// NaN without one.
func (r *runner) watched(s *Status) float64 {
	for _, st := range r.stops {
		if e, ok := st.(ErrorRise); ok {
			return e.Error(s)
		}
	}
	return math.NaN()
}

// left returns the removals the Limiters among the rules allow before one
// holds, at least 0; without Limiters, the number of parameters.
func (r *runner) left() int {
	n := r.W
	var s *Status
	for _, st := range r.stops {
		if l, ok := st.(Limiter); ok {
			if s == nil {
				s = r.status(BeforeRound, r.cur)
			}
			n = min(n, l.Left(s))
		}
	}
	return max(n, 0)
}

// bisect finds, after the removals done of a static round broke a rule
// that undoes, the longest prefix of them that does not break it (by
// bisection, taking the rule to break once it has broken), restores the
// network to that prefix, marks the first removal after it undone, drops
// the history after that removal and returns the length of the prefix.
func (r *runner) bisect(done []removal) int {
	theta := r.net.RawParams()
	mask := r.net.Mask()
	at := len(done) // the prefix the network holds
	setPrefix := func(j int) {
		for k := j; k < at; k++ {
			mask[done[k].q] = true
			theta[done[k].q] = done[k].old
		}
		for k := at; k < j; k++ {
			mask[done[k].q] = false
			theta[done[k].q] = 0
		}
		at = j
		r.net.SetMask(mask)
	}
	live, pred := r.live, r.totalPred
	// brokenAt reports whether a rule that undoes holds at the prefix j,
	// and the error the first ErrorRise rule watches there.
	brokenAt := func(j int) (bool, float64) {
		setPrefix(j)
		s := r.status(AfterRemoval, Eval{})
		s.Live = live + len(done) - j
		s.Predicted = pred
		for _, d := range done[j:] {
			s.Predicted -= d.pred
		}
		why := r.broken(s)
		return why != "", r.watched(s)
	}
	lo, hi := 0, len(done)
	hiErr, hiKnown := math.NaN(), false
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if b, e := brokenAt(mid); b {
			hi, hiErr, hiKnown = mid, e, true
		} else {
			lo = mid
		}
	}
	if !hiKnown {
		_, hiErr = brokenAt(hi)
	}
	setPrefix(lo)
	r.live = r.net.NumLive()
	// The history of the round ends with the undone removal.
	h := r.res.History
	first := len(h) - len(done)
	h = h[:first+hi]
	u := &h[len(h)-1]
	u.Undone = true
	u.Error = hiErr
	u.Live = r.live
	r.res.History = h
	r.step = u.Step
	return lo
}

// undoStep undoes the removal of q, whose value was old, for a static
// scorer, or restores prev otherwise.
func (r *runner) undoStep(static bool, prev []float64, q int, old float64) {
	if static {
		m := r.net.Mask()
		m[q] = true
		r.net.SetMask(m)
		r.net.RawParams()[q] = old
		r.live++
		return
	}
	r.undo(prev, q)
}

// retrain retrains the network with the mask fixed and fills in rd. A
// retraining that breaks a rule that undoes is undone, leaving
// rd.Retrained equal to rd.Pruned, and the rule's reason returned.
func (r *runner) retrain(ctx context.Context, rd *Round) (undone string, err error) {
	before := r.net.ParamsTo(nil)
	mask := r.net.Mask()
	tr, err := nn.Train(ctx, r.net, r.data.Train, r.data.Valid, r.cfg.Retrain)
	if err != nil {
		r.net.SetParams(before)
		if errors.Is(err, nn.ErrDiverged) {
			r.issue(Issue{Step: r.step, Kind: IssueDiverged, Index: -1, Lambda: math.NaN(),
				Message: fmt.Sprintf("retraining after round %d diverged and was undone: %v", r.round, err)})
		}
		return "", fmt.Errorf("prune: round %d: retraining: %w", r.round, err)
	}
	theta := r.net.RawParams()
	for q, live := range mask {
		if live != r.net.IsLive(q) || (!live && theta[q] != 0) {
			r.net.SetMask(mask)
			r.net.SetParams(before)
			return "", fmt.Errorf("prune: round %d: retraining changed the mask at %v", r.round, r.net.ParamAt(q))
		}
	}
	if err := r.net.CheckFinite(); err != nil {
		r.net.SetParams(before)
		return "", fmt.Errorf("prune: round %d: retraining: %w", r.round, err)
	}
	if b, a := maxAbs(before), maxAbs(theta); a > blowUp*math.Max(1, b) {
		r.net.SetParams(before)
		r.issue(Issue{Step: r.step, Kind: IssueDiverged, Index: -1, Lambda: math.NaN(),
			Message: fmt.Sprintf("retraining after round %d blew the weights up (largest |θ| from %.3g to %.3g) and was undone; lower the learning rate (--lr)", r.round, b, a)})
		return "", fmt.Errorf("prune: round %d: retraining blew the weights up (largest |θ| from %.3g to %.3g): %w", r.round, b, a, nn.ErrDiverged)
	}
	rd.Retrain = &tr
	r.record(Event{Kind: EventRetrain, Train: &tr})
	ev := r.eval()
	if why := r.broken(r.status(AfterRetraining, ev)); why != "" {
		r.net.SetParams(before)
		return why, nil
	}
	rd.Retrained = ev
	return "", nil
}

// undo restores the parameters prev and makes q live again.
func (r *runner) undo(prev []float64, q int) {
	m := r.net.Mask()
	m[q] = true
	r.net.SetMask(m)
	copy(r.net.RawParams(), prev)
	r.live++
}

func gatherAt(theta []float64, idx []int) []float64 {
	w := make([]float64, len(idx))
	for i, q := range idx {
		w[i] = theta[q]
	}
	return w
}

// Scored holds the saliencies of ScoresOf: the saliency and predicted ΔE
// of every parameter in canonical order (NaN for pruned parameters, and
// Predicted for Magnitude), the damping λ after any escalation (NaN for
// none), the μ = λN of the objective's penalty and the issues met.
type Scored struct {
	Saliency, Predicted []float64
	Damping, Decay      float64
	Health              Health
}

// Scores returns the saliency of every parameter of net on the data X, Y
// (see ScoresOf).
func Scores(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *Settings) ([]float64, error) {
	sc, err := ScoresOf(ctx, net, X, Y, s)
	if err != nil {
		return nil, err
	}
	return sc.Saliency, nil
}

// ScoresOf returns the saliency of every live parameter of net on X, Y as
// the first round of Run scores them, under the Method, Objective,
// WeightDecay and MaxBytes of s. net is not modified.
func ScoresOf(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *Settings) (*Scored, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("prune settings: %w", err)
	}
	cfg := s.withDefaults()
	if err := net.Check(X, Y); err != nil {
		return nil, fmt.Errorf("prune: data: %w", err)
	}
	if err := net.CheckFinite(); err != nil {
		return nil, fmt.Errorf("prune: network: %w", err)
	}
	live := net.LiveIndices()
	pr := &hessian.Problem{Net: net, Data: nn.Data{X: X, Y: Y}, Params: live}
	out := &Scored{Damping: math.NaN()}
	env := &Env{MaxBytes: cfg.MaxBytes, Report: func(is Issue) { out.Health.Issues = append(out.Health.Issues, is) }}
	if cfg.Objective != LossObjective {
		N, _ := X.Dims()
		env.Decay = cfg.WeightDecay * float64(N)
		if cfg.Objective == GradientObjective && cfg.Method.Need() != NeedNone {
			env.Gradient = objectiveGradient(net, nn.Data{X: X, Y: Y}, env.Decay, live)
		}
	}
	out.Decay = env.Decay
	sc, err := cfg.Method.Begin(ctx, pr, env)
	if err != nil {
		return nil, err
	}
	if d, ok := sc.(interface{ Damping() float64 }); ok {
		out.Damping = d.Damping()
	}
	w := gatherAt(net.RawParams(), live)
	sal := make([]float64, len(live))
	pred := make([]float64, len(live))
	if err := sc.Score(sal, pred, w); err != nil {
		return nil, err
	}
	out.Saliency = make([]float64, net.NumParams())
	out.Predicted = make([]float64, net.NumParams())
	for q := range out.Saliency {
		out.Saliency[q], out.Predicted[q] = math.NaN(), math.NaN()
	}
	for i, q := range live {
		out.Saliency[q], out.Predicted[q] = sal[i], pred[i]
	}
	return out, nil
}

// objectiveGradient returns the gradient of E + ½μ‖θ‖² on d at the
// parameters idx of net.
func objectiveGradient(net *nn.Network, d nn.Data, mu float64, idx []int) []float64 {
	g := make([]float64, net.NumParams())
	net.Gradient(g, d.X, d.Y)
	theta := net.RawParams()
	out := make([]float64, len(idx))
	for i, q := range idx {
		out[i] = g[q] + mu*theta[q]
	}
	return out
}

// blowUp is the growth of the largest |θ| above which retraining is taken
// to have blown the weights up: max|θ_after| > blowUp·max(1, max|θ_before|).
const blowUp = 1e3

// maxAbs returns the largest |v|.
func maxAbs(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// sumSquares returns ‖θ‖².
func sumSquares(theta []float64) float64 {
	var s float64
	for _, v := range theta {
		s += v * v
	}
	return s
}
