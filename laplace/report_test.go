package laplace

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The starting prior: α = Nβλ from the trainer's weight decay λ with the
// maximum-likelihood β, a laplace record before it, Settings.Alpha before
// both, and per layer on request.
func TestStartingPrior(t *testing.T) {
	X, Y, _ := linearProblem(40, 2, 0.1, 3)
	net := linearNet(t, 2)
	var s Settings
	if from := StartingPrior(net, X, Y, &s, false); from != "default" || s.Alpha != DefaultAlpha {
		t.Errorf("no metadata: α %v from %q", s.Alpha, from)
	}
	const lambda = 1e-3
	net.Meta = map[string]any{"trainer": map[string]any{"weight_decay": lambda}}
	s = Settings{}
	from := StartingPrior(net, X, Y, &s, true)
	beta := float64(40) / (2 * net.Objective(X, Y))
	if want := 40 * beta * lambda; from != "weight decay" || math.Abs(s.Alpha-want) > 1e-12*want || len(s.LayerAlpha) != 1 || s.LayerAlpha[0] != s.Alpha {
		t.Errorf("weight decay: α %v (layers %v) from %q, want %v", s.Alpha, s.LayerAlpha, from, want)
	}
	b := 7.0
	var rec any
	raw, _ := json.Marshal(Record{Alpha: []float64{2.5}, Beta: &b})
	_ = json.Unmarshal(raw, &rec)
	net.Meta["laplace"] = rec
	s = Settings{}
	if from := StartingPrior(net, X, Y, &s, false); from != "the model's laplace record" || s.Alpha != 2.5 || s.Beta != 7 {
		t.Errorf("record: α %v β %v from %q", s.Alpha, s.Beta, from)
	}
	s = Settings{Alpha: 0.5}
	if from := StartingPrior(net, X, Y, &s, false); from != "Settings.Alpha" || s.Alpha != 0.5 || s.Beta != 0 {
		t.Errorf("given: α %v β %v from %q", s.Alpha, s.Beta, from)
	}
}

// The predictive of a regression on its training data: the summary, the
// record and the CSV agree with the posterior.
func TestPredictiveReport(t *testing.T) {
	X, Y, _ := linearProblem(30, 1, 0.2, 5)
	net := linearNet(t, 1)
	p, err := Fit(context.Background(), net, X, Y, &Settings{Alpha: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := PredictiveOf(context.Background(), p, X, Y, Probit, 0, rand.NewPCG(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if m := pr.Metrics; m.N != 30 || m.MeanStd == nil || !(*m.MeanStd > 0) || !(*m.Coverage2 > 0.5) || m.Accuracy != nil {
		t.Errorf("metrics %+v", m)
	}
	b, err := pr.CSV()
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(rows) != 31 || rows[0] != "sample,x,target,mean,std" {
		t.Errorf("CSV: %d rows, header %q", len(rows), rows[0])
	}
	s := SummaryOf(p, nil, "Settings.Alpha")
	rec := p.Record("laplace", "m.json")
	if s.Alpha[0] != 0.1 || rec.Alpha[0] != 0.1 || s.Beta == nil || *rec.Beta != *s.Beta || rec.Gamma != s.Gamma || math.Abs(rec.WeightDecay-0.1/(30**s.Beta)) > 1e-15 {
		t.Errorf("summary %+v, record %+v", s, rec)
	}
	var w strings.Builder
	s.WriteText(&w)
	if !strings.Contains(w.String(), "α 0.1 (Settings.Alpha)") {
		t.Errorf("text:\n%s", w.String())
	}
}
