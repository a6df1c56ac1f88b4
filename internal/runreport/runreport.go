// Package runreport holds the records of a pruning run's report
// (report.json, history.csv): the removals, the metrics of each split, the
// numerical issues, the layer-wise summaries, and the compact history of a
// large run.
package runreport

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"gonum.org/v1/plot/vg"
)

// Num is a float64 that is written to JSON as a number, or as null when
// it is NaN or infinite (a value that does not apply), and read back with
// null as NaN. Numbers are written in the shortest form that reads back to
// the same float64.
type Num float64

// MarshalJSON writes the number, or null.
func (x Num) MarshalJSON() ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (x *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*x = Num(f)
	return nil
}

// Eval holds the metrics of a network on the splits of the data;
// Valid and Test are nil for absent splits.
type Eval struct {
	Train nn.Metrics  `json:"train"`
	Valid *nn.Metrics `json:"valid,omitempty"`
	Test  *nn.Metrics `json:"test,omitempty"`
}

// NewEval returns the record of e; hasValid and hasTest tell which
// splits are present.
func NewEval(e prune.Eval, hasValid, hasTest bool) Eval {
	r := Eval{Train: e.Train}
	if hasValid {
		v := e.Valid
		r.Valid = &v
	}
	if hasTest {
		t := e.Test
		r.Test = &t
	}
	return r
}

// Step is one removal: a row of history.csv and an entry of the
// report's history.
type Step struct {
	Step      int    `json:"step"`
	Round     int    `json:"round"`
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Saliency  Num    `json:"saliency"`
	Predicted Num    `json:"predicted_dE"`
	Real      Num    `json:"real_dE"`
	Loss      Num    `json:"loss"`
	Error     Num    `json:"error"`
	Live      int    `json:"live"`
	Undone    bool   `json:"undone"`
}

// Retrain summarises the retraining of a round.
type Retrain struct {
	Epochs  int    `json:"epochs"`
	Stopped string `json:"stopped"`
}

// Issue is a numerical issue of the run (see prune.Issue). Param
// names the parameter concerned, if any.
type Issue struct {
	Round   int    `json:"round"`
	Step    int    `json:"step"`
	Kind    string `json:"kind"`
	Index   int    `json:"index"`
	Param   string `json:"param,omitempty"`
	Lambda  Num    `json:"lambda"`
	Message string `json:"message"`
}

// Health is the health section of a report: the issues of the run
// and their number by kind.
type Health struct {
	OK     bool           `json:"ok"`
	Counts map[string]int `json:"counts"`
	Issues []Issue        `json:"issues"`
}

// NewHealth returns the health section for the issues.
func NewHealth(issues []Issue) Health {
	h := Health{OK: len(issues) == 0, Counts: map[string]int{}, Issues: issues}
	if h.Issues == nil {
		h.Issues = []Issue{}
	}
	for _, is := range issues {
		h.Counts[is.Kind]++
	}
	return h
}

// Layer describes the pruning of one layer by --layerwise (see
// prune.LayerwiseLayer); the errors are reconstruction errors of the
// layer's outputs, not changes of the loss.
type Layer struct {
	Layer         int     `json:"layer"`
	Method        string  `json:"method"`
	Sparsity      float64 `json:"sparsity"`
	WeightsBefore int     `json:"weights_before"`
	WeightsAfter  int     `json:"weights_after"`
	BiasesBefore  int     `json:"biases_before"`
	BiasesAfter   int     `json:"biases_after"`
	Lambda        Num     `json:"lambda"`
	Predicted     Num     `json:"predicted"`
	Actual        Num     `json:"actual"`
	DampingTerm   Num     `json:"damping_term"`
}

// HistoryCap is the largest number of removals that report.json and
// history.csv list one by one without --full-history; a larger run lists
// a sample of them.
const HistoryCap = 2000

// Sample describes the sample of the removals that a report lists:
// every Every-th removal, the first and last of each round and layer, and
// every undone one.
type Sample struct {
	Kept  int `json:"kept"`
	Of    int `json:"of"`
	Every int `json:"every"`
}

// Group sums up the removals of one layer in one round.
type Group struct {
	Round       int `json:"round"`
	Layer       int `json:"layer"`
	FirstStep   int `json:"first_step"`
	LastStep    int `json:"last_step"`
	Removed     int `json:"removed"`
	Undone      int `json:"undone"`
	Weights     int `json:"weights"`
	Biases      int `json:"biases"`
	Live        int `json:"live"` // after the last removal of the group
	Predicted   Num `json:"predicted_dE"`
	Real        Num `json:"real_dE"`
	SaliencyMin Num `json:"saliency_min"`
	SaliencyMax Num `json:"saliency_max"`
	Loss        Num `json:"loss"` // after the last removal of the group
}

// paramLayer returns the layer and kind of the parameter named as by
// nn.Param.String, such as "W1[2][0]" or "b0[1]", and false for another
// name.
func paramLayer(name string) (layer int, bias, ok bool) {
	if len(name) < 2 || (name[0] != 'W' && name[0] != 'b') {
		return 0, false, false
	}
	i := 1
	for i < len(name) && name[i] >= '0' && name[i] <= '9' {
		i++
	}
	l, err := strconv.Atoi(name[1:i])
	if err != nil || i == len(name) || name[i] != '[' {
		return 0, false, false
	}
	return l, name[0] == 'b', true
}

// nanSum adds x to the sum s, where NaN stands for "none yet" in s and for
// "does not apply" in x.
func nanSum(s, x Num) Num {
	switch {
	case math.IsNaN(float64(x)):
		return s
	case math.IsNaN(float64(s)):
		return x
	}
	return s + x
}

// Compact returns the removals that a report lists for steps, the
// sample's description (nil when all are listed) and the summary by round
// and layer (nil when all are listed). prior, when not nil, sums up the
// rounds of which steps holds only a part (a checkpoint's compact history):
// at least the removals that a sample of any longer history lists, since
// the sample keeps every Every-th removal for a power of two Every.
func Compact(steps []Step, prior []Group, full bool) ([]Step, *Sample, []Group) {
	n := 0 // removals, numbered from 1
	if len(steps) > 0 {
		n = steps[len(steps)-1].Step
	}
	if full || n <= HistoryCap {
		return steps, nil, nil
	}
	groups := slices.Clone(prior)
	index := make(map[[2]int]int)
	summed := make(map[int]bool) // rounds of prior
	for g, gr := range groups {
		index[[2]int{gr.Round, gr.Layer}] = g
		summed[gr.Round] = true
	}
	edge := make([]bool, len(steps)) // first or last of its group
	last := make(map[[2]int]int)
	nan := Num(math.NaN())
	for i, st := range steps {
		l, bias, _ := paramLayer(st.Name)
		k := [2]int{st.Round, l}
		if summed[st.Round] {
			gr := groups[index[k]]
			edge[i] = st.Step == gr.FirstStep || st.Step == gr.LastStep
			continue
		}
		g, ok := index[k]
		if !ok {
			g = len(groups)
			index[k] = g
			groups = append(groups, Group{Round: st.Round, Layer: l, FirstStep: st.Step,
				Predicted: nan, Real: nan, SaliencyMin: nan, SaliencyMax: nan})
			edge[i] = true
		}
		last[k] = i
		gr := &groups[g]
		gr.LastStep, gr.Live, gr.Loss = st.Step, st.Live, st.Loss
		if st.Undone {
			gr.Undone++
			continue
		}
		gr.Removed++
		if bias {
			gr.Biases++
		} else {
			gr.Weights++
		}
		gr.Predicted = nanSum(gr.Predicted, st.Predicted)
		gr.Real = nanSum(gr.Real, st.Real)
		if sal := float64(st.Saliency); !math.IsNaN(sal) {
			if math.IsNaN(float64(gr.SaliencyMin)) || sal < float64(gr.SaliencyMin) {
				gr.SaliencyMin = st.Saliency
			}
			if math.IsNaN(float64(gr.SaliencyMax)) || sal > float64(gr.SaliencyMax) {
				gr.SaliencyMax = st.Saliency
			}
		}
	}
	for _, i := range last {
		edge[i] = true
	}
	every := 1
	for (n+every-1)/every > HistoryCap/2 {
		every *= 2
	}
	var kept []Step
	for i, st := range steps {
		if edge[i] || st.Undone || (st.Step-1)%every == 0 {
			kept = append(kept, st)
		}
	}
	return kept, &Sample{Kept: len(kept), Of: n, Every: every}, groups
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// formatCSVFloat formats x for a CSV cell: the shortest form that reads
// back to the same float64, or an empty cell for NaN (a value that does not
// apply).
func formatCSVFloat(x Num) string {
	f := float64(x)
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// CSV returns history.csv: a header and one row per removal.
func CSV(steps []Step) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	rows := [][]string{{"step", "round", "index", "name", "saliency", "predicted_dE", "real_dE", "loss", "error", "live", "undone"}}
	for _, s := range steps {
		rows = append(rows, []string{
			strconv.Itoa(s.Step), strconv.Itoa(s.Round), strconv.Itoa(s.Index), s.Name,
			formatCSVFloat(s.Saliency), formatCSVFloat(s.Predicted), formatCSVFloat(s.Real),
			formatCSVFloat(s.Loss), formatCSVFloat(s.Error), strconv.Itoa(s.Live), strconv.FormatBool(s.Undone),
		})
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Line describes the health section in a few words.
func (h Health) Line() string {
	if h.OK {
		return "no numerical issues"
	}
	var parts []string
	for _, k := range sortedKeys(h.Counts) {
		parts = append(parts, fmt.Sprintf("%s %d", k, h.Counts[k]))
	}
	return fmt.Sprintf("%d numerical issues (%s; see report.json)", len(h.Issues), strings.Join(parts, ", "))
}

// Round summarises a round. Live is the number of live parameters
// (weights and biases) left after it; Pruned holds the metrics after the
// removals and Retrained those after retraining, absent without it.
type Round struct {
	Round     int      `json:"round"`
	Removed   int      `json:"removed"`
	Live      int      `json:"live"`
	Predicted Num      `json:"predicted_dE"`
	Real      Num      `json:"real_dE"`
	Damping   Num      `json:"damping"`
	Rebuilds  int      `json:"rebuilds"`
	Pruned    Eval     `json:"pruned"`
	Retrained *Eval    `json:"retrained,omitempty"`
	Retrain   *Retrain `json:"retrain,omitempty"`
}

// Final returns the metrics at the end of the round.
func (r Round) Final() Eval {
	if r.Retrained != nil {
		return *r.Retrained
	}
	return r.Pruned
}

// Curve draws curve.png: the mean training loss after every removal and
// retraining, and the misclassification of every split after every round,
// against the number of parameters left, for a run from start (liveBefore
// parameters) to final (liveAfter) by the rounds and removals given.
func Curve(start, final Eval, liveBefore, liveAfter int, rounds []Round, history []Step) ([]byte, error) {
	n := float64(start.Train.N)
	xs := []float64{float64(liveBefore)}
	ys := []float64{start.Train.MeanLoss}
	var rx, ry []float64
	step := 0
	perRemoval := false
	for _, rd := range rounds {
		added := false
		for ; step < len(history) && history[step].Round <= rd.Round; step++ {
			s := history[step]
			if s.Undone || math.IsNaN(float64(s.Loss)) {
				continue
			}
			xs = append(xs, float64(s.Live))
			ys = append(ys, float64(s.Loss)/n)
			added = true
			perRemoval = true
		}
		if !added {
			// Layer-wise pruning records no loss per removal.
			xs = append(xs, float64(rd.Live))
			ys = append(ys, rd.Pruned.Train.MeanLoss)
		}
		if rd.Retrained != nil {
			xs = append(xs, float64(rd.Live))
			ys = append(ys, rd.Retrained.Train.MeanLoss)
			rx = append(rx, float64(rd.Live))
			ry = append(ry, rd.Retrained.Train.MeanLoss)
		}
	}
	// The removals of a round that did not complete.
	for ; step < len(history); step++ {
		if s := history[step]; !s.Undone && !math.IsNaN(float64(s.Loss)) {
			xs = append(xs, float64(s.Live))
			ys = append(ys, float64(s.Loss)/n)
		}
	}
	label := "after each removal"
	if !perRemoval {
		label = "start, and after each round"
	}
	loss := chart.Panel{Title: "training loss against parameters left", X: "live parameters", Y: "mean training loss E/N", InvertX: true,
		Series: []chart.Series{{Name: label, X: xs, Y: ys}, {Name: "after retraining", X: rx, Y: ry, Disks: true}}}

	errs := chart.Panel{Title: "misclassification against parameters left", X: "live parameters", Y: "misclassified %", InvertX: true}
	top := 1.0
	splits := []func(Eval) *nn.Metrics{
		func(e Eval) *nn.Metrics { return &e.Train },
		func(e Eval) *nn.Metrics { return e.Valid },
		func(e Eval) *nn.Metrics { return e.Test },
	}
	for i, get := range splits {
		if get(start) == nil {
			continue
		}
		xs := []float64{float64(liveBefore)}
		ys := []float64{100 * (1 - get(start).Accuracy)}
		for _, rd := range rounds {
			if m := get(rd.Final()); m != nil {
				xs = append(xs, float64(rd.Live))
				ys = append(ys, 100*(1-m.Accuracy))
			}
		}
		if len(rounds) == 0 || liveAfter != rounds[len(rounds)-1].Live {
			if m := get(final); m != nil {
				xs = append(xs, float64(liveAfter))
				ys = append(ys, 100*(1-m.Accuracy))
			}
		}
		for _, y := range ys {
			top = math.Max(top, y)
		}
		errs.Series = append(errs.Series, chart.Series{Name: []string{"train", "valid", "test"}[i], X: xs, Y: ys, Style: i})
	}
	errs.YMax = 1.1 * top
	return chart.Column([]chart.Panel{loss, errs}, 18*vg.Centimeter, 20*vg.Centimeter)
}

// Delta draws dE.png: the predicted against the real ΔE of every removal
// kept, with the line of equality. It returns nil when no removal has a
// prediction.
func Delta(steps []Step) ([]byte, error) {
	var xs, ys []float64
	for _, s := range steps {
		if !s.Undone {
			xs = append(xs, float64(s.Predicted))
			ys = append(ys, float64(s.Real))
		}
	}
	return chart.Delta("predicted against real ΔE of each removal", "predicted ΔE", "real ΔE (training loss E)", xs, ys, 16*vg.Centimeter, 14*vg.Centimeter)
}
