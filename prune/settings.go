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
// saliencies use: TrainedObjective, the one the network was trained on,
// J = E + ½λN‖θ‖² for the weight decay λ, curvature H + λN·I, gradient taken
// as zero; LossObjective, E alone; GradientObjective, J with its gradient in
// the quadratic models of OBD and OBS (not the default: results/engine.md).
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

// WeightDecayOf returns the weight decay λ recorded in the model by the
// toolkit's trainer (meta.trainer.weight_decay), if any.
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

// Defaults and special values of Settings.
const (
	DefaultFraction = 0.1  // Fraction
	DefaultSparsity = 0.5  // the target without any rule
	NoRise          = -1.0 // as ErrorRise: no rise at all
)

// Settings holds the settings of Run and ScoresOf; a nil *Settings, and any
// zero field, selects the default.
//
// A round builds the curvature of Method once, removes the prunable live
// parameters of least saliency up to its limit, PerRound, else ⌈Fraction·n⌉
// of the n prunable live ones (none with only a RoundBudget), retrains with
// Retrain (nn.Train on the training and validation data, the mask fixed)
// and evaluates every split. PerLayer shares the limit among the layers by
// their prunable live parameters; ProtectBiases never removes a bias;
// RebuildEvery rebuilds the curvature after that many removals.
//
// TargetLive, Sparsity, MaxRounds, Budget, RoundBudget and ErrorRise (with
// ErrorMeasure and ErrorSplit) set the rules of those names (see Stopper),
// asked in that order before Stoppers; zero turns each off. RetrainRescues
// asks the rules that undo only after retraining (LeCun's recipe). Joint
// removes each round's set at once with a SetRemover, without the budgets,
// ErrorRise and RebuildEvery.
//
// WeightDecay is the λ of the trained objective (see Objective and
// WeightDecayOf). The real ΔE of AuditRemovals removals per round is measured
// on AuditRows training rows drawn by AuditSeed, scaled by N/m (AuditAll:
// all; NoAudit: none). MaxBytes is as in hessian.CheckMemory. Recorder receives the Events
// of the run. Resume continues a State's run with the same settings; OnState
// receives the State after every round, must not modify it, and ends Run by
// an error.
type Settings struct {
	Method                         Saliency // default OBS{}
	Objective                      Objective
	WeightDecay                    float64
	PerRound                       int
	Fraction                       float64
	PerLayer, ProtectBiases        bool
	RebuildEvery, TargetLive       int
	Sparsity                       float64
	MaxRounds                      int
	Budget, RoundBudget, ErrorRise float64
	ErrorMeasure                   Measure
	ErrorSplit                     Split
	Stoppers                       []Stopper
	Retrain                        *nn.TrainSettings
	RetrainRescues                 bool
	AuditRows, AuditRemovals       int
	NoAudit                        bool
	AuditSeed                      uint64
	Joint                          bool
	MaxBytes                       int64
	Recorder                       Recorder
	Resume                         *State
	OnState                        func(*State) error
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
//
// Notes on the settings: Magnitude and OBD rank once per round, OBS rescores
// after each removal. The audit measures sampled removals of Magnitude and
// OBD each alone from the round's start; each round's real ΔE on all rows is
// recorded even with NoAudit. With RetrainRescues a round that still breaks
// a rule after retraining is undone with its retraining. OnState is called
// with Stopped set at the end of the run.
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
