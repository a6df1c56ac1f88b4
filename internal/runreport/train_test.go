package runreport

import (
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
