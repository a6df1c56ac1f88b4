package prune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// Data holds the splits Run uses. The training data are required; Valid
// and Test are optional, absent when their X is nil.
type Data struct {
	Train, Valid, Test nn.Data
}

// Measure is the error the error-rise stopping rule watches.
type Measure int

// The error measures.
const (
	// AutoMeasure, the zero value, selects Misclassification for
	// classification (a network with loss bce or ce, or mse on targets
	// that are all 0 or 1, one-hot when there are several) and MeanLoss
	// otherwise.
	AutoMeasure Measure = iota
	// MeanLoss is the mean loss E/N of the split.
	MeanLoss
	// Misclassification is the fraction of samples of the split
	// classified wrongly, 1 − accuracy (see nn.Network.Evaluate).
	Misclassification
)

// String returns auto, loss or misclassification.
func (m Measure) String() string {
	switch m {
	case AutoMeasure:
		return "auto"
	case MeanLoss:
		return "loss"
	case Misclassification:
		return "misclassification"
	}
	return fmt.Sprintf("Measure(%d)", int(m))
}

// Split names a split of Data.
type Split int

// The splits the error-rise rule can watch.
const (
	TrainSplit Split = iota
	ValidSplit
)

// String returns train or valid.
func (s Split) String() string {
	switch s {
	case TrainSplit:
		return "train"
	case ValidSplit:
		return "valid"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// Objective selects the function whose curvature and gradient the
// saliencies use.
type Objective int

// The objectives.
const (
	// TrainedObjective is the objective the network was trained on, in
	// the toolkit's sum units: J = E + ½λN‖θ‖² for the trainer's weight
	// decay λ (Settings.WeightDecay) on N training samples. Its curvature
	// H + λN·I is used with its gradient taken as zero, as at the
	// trained minimum of J (where ∇E = −λNθ is not zero).
	TrainedObjective Objective = iota
	// LossObjective is the training loss E alone, its gradient taken as
	// zero: the classic formulas.
	LossObjective
	// GradientObjective is TrainedObjective with the gradient of J in the
	// quadratic models of OBD and OBS (see OBD and OBS): exact on a
	// quadratic J for single removals, but on a network far from a
	// minimum of J it prefers the parameters whose first-order term is
	// largest, often large weights where the model fails, so rounds that
	// remove many parameters suffer.
	GradientObjective
)

var objectiveNames = [...]string{TrainedObjective: "trained", LossObjective: "loss", GradientObjective: "gradient"}

// String returns trained, loss or gradient.
func (o Objective) String() string {
	if o < 0 || int(o) >= len(objectiveNames) {
		return fmt.Sprintf("Objective(%d)", int(o))
	}
	return objectiveNames[o]
}

// ParseObjective returns the objective named trained, loss or gradient.
func ParseObjective(s string) (Objective, error) {
	for i, name := range objectiveNames {
		if name == s {
			return Objective(i), nil
		}
	}
	return 0, fmt.Errorf("unknown objective %q (want trained, loss or gradient)", s)
}

// IsClassification reports whether net on the targets Y is a classifier:
// loss bce or ce, or mse on targets that are all 0 or 1 and, with several
// columns, one-hot.
func IsClassification(net *nn.Network, Y *mat.Dense) bool {
	switch net.Loss() {
	case nn.BCE, nn.CE:
		return true
	}
	r, c := Y.Dims()
	for i := 0; i < r; i++ {
		ones := 0
		for _, v := range Y.RawRowView(i) {
			switch v {
			case 1:
				ones++
			case 0:
			default:
				return false
			}
		}
		if c > 1 && ones != 1 {
			return false
		}
	}
	return true
}

// WeightDecayOf returns the weight decay λ recorded in the model's
// metadata by the toolkit's trainer (meta.trainer.weight_decay), and
// whether one is recorded.
func WeightDecayOf(net *nn.Network) (float64, bool) {
	tr, ok := net.Meta["trainer"].(map[string]any)
	if !ok {
		return 0, false
	}
	var v float64
	switch x := tr["weight_decay"].(type) {
	case float64:
		v = x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		v = f
	default:
		return 0, false
	}
	if !(v >= 0) || math.IsInf(v, 1) {
		return 0, false
	}
	return v, true
}

// Defaults of Settings.
const (
	// DefaultFraction is the fraction of the prunable live parameters
	// removed per round when no other limit is set.
	DefaultFraction = 0.1

	// DefaultSparsity is the target sparsity when no stopping rule is set.
	DefaultSparsity = 0.5
)

// NoRise as Settings.ErrorRise turns on the error-rise rule with a zero
// threshold, stopping at the first removal that raises the error at all,
// since a zero ErrorRise turns the rule off.
const NoRise = -1.0

// Settings holds the settings of Run and Scores. A nil *Settings, and any
// zero field, selects the documented default.
//
// A round builds the saliency's curvature once and removes parameters one
// at a time, each the prunable live parameter of least saliency, until the
// round's limit. A saliency that moves other parameters (OBS) is rescored
// after every removal; one that only zeroes the removed parameter
// (Magnitude, OBD) ranks the parameters once per round. The real change of
// the objective of removals is measured on a seeded subsample of the
// training rows for a seeded sample of the removals (see AuditRows and
// AuditRemovals), and that of every round on the whole training split. The
// round's limit is PerRound parameters, or else a Fraction of the prunable
// live parameters at the start of the round (rounded up), or else, with
// only RoundBudget set, no count limit; and, with RoundBudget, until the
// next removal would take the sum of the round's predicted ΔE above
// RoundBudget. With none of the three, the round removes DefaultFraction.
// A stopping rule met during a round ends it early; the round is still
// retrained, unless the error-rise rule broke, and Run then stops.
//
// Run stops after the first round, or the first removal, at which a
// stopping rule holds. The rules are values (see Stopper): the fields
// TargetLive, Sparsity, MaxRounds, Budget and ErrorRise are translated into
// TargetCount, TargetSparsity, MaxRounds, Budget and ErrorRise values, in
// that order, followed by Stoppers, and Run asks that one list at the
// points of a round (see Point), in list order, the first rule that holds
// giving Result.Stopped:
//
//   - before a round: the rules asked there (the targets, MaxRounds),
//     then exhausted: no prunable live parameter is left.
//   - before every removal: the rules asked there (Budget); the removal is
//     not made. Then RoundBudget, which ends the round.
//   - after every removal: the rules that undo (ErrorRise), then the rules
//     asked there.
//   - after the removals: the rules that undo, for a saliency that moves
//     no other parameter (by bisection), then the rules asked there (by
//     default every Stopper).
//   - after retraining: the rules that undo, then the rules asked there.
//
// The rules are:
//
//   - target: the number of live parameters reaches TargetLive, or the
//     fraction of pruned parameters reaches Sparsity, that is
//     W − live ≥ ⌈Sparsity·W⌉ for W parameters; the last round removes
//     exactly what is left to reach it.
//   - error-rise: e_after − e_start > ErrorRise, with e the Measure on the
//     ErrorSplit, e_start its value for the network given to Run and
//     e_after its value after a removal or a retraining (an absolute
//     threshold; NoRise means 0). The removal, or the retraining, that broke
//     the rule is undone, so the result is the last network that satisfied
//     it. With a saliency that moves other parameters the rule is checked
//     after every removal; with one that does not, after the round's
//     removals, and the longest prefix of them that keeps the rule is found
//     by bisection. Either way it is checked before retraining, so
//     retraining cannot rescue a removal that broke it, unless
//     RetrainRescues is set; and again after retraining. A rule that undoes
//     is applied even when another has already ended the run, and its
//     reason then replaces the other's.
//   - budget: the next removal would take the sum of the predicted ΔE of
//     all removals above Budget; it is not made.
//   - round-budget: a round could not remove any parameter within
//     RoundBudget.
//   - rounds: MaxRounds rounds were completed.
//   - exhausted: no prunable live parameter is left.
//
// With none of TargetLive, Sparsity, ErrorRise, Budget and MaxRounds set,
// and none of the toolkit's rule values among Stoppers, the target is
// DefaultSparsity.
type Settings struct {
	// Method is the saliency, default OBS{} (the exact Hessian with
	// damping DefaultDamping, raised on failure).
	Method Saliency

	// Objective is the function whose curvature and gradient the
	// saliencies use, default TrainedObjective.
	Objective Objective

	// WeightDecay is the λ of the trained objective E/N + ½λ‖θ‖² (see
	// nn.TrainSettings and WeightDecayOf); with TrainedObjective and
	// GradientObjective the curvature is that of E plus λN·I. It is also the λ of the real ΔE
	// measured, which then includes the change of ½λN‖θ‖².
	WeightDecay float64

	// PerRound is the number of parameters removed per round.
	PerRound int

	// Fraction is the fraction of the prunable live parameters removed
	// per round, in (0, 1], used when PerRound is zero.
	Fraction float64

	// RoundBudget limits the sum of the predicted ΔE of the removals of a
	// round; zero means no limit. It needs a Method that predicts ΔE.
	RoundBudget float64

	// PerLayer ranks the parameters within each layer: the round's count
	// is shared among the layers in proportion to their prunable live
	// parameters (largest remainders), so each loses about the same
	// fraction, and each removal takes the least salient parameter of the
	// layers whose share is not used up. It needs a count per round
	// (PerRound, Fraction or the default). Without it the ranking is
	// global.
	PerLayer bool

	// ProtectBiases keeps every bias: biases stay in the curvature and
	// move with OBS updates but are never removed. By default biases are
	// prunable like weights.
	ProtectBiases bool

	// RebuildEvery, when positive, rebuilds the curvature after that many
	// removals within a round. By default it is built once per round, at
	// its start (after the previous round's retraining).
	RebuildEvery int

	// TargetLive is the number of live parameters to stop at; zero means
	// no such target.
	TargetLive int

	// Sparsity is the fraction of pruned parameters to stop at, in
	// [0, 1); zero means no such target.
	Sparsity float64

	// ErrorRise is the threshold of the error-rise rule; zero turns it
	// off, NoRise means a zero threshold.
	ErrorRise float64

	// ErrorMeasure is the error the error-rise rule watches, default
	// AutoMeasure: misclassification for classification, else the mean
	// loss (see IsClassification).
	ErrorMeasure Measure

	// ErrorSplit is the split the error-rise rule watches, default
	// TrainSplit; ValidSplit needs validation data.
	ErrorSplit Split

	// Budget limits the sum of the predicted ΔE of all removals; zero
	// means no limit. It needs a Method that predicts ΔE.
	Budget float64

	// MaxRounds is the largest number of rounds; zero means no limit.
	MaxRounds int

	// Retrain, when not nil, retrains the network after every round with
	// nn.Train and these settings, the mask fixed, on the training data
	// (and the validation data, when present). Its Src, if set, is drawn
	// from by every round.
	Retrain *nn.TrainSettings

	// AuditRows is the number of training rows, a fixed subsample drawn
	// with AuditSeed, on which the real ΔE of a removal is measured: zero
	// means DefaultAuditRows, AuditAll every row. A real ΔE measured on a
	// subsample of m of the N rows is scaled by N/m.
	AuditRows int

	// AuditRemovals is the number of removals of a round whose real ΔE is
	// measured, a sample drawn with AuditSeed when the round removes more:
	// zero means DefaultAuditRemovals, AuditAll every removal. When a
	// round's removals are sampled and the saliency moves no other
	// parameter (Magnitude, OBD), each sampled removal is measured alone,
	// on the network at the start of the round; otherwise removals are
	// measured in sequence, each on the network just before it.
	AuditRemovals int

	// NoAudit turns the per-removal measurement off; the real ΔE of every
	// round on the whole training split is still recorded.
	NoAudit bool

	// AuditSeed seeds the audit's subsample of rows and of removals.
	AuditSeed uint64

	// Stoppers are further stopping rules, the toolkit's values or a
	// program's own, asked after those of the fields in this order: by
	// default after the removals of every round and again after its
	// retraining (see Stopper and StopNeeds); the first that holds ends
	// the run after the round with its reason.
	Stoppers []Stopper

	// RetrainRescues, with Retrain and the error-rise rule (or any rule
	// that undoes, see StopNeeds), checks the rule only after retraining,
	// so that retraining may rescue the round's removals (LeCun's recipe);
	// a round whose retrained network breaks it is undone with its
	// retraining, its removals marked Undone, and Run stops. Without it
	// the rule is also checked after the removals, before retraining.
	RetrainRescues bool

	// Joint removes each round's removals together: the prunable live
	// parameters of least saliency at the start of the round, as many as
	// the round's limit, with the exact multi-weight OBS update of the set
	// (SetRemover), whose predicted ΔE is the round's Predicted. It needs
	// a Method whose scorer is a SetRemover (WoodburyOBS, BlockOBS) and
	// excludes Budget, RoundBudget, ErrorRise and RebuildEvery. By
	// default removals are greedy, one at a time with downdates.
	Joint bool

	// MaxBytes limits the memory of a dense W×W matrix (see
	// hessian.CheckMemory): zero means hessian.DefaultMemoryLimit,
	// negative means no limit.
	MaxBytes int64

	// Recorder, when not nil, receives an Event at the start of every
	// round, after every removal and retraining, at the end of every round
	// and when Run ends.
	Recorder Recorder

	// Resume, when not nil, continues the run whose state it is (see
	// State): Run starts from its network, counters, history and random
	// sources instead of the network it is given, which is only checked
	// against the data, and returns what the uninterrupted run returns. The other settings must be those of the
	// run.
	Resume *State

	// OnState, when not nil, is called with the state of the run after
	// every round, with Stopped set when a stopping rule ends the run (or
	// once more when one holds before a round), for example to write a
	// checkpoint. The state shares
	// the run's network and history, which it must not modify. An error
	// ends Run with that error.
	OnState func(*State) error

	// OnRound, when not nil, is called after every round with its summary
	// and the network, which it must not modify, for example to save a
	// checkpoint. An error ends Run with that error.
	OnRound func(r Round, net *nn.Network) error
}

// Validate returns an error describing the first invalid setting in s. A
// nil s is valid.
func (s *Settings) Validate() error {
	if s == nil {
		return nil
	}
	finiteNonNeg := func(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
	switch {
	case s.Objective < TrainedObjective || s.Objective > GradientObjective:
		return fmt.Errorf("unknown objective %v", s.Objective)
	case !finiteNonNeg(s.WeightDecay):
		return fmt.Errorf("weight decay %v is not a non-negative number", s.WeightDecay)
	case s.PerRound < 0:
		return fmt.Errorf("removals per round %d is negative", s.PerRound)
	case !(s.Fraction >= 0 && s.Fraction <= 1):
		return fmt.Errorf("fraction per round %v is not in [0, 1]", s.Fraction)
	case !finiteNonNeg(s.RoundBudget):
		return fmt.Errorf("round budget %v is not a non-negative number", s.RoundBudget)
	case s.RebuildEvery < 0:
		return fmt.Errorf("rebuild period %d is negative", s.RebuildEvery)
	case s.TargetLive < 0:
		return fmt.Errorf("target live parameters %d is negative", s.TargetLive)
	case !(s.Sparsity >= 0 && s.Sparsity < 1):
		return fmt.Errorf("target sparsity %v is not in [0, 1)", s.Sparsity)
	case s.ErrorRise != NoRise && !finiteNonNeg(s.ErrorRise):
		return fmt.Errorf("error rise %v is not a non-negative number", s.ErrorRise)
	case s.ErrorMeasure < AutoMeasure || s.ErrorMeasure > Misclassification:
		return fmt.Errorf("unknown error measure %v", s.ErrorMeasure)
	case s.ErrorSplit < TrainSplit || s.ErrorSplit > ValidSplit:
		return fmt.Errorf("unknown split %v for the error-rise rule", s.ErrorSplit)
	case !finiteNonNeg(s.Budget):
		return fmt.Errorf("ΔE budget %v is not a non-negative number", s.Budget)
	case s.MaxRounds < 0:
		return fmt.Errorf("maximum rounds %d is negative", s.MaxRounds)
	case s.AuditRows < AuditAll:
		return fmt.Errorf("audit rows %d is negative (AuditAll is %d)", s.AuditRows, AuditAll)
	case s.AuditRemovals < AuditAll:
		return fmt.Errorf("audited removals per round %d is negative (AuditAll is %d)", s.AuditRemovals, AuditAll)
	case s.PerLayer && s.PerRound == 0 && s.Fraction == 0 && s.RoundBudget > 0:
		return errors.New("per-layer ranking needs a count per round (PerRound or Fraction), not only a round budget")
	}
	if s.Method != nil {
		if v, ok := s.Method.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return err
			}
		}
		if (s.Budget > 0 || s.RoundBudget > 0) && s.Method.Need() == NeedNone {
			return errors.New("a ΔE budget needs a saliency that predicts ΔE (OBD or OBS)")
		}
	}
	if err := s.validateStoppers(); err != nil {
		return err
	}
	if err := s.validateJoint(); err != nil {
		return err
	}
	if err := s.Retrain.Validate(); err != nil {
		return fmt.Errorf("retraining: %w", err)
	}
	return nil
}

// withDefaults returns a copy of s with the defaults filled in.
func (s *Settings) withDefaults() Settings {
	var c Settings
	if s != nil {
		c = *s
	}
	if c.Method == nil {
		c.Method = OBS{}
	}
	lowRankDefaults(&c)
	if c.PerRound == 0 && c.Fraction == 0 && c.RoundBudget == 0 {
		c.Fraction = DefaultFraction
	}
	if c.AuditRows == 0 {
		c.AuditRows = DefaultAuditRows
	}
	if c.AuditRemovals == 0 {
		c.AuditRemovals = DefaultAuditRemovals
	}
	if c.TargetLive == 0 && c.Sparsity == 0 && c.ErrorRise == 0 && c.Budget == 0 && c.MaxRounds == 0 && !slices.ContainsFunc(c.Stoppers, builtin) {
		c.Sparsity = DefaultSparsity
	}
	return c
}

// rise returns the threshold of the error-rise rule and whether it is on.
func (s *Settings) rise() (float64, bool) {
	switch {
	case s.ErrorRise == NoRise:
		return 0, true
	case s.ErrorRise > 0:
		return s.ErrorRise, true
	}
	return 0, false
}

// ceilCount returns ⌈x⌉, or the nearest integer when x is within rounding
// of it, so that 0.3·10 counts 3.
func ceilCount(x float64) int {
	r := math.Round(x)
	if math.Abs(x-r) <= 1e-9*math.Max(1, math.Abs(x)) {
		return int(r)
	}
	return int(math.Ceil(x))
}
