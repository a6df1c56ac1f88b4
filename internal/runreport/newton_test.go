package runreport

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// TestCompareNewton checks the comparison of an untrained model taken as its
// own Newton estimate: its distance to the retrained model is the move, and
// the gap closed follows the objectives given.
func TestCompareNewton(t *testing.T) {
	net, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	r := rand.New(rand.NewPCG(3, 4))
	X, Y := mat.NewDense(30, 2, nil), mat.NewDense(30, 1, nil)
	for i := range 30 {
		X.Set(i, 0, r.NormFloat64())
		X.Set(i, 1, r.NormFloat64())
		Y.Set(i, 0, math.Sin(X.At(i, 0))+0.5*X.At(i, 1))
	}
	ctx := context.Background()
	c, err := CompareNewton(ctx, net, net, X, Y, 1e-2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Moved <= 0 || math.Abs(c.Distance-c.Moved) > 1e-12 || c.RelDistance != c.Distance/c.Moved || c.Epochs < 1 {
		t.Errorf("untrained model as its own estimate: %+v", c)
	}
	if want := (2.0 - 1) / (2 - c.Objective); math.Abs(c.GapClosed-want) > 1e-12 {
		t.Errorf("gap closed %v, want %v", c.GapClosed, want)
	}
}

// TestNewtonMeta checks that the updated model keeps the metadata it came
// with, records the update, and does not change the metadata given.
func TestNewtonMeta(t *testing.T) {
	old := map[string]any{"seed": 3, "trainer": map[string]any{"optimizer": "lbfgs", "weight_decay": 0.1}}
	s := &NewtonSummary{Model: "m.json", Added: 2, N: 12, WeightDecay: 0.05, Steps: 1, Curvature: "gn"}
	m := s.Meta(old, "new.csv", "", 10)
	rec, ok := m["retrain"].(map[string]any)
	if m["seed"] != 3 || !ok || rec["n_before"] != 10 || rec["add"] != "new.csv" || rec["added"] != 2 {
		t.Errorf("meta %v", m)
	}
	if tr, ok := m["trainer"].(modelio.Trainer); !ok || tr.WeightDecay != 0.05 {
		t.Errorf("trainer %#v", m["trainer"])
	}
	if _, ok := old["retrain"]; ok {
		t.Error("the old metadata changed")
	}
	if m := s.Meta(nil, "", "r.csv", 10); m["retrain"] == nil || m["trainer"] != nil {
		t.Errorf("meta of no metadata %v", m)
	}
}
