package prune

import (
	"github.com/secondorder/prune/nn"
)

// Values of Result.Stopped: the reasons of the toolkit's rules, and
// StoppedRule for a Stopper that gives none.
const (
	StoppedTarget      = "target"
	StoppedErrorRise   = "error-rise"
	StoppedBudget      = "budget"
	StoppedRoundBudget = "round-budget"
	StoppedRounds      = "rounds"
	StoppedExhausted   = "exhausted" // no prunable live parameter is left
	StoppedRule        = "rule"
	StoppedCanceled    = "canceled"
	StoppedFailed      = "failed"
)

// Result is the outcome of Run: the pruned network (a copy, never holding
// a NaN or infinite parameter), the metrics of the network given and of
// Net, every removal in order (undone ones included), every round, the
// reason Run stopped and the numerical issues met.
type Result struct {
	Net          *nn.Network
	Start, Final Eval
	History      []Step
	Rounds       []Round
	Stopped      string
	Health       Health
}

// Step records one removal, numbered from 1 in the run and its round: the
// parameter's saliency and predicted ΔE (NaN for Magnitude); Real, the
// increase of the objective measured by the audit (NaN when not audited;
// see Settings); Loss, E after it when audited in sequence on every row,
// else NaN; Error, what the error-rise rule watches (NaN without it); and
// whether it was undone by a rule.
type Step struct {
	Step, Round                            int
	Index                                  int    // flat index q
	Name                                   string // such as "W1[0][2]" (nn.Param.String)
	Saliency, Predicted, Real, Loss, Error float64
	Live                                   int // live parameters after the removal
	Undone                                 bool
}

// Eval holds the metrics of a network on the splits of its data; the metrics
// of an absent split are zero.
type Eval struct {
	Train, Valid, Test nn.Metrics
}

// Round summarises one round: the removals kept, the live parameters after
// it, their predicted ΔE (of the set when Joint) and real ΔE before
// retraining, the μ = λN of the penalty, the damping of its last curvature
// (NaN: none), its rebuilds, the memory planned (see Planner), the metrics
// after pruning and after retraining, and the retraining's summary.
type Round struct {
	Round, Removed, Live            int
	Predicted, Real, Decay, Damping float64
	Rebuilds                        int
	Joint                           bool
	Memory                          int64
	Pruned, Retrained               Eval
	Retrain                         *nn.TrainResult
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

// Issue is a numerical event of a run: its round, removal (0: none), kind,
// parameter (−1: none), damping (NaN: none) and message.
type Issue struct {
	Round, Step int
	Kind        string
	Index       int
	Lambda      float64
	Message     string
}

// EventKind is the kind of an Event.
type EventKind int

// The kinds of Event: a round starts, a parameter was removed (Step),
// retraining ended (Train), a round ended (Summary), Run ended (Stopped).
const (
	EventRoundStart EventKind = iota
	EventRemoval
	EventRetrain
	EventRoundEnd
	EventDone
)

// Event reports the progress of Run to a Recorder: the round (0 before the
// first), the live and all parameters, the target (−1: none) and the kind's data.
type Event struct {
	Kind                EventKind
	Round               int
	Live, Total, Target int
	Step                *Step
	Train               *nn.TrainResult
	Summary             *Round
	Stopped             string
}

// Recorder receives the progress of Run.
type Recorder interface {
	Record(e Event)
}
