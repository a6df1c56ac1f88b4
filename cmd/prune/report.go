package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The files of a report directory.
const (
	historyFile    = "history.csv"
	reportFile     = "report.json"
	curveFile      = "curve.png"
	deltaFile      = "dE.png"
	checkpointFile = "checkpoint.json"
)

// reportFiles lists the files that the run command writes to a report
// directory, the checkpoint included.
var reportFiles = []string{historyFile, reportFile, curveFile, deltaFile, checkpointFile}

// Formats of the JSON files of a report directory.
const (
	reportFormat     = "prune-report/1"
	checkpointFormat = "prune-checkpoint/3"
)

// jnum is a float64 that is written to JSON as a number, or as null when
// it is NaN or infinite (a value that does not apply), and read back with
// null as NaN. Numbers are written in the shortest form that reads back to
// the same float64.
type jnum float64

// MarshalJSON writes the number, or null.
func (x jnum) MarshalJSON() ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (x *jnum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = jnum(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*x = jnum(f)
	return nil
}

// evalRecord holds the metrics of a network on the splits of the data;
// Valid and Test are nil for absent splits.
type evalRecord struct {
	Train nn.Metrics  `json:"train"`
	Valid *nn.Metrics `json:"valid,omitempty"`
	Test  *nn.Metrics `json:"test,omitempty"`
}

// newEvalRecord returns the record of e; hasValid and hasTest tell which
// splits are present.
func newEvalRecord(e prune.Eval, hasValid, hasTest bool) evalRecord {
	r := evalRecord{Train: e.Train}
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

// stepRecord is one removal: a row of history.csv and an entry of the
// report's history.
type stepRecord struct {
	Step      int    `json:"step"`
	Round     int    `json:"round"`
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Saliency  jnum   `json:"saliency"`
	Predicted jnum   `json:"predicted_dE"`
	Real      jnum   `json:"real_dE"`
	Loss      jnum   `json:"loss"`
	Error     jnum   `json:"error"`
	Live      int    `json:"live"`
	Undone    bool   `json:"undone"`
}

// retrainRecord summarises the retraining of a round.
type retrainRecord struct {
	Epochs  int    `json:"epochs"`
	Stopped string `json:"stopped"`
}

// roundRecord summarises a round. Live is the number of live parameters
// (weights and biases) left after it; Pruned holds the metrics after the
// removals and Retrained those after retraining, absent without it.
type roundRecord struct {
	Round     int            `json:"round"`
	Removed   int            `json:"removed"`
	Live      int            `json:"live"`
	Predicted jnum           `json:"predicted_dE"`
	Real      jnum           `json:"real_dE"`
	Damping   jnum           `json:"damping"`
	Rebuilds  int            `json:"rebuilds"`
	Pruned    evalRecord     `json:"pruned"`
	Retrained *evalRecord    `json:"retrained,omitempty"`
	Retrain   *retrainRecord `json:"retrain,omitempty"`
}

// final returns the metrics at the end of the round.
func (r roundRecord) final() evalRecord {
	if r.Retrained != nil {
		return *r.Retrained
	}
	return r.Pruned
}

// issueRecord is a numerical issue of the run (see prune.Issue). Param
// names the parameter concerned, if any.
type issueRecord struct {
	Round   int    `json:"round"`
	Step    int    `json:"step"`
	Kind    string `json:"kind"`
	Index   int    `json:"index"`
	Param   string `json:"param,omitempty"`
	Lambda  jnum   `json:"lambda"`
	Message string `json:"message"`
}

// healthRecord is the health section of a report: the issues of the run
// and their number by kind.
type healthRecord struct {
	OK     bool           `json:"ok"`
	Counts map[string]int `json:"counts"`
	Issues []issueRecord  `json:"issues"`
}

// newHealthRecord returns the health section for the issues.
func newHealthRecord(issues []issueRecord) healthRecord {
	h := healthRecord{OK: len(issues) == 0, Counts: map[string]int{}, Issues: issues}
	if h.Issues == nil {
		h.Issues = []issueRecord{}
	}
	for _, is := range issues {
		h.Counts[is.Kind]++
	}
	return h
}

// layerRecord describes the pruning of one layer by --layerwise (see
// prune.LayerwiseLayer); the errors are reconstruction errors of the
// layer's outputs, not changes of the loss.
type layerRecord struct {
	Layer         int     `json:"layer"`
	Method        string  `json:"method"`
	Sparsity      float64 `json:"sparsity"`
	WeightsBefore int     `json:"weights_before"`
	WeightsAfter  int     `json:"weights_after"`
	BiasesBefore  int     `json:"biases_before"`
	BiasesAfter   int     `json:"biases_after"`
	Lambda        jnum    `json:"lambda"`
	Predicted     jnum    `json:"predicted"`
	Actual        jnum    `json:"actual"`
	DampingTerm   jnum    `json:"damping_term"`
}

// inputFile is an input of a run and the SHA-256 of its bytes.
type inputFile struct {
	Role   string `json:"role"`
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// manifest records what a run's outputs depend on: its inputs, its
// settings and the build. It holds no times and nothing that depends on the
// number of threads, so that the same inputs give the same bytes.
type manifest struct {
	Toolkit  string      `json:"toolkit_version"`
	Go       string      `json:"go_version"`
	BLAS     string      `json:"blas"`
	Inputs   []inputFile `json:"inputs"`
	Settings runSettings `json:"settings"`
}

// runReport is the content of report.json.
type runReport struct {
	Format     string        `json:"format"`
	Output     string        `json:"output"`
	Method     string        `json:"method"`
	Stopped    string        `json:"stopped"`
	Error      string        `json:"error,omitempty"`
	Params     int           `json:"params"`
	LiveBefore int           `json:"live_before"`
	LiveAfter  int           `json:"live_after"`
	Start      evalRecord    `json:"start"`
	Final      evalRecord    `json:"final"`
	Rounds     []roundRecord `json:"rounds"`
	History    []stepRecord  `json:"history"`
	// Removals is the number of removals of the run; History holds all of
	// them, or, for a large run without --full-history, the sample that
	// HistorySample describes, with HistoryGroups summing up every
	// removal by round and layer.
	Removals      int            `json:"removals"`
	HistorySample *historySample `json:"history_sample,omitempty"`
	HistoryGroups []historyGroup `json:"history_groups,omitempty"`
	Layerwise     []layerRecord  `json:"layerwise,omitempty"`
	Health        healthRecord   `json:"health"`
	Files         []string       `json:"files"`
	Manifest      manifest       `json:"manifest"`

	// fullHistory keeps every removal in report.json and history.csv
	// (--full-history).
	fullHistory bool
}

// removals returns the number of removals of the run.
func (rep *runReport) removals() int {
	if len(rep.History) > 0 {
		return rep.History[len(rep.History)-1].Step
	}
	return 0
}

// historyCap is the largest number of removals that report.json and
// history.csv list one by one without --full-history; a larger run lists
// a sample of them.
const historyCap = 2000

// historySample describes the sample of the removals that a report lists:
// every Every-th removal, the first and last of each round and layer, and
// every undone one.
type historySample struct {
	Kept  int `json:"kept"`
	Of    int `json:"of"`
	Every int `json:"every"`
}

// historyGroup sums up the removals of one layer in one round.
type historyGroup struct {
	Round       int  `json:"round"`
	Layer       int  `json:"layer"`
	FirstStep   int  `json:"first_step"`
	LastStep    int  `json:"last_step"`
	Removed     int  `json:"removed"`
	Undone      int  `json:"undone"`
	Weights     int  `json:"weights"`
	Biases      int  `json:"biases"`
	Live        int  `json:"live"` // after the last removal of the group
	Predicted   jnum `json:"predicted_dE"`
	Real        jnum `json:"real_dE"`
	SaliencyMin jnum `json:"saliency_min"`
	SaliencyMax jnum `json:"saliency_max"`
	Loss        jnum `json:"loss"` // after the last removal of the group
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
func nanSum(s, x jnum) jnum {
	switch {
	case math.IsNaN(float64(x)):
		return s
	case math.IsNaN(float64(s)):
		return x
	}
	return s + x
}

// compactHistory returns the removals that a report lists for steps, the
// sample's description (nil when all are listed) and the summary by round
// and layer (nil when all are listed). prior, when not nil, sums up the
// rounds of which steps holds only a part (a checkpoint's compact history):
// at least the removals that a sample of any longer history lists, since
// the sample keeps every Every-th removal for a power of two Every.
func compactHistory(steps []stepRecord, prior []historyGroup, full bool) ([]stepRecord, *historySample, []historyGroup) {
	n := 0 // removals, numbered from 1
	if len(steps) > 0 {
		n = steps[len(steps)-1].Step
	}
	if full || n <= historyCap {
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
	nan := jnum(math.NaN())
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
			groups = append(groups, historyGroup{Round: st.Round, Layer: l, FirstStep: st.Step,
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
	for (n+every-1)/every > historyCap/2 {
		every *= 2
	}
	var kept []stepRecord
	for i, st := range steps {
		if edge[i] || st.Undone || (st.Step-1)%every == 0 {
			kept = append(kept, st)
		}
	}
	return kept, &historySample{Kept: len(kept), Of: n, Every: every}, groups
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// formatCSVFloat formats x for a CSV cell: the shortest form that reads
// back to the same float64, or an empty cell for NaN (a value that does not
// apply).
func formatCSVFloat(x jnum) string {
	f := float64(x)
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// historyCSV returns history.csv: a header and one row per removal.
func historyCSV(steps []stepRecord) ([]byte, error) {
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

// marshalJSON returns v as indented JSON with a final newline, without
// HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeReport adds history.csv, report.json, curve.png and, when some
// removal has a predicted ΔE, dE.png in dir to set, to be renamed by its
// Commit, and the removal of a dE.png of an earlier run otherwise. It fills
// in rep.Files and returns the paths to be written.
func writeReport(set *atomicfile.Set, dir string, rep *runReport) ([]string, error) {
	listed, sample, groups := compactHistory(rep.History, rep.HistoryGroups, rep.fullHistory)
	hist, err := historyCSV(listed)
	if err != nil {
		return nil, err
	}
	curve, err := curveChart(rep)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, curveFile), err)
	}
	delta, err := deltaChart(rep.History)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, deltaFile), err)
	}
	rep.Files = []string{historyFile, reportFile, curveFile}
	if delta != nil {
		rep.Files = append(rep.Files, deltaFile)
	}
	out := *rep
	out.Removals = rep.removals()
	out.History, out.HistorySample, out.HistoryGroups = listed, sample, groups
	js, err := marshalJSON(&out)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, reportFile), err)
	}
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{historyFile, hist}, {reportFile, js}, {curveFile, curve}, {deltaFile, delta}} {
		path := filepath.Join(dir, f.name)
		if f.data == nil {
			set.Remove(path)
			continue
		}
		if err := set.WriteBytes(path, f.data); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// renderChart draws the plots one above the other, framed by chart.Frame,
// and returns the PNG image; see chart.Render.
func renderChart(plots []*plot.Plot, w, h vg.Length) ([]byte, error) {
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		chart.Frame(p)
		grid[i] = []*plot.Plot{p}
	}
	return chart.Render(grid, w, h)
}

// addSeries adds a series in the style of series i (chart.AddSeries).
func addSeries(p *plot.Plot, name string, i int, xs, ys []float64, dashed bool) error {
	return chart.AddSeries(p, name, i, xs, ys, dashed)
}

// finitePoints returns the points whose coordinates are finite
// (chart.Finite).
func finitePoints(xs, ys []float64) plotter.XYs { return chart.Finite(xs, ys) }

// newChart returns a plot in the style of chart.New with the legend at the
// top left, whose x axis, the number of parameters left, decreases from
// left to right when inverted is set.
func newChart(title, x, y string, inverted bool) *plot.Plot {
	p := chart.New(title, x, y)
	p.Legend.Left = true
	if inverted {
		p.X.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	}
	return p
}

// curveChart draws curve.png: the mean training loss after every removal
// and retraining, and the misclassification of every split after every
// round, against the number of parameters left.
func curveChart(rep *runReport) ([]byte, error) {
	loss := newChart("training loss against parameters left", "live parameters", "mean training loss E/N", true)
	n := float64(rep.Start.Train.N)
	xs := []float64{float64(rep.LiveBefore)}
	ys := []float64{rep.Start.Train.MeanLoss}
	var rx, ry []float64
	step := 0
	perRemoval := false
	for _, rd := range rep.Rounds {
		added := false
		for ; step < len(rep.History) && rep.History[step].Round <= rd.Round; step++ {
			s := rep.History[step]
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
	for ; step < len(rep.History); step++ {
		if s := rep.History[step]; !s.Undone && !math.IsNaN(float64(s.Loss)) {
			xs = append(xs, float64(s.Live))
			ys = append(ys, float64(s.Loss)/n)
		}
	}
	label := "after each removal"
	if !perRemoval {
		label = "start, and after each round"
	}
	if err := addSeries(loss, label, 0, xs, ys, false); err != nil {
		return nil, err
	}
	if pts := finitePoints(rx, ry); len(pts) > 0 {
		// Large translucent disks drawn over the curve, which shows
		// through them.
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		// chart.Red, translucent.
		s.Color = color.NRGBA{R: 214, G: 39, B: 40, A: 150}
		s.Shape = draw.CircleGlyph{}
		s.Radius = vg.Points(5.5)
		loss.Add(s)
		loss.Legend.Add("after retraining", s)
	}

	errs := newChart("misclassification against parameters left", "live parameters", "misclassified %", true)
	top := 1.0
	type split struct {
		name string
		get  func(evalRecord) *nn.Metrics
	}
	splits := []split{
		{"train", func(e evalRecord) *nn.Metrics { return &e.Train }},
		{"valid", func(e evalRecord) *nn.Metrics { return e.Valid }},
		{"test", func(e evalRecord) *nn.Metrics { return e.Test }},
	}
	for i, sp := range splits {
		if sp.get(rep.Start) == nil {
			continue
		}
		xs := []float64{float64(rep.LiveBefore)}
		ys := []float64{100 * (1 - sp.get(rep.Start).Accuracy)}
		for _, rd := range rep.Rounds {
			if m := sp.get(rd.final()); m != nil {
				xs = append(xs, float64(rd.Live))
				ys = append(ys, 100*(1-m.Accuracy))
			}
		}
		if len(rep.Rounds) == 0 || rep.LiveAfter != rep.Rounds[len(rep.Rounds)-1].Live {
			if m := sp.get(rep.Final); m != nil {
				xs = append(xs, float64(rep.LiveAfter))
				ys = append(ys, 100*(1-m.Accuracy))
			}
		}
		for _, y := range ys {
			top = math.Max(top, y)
		}
		if err := addSeries(errs, sp.name, i, xs, ys, false); err != nil {
			return nil, err
		}
	}
	errs.Y.Min, errs.Y.Max = 0, 1.1*top
	return renderChart([]*plot.Plot{loss, errs}, 18*vg.Centimeter, 20*vg.Centimeter)
}

// deltaChart draws dE.png: the predicted against the real ΔE of every
// removal kept, with the line of equality. It returns nil when no removal
// has a prediction.
func deltaChart(steps []stepRecord) ([]byte, error) {
	var xs, ys []float64
	for _, s := range steps {
		if s.Undone {
			continue
		}
		xs = append(xs, float64(s.Predicted))
		ys = append(ys, float64(s.Real))
	}
	pts := finitePoints(xs, ys)
	if len(pts) == 0 {
		return nil, nil
	}
	p := newChart("predicted against real ΔE of each removal", "predicted ΔE", "real ΔE (training loss E)", false)
	var all []float64
	for _, pt := range pts {
		all = append(all, pt.X, pt.Y)
	}
	if c := chart.WideSpread(all); c > 0 {
		// One large ΔE would put every other point at the origin of linear
		// axes.
		chart.SymLog(&p.X, c)
		chart.SymLog(&p.Y, c)
		p.Title.Text += fmt.Sprintf("\n(symmetric log axes, linear within ±%g)", c)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		lo = math.Min(lo, math.Min(pt.X, pt.Y))
		hi = math.Max(hi, math.Max(pt.X, pt.Y))
	}
	chart.FixRange(&lo, &hi)
	eq, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return nil, err
	}
	eq.Color = color.Gray{Y: 128}
	eq.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	p.Add(eq)
	p.Legend.Add("real = predicted", eq)
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.Color = chart.Color(0)
	s.Radius = vg.Points(2.5)
	p.Add(s)
	p.Legend.Add("removals", s)
	if len(pts) > 2000 {
		s.Radius = vg.Points(1)
	}
	return renderChart([]*plot.Plot{p}, 16*vg.Centimeter, 14*vg.Centimeter)
}
