package prune

import (
	"errors"
	"fmt"
	"math"

	"github.com/secondorder/prune/nn"
)

// Status is what a Stopper sees: the run at one of the points of a round
// (see Point).
type Status struct {
	// At is the point of the run.
	At Point

	// Round is the number of the round, from 1 (before a round, that of
	// the round about to start), and Retrained tells whether the round
	// has been retrained.
	Round     int
	Retrained bool

	// Live and Total count the live parameters and all of them.
	Live, Total int

	// Predicted sums the predicted ΔE of the removals kept so far and
	// RoundPredicted those of the current round; Next is, at
	// BeforeRemoval, the predicted ΔE of the removal about to be made (NaN
	// for a saliency that predicts none), zero elsewhere.
	Predicted, RoundPredicted, Next float64

	// Start and Now hold the metrics of the network given to Run and of
	// the current one. Now is filled in before a round, after pruning
	// and after retraining; at BeforeRemoval and AfterRemoval use
	// Metrics.
	Start, Now Eval

	// Net is the current network; a Stopper must not modify it.
	Net *nn.Network

	data *Data
	m    [2]nn.Metrics // by Split
	have [2]bool
}

// Stopper is a stopping rule, in the manner of gonum/optimize's Converger.
// The toolkit's rules are values of this package (TargetCount,
// TargetSparsity, MaxRounds, Budget, ErrorRise); a program defines its own.
// A Stopper may also have the methods
//
//	Needs() StopNeeds  // when it is asked and whether it undoes
//	Left(*Status) int  // see Limiter
//	Validate() error   // checked by Settings.Validate
//
// A resumed run (Settings.Resume) asks the rules again from the State, so
// a rule that decides from its Status alone, as the toolkit's do, resumes
// exactly; one that keeps state of its own must restore it itself.
type Stopper interface {
	// Stop reports whether the rule holds, ending the run, and why, in a
	// word or two (Result.Stopped; empty means StoppedRule).
	Stop(s *Status) (stop bool, reason string)
}

// StopFunc is a Stopper from a function, asked after pruning and after
// retraining.
type StopFunc func(s *Status) (bool, string)

// Stop calls f.
func (f StopFunc) Stop(s *Status) (bool, string) { return f(s) }

// Point is a point of a run at which Run asks its stopping rules.
type Point int

// The points, in the order a round meets them.
const (
	// BeforeRound is before a round starts: a rule that holds there ends
	// the run without the round.
	BeforeRound Point = iota + 1
	// BeforeRemoval is before each removal, Status.Next holding its
	// predicted ΔE: a rule that holds there ends the round without the
	// removal; the round is still retrained.
	BeforeRemoval
	// AfterRemoval is after each removal: a rule that holds there ends the
	// round, which is still retrained unless the rule undoes.
	AfterRemoval
	// AfterPruning is after the removals of a round, before its
	// retraining.
	AfterPruning
	// AfterRetraining is after the retraining of a round.
	AfterRetraining
)

var pointNames = [...]string{BeforeRound: "before-round", BeforeRemoval: "before-removal", AfterRemoval: "after-removal",
	AfterPruning: "after-pruning", AfterRetraining: "after-retraining"}

// String returns before-round, before-removal, after-removal,
// after-pruning or after-retraining.
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

// StopNeeds tells Run when to ask a Stopper and what a rule that holds
// does, in the manner of gonum/optimize's Method.Needs. A Stopper without
// a Needs method has the zero StopNeeds.
type StopNeeds struct {
	// At is the set of points at which the rule is asked; the zero set
	// means AfterPruning and AfterRetraining. It is not used with Undo.
	At Points

	// Undo makes the rule one the result must satisfy: it is asked after
	// every removal and after every retraining, and the removal or the
	// retraining at which it first holds is undone (see Settings). With a
	// saliency that moves no other parameter (Magnitude, OBD) it is asked
	// after the round's removals instead, and the longest prefix of them at
	// which it does not hold is found by bisection, which assumes that once
	// the rule holds it holds for every longer prefix.
	Undo bool

	// Predictions tells that the rule reads the predicted ΔE of the
	// removals; Run refuses a saliency that predicts none.
	Predictions bool

	// Round makes a rule asked at BeforeRemoval end only the round; the
	// run ends after a round that it ended before any removal.
	Round bool
}

// Limiter is implemented by a Stopper that bounds the number of removals:
// Left returns how many more the run may make before the rule holds. Run
// limits every round to the least Left of its rules, asked at the start
// of the round, so that the last round removes exactly what is left.
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

// Metrics returns the metrics of the current network on the split sp,
// evaluating them when Run has not: at BeforeRemoval and AfterRemoval
// Now is not filled in, and a rule reads the current metrics through
// Metrics. The metrics of a split absent from the data are zero. For a
// Status made outside Run, Metrics returns those of Now.
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

// TargetCount is the rule that holds once the live parameters are at most
// its value. It is asked before every round and limits each round (see
// Limiter), so that the run ends with exactly that many live parameters
// when enough are prunable. Its reason is StoppedTarget.
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

// TargetSparsity is the rule that holds once the fraction of pruned
// parameters reaches its value f: for W parameters,
//
//	W − live ≥ ⌈f·W⌉,
//
// that is TargetCount(W − ⌈f·W⌉). Its reason is StoppedTarget.
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

// MaxRounds is the rule that holds once its number of rounds has been
// completed. It is asked before every round; its reason is StoppedRounds.
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

// Budget is the ΔE budget: the rule holds before a removal whose
// predicted ΔE would take the sum of the predicted ΔE of all removals kept
// above it,
//
//	Σ ΔE_pred + ΔE_next > B,
//
// and the removal is not made. The sum is that of the run (Status.Predicted,
// kept in State.Predicted), so a resumed run spends what is left. It needs a
// saliency that predicts ΔE (OBD or OBS); its reason is StoppedBudget.
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

// ErrorRise is the error-rise rule: it holds when the error e, the Measure
// on the Split, has risen above that of the network given to Run by more
// than Max,
//
//	e_now − e_start > Max
//
// (an absolute threshold; a NaN error holds too). e_start is read from
// Status.Start, so the rule keeps no state of its own. It undoes (see
// StopNeeds.Undo): the removal, or the retraining, that broke it is undone,
// so the result is the last network that satisfied it. Its reason is
// StoppedErrorRise.
type ErrorRise struct {
	// Measure is the error watched; AutoMeasure is resolved by Run from
	// the network and the training targets (see Measure).
	Measure Measure

	// Split is the split watched, default TrainSplit; ValidSplit needs
	// validation data.
	Split Split

	// Max is the largest rise allowed; zero allows none.
	Max float64
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
