package prune

import (
	"errors"
	"fmt"
	"math"

	"github.com/secondorder/prune/nn"
)

// Status is what a Stopper sees at a point of a run: the round (before a
// round, the one about to start) and whether it was retrained; the live and
// all parameters; the predicted ΔE kept, of the round, and at BeforeRemoval
// of the next removal (NaN: none); the metrics of the network given and of
// the current one (Now unset around a removal: use Metrics); and the
// current network, which it must not modify.
type Status struct {
	At                              Point
	Round                           int
	Retrained                       bool
	Live, Total                     int
	Predicted, RoundPredicted, Next float64
	Start, Now                      Eval
	Net                             *nn.Network

	data *nn.Splits
	m    [2]nn.Metrics // by Split
	have [2]bool
}

// Stopper is a stopping rule, in the manner of gonum/optimize's Converger,
// that reports whether it holds and why (Result.Stopped). It may also have
// the methods Needs() StopNeeds, Left(*Status) int (see Limiter) and
// Validate() error. A resumed run asks the rules again from its State, so a
// rule that keeps state of its own must restore it.
type Stopper interface {
	Stop(s *Status) (stop bool, reason string)
}

// StopFunc is a Stopper from a function.
type StopFunc func(s *Status) (bool, string)

// Stop calls f.
func (f StopFunc) Stop(s *Status) (bool, string) { return f(s) }

// Point is a point of a round at which Run asks its rules. A rule that holds
// BeforeRound ends the run without the round, BeforeRemoval (Next holding its
// prediction) without the removal, AfterRemoval after it. A round is
// retrained unless a rule that undoes held.
type Point int

// The points, in the order a round meets them.
const (
	BeforeRound Point = iota + 1
	BeforeRemoval
	AfterRemoval
	AfterPruning
	AfterRetraining
)

var pointNames = [...]string{BeforeRound: "before-round", BeforeRemoval: "before-removal", AfterRemoval: "after-removal",
	AfterPruning: "after-pruning", AfterRetraining: "after-retraining"}

// String returns the point's name, such as before-round.
func (p Point) String() string {
	if p < BeforeRound || p > AfterRetraining {
		return fmt.Sprintf("Point(%d)", int(p))
	}
	return pointNames[p]
}

// Points is a set of points.
type Points uint8

// At returns the set of the points ps.
func At(ps ...Point) Points {
	var s Points
	for _, p := range ps {
		s |= 1 << p
	}
	return s
}

// Has reports whether p is in the set.
func (s Points) Has(p Point) bool { return s&(1<<p) != 0 }

// StopNeeds tells Run when to ask a Stopper (zero: AfterPruning and
// AfterRetraining) and what a rule that holds does. With Undo the step at
// which it first holds is undone (for Magnitude and OBD the longest
// satisfying prefix of the round is found by bisection, so it must be
// monotone). Predictions refuses a saliency without ΔE predictions. Round
// makes a rule asked BeforeRemoval end only the round (and the run if no
// removal was made).
type StopNeeds struct {
	At                       Points
	Undo, Predictions, Round bool
}

// Limiter is a Stopper that bounds the removals: Run limits every round to
// the least Left of its rules at the round's start.
type Limiter interface {
	Left(s *Status) int
}

// needsOf returns the StopNeeds of s with the default points filled in.
func needsOf(s Stopper) StopNeeds {
	var n StopNeeds
	if v, ok := s.(interface{ Needs() StopNeeds }); ok {
		n = v.Needs()
	}
	if n.At == 0 {
		n.At = At(AfterPruning, AfterRetraining)
	}
	return n
}

// Metrics returns the metrics of the current network on sp, evaluating
// them when Run has not (zero for an absent split).
func (s *Status) Metrics(sp Split) nn.Metrics {
	if sp != TrainSplit && sp != ValidSplit {
		panic(fmt.Sprintf("prune: Status.Metrics of %v", sp))
	}
	if s.data == nil {
		if sp == ValidSplit {
			return s.Now.Valid
		}
		return s.Now.Train
	}
	if !s.have[sp] {
		d := s.data.Train
		if sp == ValidSplit {
			d = s.data.Valid
		}
		if d.X != nil && s.Net != nil {
			s.m[sp] = s.Net.Evaluate(d.X, d.Y)
		}
		s.have[sp] = true
	}
	return s.m[sp]
}

// setNow sets the current metrics to now.
func (s *Status) setNow(now Eval) {
	s.Now = now
	s.m = [2]nn.Metrics{now.Train, now.Valid}
	s.have = [2]bool{true, true}
}

// TargetCount holds once at most its number of parameters is live; asked
// before every round, it limits each round so that the run ends on it.
type TargetCount int

// Stop reports whether s.Live ≤ t.
func (t TargetCount) Stop(s *Status) (bool, string) { return s.Live <= int(t), StoppedTarget }

// Left returns s.Live − t.
func (t TargetCount) Left(s *Status) int { return s.Live - int(t) }

// Needs returns the point BeforeRound.
func (TargetCount) Needs() StopNeeds { return StopNeeds{At: At(BeforeRound)} }

// Validate returns an error when t is negative.
func (t TargetCount) Validate() error {
	if t < 0 {
		return fmt.Errorf("target live parameters %d is negative", int(t))
	}
	return nil
}

// TargetSparsity f holds once W − live ≥ ⌈f·W⌉ of the W parameters are
// pruned, as TargetCount(W − ⌈f·W⌉).
type TargetSparsity float64

func (f TargetSparsity) count(total int) TargetCount {
	return TargetCount(total - ceilCount(float64(f)*float64(total)))
}

// Stop reports whether the sparsity of s has reached f.
func (f TargetSparsity) Stop(s *Status) (bool, string) { return f.count(s.Total).Stop(s) }

// Left returns the removals left to reach the sparsity f.
func (f TargetSparsity) Left(s *Status) int { return f.count(s.Total).Left(s) }

// Needs returns the point BeforeRound.
func (TargetSparsity) Needs() StopNeeds { return StopNeeds{At: At(BeforeRound)} }

// Validate returns an error when f is not in [0, 1).
func (f TargetSparsity) Validate() error {
	if !(f >= 0 && f < 1) {
		return fmt.Errorf("target sparsity %v is not in [0, 1)", float64(f))
	}
	return nil
}

// MaxRounds holds, before a round, once its number of rounds is done.
type MaxRounds int

// Stop reports whether the round about to start, s.Round, is past n.
func (n MaxRounds) Stop(s *Status) (bool, string) { return s.Round > int(n), StoppedRounds }

// Needs returns the point BeforeRound.
func (MaxRounds) Needs() StopNeeds { return StopNeeds{At: At(BeforeRound)} }

// Validate returns an error when n is not positive.
func (n MaxRounds) Validate() error {
	if n <= 0 {
		return fmt.Errorf("maximum rounds %d is not positive", int(n))
	}
	return nil
}

// Budget holds before a removal that would take the predicted ΔE of all
// removals kept (across a resume) above it; the removal is not made.
type Budget float64

// Stop reports whether s.Predicted + s.Next > b.
func (b Budget) Stop(s *Status) (bool, string) {
	return s.Predicted+s.Next > float64(b), StoppedBudget
}

// Needs returns the point BeforeRemoval, with predictions.
func (Budget) Needs() StopNeeds { return StopNeeds{At: At(BeforeRemoval), Predictions: true} }

// Validate returns an error when b is not a non-negative number.
func (b Budget) Validate() error {
	if !(b >= 0) || math.IsInf(float64(b), 1) {
		return fmt.Errorf("ΔE budget %v is not a non-negative number", float64(b))
	}
	return nil
}

// RoundBudget is the ΔE budget of a round: it ends the round before a
// removal that would take the sum of the round's predicted ΔE above it,
// and the run (StoppedRoundBudget) when a round can remove nothing.
type RoundBudget float64

// Stop reports whether s.RoundPredicted + s.Next > b.
func (b RoundBudget) Stop(s *Status) (bool, string) {
	return s.RoundPredicted+s.Next > float64(b), StoppedRoundBudget
}

// Needs returns the point BeforeRemoval, with predictions, ending the round.
func (RoundBudget) Needs() StopNeeds {
	return StopNeeds{At: At(BeforeRemoval), Predictions: true, Round: true}
}

// Validate returns an error when b is not a non-negative number.
func (b RoundBudget) Validate() error {
	if !(b >= 0) || math.IsInf(float64(b), 1) {
		return fmt.Errorf("round budget %v is not a non-negative number", float64(b))
	}
	return nil
}

// ErrorRise holds when the error, Measure on Split, has risen by more than
// Max above that of the network given to Run (or is NaN); it undoes, so the
// result is the last network that satisfied it.
type ErrorRise struct {
	Measure Measure
	Split   Split
	Max     float64
}

// errorOf returns the error of m under e's measure.
func (e ErrorRise) errorOf(m nn.Metrics) float64 {
	if e.Measure == Misclassification {
		return 1 - m.Accuracy
	}
	return m.MeanLoss
}

// Error returns the error e watches of the current network of s.
func (e ErrorRise) Error(s *Status) float64 { return e.errorOf(s.Metrics(e.Split)) }

// Reference returns e_start, the error e watches of the network given to
// Run.
func (e ErrorRise) Reference(s *Status) float64 {
	m := s.Start.Train
	if e.Split == ValidSplit {
		m = s.Start.Valid
	}
	return e.errorOf(m)
}

// Stop reports whether e_now − e_start > Max.
func (e ErrorRise) Stop(s *Status) (bool, string) {
	return !(e.Error(s)-e.Reference(s) <= e.Max), StoppedErrorRise
}

// Needs returns Undo.
func (ErrorRise) Needs() StopNeeds { return StopNeeds{Undo: true} }

// Validate returns an error for an unknown measure or split or a Max that
// is not a non-negative number.
func (e ErrorRise) Validate() error {
	switch {
	case e.Measure < AutoMeasure || e.Measure > Misclassification:
		return fmt.Errorf("unknown error measure %v", e.Measure)
	case e.Split < TrainSplit || e.Split > ValidSplit:
		return fmt.Errorf("unknown split %v for the error-rise rule", e.Split)
	case !(e.Max >= 0) || math.IsInf(e.Max, 1):
		return fmt.Errorf("error rise %v is not a non-negative number", e.Max)
	}
	return nil
}

// builtin reports whether s is one of the toolkit's rules that set a
// stopping point (and so turn the default target off).
func builtin(s Stopper) bool {
	switch s.(type) {
	case TargetCount, TargetSparsity, MaxRounds, Budget, ErrorRise:
		return true
	}
	return false
}

// stoppers returns the stopping rules of the settings, in the order Run
// asks them: those of the fields (TargetLive, Sparsity, MaxRounds, Budget,
// ErrorRise), then Stoppers.
func (s *Settings) stoppers() []Stopper {
	var list []Stopper
	if s.TargetLive > 0 {
		list = append(list, TargetCount(s.TargetLive))
	}
	if s.Sparsity > 0 {
		list = append(list, TargetSparsity(s.Sparsity))
	}
	if s.MaxRounds > 0 {
		list = append(list, MaxRounds(s.MaxRounds))
	}
	if s.Budget > 0 {
		list = append(list, Budget(s.Budget))
	}
	if s.RoundBudget > 0 {
		list = append(list, RoundBudget(s.RoundBudget))
	}
	if max, on := s.rise(); on {
		list = append(list, ErrorRise{Measure: s.ErrorMeasure, Split: s.ErrorSplit, Max: max})
	}
	return append(list, s.Stoppers...)
}

// validateStoppers checks the program's stopping rules.
func (s *Settings) validateStoppers() error {
	for i, st := range s.Stoppers {
		if st == nil {
			return fmt.Errorf("stopping rule %d is nil", i)
		}
		if v, ok := st.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("stopping rule %d: %w", i, err)
			}
		}
		if needsOf(st).Predictions && s.Method != nil && s.Method.Need() == NeedNone {
			return fmt.Errorf("stopping rule %d (%T) needs a saliency that predicts ΔE (OBD or OBS)", i, st)
		}
	}
	return nil
}

// errNoPrediction is returned when a rule that needs predictions meets a
// removal with none.
var errNoPrediction = errors.New("prune: a ΔE budget needs a saliency that predicts ΔE")
