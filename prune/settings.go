package prune

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// Measure is the error the error-rise rule watches: MeanLoss (E/N) or
// Misclassification (1 − accuracy). AutoMeasure selects Misclassification
// for classification (see IsClassification), else MeanLoss.
type Measure int

// The error measures.
const (
	AutoMeasure Measure = iota
	MeanLoss
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

// Split names a split of nn.Splits that the error-rise rule can watch.
type Split int

// The splits.
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
// saliencies use. TrainedObjective is the one the network was trained on,
// J = E + ½λN‖θ‖² in sum units for the weight decay λ
// (Settings.WeightDecay), with curvature H + λN·I and its gradient taken as
// zero; LossObjective is E alone (the classic formulas); GradientObjective
// is TrainedObjective with J's gradient in the quadratic models of OBD and
// OBS, exact for single removals on a quadratic J but poor for large
// rounds far from a minimum.
type Objective int

// The objectives.
const (
	TrainedObjective Objective = iota
	LossObjective
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
// loss bce or ce, or mse on 0/1 targets, one-hot with several columns.
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

// WeightDecayOf returns the weight decay λ the toolkit's trainer recorded
// in the model (meta.trainer.weight_decay), and whether there is one.
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

// Defaults of Settings: the fraction removed per round and the target
// sparsity.
const (
	DefaultFraction = 0.1
	DefaultSparsity = 0.5
)

// NoRise as Settings.ErrorRise allows no rise at all.
const NoRise = -1.0

// Settings holds the settings of Run and ScoresOf; a nil *Settings, and
// any zero field, selects the default.
//
// A round builds the saliency's curvature once, removes the prunable live
// parameters of least saliency one at a time (OBS rescoring after each,
// Magnitude and OBD ranking once) up to its limit, retrains when Retrain is
// set and evaluates every split. Its limit is PerRound, else ⌈Fraction·n⌉ of
// the n prunable live parameters, else, with only a RoundBudget, none;
// without any, DefaultFraction. The fields TargetLive, Sparsity, MaxRounds,
// Budget, RoundBudget and ErrorRise stand for the rule values of those names
// (see Stopper), asked in that order before Stoppers; without any of them,
// the target is DefaultSparsity.
type Settings struct {
	// Method is the saliency, default OBS{}.
	Method Saliency

	// Objective selects the function whose curvature the saliencies use,
	// and WeightDecay is the λ of its trained form E/N + ½λ‖θ‖² (see
	// WeightDecayOf): the curvature adds λN·I, and the real ΔE measured
	// includes the change of ½λN‖θ‖².
	Objective   Objective
	WeightDecay float64

	// PerRound and Fraction limit the removals of a round (see above).
	PerRound int
	Fraction float64

	// PerLayer shares each round's count among the layers in proportion
	// to their prunable live parameters and ranks within each layer.
	PerLayer bool

	// ProtectBiases never removes a bias; biases still move with OBS.
	ProtectBiases bool

	// RebuildEvery, when positive, rebuilds the curvature after that many
	// removals within a round.
	RebuildEvery int

	// TargetLive, Sparsity, MaxRounds, Budget and RoundBudget set the rules
	// TargetCount, TargetSparsity, MaxRounds, Budget and RoundBudget; zero
	// turns each off.
	TargetLive  int
	Sparsity    float64
	MaxRounds   int
	Budget      float64
	RoundBudget float64

	// ErrorRise sets the rule ErrorRise{ErrorMeasure, ErrorSplit,
	// ErrorRise}; zero turns it off, NoRise allows no rise.
	ErrorRise    float64
	ErrorMeasure Measure
	ErrorSplit   Split

	// Stoppers are further stopping rules, the toolkit's or a program's.
	Stoppers []Stopper

	// Retrain, when not nil, retrains after every round with the mask
	// fixed (nn.Train on the training and validation data).
	// RetrainRescues asks the rules that undo only after retraining, so
	// that retraining may rescue a round (LeCun's recipe): a round that
	// still breaks one is undone with its retraining.
	Retrain        *nn.TrainSettings
	RetrainRescues bool

	// AuditRows and AuditRemovals bound the per-removal measurement of the
	// real ΔE to a seeded subsample of the training rows (scaled by N/m)
	// and of each round's removals, defaults DefaultAuditRows and
	// DefaultAuditRemovals, AuditAll for all. Sampled removals of Magnitude
	// and OBD are measured each alone from the round's start. NoAudit turns
	// it off; each round's real ΔE on all rows is always recorded.
	AuditRows, AuditRemovals int
	NoAudit                  bool
	AuditSeed                uint64

	// Joint removes each round's set at once with the multi-weight OBS
	// update of a SetRemover scorer (WoodburyOBS, BlockOBS); it excludes
	// the budgets, ErrorRise and RebuildEvery.
	Joint bool

	// MaxBytes limits the memory of a dense W×W matrix (see
	// hessian.CheckMemory): zero means hessian.DefaultMemoryLimit,
	// negative no limit.
	MaxBytes int64

	// Recorder, when not nil, receives the Events of the run.
	Recorder Recorder

	// Resume continues the run whose State it is; the other settings must
	// be the run's. OnState is called with the State after every round
	// (Stopped set at the end); it must not modify it, and an error ends
	// Run.
	Resume  *State
	OnState func(*State) error
}

// Validate returns an error describing the first invalid setting in s. A
// nil s is valid.
func (s *Settings) Validate() error {
	if s == nil {
		return nil
	}
	finiteNonNeg := func(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
	bad := func(field, format string, args ...any) error { return fieldErrorf("Settings", field, format, args...) }
	switch {
	case s.Objective < TrainedObjective || s.Objective > GradientObjective:
		return bad("Objective", "%v is unknown", s.Objective)
	case !finiteNonNeg(s.WeightDecay):
		return bad("WeightDecay", "%v is not a non-negative number", s.WeightDecay)
	case s.PerRound < 0:
		return bad("PerRound", "%d is negative", s.PerRound)
	case !(s.Fraction >= 0 && s.Fraction <= 1):
		return bad("Fraction", "%v is not in [0, 1]", s.Fraction)
	case !finiteNonNeg(s.RoundBudget):
		return bad("RoundBudget", "%v is not a non-negative number", s.RoundBudget)
	case s.RebuildEvery < 0:
		return bad("RebuildEvery", "%d is negative", s.RebuildEvery)
	case s.TargetLive < 0:
		return bad("TargetLive", "%d is negative", s.TargetLive)
	case !(s.Sparsity >= 0 && s.Sparsity < 1):
		return bad("Sparsity", "%v is not in [0, 1)", s.Sparsity)
	case s.ErrorRise != NoRise && !finiteNonNeg(s.ErrorRise):
		return bad("ErrorRise", "%v is not a non-negative number", s.ErrorRise)
	case s.ErrorMeasure < AutoMeasure || s.ErrorMeasure > Misclassification:
		return bad("ErrorMeasure", "%v is unknown", s.ErrorMeasure)
	case s.ErrorSplit < TrainSplit || s.ErrorSplit > ValidSplit:
		return bad("ErrorSplit", "%v is unknown", s.ErrorSplit)
	case !finiteNonNeg(s.Budget):
		return bad("Budget", "%v is not a non-negative number", s.Budget)
	case s.MaxRounds < 0:
		return bad("MaxRounds", "%d is negative", s.MaxRounds)
	case s.AuditRows < AuditAll:
		return bad("AuditRows", "%d is negative (AuditAll is %d)", s.AuditRows, AuditAll)
	case s.AuditRemovals < AuditAll:
		return bad("AuditRemovals", "%d is negative (AuditAll is %d)", s.AuditRemovals, AuditAll)
	case s.PerLayer && s.PerRound == 0 && s.Fraction == 0 && s.RoundBudget > 0:
		return bad("PerLayer", "needs a count per round (Settings.PerRound or Settings.Fraction), not only a round budget")
	}
	if s.Method != nil {
		if v, ok := s.Method.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return err
			}
		}
		if s.Method.Need() == NeedNone {
			switch {
			case s.Budget > 0:
				return bad("Budget", "%v needs a saliency that predicts ΔE (OBD or OBS)", s.Budget)
			case s.RoundBudget > 0:
				return bad("RoundBudget", "%v needs a saliency that predicts ΔE (OBD or OBS)", s.RoundBudget)
			}
		}
	}
	if err := s.validateStoppers(); err != nil {
		return err
	}
	t := *s
	t.Joint = false
	if err := t.validateJoint(); err != nil {
		return &fieldError{"Settings", "Objective", ": " + err.Error()}
	}
	if err := s.validateJoint(); err != nil {
		return &fieldError{"Settings", "Joint", ": " + err.Error()}
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
	roundBudget := c.RoundBudget > 0 || slices.ContainsFunc(c.Stoppers, func(st Stopper) bool { _, ok := st.(RoundBudget); return ok })
	if c.PerRound == 0 && c.Fraction == 0 && !roundBudget {
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

// fieldError is an invalid setting; SettingsField names its field.
type fieldError struct{ owner, field, msg string }

func (e *fieldError) Error() string {
	if strings.HasPrefix(e.msg, ":") {
		return "prune: " + e.owner + "." + e.field + e.msg
	}
	return "prune: " + e.owner + "." + e.field + " " + e.msg
}

// SettingsField returns the name of the invalid field.
func (e *fieldError) SettingsField() string { return e.field }

func fieldErrorf(owner, field, format string, args ...any) error {
	return &fieldError{owner, field, fmt.Sprintf(format, args...)}
}
