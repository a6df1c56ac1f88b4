package prune_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// Each rule decides from its Status alone, by its formula.
func TestStopperValues(t *testing.T) {
	st := func(live, total int) *prune.Status { return &prune.Status{Live: live, Total: total} }
	for _, tc := range []struct {
		s    prune.Stopper
		at   *prune.Status
		want bool
		why  string
	}{
		{prune.TargetCount(5), st(6, 10), false, prune.StoppedTarget},
		{prune.TargetCount(5), st(5, 10), true, prune.StoppedTarget},
		// ⌈0.3·10⌉ = 3 pruned: 7 live.
		{prune.TargetSparsity(0.3), st(8, 10), false, prune.StoppedTarget},
		{prune.TargetSparsity(0.3), st(7, 10), true, prune.StoppedTarget},
		// ⌈0.25·10⌉ = 3 pruned.
		{prune.TargetSparsity(0.25), st(8, 10), false, prune.StoppedTarget},
		{prune.MaxRounds(2), &prune.Status{Round: 2}, false, prune.StoppedRounds},
		{prune.MaxRounds(2), &prune.Status{Round: 3}, true, prune.StoppedRounds},
		{prune.Budget(1), &prune.Status{Predicted: 0.5, Next: 0.5}, false, prune.StoppedBudget},
		{prune.Budget(1), &prune.Status{Predicted: 0.5, Next: 0.75}, true, prune.StoppedBudget},
		{prune.Budget(1), &prune.Status{Predicted: 0.5, Next: math.Inf(1)}, true, prune.StoppedBudget},
	} {
		got, why := tc.s.Stop(tc.at)
		if got != tc.want || why != tc.why {
			t.Errorf("%T(%v) at %+v: %v %q, want %v %q", tc.s, tc.s, *tc.at, got, why, tc.want, tc.why)
		}
	}
	if l := prune.Limiter(prune.TargetSparsity(0.3)).Left(st(10, 10)); l != 3 {
		t.Errorf("TargetSparsity(0.3) leaves %d removals of 10, want 3", l)
	}

	// The error rise reads e_start from Start and e_now from Now.
	var start, now prune.Eval
	start.Train = nn.Metrics{MeanLoss: 0.5, Accuracy: 0.9}
	start.Valid = nn.Metrics{MeanLoss: 0.7, Accuracy: 0.8}
	now.Train = nn.Metrics{MeanLoss: 0.6, Accuracy: 0.85}
	now.Valid = nn.Metrics{MeanLoss: math.NaN(), Accuracy: 0.8}
	for _, tc := range []struct {
		e    prune.ErrorRise
		want bool
	}{
		{prune.ErrorRise{Measure: prune.MeanLoss, Max: 0.2}, false},
		{prune.ErrorRise{Measure: prune.MeanLoss, Max: 0.05}, true},
		{prune.ErrorRise{Measure: prune.Misclassification, Max: 0.06}, false},
		{prune.ErrorRise{Measure: prune.Misclassification, Max: 0.04}, true},
		{prune.ErrorRise{Measure: prune.Misclassification, Split: prune.ValidSplit}, false},
		{prune.ErrorRise{Measure: prune.MeanLoss, Split: prune.ValidSplit, Max: 10}, true}, // NaN holds
	} {
		s := &prune.Status{At: prune.AfterPruning, Start: start, Now: now}
		got, why := tc.e.Stop(s)
		if got != tc.want || why != prune.StoppedErrorRise {
			t.Errorf("%+v: %v %q, want %v", tc.e, got, why, tc.want)
		}
	}
}

// sameResult reports where two results differ: the reason, the removals
// and the parameters.
func sameResult(a, b *prune.Result) string {
	switch {
	case a.Stopped != b.Stopped:
		return "stopped " + a.Stopped + " and " + b.Stopped
	case len(a.History) != len(b.History) || len(a.Rounds) != len(b.Rounds):
		return "histories differ in length"
	case !slices.Equal(a.Net.RawParams(), b.Net.RawParams()) || !slices.Equal(a.Net.Mask(), b.Net.Mask()):
		return "networks differ"
	}
	for i := range a.History {
		x, y := a.History[i], b.History[i]
		if x.Index != y.Index || x.Undone != y.Undone || math.Float64bits(x.Error) != math.Float64bits(y.Error) {
			return "removal " + x.Name + " differs"
		}
	}
	return ""
}

// A rule given as a value in Stoppers gives the run of the Settings field
// it stands for, and stops that run for the reason it names.
func TestStopperValuesMatchFields(t *testing.T) {
	net, d := regressionMLP(t, 21)
	before := net.ParamsTo(nil)
	retrain := func() *nn.TrainSettings { return &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 5} }
	for _, tc := range []struct {
		name   string
		field  prune.Settings
		value  prune.Settings
		reason string
	}{
		{"target-count", prune.Settings{PerRound: 3, TargetLive: 9},
			prune.Settings{PerRound: 3, Stoppers: []prune.Stopper{prune.TargetCount(9)}}, prune.StoppedTarget},
		{"target-sparsity", prune.Settings{Method: prune.Magnitude{}, Fraction: 0.3, Sparsity: 0.65},
			prune.Settings{Method: prune.Magnitude{}, Fraction: 0.3, Stoppers: []prune.Stopper{prune.TargetSparsity(0.65)}}, prune.StoppedTarget},
		{"max-rounds", prune.Settings{PerRound: 2, MaxRounds: 3},
			prune.Settings{PerRound: 2, Stoppers: []prune.Stopper{prune.MaxRounds(3)}}, prune.StoppedRounds},
		{"budget", prune.Settings{Method: prune.OBD{}, PerRound: 4, Budget: 0.2},
			prune.Settings{Method: prune.OBD{}, PerRound: 4, Stoppers: []prune.Stopper{prune.Budget(0.2)}}, prune.StoppedBudget},
		{"round-budget", prune.Settings{Method: prune.OBD{}, RoundBudget: 0.05, MaxRounds: 4},
			prune.Settings{Method: prune.OBD{}, MaxRounds: 4, Stoppers: []prune.Stopper{prune.RoundBudget(0.05)}}, prune.StoppedRoundBudget},
		{"error-rise-obs", prune.Settings{PerRound: 3, ErrorRise: 0.02, ErrorMeasure: prune.MeanLoss},
			prune.Settings{PerRound: 3, Stoppers: []prune.Stopper{prune.ErrorRise{Measure: prune.MeanLoss, Max: 0.02}}}, prune.StoppedErrorRise},
		{"error-rise-magnitude-valid", prune.Settings{Method: prune.Magnitude{}, PerRound: 5, ErrorRise: 0.05, ErrorSplit: prune.ValidSplit},
			prune.Settings{Method: prune.Magnitude{}, PerRound: 5, Stoppers: []prune.Stopper{prune.ErrorRise{Split: prune.ValidSplit, Max: 0.05}}}, prune.StoppedErrorRise},
		{"error-rise-retrained", prune.Settings{Method: prune.Magnitude{}, PerRound: 4, ErrorRise: 0.03, Retrain: retrain()},
			prune.Settings{Method: prune.Magnitude{}, PerRound: 4, Retrain: retrain(), Stoppers: []prune.Stopper{prune.ErrorRise{Max: 0.03}}}, prune.StoppedErrorRise},
		{"error-rise-rescued", prune.Settings{Method: prune.Magnitude{}, PerRound: 4, ErrorRise: 0.03, Retrain: retrain(), RetrainRescues: true},
			prune.Settings{Method: prune.Magnitude{}, PerRound: 4, Retrain: retrain(), RetrainRescues: true, Stoppers: []prune.Stopper{prune.ErrorRise{Max: 0.03}}}, prune.StoppedErrorRise},
	} {
		a, err := prune.Run(context.Background(), net, d, &tc.field)
		if err != nil {
			t.Fatalf("%s: field: %v", tc.name, err)
		}
		b, err := prune.Run(context.Background(), net, d, &tc.value)
		if err != nil {
			t.Fatalf("%s: value: %v", tc.name, err)
		}
		if a.Stopped != tc.reason {
			t.Errorf("%s: stopped %q, want %q", tc.name, a.Stopped, tc.reason)
		}
		if diff := sameResult(a, b); diff != "" {
			t.Errorf("%s: the value's run differs from the field's: %s", tc.name, diff)
		}
		if !tc.field.RetrainRescues {
			checkResult(t, net, before, a)
		}
	}
}

// A target reached exactly; the error-rise rule as a value undoes the
// removal that broke it, and the result satisfies it.
func TestStopperErrorRiseUndoes(t *testing.T) {
	net, d := regressionMLP(t, 22)
	rule := prune.ErrorRise{Measure: prune.MeanLoss, Max: 0.01}
	for _, m := range []prune.Saliency{prune.OBS{}, prune.Magnitude{}} {
		res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: m, PerRound: 4, Stoppers: []prune.Stopper{rule}})
		if err != nil {
			t.Fatal(err)
		}
		last := res.History[len(res.History)-1]
		e := res.Net.Evaluate(d.Train.X, d.Train.Y).MeanLoss
		if res.Stopped != prune.StoppedErrorRise || !last.Undone || !(e-res.Start.Train.MeanLoss <= rule.Max) || !(last.Error-res.Start.Train.MeanLoss > rule.Max) {
			t.Errorf("%T: stopped %q, last removal %+v, rise of the result %v", m, res.Stopped, last, e-res.Start.Train.MeanLoss)
		}
	}
	res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: prune.Magnitude{}, Fraction: 0.4, Stoppers: []prune.Stopper{prune.TargetCount(11)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != prune.StoppedTarget || res.Net.NumLive() != 11 {
		t.Errorf("stopped %q with %d live, want target with 11", res.Stopped, res.Net.NumLive())
	}
}

// pointRule records the points at which it is asked and holds at the
// point hold from the round round on.
type pointRule struct {
	seen  *[]prune.Point
	at    prune.Points
	hold  prune.Point
	round int
	why   string
	undo  bool
}

func (p pointRule) Stop(s *prune.Status) (bool, string) {
	*p.seen = append(*p.seen, s.At)
	return s.At == p.hold && s.Round >= p.round, p.why
}

func (p pointRule) Needs() prune.StopNeeds { return prune.StopNeeds{At: p.at, Undo: p.undo} }

// A program's rule is asked at the points it names, in the order of a
// round; the first of the rules that holds gives the reason; a rule that
// undoes overrides the reason of another.
func TestStopperOrder(t *testing.T) {
	net, d := regressionMLP(t, 23)
	all := prune.At(prune.BeforeRound, prune.BeforeRemoval, prune.AfterRemoval, prune.AfterPruning, prune.AfterRetraining)
	var seen []prune.Point
	res, err := prune.Run(context.Background(), net, d, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 2, MaxRounds: 1, Retrain: &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 2},
		Stoppers: []prune.Stopper{pointRule{seen: &seen, at: all}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []prune.Point{prune.BeforeRound, prune.BeforeRemoval, prune.AfterRemoval, prune.BeforeRemoval, prune.AfterRemoval,
		prune.AfterPruning, prune.AfterRetraining}
	// MaxRounds, first in the list, ends the run before round 2: the rule
	// after it is not asked there.
	if !slices.Equal(seen, want) || res.Stopped != prune.StoppedRounds {
		t.Errorf("asked at %v, stopped %q; want %v, rounds", seen, res.Stopped, want)
	}

	// The default points of a Stopper are after pruning and after
	// retraining; a rule that holds before a removal keeps it unmade.
	seen = nil
	res, err = prune.Run(context.Background(), net, d, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 3,
		Stoppers: []prune.Stopper{
			pointRule{seen: &seen, hold: prune.BeforeRemoval, round: 2, why: "first"},
			pointRule{seen: &seen, at: prune.At(prune.BeforeRemoval), hold: prune.BeforeRemoval, round: 2, why: "second"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "second" || len(res.History) != 3 || res.Rounds[1].Removed != 0 {
		t.Errorf("stopped %q after %d removals, rounds %+v", res.Stopped, len(res.History), res.Rounds)
	}
	for _, p := range seen[:2] {
		if p != prune.BeforeRemoval {
			t.Errorf("asked at %v", seen)
		}
	}
	if !slices.Contains(seen, prune.AfterPruning) || slices.Contains(seen, prune.BeforeRound) {
		t.Errorf("the default rule was asked at %v", seen)
	}

	// Of two rules holding at one point the first in the list gives the
	// reason; the fields' rules come before Stoppers.
	for _, tc := range []struct {
		s    prune.Settings
		want string
	}{
		{prune.Settings{PerRound: 2, Stoppers: []prune.Stopper{prune.StopFunc(func(*prune.Status) (bool, string) { return true, "a" }),
			prune.StopFunc(func(*prune.Status) (bool, string) { return true, "b" })}}, "a"},
		// 26 parameters: after one round of 2, both hold.
		{prune.Settings{PerRound: 2, Stoppers: []prune.Stopper{prune.MaxRounds(1), prune.TargetCount(24)}}, prune.StoppedRounds},
		{prune.Settings{PerRound: 2, Stoppers: []prune.Stopper{prune.TargetCount(24), prune.MaxRounds(1)}}, prune.StoppedTarget},
		{prune.Settings{PerRound: 2, MaxRounds: 1, Stoppers: []prune.Stopper{prune.TargetCount(24)}}, prune.StoppedRounds},
		{prune.Settings{PerRound: 2, TargetLive: 24, Stoppers: []prune.Stopper{prune.MaxRounds(1)}}, prune.StoppedTarget},
		{prune.Settings{PerRound: 2, Stoppers: []prune.Stopper{prune.StopFunc(func(*prune.Status) (bool, string) { return true, "" })}}, prune.StoppedRule},
	} {
		res, err := prune.Run(context.Background(), net, d, &tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != tc.want {
			t.Errorf("%+v: stopped %q, want %q", tc.s.Stoppers, res.Stopped, tc.want)
		}
	}

	// A rule that undoes, breaking after retraining, replaces the reason of
	// a rule that held after pruning, and its retraining is undone.
	seen = nil
	res, err = prune.Run(context.Background(), net, d, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 2, Retrain: &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 3},
		Stoppers: []prune.Stopper{
			pointRule{seen: &seen, at: prune.At(prune.AfterPruning), hold: prune.AfterPruning, round: 1, why: "mine"},
			pointRule{seen: &seen, hold: prune.AfterRetraining, round: 1, why: "undoer", undo: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rd := res.Rounds[0]
	if res.Stopped != "undoer" || rd.Retrained != rd.Pruned || rd.Retrain == nil || len(res.Rounds) != 1 {
		t.Errorf("stopped %q, round %+v", res.Stopped, rd)
	}
}

// A program's rule that undoes: the removal that made it hold is undone,
// after every removal (OBS) or by bisection (OBD).
func TestStopperProgramUndo(t *testing.T) {
	net, d := regressionMLP(t, 24)
	limit := 1.15 * net.Evaluate(d.Train.X, d.Train.Y).MeanLoss
	var rule prune.Stopper = undoRule{limit}
	for _, m := range []prune.Saliency{prune.OBS{}, prune.OBD{}} {
		_, static := m.(prune.OBD)
		res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: m, PerRound: 5, Stoppers: []prune.Stopper{rule}})
		if err != nil {
			t.Fatal(err)
		}
		last := res.History[len(res.History)-1]
		if res.Stopped != "loss" || !last.Undone || !(res.Net.Evaluate(d.Train.X, d.Train.Y).MeanLoss <= limit) || !math.IsNaN(last.Error) {
			t.Errorf("%T: stopped %q, last removal %+v", m, res.Stopped, last)
		}
		// Making the undone removal of OBD again breaks the rule.
		again := res.Net.Clone()
		again.RawParams()[last.Index] = 0
		if !(again.Evaluate(d.Train.X, d.Train.Y).MeanLoss > limit) && static {
			t.Errorf("%T: the undone removal keeps the rule", m)
		}
		checkResult(t, net, net.ParamsTo(nil), res)
	}
}

// undoRule holds when the mean training loss exceeds its value.
type undoRule struct{ max float64 }

func (u undoRule) Stop(s *prune.Status) (bool, string) {
	return s.Metrics(prune.TrainSplit).MeanLoss > u.max, "loss"
}

func (undoRule) Needs() prune.StopNeeds { return prune.StopNeeds{Undo: true} }

// Bad rules are errors from Validate, not panics.
func TestStopperValidate(t *testing.T) {
	for _, tc := range []struct {
		s    prune.Settings
		want string
	}{
		{prune.Settings{Stoppers: []prune.Stopper{nil}}, "nil"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.TargetCount(-1)}}, "negative"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.TargetSparsity(1)}}, "sparsity"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.MaxRounds(0)}}, "rounds"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.Budget(math.NaN())}}, "budget"},
		{prune.Settings{Method: prune.Magnitude{}, Stoppers: []prune.Stopper{prune.Budget(1)}}, "predicts"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.ErrorRise{Max: -1}}}, "error rise"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.ErrorRise{Measure: 7}}}, "measure"},
		{prune.Settings{Stoppers: []prune.Stopper{prune.ErrorRise{Split: 5}}}, "split"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.s.Stoppers, err, tc.want)
		}
	}
	net, d := regressionMLP(t, 25)
	d.Valid = nn.Data{}
	if _, err := prune.Run(context.Background(), net, d, &prune.Settings{Stoppers: []prune.Stopper{prune.ErrorRise{Split: prune.ValidSplit}}}); err == nil {
		t.Error("the error rise on the validation split ran without validation data")
	}
}
