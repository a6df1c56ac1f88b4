package runreport

import (
	"fmt"
	"io"
	"math"
	"strings"
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

// WriteText prints the summary: the network, how training stopped and the
// metrics of each split.
func (s TrainSummary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "trained %s (%s, loss %s) on %s for %d epochs", s.Arch, strings.Join(s.Activations, ","), s.Loss, s.Data, s.Epochs)
	if s.Stopped != "" && s.Stopped != nn.StoppedEpochs {
		fmt.Fprintf(w, ", stopped by %s", s.Stopped)
		if s.Stopped == nn.StoppedEarly {
			fmt.Fprintf(w, " (best epoch %d)", s.BestEpoch)
		}
	}
	fmt.Fprintln(w)
	WriteMetrics(w, "train", s.Train)
	if s.Valid != nil {
		WriteMetrics(w, "valid", *s.Valid)
	}
	if s.Test != nil {
		WriteMetrics(w, "test", *s.Test)
	}
}

// WriteMetrics prints one line of metrics for a split.
func WriteMetrics(w io.Writer, split string, m nn.Metrics) {
	fmt.Fprintf(w, "%-6s loss %.6g (mean %.6g)  accuracy %.2f%%  n %d\n", split+":", m.Loss, m.MeanLoss, 100*m.Accuracy, m.N)
}
