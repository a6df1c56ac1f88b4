package prune

import (
	"github.com/secondorder/prune/nn"
)

// Values of Result.Stopped.
const (
	StoppedTarget      = "target"       // TargetLive or Sparsity was reached
	StoppedErrorRise   = "error-rise"   // the error rose above ErrorRise
	StoppedBudget      = "budget"       // the next removal would exceed Budget
	StoppedRoundBudget = "round-budget" // a round could remove nothing within RoundBudget
	StoppedRounds      = "rounds"       // MaxRounds rounds were completed
	StoppedExhausted   = "exhausted"    // no prunable live parameter is left
	StoppedRule        = "rule"         // a Stopper held and gave no reason
	StoppedCanceled    = "canceled"     // the context was done
	StoppedFailed      = "failed"       // an error ended the run
)

// Result is the outcome of Run.
type Result struct {
	// Net is the pruned network, with its mask set: a copy, the network
	// given to Run is not modified. It never holds a NaN or infinite
	// parameter.
	Net *nn.Network

	// Start and Final hold the metrics of the network given to Run and
	// of Net.
	Start, Final Eval

	// History lists every removal in order, an undone one included.
	History []Step

	// Rounds summarises every round.
	Rounds []Round

	// Stopped tells why Run ended; see the Stopped constants.
	Stopped string

	// Health lists the numerical issues met.
	Health Health
}

// Step records one removal.
type Step struct {
	// Step is the number of the removal in the run, from 1, and Round the
	// number of its round, from 1.
	Step, Round int

	// Index is the flat index q of the parameter and Name its name, such
	// as "W1[0][2]" (nn.Param.String).
	Index int
	Name  string

	// Saliency is the parameter's saliency when it was removed, and
	// Predicted the saliency's prediction of the increase of E (NaN for
	// Magnitude).
	Saliency, Predicted float64

	// Real is the increase of the objective caused by the removal and its
	// update, the value after it minus the value before it: the training
	// loss E = Σₙ ℓₙ plus, unless LossObjective, ½λN‖θ‖². E is measured
	// on the audit's rows and scaled by N over their number (see
	// Settings.AuditRows); NaN when the removal was not audited.
	Real float64

	// Loss is the training loss E after the removal, NaN unless the
	// removal was audited in sequence on every training row.
	Loss float64

	// Error is the error the error-rise rule watches after the removal,
	// NaN when the rule is off.
	Error float64

	// Live is the number of live parameters after the removal.
	Live int

	// Undone reports a removal that broke the error-rise rule and was
	// undone; it is the last step of the history or, with
	// Settings.RetrainRescues, one of the removals of the last round.
	Undone bool
}

// Eval holds the metrics of a network on the splits of Data; the metrics
// of an absent split are zero.
type Eval struct {
	Train, Valid, Test nn.Metrics
}

// Round summarises one round.
type Round struct {
	// Round is the number of the round, from 1.
	Round int

	// Removed is the number of removals kept, and Live the number of live
	// parameters after the round.
	Removed, Live int

	// Predicted is the sum of the predicted increases of the objective of
	// the round's removals and Real the increase they caused on the whole
	// training split, before retraining (see Step.Real).
	Predicted, Real float64

	// Decay is the μ = λN of the penalty ½μ‖θ‖² of the objective whose
	// curvature the round used, zero for the loss alone.
	Decay float64

	// Damping is the damping λ of the round's inverse curvature, the last
	// one when it was rebuilt, or NaN when the method has none.
	Damping float64

	// Rebuilds counts the rebuilds of the curvature within the round.
	Rebuilds int

	// Joint reports a round whose removals were made together with the
	// multi-weight OBS update (Settings.Joint): Predicted is then the
	// predicted increase of the set, ½ w_Sᵀ([H⁻¹]_SS)⁻¹ w_S.
	Joint bool

	// Memory is the memory in bytes the saliency planned for the round's
	// curvature (see Planner), zero when it does not report one.
	Memory int64

	// Pruned holds the metrics after the removals, before retraining, and
	// Retrained those after retraining; they are equal without it.
	Pruned, Retrained Eval

	// Retrain summarises the retraining; it is nil without it.
	Retrain *nn.TrainResult
}

// Health lists the numerical issues of a run.
type Health struct {
	Issues []Issue
}

// OK reports whether no issue was met.
func (h Health) OK() bool { return len(h.Issues) == 0 }

// Kinds of Issue.
const (
	IssueIndefinite       = "indefinite"        // the curvature + λI was not positive definite
	IssueIllConditioned   = "ill-conditioned"   // its condition number was above hessian.MaxCondition
	IssueDamping          = "damping"           // λ was raised to the value given
	IssueNegativeDiagonal = "negative-diagonal" // an OBD diagonal had negative entries
	IssuePivot            = "pivot"             // an [H⁻¹]_qq was not positive; the curvature was rebuilt
	IssueNotFinite        = "not-finite"        // a NaN or infinity in curvature, parameters or loss
	IssueDiverged         = "diverged"          // retraining diverged and was undone
)

// Issue is a numerical event of a run.
type Issue struct {
	// Round is the round, from 1, and Step the number of the removal it
	// concerns, 0 when it concerns none.
	Round, Step int

	// Kind is one of the Issue constants.
	Kind string

	// Index is the flat index of the parameter concerned, −1 for none.
	Index int

	// Lambda is the damping concerned, NaN for none.
	Lambda float64

	// Message describes the issue.
	Message string
}

// EventKind is the kind of an Event.
type EventKind int

// The kinds of Event.
const (
	EventRoundStart EventKind = iota // a round starts
	EventRemoval                     // a parameter was removed (Step)
	EventRetrain                     // retraining ended (Train)
	EventRoundEnd                    // a round ended (Summary)
	EventDone                        // Run ended (Stopped)
)

// Event reports the progress of Run to a Recorder.
type Event struct {
	Kind EventKind

	// Round is the current round, from 1; 0 before the first.
	Round int

	// Live is the number of live parameters, Total the number of
	// parameters, and Target the number of live parameters the target
	// rule stops at, or −1 without one.
	Live, Total, Target int

	// Step is the removal of an EventRemoval.
	Step *Step

	// Train is the retraining summary of an EventRetrain.
	Train *nn.TrainResult

	// Summary is the round of an EventRoundEnd.
	Summary *Round

	// Stopped is the reason of an EventDone.
	Stopped string
}

// Recorder receives the progress of Run.
type Recorder interface {
	Record(e Event)
}
