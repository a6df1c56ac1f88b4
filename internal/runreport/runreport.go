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

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
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

// NeedsFullHistory reports whether curve.png or dE.png draw some of
// steps: a removal with the training loss after it or with both a
// predicted and a real ΔE. Layer-wise pruning records neither, so that
// its charts are the same from a compact history.
func NeedsFullHistory(steps []Step) bool {
	finite := func(x Num) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	for _, s := range steps {
		if !s.Undone && (!math.IsNaN(float64(s.Loss)) || finite(s.Predicted) && finite(s.Real)) {
			return true
		}
	}
	return false
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
// and layer (nil when all are listed).
func Compact(steps []Step, full bool) ([]Step, *Sample, []Group) {
	if full || len(steps) <= HistoryCap {
		return steps, nil, nil
	}
	var groups []Group
	index := make(map[[2]int]int)
	edge := make([]bool, len(steps)) // first or last of its group
	last := make(map[[2]int]int)
	nan := Num(math.NaN())
	for i, st := range steps {
		l, bias, _ := paramLayer(st.Name)
		k := [2]int{st.Round, l}
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
	every := (len(steps) + HistoryCap/2 - 1) / (HistoryCap / 2)
	var kept []Step
	for i, st := range steps {
		if edge[i] || st.Undone || i%every == 0 {
			kept = append(kept, st)
		}
	}
	return kept, &Sample{Kept: len(kept), Of: len(steps), Every: every}, groups
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
