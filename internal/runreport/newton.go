package runreport

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// NewtonSummary is the account of a Newton update of a trained model after
// samples were added or removed (the retrain command; JSON with --json).
type NewtonSummary struct {
	Model       string  `json:"model"`
	Output      string  `json:"output"`
	Added       int     `json:"added"`
	Removed     int     `json:"removed"`
	N           int     `json:"n"`
	Alpha       float64 `json:"alpha"`
	WeightDecay float64 `json:"weight_decay"`
	Curvature   string  `json:"curvature"`
	Steps       int     `json:"steps"`
	// J' = E'/N' + ½λ'‖θ‖² at the old parameters and after the Newton steps.
	ObjectiveOld    float64        `json:"objective_old"`
	ObjectiveNewton float64        `json:"objective_newton"`
	GradNorm        float64        `json:"grad_norm"`
	SetupSeconds    float64        `json:"setup_s"`
	UpdateSeconds   float64        `json:"update_s"`
	Train           nn.Metrics     `json:"train"`
	Compare         *NewtonCompare `json:"compare,omitempty"`
}

// NewtonCompare compares the Newton estimate with full retraining.
type NewtonCompare struct {
	Objective   float64 `json:"objective_retrained"`
	Epochs      int     `json:"epochs"`
	Seconds     float64 `json:"seconds"`
	GapClosed   float64 `json:"gap_closed"`   // (J'_old − J'_newton) / (J'_old − J'_retrained)
	Distance    float64 `json:"distance"`     // ‖θ_newton − θ_retrained‖
	Moved       float64 `json:"moved"`        // ‖θ_retrained − θ_old‖
	RelDistance float64 `json:"rel_distance"` // Distance / Moved
}

// Meta returns the metadata of the updated model: meta, that of the model
// it came from, with the trainer's new weight decay and a record of the
// update from the sample files add and remove and the n0 samples before.
func (s *NewtonSummary) Meta(meta map[string]any, add, remove string, n0 int) map[string]any {
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]any{}
	}
	var rec modelio.Trainer
	if modelio.DecodeMeta(meta, modelio.TrainerKey, &rec) {
		rec.WeightDecay = s.WeightDecay
		m["trainer"] = rec
	}
	m["retrain"] = map[string]any{
		"command": "retrain", "source": s.Model, "add": add, "remove": remove, "added": s.Added, "removed": s.Removed,
		"n": s.N, "n_before": n0, "steps": s.Steps, "curvature": s.Curvature, "alpha": s.Alpha, "weight_decay": s.WeightDecay,
		"note": "trained on the recorded data set's training split with the samples of add and without those of remove",
	}
	return m
}

// CompareNewton retrains old by L-BFGS to convergence on (X, Y) with the
// weight decay lambda and compares the Newton estimate newton with it;
// objOld and objNewton are J' = E'/N' + ½λ'‖θ‖² at old's and newton's parameters.
func CompareNewton(ctx context.Context, old, newton *nn.Network, X, Y *mat.Dense, lambda, objOld, objNewton float64) (*NewtonCompare, error) {
	ref := old.Clone()
	t0 := time.Now()
	tr, err := nn.Train(ctx, ref, nn.Data{X: X, Y: Y}, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS, WeightDecay: lambda})
	if err != nil {
		return nil, err
	}
	c := &NewtonCompare{Seconds: time.Since(t0).Seconds(), Epochs: tr.Epochs}
	th := ref.RawParams()
	c.Objective = ref.Evaluate(X, Y).MeanLoss + 0.5*lambda*floats.Dot(th, th)
	if gap := objOld - c.Objective; gap != 0 {
		c.GapClosed = (objOld - objNewton) / gap
	}
	c.Distance = floats.Distance(newton.RawParams(), th, 2)
	c.Moved = floats.Distance(old.RawParams(), th, 2)
	if c.Moved > 0 {
		c.RelDistance = c.Distance / c.Moved
	}
	return c, nil
}

// WriteText prints the summary of an update from n0 samples.
func (s *NewtonSummary) WriteText(w io.Writer, n0 int) {
	fmt.Fprintf(w, "%s: %d samples added, %d removed (N %d → %d); %d Newton step(s) on the %s curvature, α = Nλ = %.4g, λ' = %.4g\n",
		s.Model, s.Added, s.Removed, n0, s.N, s.Steps, s.Curvature, s.Alpha, s.WeightDecay)
	fmt.Fprintf(w, "J' = E'/N' + ½λ'‖θ‖²: old %.8g → Newton %.8g (|∇| %.3g); setup %.3gs, update and steps %.3gs\n",
		s.ObjectiveOld, s.ObjectiveNewton, s.GradNorm, s.SetupSeconds, s.UpdateSeconds)
	if c := s.Compare; c != nil {
		fmt.Fprintf(w, "L-BFGS retraining from the old weights: J' %.8g in %d iterations, %.3gs; Newton closed %.1f%% of the gap, ‖θ_N − θ_R‖ = %.3g (%.3g of the move %.3g)\n",
			c.Objective, c.Epochs, c.Seconds, 100*c.GapClosed, c.Distance, c.RelDistance, c.Moved)
	}
	WriteMetrics(w, "train", s.Train)
}
