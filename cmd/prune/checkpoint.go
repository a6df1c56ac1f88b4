package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// checkpoint is the content of checkpoint.json: the run's manifest (its
// inputs and settings), its state after the last complete round and the
// network at that point as a prune-mlp/1 object. It is replaced atomically
// after every round, so that a killed run loses at most the round it was
// in.
type checkpoint struct {
	Format   string   `json:"format"`
	Manifest manifest `json:"manifest"`
	State    runState `json:"state"`
	// Engine is the state of prune.Run, its network included, for a run
	// in rounds; Model is the network of a --layerwise run.
	Engine *prune.State    `json:"engine,omitempty"`
	Model  json.RawMessage `json:"model,omitempty"`
}

// checkpoint writes the checkpoint of the state after the last complete
// round, with the network lp.cur and the state of the generators.
func (lp *pruneLoop) checkpoint() error {
	ck := checkpoint{Format: checkpointFormat, Manifest: lp.p.manifest, State: lp.st, Engine: lp.engine}
	if lp.engine != nil {
		// The engine's state holds the network, the history and the
		// generators.
		ck.State = runState{Params: lp.st.Params, LiveBefore: lp.st.LiveBefore, Start: lp.st.Start, Stopped: lp.engine.Stopped}
	} else {
		var err error
		if ck.State.RetrainRNG, err = lp.p.retrainSrc.MarshalBinary(); err != nil {
			return err
		}
		if ck.State.ProbeRNG, err = lp.p.probeSrc.MarshalBinary(); err != nil {
			return err
		}
		// The report of a finished run that needs no more than its compact
		// history is written again from it, so that the checkpoint is
		// about the size of the model.
		if lp.st.Stopped != "" && lp.st.HistorySample == nil && !lp.p.fullHistory && !chartsNeedFullHistory(lp.st.History) {
			listed, sample, groups := compactHistory(lp.st.History, false)
			ck.State.History, ck.State.HistorySample, ck.State.HistoryGroups = listed, sample, groups
		}
		var model bytes.Buffer
		if err := modelio.WriteJSON(&model, lp.cur); err != nil {
			return fmt.Errorf("checkpoint: %v", err)
		}
		ck.Model = model.Bytes()
	}
	// Compact: the checkpoint is read by the program, and its history
	// is most of it.
	data, err := json.Marshal(ck)
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	if err := os.MkdirAll(lp.p.reportDir, 0o755); err != nil {
		return fmt.Errorf("--report %s: %v", lp.p.reportDir, err)
	}
	path := filepath.Join(lp.p.reportDir, checkpointFile)
	if err := atomicfile.WriteBytes(path, data); err != nil {
		return fmt.Errorf("checkpoint %s: %v", path, err)
	}
	return nil
}

// resumeFlags lists the flags that may be given with --resume: they do not
// change the result.
var resumeFlags = map[string]bool{"resume": true, "output": true, "overwrite": true, "json": true, "quiet": true, "max-memory": true}

// checkResumedSettings checks the settings of a checkpoint as strictly as
// the flags that gave them: they are turned back into flags, checked again,
// and must come back unchanged.
func checkResumedSettings(set runSettings) error {
	o := runOptions{
		Model: set.Model, Act: set.Act, Loss: set.Loss, Method: set.Method, Curvature: set.Curvature,
		Damping: set.Damping, Alpha: set.Alpha, Probes: set.Probes, Layerwise: set.Layerwise,
		Objective: set.Objective, StopErrorRise: set.StopErrorRise, ErrorMeasure: set.ErrorMeasure, ErrorSplit: set.ErrorSplit,
		TargetWeights: set.TargetWeights, TargetSparsity: set.TargetSparsity, Budget: set.Budget, MaxRounds: set.MaxRounds,
		PerRound: set.PerRound, Fraction: set.Fraction, RebuildEvery: set.RebuildEvery,
		PerLayer: set.PerLayer, ProtectBiases: set.ProtectBiases,
		AuditRows: set.AuditRows, AuditRemovals: set.AuditRemovals, NoAudit: set.NoAudit,
		Output: set.Output, Report: set.Report,
	}
	if o.AuditRows == prune.AuditAll && o.AuditRemovals == prune.AuditAll {
		o.AuditRows, o.AuditRemovals, o.AuditAll = 0, 0, true
	}
	if set.Fraction > 0 && set.PerRound > 0 {
		return errors.New(`"per_round" and "fraction" exclude each other`)
	}
	again, err := checkRunOptions(o)
	if err != nil {
		return err
	}
	again.Data, again.Retrain, again.ObjectiveDecay = set.Data, set.Retrain, set.ObjectiveDecay
	a, _ := json.Marshal(again)
	b, _ := json.Marshal(set)
	if !bytes.Equal(a, b) {
		return fmt.Errorf("they are not what the flags they stand for give: %s, want %s", b, a)
	}
	if err := set.Data.check(); err != nil {
		return err
	}
	if !(set.ObjectiveDecay >= 0) || math.IsInf(set.ObjectiveDecay, 1) {
		return fmt.Errorf("objective weight decay %v is not a non-negative number", set.ObjectiveDecay)
	}
	if set.Retrain != nil {
		if _, err := trainSettingsOf(*set.Retrain); err != nil {
			return fmt.Errorf("retraining: %v", err)
		}
	}
	return nil
}

// readCheckpoint reads the checkpoint of the report directory dir.
func readCheckpoint(dir string) (*checkpoint, error) {
	path := filepath.Join(dir, checkpointFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, derr := os.Stat(dir); derr != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--resume %s: no such directory", dir)
		}
		return nil, fmt.Errorf("--resume %s: no %s in the directory: it is not the report directory of a run", dir, checkpointFile)
	}
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %v", dir, err)
	}
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %s %v", dir, path, err)
	}
	return ck, nil
}

// checkpointFormat1 is the format of the checkpoints of earlier versions,
// which held the history of a run in rounds but not the engine's state.
const checkpointFormat1 = "prune-checkpoint/1"

// decodeCheckpoint decodes the content of a checkpoint file and checks
// its format and that it holds a network; its errors follow the file's
// name.
func decodeCheckpoint(data []byte) (*checkpoint, error) {
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("is not a checkpoint: %v", err)
	}
	switch head.Format {
	case checkpointFormat:
	case checkpointFormat1:
		return nil, fmt.Errorf("has format %q, written by an earlier version of the toolkit, which this version cannot resume (%q holds the engine's state): run the command again with --overwrite to start over", head.Format, checkpointFormat)
	default:
		return nil, fmt.Errorf("has format %q, want %q", head.Format, checkpointFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ck checkpoint
	if err := dec.Decode(&ck); err != nil {
		return nil, fmt.Errorf("is not a checkpoint: %v", err)
	}
	if dec.More() {
		return nil, errors.New("is not a checkpoint: data after its JSON object")
	}
	if len(ck.Model) == 0 && ck.Engine == nil {
		return nil, errors.New("holds no model")
	}
	if ck.State.HistorySample != nil && ck.State.HistorySample.Kept != len(ck.State.History) {
		return nil, fmt.Errorf("holds %d removals, its history sample says %d", len(ck.State.History), ck.State.HistorySample.Kept)
	}
	return &ck, nil
}

// prepareResume checks the options of --resume and loads the checkpoint,
// the data and, to check them, the inputs. It creates no file.
func prepareResume(o runOptions) (*runPlan, error) {
	var refused []string
	for name := range o.Given {
		if !resumeFlags[name] {
			refused = append(refused, "--"+name)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, &usageError{Flag: strings.TrimPrefix(refused[0], "--"),
			Msg: fmt.Sprintf("%s cannot be given with --resume: a resumed run takes its settings from %s", strings.Join(refused, ", "), filepath.Join(o.Resume, checkpointFile))}
	}
	limit, err := parseMaxMemory(o.MaxMemory)
	if err != nil {
		return nil, err
	}
	ck, err := readCheckpoint(o.Resume)
	if err != nil {
		return nil, err
	}
	where := filepath.Join(o.Resume, checkpointFile)
	if !ck.Manifest.Settings.Layerwise && ck.Engine == nil && ck.State.Stopped == "" {
		return nil, fmt.Errorf("--resume %s: the checkpoint holds no engine state (it was written by an earlier version of the toolkit); run the command again to start over", where)
	}
	var net *nn.Network
	if ck.Engine != nil {
		net = ck.Engine.Net
	} else if net, err = modelio.ReadJSON(bytes.NewReader(ck.Model)); err != nil {
		return nil, fmt.Errorf("--resume %s: model: %v", where, err)
	}
	if net.Meta != nil {
		net.Meta = metaValue(net.Meta).(map[string]any)
	}
	set := ck.Manifest.Settings
	if err := checkResumedSettings(set); err != nil {
		return nil, fmt.Errorf("--resume %s: the settings recorded are invalid: %v", where, err)
	}
	p := &runPlan{set: set, manifest: ck.Manifest, limit: limit, net: net, state: ck.State, resumed: ck.State.Rounds,
		output: set.Output, reportDir: o.Resume}
	if o.Output != "" {
		if err := checkModelName("output", o.Output); err != nil {
			return nil, err
		}
		p.output = o.Output
	}
	if p.state.History == nil {
		p.state.History = []stepRecord{}
	}
	if p.state.RoundList == nil {
		p.state.RoundList = []roundRecord{}
	}
	if p.state.Issues == nil {
		p.state.Issues = []issueRecord{}
	}
	if ck.Engine != nil {
		// prune.Run sets the generators to the states of the engine.
		p.engine = ck.Engine
		p.resumed = ck.Engine.Rounds
		p.state.Stopped = ck.Engine.Stopped
		p.retrainSrc = rand.NewPCG(set.Data.Seed, streamRetrain)
		p.probeSrc = rand.NewPCG(set.Data.Seed, streamHutch)
	} else {
		p.retrainSrc, p.probeSrc = &rand.PCG{}, &rand.PCG{}
		if err := p.retrainSrc.UnmarshalBinary(ck.State.RetrainRNG); err != nil {
			return nil, fmt.Errorf("--resume %s: retraining generator: %v", where, err)
		}
		if err := p.probeSrc.UnmarshalBinary(ck.State.ProbeRNG); err != nil {
			return nil, fmt.Errorf("--resume %s: probe generator: %v", where, err)
		}
	}

	// The inputs must be those the run started with; the model itself is
	// not read again and may be gone.
	var inputs []string
	for _, in := range ck.Manifest.Inputs {
		inputs = append(inputs, in.Path)
		f, err := hashFile(in.Role, in.Path)
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(in.Role, "model") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("--resume %s: %v", o.Resume, err)
		}
		if f.SHA256 != in.SHA256 {
			return nil, fmt.Errorf("--resume %s: the %s %s has changed since the run started (SHA-256 %s, recorded %s)", o.Resume, in.Role, in.Path, f.SHA256, in.SHA256)
		}
	}
	if err := checkRunOutputs(p.output, p.reportDir, o.Overwrite, set.Output, inputs); err != nil {
		return nil, err
	}
	if err := p.loadData(net); err != nil {
		return nil, err
	}
	if p.state.Stopped == "" {
		if err := checkRunMemory(set, net, limit); err != nil {
			return nil, err
		}
	}
	if !slices.Contains([]string{"", "target", "error-rise", "budget", "round-budget", "rounds", "exhausted", "rule"}, p.state.Stopped) {
		return nil, fmt.Errorf("--resume %s: unknown stop reason %q", where, p.state.Stopped)
	}
	return p, nil
}
