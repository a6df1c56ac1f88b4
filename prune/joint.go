package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/secondorder/prune/hessian"
)

// Planner is a Saliency that tells, before anything is allocated, the
// bytes a round on p needs (WoodburyOBS, BlockOBS); Run records it in
// Round.Memory, and the command line refuses a plan above its limit.
type Planner interface {
	MemoryBytes(p *hessian.Problem) int64
}

// PlannedBytes returns the memory a round of sal needs on p and whether
// sal reports it (a Planner).
func PlannedBytes(sal Saliency, p *hessian.Problem) (int64, bool) {
	if pl, ok := sal.(Planner); ok {
		return pl.MemoryBytes(p), true
	}
	return 0, false
}

// takesGradient reports whether sal uses Env.Gradient, the first-order
// term of GradientObjective: OBD, OBS and BlockOBS do; WoodburyOBS, which
// keeps the classic formulas, does not.
func takesGradient(sal Saliency) bool {
	switch sal.(type) {
	case WoodburyOBS, *WoodburyOBS:
		return false
	}
	return true
}

// validateJoint returns an error when Settings.Joint, or the objective,
// does not fit the other settings.
func (s *Settings) validateJoint() error {
	if s.Method != nil && s.Objective == GradientObjective && s.Method.Need() != NeedNone && !takesGradient(s.Method) {
		return fmt.Errorf("the gradient objective needs OBD or OBS on a dense curvature; %T uses the trained objective's curvature without its gradient (objective trained or loss)", s.Method)
	}
	if !s.Joint {
		return nil
	}
	switch s.Method.(type) {
	case nil, OBS, *OBS, OBD, *OBD, Magnitude, *Magnitude:
		return errors.New("joint removals need an OBS saliency whose scorer removes sets (WoodburyOBS or BlockOBS)")
	}
	switch {
	case s.Budget > 0 || s.RoundBudget > 0:
		return errors.New("joint removals exclude the ΔE budgets: a round's set is chosen before its prediction is known")
	case s.ErrorRise != 0:
		return errors.New("joint removals exclude the error-rise rule, which undoes single removals")
	case s.RebuildEvery > 0:
		return errors.New("joint removals exclude rebuilds within a round: the round's set is removed at once")
	}
	return nil
}

// lowRankDefaults fills in the round defaults of WoodburyOBS, whose greedy
// removals cost O(m·W) each: DefaultWoodburyFraction per round when no
// count is set, and joint removals unless WoodburyOBS.Greedy is set or a
// rule needs single removals (budgets, error rise, RebuildEvery).
func lowRankDefaults(c *Settings) {
	var w WoodburyOBS
	switch m := c.Method.(type) {
	case WoodburyOBS:
		w = m
	case *WoodburyOBS:
		w = *m
	default:
		return
	}
	if c.PerRound == 0 && c.Fraction == 0 && c.RoundBudget == 0 {
		c.Fraction = DefaultWoodburyFraction
	}
	single := slices.ContainsFunc(c.Stoppers, func(st Stopper) bool {
		switch st.(type) {
		case Budget, RoundBudget, ErrorRise:
			return true
		}
		return false
	})
	if !w.Greedy && !single && c.Budget == 0 && c.RoundBudget == 0 && c.ErrorRise == 0 && c.RebuildEvery == 0 {
		c.Joint = true
	}
}

// jointRound removes the round's removals together when Settings.Joint is
// set, and reports whether it did: the limit prunable live positions of
// least saliency at the start of the round (within the per-layer quota),
// removed with the scorer's multi-weight OBS update. The steps of the
// history carry their saliencies at the start of the round and NaN
// predictions; the round's Predicted is the prediction of the whole set.
func (r *runner) jointRound(ctx context.Context, sc Scorer, p *positions, limit int, quota []int, rd *Round) (removed int, ok bool, err error) {
	if !r.cfg.Joint {
		return 0, false, nil
	}
	sr, isSet := sc.(SetRemover)
	if !isSet {
		return 0, true, fmt.Errorf("prune: round %d: joint removals need a saliency whose scorer removes sets (WoodburyOBS or BlockOBS), not %T", r.round, r.cfg.Method)
	}
	rd.Joint = true
	if err := sc.Score(p.sal, p.pred, p.w); err != nil {
		return 0, true, fmt.Errorf("prune: round %d: %w", r.round, err)
	}
	var order []int
	for j, s := range p.sal {
		if !p.cand[j] || p.removed[j] {
			continue
		}
		if math.IsNaN(s) {
			return 0, true, fmt.Errorf("prune: round %d: the saliency of %v is NaN", r.round, r.net.ParamAt(p.live[j]))
		}
		order = append(order, j)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.sal[a], p.sal[b]) })
	quota = slices.Clone(quota)
	var S []int
	for _, j := range order {
		if len(S) == limit {
			break
		}
		if quota != nil {
			if quota[p.layer[j]] == 0 {
				continue
			}
			quota[p.layer[j]]--
		}
		S = append(S, j)
	}
	if len(S) == 0 {
		return 0, true, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, true, err
	}
	theta := r.net.RawParams()
	prev := slices.Clone(theta)
	pred, err := sr.RemoveSet(ctx, S, p.w)
	if err != nil {
		return 0, true, fmt.Errorf("prune: round %d: removing %d parameters jointly: %w", r.round, len(S), err)
	}
	// The round removes nothing more: free a low-rank form (O(m·W))
	// before the evaluations and the retraining of the round.
	if rel, ok := sr.(interface{ release() }); ok {
		rel.release()
	}
	for j, q := range p.live {
		theta[q] = p.w[j]
	}
	for _, j := range S {
		theta[p.live[j]] = 0
		r.net.Prune(p.live[j])
	}
	if err := r.net.CheckFinite(); err != nil {
		m := r.net.Mask()
		for _, j := range S {
			m[p.live[j]] = true
		}
		r.net.SetMask(m)
		copy(theta, prev)
		r.issue(Issue{Step: r.step, Kind: IssueNotFinite, Index: -1, Lambda: math.NaN(),
			Message: fmt.Sprintf("removing %d parameters jointly made a parameter not finite: %v; try fewer per round or a larger damping", len(S), err)})
		return 0, true, fmt.Errorf("prune: round %d: removing %d parameters jointly: %w", r.round, len(S), err)
	}
	for _, j := range S {
		q := p.live[j]
		r.live--
		r.step++
		p.removed[j] = true
		st := Step{
			Step: r.step, Round: r.round, Index: q, Name: r.net.ParamAt(q).String(),
			Saliency: p.sal[j], Predicted: math.NaN(), Real: math.NaN(), Loss: math.NaN(),
			Error: math.NaN(), Live: r.live,
		}
		r.res.History = append(r.res.History, st)
		r.record(Event{Kind: EventRemoval, Step: &st})
	}
	rd.Predicted += pred
	r.totalPred += pred
	return len(S), true, nil
}
