package runreport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/prune"
)

// The files of a run's report directory.
const (
	HistoryFile    = "history.csv"
	ReportFile     = "report.json"
	CurveFile      = "curve.png"
	DeltaFile      = "dE.png"
	CheckpointFile = "checkpoint.json"
)

// ReportFiles lists the files a run writes to its report directory.
var ReportFiles = []string{HistoryFile, ReportFile, CurveFile, DeltaFile, CheckpointFile}

// Formats of the JSON files of a report directory.
const (
	ReportFormat     = "prune-report/1"
	CheckpointFormat = "prune-checkpoint/3"
)

// Settings is what a run records of its settings: the flags given that
// decide its result, from which a resume decodes the run again, and what
// they resolved to with the model.
type Settings struct {
	Model string            `json:"model"`
	Data  datasets.Spec     `json:"data"`
	Flags map[string]string `json:"flags"`
	// Objective is trained, gradient or loss, and ObjectiveDecay the
	// weight decay λ of the trained objective, read from the model.
	Objective      string           `json:"objective,omitempty"`
	ObjectiveDecay float64          `json:"objective_weight_decay,omitempty"`
	ErrorMeasure   string           `json:"error_measure,omitempty"`
	Retrain        *modelio.Trainer `json:"retrain,omitempty"`
	Output         string           `json:"output"`
	Report         string           `json:"report"`
}

// Manifest records what a run's outputs depend on: its inputs, its settings
// and the build; nothing that varies with time or the number of threads.
type Manifest struct {
	Toolkit  string   `json:"toolkit_version"`
	Go       string   `json:"go_version"`
	BLAS     string   `json:"blas"`
	Inputs   []Input  `json:"inputs"`
	Settings Settings `json:"settings"`
}

// Report is the content of report.json.
type Report struct {
	Format     string  `json:"format"`
	Output     string  `json:"output"`
	Method     string  `json:"method"`
	Stopped    string  `json:"stopped"`
	Error      string  `json:"error,omitempty"`
	Params     int     `json:"params"`
	LiveBefore int     `json:"live_before"`
	LiveAfter  int     `json:"live_after"`
	Start      Eval    `json:"start"`
	Final      Eval    `json:"final"`
	Rounds     []Round `json:"rounds"`
	History    []Step  `json:"history"`
	// Removals is the number of removals; History holds all of them or,
	// for a large run without FullHistory, the sample HistorySample
	// describes, with HistoryGroups summing up every removal.
	Removals      int      `json:"removals"`
	HistorySample *Sample  `json:"history_sample,omitempty"`
	HistoryGroups []Group  `json:"history_groups,omitempty"`
	Layerwise     []Layer  `json:"layerwise,omitempty"`
	Health        Health   `json:"health"`
	Files         []string `json:"files"`
	Manifest      Manifest `json:"manifest"`
	// FullHistory keeps every removal in report.json and history.csv.
	FullHistory bool `json:"-"`
}

// ReportOf returns the report of the result of a run whose data have
// validation and test splits as hasValid and hasTest say; the caller sets
// the output, method, manifest and the rest.
func ReportOf(res *prune.Result, hasValid, hasTest bool) *Report {
	net := res.Net
	r := &Report{Format: ReportFormat, Stopped: res.Stopped, Params: net.NumParams(), LiveAfter: net.NumLive(),
		Start: NewEval(res.Start, hasValid, hasTest), Final: NewEval(res.Final, hasValid, hasTest),
		Rounds: RoundsOf(res.Rounds, hasValid, hasTest), History: StepsOf(res.History),
		Health: NewHealth(IssuesOf(res.Health.Issues, net))}
	r.Removals = r.CountRemovals()
	return r
}

// CountRemovals returns the number of removals of the run's history.
func (r *Report) CountRemovals() int {
	if len(r.History) > 0 {
		return r.History[len(r.History)-1].Step
	}
	return 0
}

// Provenance returns what the pruned model records of the run in its
// metadata under "pruning": the settings and inputs by content, without
// paths, so that the model's bytes do not depend on where the files were.
func (r *Report) Provenance(version string) map[string]any {
	settings := modelio.MetaValue(r.Manifest.Settings).(map[string]any)
	for _, k := range []string{"model", "output", "report"} {
		delete(settings, k)
		if flags, ok := settings["flags"].(map[string]any); ok {
			delete(flags, k)
		}
	}
	var inputs []map[string]any
	for _, in := range r.Manifest.Inputs {
		inputs = append(inputs, map[string]any{"role": in.Role, "bytes": in.Bytes, "sha256": in.SHA256})
	}
	return map[string]any{
		"command": "run", "method": r.Method, "settings": settings, "stopped": r.Stopped,
		"params": r.Params, "live_before": r.LiveBefore, "live": r.LiveAfter, "rounds": len(r.Rounds),
		"removals": r.Removals, "inputs": inputs, "metrics": r.Final, "version": version,
	}
}

// MarshalIndent returns v as indented JSON with a final newline, without
// HTML escaping.
func MarshalIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write adds history.csv, report.json, curve.png and, when some removal has
// a predicted ΔE, dE.png in dir to set (or the removal of an earlier
// dE.png). It fills in r.Files and returns the paths to be written.
func (r *Report) Write(set *atomicfile.Set, dir string) ([]string, error) {
	listed, sample, groups := Compact(r.History, r.HistoryGroups, r.FullHistory)
	hist, err := CSV(listed)
	if err != nil {
		return nil, err
	}
	curve, err := Curve(r.Start, r.Final, r.LiveBefore, r.LiveAfter, r.Rounds, r.History)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, CurveFile), err)
	}
	delta, err := Delta(r.History)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, DeltaFile), err)
	}
	r.Files = []string{HistoryFile, ReportFile, CurveFile}
	if delta != nil {
		r.Files = append(r.Files, DeltaFile)
	}
	out := *r
	out.Removals = r.CountRemovals()
	out.History, out.HistorySample, out.HistoryGroups = listed, sample, groups
	js, err := MarshalIndent(&out)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, ReportFile), err)
	}
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{HistoryFile, hist}, {ReportFile, js}, {CurveFile, curve}, {DeltaFile, delta}} {
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

// Checkpoint is the content of checkpoint.json: the run's manifest, the
// engine's state after the last complete round and what the report needs
// besides. It is replaced atomically after every round.
type Checkpoint struct {
	Format   string       `json:"format"`
	Manifest Manifest     `json:"manifest"`
	State    RunState     `json:"state"`
	Engine   *prune.State `json:"engine"`
}

// RunState is what a checkpoint holds besides the engine's state.
type RunState struct {
	// LiveBefore counts the live parameters of the model given.
	LiveBefore int     `json:"live_before"`
	Layerwise  []Layer `json:"layerwise,omitempty"`
	// HistoryGroups, when set, sums up the removals of the rounds of which
	// the engine's history keeps only those a report lists or draws.
	HistoryGroups []Group `json:"history_groups,omitempty"`
}

// Encode returns the checkpoint as JSON, its history kept compact (see
// KeepCompact) unless full is set.
func (ck Checkpoint) Encode(full bool) ([]byte, error) {
	st := *ck.Engine
	ck.Engine = &st
	if !full {
		st.History, ck.State.HistoryGroups = KeepCompact(st.History, ck.State.HistoryGroups)
	}
	return json.Marshal(ck)
}

// DecodeCheckpoint decodes the content of a checkpoint file and checks its
// format and that it holds the engine's state; its errors follow the file's name.
func DecodeCheckpoint(data []byte) (*Checkpoint, error) {
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("is not a checkpoint: %v", err)
	}
	switch head.Format {
	case CheckpointFormat:
	case "prune-checkpoint/1", "prune-checkpoint/2":
		return nil, fmt.Errorf("has format %q, written by an earlier version of the toolkit, which this version cannot resume (%q holds the engine's state): run the command again with --overwrite to start over", head.Format, CheckpointFormat)
	default:
		return nil, fmt.Errorf("has format %q, want %q", head.Format, CheckpointFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ck Checkpoint
	if err := dec.Decode(&ck); err != nil {
		return nil, fmt.Errorf("is not a checkpoint: %v", err)
	}
	if dec.More() {
		return nil, errors.New("is not a checkpoint: data after its JSON object")
	}
	if ck.Engine == nil {
		return nil, errors.New("holds no engine state: run the command again to start over")
	}
	if !slices.Contains([]string{"", "target", "error-rise", "budget", "round-budget", "rounds", "exhausted", "rule"}, ck.Engine.Stopped) {
		return nil, fmt.Errorf("has the unknown stop reason %q", ck.Engine.Stopped)
	}
	return &ck, nil
}

// Summary is the short account of a run that the CLI prints (as JSON with --json).
type Summary struct {
	Output     string         `json:"output"`
	Report     string         `json:"report"`
	Files      []string       `json:"files"`
	Method     string         `json:"method"`
	Stopped    string         `json:"stopped"`
	Params     int            `json:"params"`
	LiveBefore int            `json:"live_before"`
	LiveAfter  int            `json:"live_after"`
	Rounds     int            `json:"rounds"`
	Removals   int            `json:"removals"`
	Undone     int            `json:"undone"`
	Start      Eval           `json:"start"`
	Final      Eval           `json:"final"`
	Health     map[string]int `json:"health"`
	// Damping gives the smallest and largest damping λ the rounds used,
	// after any escalation; absent for methods without one.
	Damping *Range `json:"damping,omitempty"`
	// Objective is trained or loss, and ObjectiveDecay the weight decay
	// λ of the trained objective (its curvature adds λN·I).
	Objective      string  `json:"objective,omitempty"`
	ObjectiveDecay float64 `json:"objective_weight_decay"`
	// Memory is the planner's estimate of a round's memory.
	Memory     *Memory  `json:"memory,omitempty"`
	Resumed    *int     `json:"resumed_from_round,omitempty"`
	Ignored    []string `json:"ignored_flags,omitempty"`
	Seconds    float64  `json:"seconds"`
	GOMAXPROCS int      `json:"gomaxprocs"`

	model, data string
}

// Range is the smallest and the largest damping of a run.
type Range struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Memory is a planned memory need: its bytes, their text and what they hold.
type Memory struct {
	Bytes int64  `json:"bytes"`
	Text  string `json:"text"`
	What  string `json:"what"`
}

// NewMemory returns the Memory of bytes holding what, nil for no bytes.
func NewMemory(bytes int64, what string) *Memory {
	if bytes <= 0 {
		return nil
	}
	return &Memory{Bytes: bytes, Text: sysmem.FormatBytes(bytes), What: what}
}

// Summarize returns the summary of the run of r whose report directory is
// dir and whose files are files; the caller sets the times and the rest.
func (r *Report) Summarize(dir string, files []string) Summary {
	s := Summary{
		Output: r.Output, Report: dir, Files: files, Method: r.Method, Stopped: r.Stopped,
		Params: r.Params, LiveBefore: r.LiveBefore, LiveAfter: r.LiveAfter, Rounds: len(r.Rounds), Removals: r.CountRemovals(),
		Start: r.Start, Final: r.Final, Health: r.Health.Counts,
		Objective: r.Manifest.Settings.Objective, ObjectiveDecay: r.Manifest.Settings.ObjectiveDecay,
		model: r.Manifest.Settings.Model, data: r.Manifest.Settings.Data.Name,
	}
	for _, st := range r.History {
		if st.Undone {
			s.Undone++
		}
	}
	for _, rd := range r.Rounds {
		if d := float64(rd.Damping); !math.IsNaN(d) {
			if s.Damping == nil {
				s.Damping = &Range{Min: d, Max: d}
			}
			s.Damping.Min, s.Damping.Max = math.Min(s.Damping.Min, d), math.Max(s.Damping.Max, d)
		}
	}
	return s
}

// WriteText prints the summary as text with a table of the errors before
// and after pruning; health is the line of the run's health.
func (s Summary) WriteText(w io.Writer, health string) {
	if s.Resumed != nil {
		fmt.Fprintf(w, "resumed from %s after round %d\n", filepath.Join(s.Report, CheckpointFile), *s.Resumed)
	}
	undone := ""
	if s.Undone > 0 {
		undone = fmt.Sprintf(", %d undone", s.Undone)
	}
	fmt.Fprintf(w, "pruned %s with %s on %s: %d → %d of %d parameters live in %s (%s%s); stopped: %s\n",
		s.model, s.Method, s.data, s.LiveBefore, s.LiveAfter, s.Params,
		plural(s.Rounds, "round"), plural(s.Removals, "removal"), undone, s.Stopped)
	WriteEvalTable(w, []string{"before", "after"}, []int{s.LiveBefore, s.LiveAfter}, []Eval{s.Start, s.Final})
	if d := s.Damping; d != nil && d.Min == d.Max {
		fmt.Fprintf(w, "damping: λ = %g in every round\n", d.Min)
	} else if d != nil {
		fmt.Fprintf(w, "damping: λ from %g to %g (see the rounds of report.json)\n", d.Min, d.Max)
	}
	if s.Objective != "" {
		fmt.Fprintf(w, "objective: %s (weight decay λ = %g)\n", s.Objective, s.ObjectiveDecay)
	}
	if m := s.Memory; m != nil {
		fmt.Fprintf(w, "memory: planned %s for %s\n", m.Text, m.What)
	}
	fmt.Fprintf(w, "health: %s\n", health)
	fmt.Fprintf(w, "wrote %s\n", strings.Join(s.Files, ", "))
	fmt.Fprintf(w, "time %.3g s, GOMAXPROCS %d\n", s.Seconds, s.GOMAXPROCS)
}

// WriteEvalTable prints one row per evaluation: its name, live parameters,
// mean training loss and the accuracy of each split the first one has.
func WriteEvalTable(w io.Writer, names []string, live []int, evals []Eval) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "\tlive\ttrain loss\ttrain acc\t"
	if evals[0].Valid != nil {
		header += "valid acc\t"
	}
	if evals[0].Test != nil {
		header += "test acc\t"
	}
	fmt.Fprintln(tw, header)
	for i, e := range evals {
		line := fmt.Sprintf("%s\t%d\t%.6g\t%.2f%%\t", names[i], live[i], e.Train.MeanLoss, 100*e.Train.Accuracy)
		if e.Valid != nil {
			line += fmt.Sprintf("%.2f%%\t", 100*e.Valid.Accuracy)
		}
		if e.Test != nil {
			line += fmt.Sprintf("%.2f%%\t", 100*e.Test.Accuracy)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// plural returns "1 round", "2 rounds" and so on.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
