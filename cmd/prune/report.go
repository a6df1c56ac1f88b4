package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/runreport"
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

// manifest records what a run's outputs depend on: its inputs, its
// settings and the build. It holds no times and nothing that depends on the
// number of threads, so that the same inputs give the same bytes.
type manifest struct {
	Toolkit  string            `json:"toolkit_version"`
	Go       string            `json:"go_version"`
	BLAS     string            `json:"blas"`
	Inputs   []runreport.Input `json:"inputs"`
	Settings runSettings       `json:"settings"`
}

// runReport is the content of report.json.
type runReport struct {
	Format     string            `json:"format"`
	Output     string            `json:"output"`
	Method     string            `json:"method"`
	Stopped    string            `json:"stopped"`
	Error      string            `json:"error,omitempty"`
	Params     int               `json:"params"`
	LiveBefore int               `json:"live_before"`
	LiveAfter  int               `json:"live_after"`
	Start      runreport.Eval    `json:"start"`
	Final      runreport.Eval    `json:"final"`
	Rounds     []runreport.Round `json:"rounds"`
	History    []runreport.Step  `json:"history"`
	// Removals is the number of removals of the run; History holds all of
	// them, or, for a large run without --full-history, the sample that
	// HistorySample describes, with HistoryGroups summing up every
	// removal by round and layer.
	Removals      int               `json:"removals"`
	HistorySample *runreport.Sample `json:"history_sample,omitempty"`
	HistoryGroups []runreport.Group `json:"history_groups,omitempty"`
	Layerwise     []runreport.Layer `json:"layerwise,omitempty"`
	Health        runreport.Health  `json:"health"`
	Files         []string          `json:"files"`
	Manifest      manifest          `json:"manifest"`

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
	listed, sample, groups := runreport.Compact(rep.History, rep.HistoryGroups, rep.fullHistory)
	hist, err := runreport.CSV(listed)
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

// curveChart draws curve.png (runreport.Curve).
func curveChart(rep *runReport) ([]byte, error) {
	return runreport.Curve(rep.Start, rep.Final, rep.LiveBefore, rep.LiveAfter, rep.Rounds, rep.History)
}

// deltaChart draws dE.png (runreport.Delta).
func deltaChart(steps []runreport.Step) ([]byte, error) { return runreport.Delta(steps) }
