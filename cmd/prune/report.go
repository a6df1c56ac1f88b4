package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/plot/vg"
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
	checkpointFormat = "prune-checkpoint/2"
)

// The records of a report (see package runreport).
type (
	jnum          = runreport.Num
	evalRecord    = runreport.Eval
	stepRecord    = runreport.Step
	retrainRecord = runreport.Retrain
	issueRecord   = runreport.Issue
	healthRecord  = runreport.Health
	layerRecord   = runreport.Layer
	historySample = runreport.Sample
	historyGroup  = runreport.Group
)

// historyCap is runreport.HistoryCap.
const historyCap = runreport.HistoryCap

var (
	newEvalRecord         = runreport.NewEval
	newHealthRecord       = runreport.NewHealth
	chartsNeedFullHistory = runreport.NeedsFullHistory
	compactHistory        = runreport.Compact
	historyCSV            = runreport.CSV
)

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
	if rep.HistorySample != nil {
		return rep.HistorySample.Of
	}
	return len(rep.History)
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
	listed, sample, groups := rep.History, rep.HistorySample, rep.HistoryGroups
	if sample == nil {
		listed, sample, groups = compactHistory(rep.History, rep.fullHistory)
	}
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

// curveChart draws curve.png: the mean training loss after every removal
// and retraining, and the misclassification of every split after every
// round, against the number of parameters left.
func curveChart(rep *runReport) ([]byte, error) {
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
	loss := chart.Panel{Title: "training loss against parameters left", X: "live parameters", Y: "mean training loss E/N", InvertX: true,
		Series: []chart.Series{{Name: label, X: xs, Y: ys}, {Name: "after retraining", X: rx, Y: ry, Disks: true}}}

	errs := chart.Panel{Title: "misclassification against parameters left", X: "live parameters", Y: "misclassified %", InvertX: true}
	top := 1.0
	splits := []func(evalRecord) *nn.Metrics{
		func(e evalRecord) *nn.Metrics { return &e.Train },
		func(e evalRecord) *nn.Metrics { return e.Valid },
		func(e evalRecord) *nn.Metrics { return e.Test },
	}
	for i, get := range splits {
		if get(rep.Start) == nil {
			continue
		}
		xs := []float64{float64(rep.LiveBefore)}
		ys := []float64{100 * (1 - get(rep.Start).Accuracy)}
		for _, rd := range rep.Rounds {
			if m := get(rd.final()); m != nil {
				xs = append(xs, float64(rd.Live))
				ys = append(ys, 100*(1-m.Accuracy))
			}
		}
		if len(rep.Rounds) == 0 || rep.LiveAfter != rep.Rounds[len(rep.Rounds)-1].Live {
			if m := get(rep.Final); m != nil {
				xs = append(xs, float64(rep.LiveAfter))
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

// deltaChart draws dE.png: the predicted against the real ΔE of every
// removal kept, with the line of equality. It returns nil when no removal
// has a prediction.
func deltaChart(steps []stepRecord) ([]byte, error) {
	var xs, ys []float64
	for _, s := range steps {
		if !s.Undone {
			xs = append(xs, float64(s.Predicted))
			ys = append(ys, float64(s.Real))
		}
	}
	return chart.Delta("predicted against real ΔE of each removal", "predicted ΔE", "real ΔE (training loss E)", xs, ys, 16*vg.Centimeter, 14*vg.Centimeter)
}
