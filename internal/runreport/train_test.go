package runreport

import (
	"strings"
	"testing"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// TestTrainSummary checks the splits a summary evaluates and the metadata
// it records, the data set's included.
func TestTrainSummary(t *testing.T) {
	net, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		t.Fatal(err)
	}
	X, Y := mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1}), mat.NewDense(4, 1, []float64{0, 1, 1, 0})
	splits := &nn.Splits{Train: nn.Data{X: X, Y: Y}, Test: nn.Data{X: X, Y: Y}}
	d := datasets.Spec{Name: "xor", Options: datasets.Options{Seed: 7}}
	s := TrainSummaryOf(net, splits, nn.TrainResult{Epochs: 5, BestEpoch: 5, Stopped: nn.StoppedEpochs}, "m.json", d)
	if s.Valid != nil || s.Test == nil || s.Train.N != 4 || s.Arch != "2-3-1" || len(s.Activations) != 2 || s.Activations[1] != "sigmoid" || s.Seed != 7 || s.Loss != "bce" {
		t.Fatalf("summary %+v", s)
	}
	m := s.Meta("adam", "v1", time.Now())
	metrics, _ := m["metrics"].(map[string]any)
	if m["command"] != "train" || m["epochs_run"] != 5 || m["trainer"] != "adam" || metrics["test"] == nil || metrics["valid"] != nil || len(m) <= 13 {
		t.Errorf("meta %v", m)
	}
}

// TestSummaryTexts checks the lines of the train and retrain summaries.
func TestSummaryTexts(t *testing.T) {
	m := nn.Metrics{N: 4, Loss: 2, MeanLoss: 0.5, Accuracy: 0.75}
	var b strings.Builder
	TrainSummary{Arch: "2-3-1", Activations: []string{"tanh", "sigmoid"}, Loss: "bce", Data: "xor", Epochs: 9, BestEpoch: 4,
		Stopped: nn.StoppedEarly, Train: m, Test: &m}.WriteText(&b)
	want := "trained 2-3-1 (tanh,sigmoid, loss bce) on xor for 9 epochs, stopped by " + nn.StoppedEarly + " (best epoch 4)\n" +
		"train: loss 2 (mean 0.5)  accuracy 75.00%  n 4\ntest:  loss 2 (mean 0.5)  accuracy 75.00%  n 4\n"
	if b.String() != want {
		t.Errorf("train text\n%q, want\n%q", b.String(), want)
	}
	b.Reset()
	(&NewtonSummary{Model: "m.json", Added: 2, N: 12, Steps: 1, Curvature: "gn", Compare: &NewtonCompare{GapClosed: 0.5}, Train: m}).WriteText(&b, 10)
	for _, want := range []string{"m.json: 2 samples added, 0 removed (N 10 → 12); 1 Newton step(s) on the gn curvature", "closed 50.0% of the gap", "train: loss 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("retrain text lacks %q:\n%s", want, b.String())
		}
	}
}
