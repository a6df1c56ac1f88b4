package runreport

import (
	"math"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/nn"
)

// TrainSummary is the account of a training run (the train command; JSON
// with --json).
type TrainSummary struct {
	Model       string      `json:"model"`
	Data        string      `json:"data"`
	Arch        string      `json:"arch"`
	Activations []string    `json:"activations"`
	Loss        string      `json:"loss"`
	Seed        uint64      `json:"seed"`
	Params      int         `json:"params"`
	Epochs      int         `json:"epochs"`
	BestEpoch   int         `json:"best_epoch"`
	Stopped     string      `json:"stopped,omitempty"`
	Train       nn.Metrics  `json:"train"`
	Valid       *nn.Metrics `json:"valid,omitempty"`
	Test        *nn.Metrics `json:"test,omitempty"`

	data datasets.Spec
}

// TrainSummaryOf returns the summary of n trained on the data set d as res
// says, evaluated on every split of splits; model is the file written.
func TrainSummaryOf(n *nn.Network, splits *nn.Splits, res nn.TrainResult, model string, d datasets.Spec) TrainSummary {
	s := TrainSummary{Model: model, Data: d.Name, Arch: n.Arch(), Loss: n.Loss().String(), Seed: d.Seed, Params: n.NumParams(),
		Epochs: res.Epochs, BestEpoch: res.BestEpoch, Stopped: res.Stopped, Train: n.Evaluate(splits.Train.X, splits.Train.Y)}
	for l := range n.NumLayers() {
		s.Activations = append(s.Activations, n.Layer(l).Act.String())
	}
	if splits.Valid.X != nil {
		m := n.Evaluate(splits.Valid.X, splits.Valid.Y)
		s.Valid = &m
	}
	if splits.Test.X != nil {
		m := n.Evaluate(splits.Test.X, splits.Test.Y)
		s.Test = &m
	}
	s.data = d
	return s
}

// Meta returns the metadata a trained model records: the summary, the
// trainer, the data set, the toolkit's version and the time from start.
func (s TrainSummary) Meta(trainer any, version string, start time.Time) map[string]any {
	metrics := map[string]any{"train": s.Train}
	if s.Valid != nil {
		metrics["valid"] = *s.Valid
	}
	if s.Test != nil {
		metrics["test"] = *s.Test
	}
	meta := map[string]any{
		"command": "train", "seed": s.Seed, "arch": s.Arch, "activations": s.Activations, "loss": s.Loss,
		"trainer": trainer, "epochs_run": s.Epochs, "best_epoch": s.BestEpoch, "stopped": s.Stopped, "metrics": metrics,
		"version": version, "time": start.UTC().Format(time.RFC3339), "duration_s": math.Round(time.Since(start).Seconds()*1000) / 1000,
	}
	s.data.Record(meta)
	return meta
}
