package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/urfave/cli/v2"
)

// checkpoint writes the checkpoint of the engine's state. Unless
// --full-history is given, a history longer than a report lists is kept
// compact: the removals that the report of any longer history lists or its
// charts draw, and the sums of the others by round and layer.
func (lp *pruneLoop) checkpoint() error {
	p := lp.p
	ck := runreport.Checkpoint{Format: runreport.CheckpointFormat, Manifest: p.manifest, Engine: lp.engine,
		State: runreport.RunState{LiveBefore: p.liveBefore, Layerwise: lp.layers, HistoryGroups: p.prior}}
	data, err := ck.Encode(p.fullHistory)
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	if err := os.MkdirAll(p.reportDir, 0o755); err != nil {
		return fmt.Errorf("--report %s: %v", p.reportDir, err)
	}
	path := filepath.Join(p.reportDir, runreport.CheckpointFile)
	if err := atomicfile.WriteBytes(path, data); err != nil {
		return fmt.Errorf("checkpoint %s: %v", path, err)
	}
	lp.checkpoints++
	return nil
}

// readCheckpoint reads the checkpoint of the report directory dir.
func readCheckpoint(dir string) (*runreport.Checkpoint, error) {
	path := filepath.Join(dir, runreport.CheckpointFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, derr := os.Stat(dir); derr != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--resume %s: no such directory", dir)
		}
		return nil, fmt.Errorf("--resume %s: no %s in the directory: it is not the report directory of a run", dir, runreport.CheckpointFile)
	}
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %v", dir, err)
	}
	ck, err := runreport.DecodeCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %s %v", dir, path, err)
	}
	return ck, nil
}

// prepareResume decodes the flags recorded in the checkpoint of --resume as
// a new run decodes its own, loads the data and checks the inputs against
// their recorded SHA-256. It creates no file.
func prepareResume(c *cli.Context) (*runPlan, error) {
	dir := c.String("resume")
	var refused []string
	for _, f := range runFlags() {
		if name := f.Names()[0]; c.IsSet(name) && !resumeFlags[name] {
			refused = append(refused, "--"+name)
		}
	}
	if len(refused) > 0 {
		return nil, &usageError{Flag: strings.TrimPrefix(refused[0], "--"),
			Msg: fmt.Sprintf("%s cannot be given with --resume: a resumed run takes its settings from %s", strings.Join(refused, ", "), filepath.Join(dir, runreport.CheckpointFile))}
	}
	limit, err := parseMaxMemory(c.String("max-memory"))
	if err != nil {
		return nil, err
	}
	ck, err := readCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	where := filepath.Join(dir, runreport.CheckpointFile)
	set := ck.Manifest.Settings
	rc, err := runFlagContext(set.Flags, "--output", set.Output)
	var p *runPlan
	if err == nil {
		p, err = readRun(rc)
	}
	if err != nil {
		return nil, fmt.Errorf("--resume %s: the settings recorded are invalid: %v", where, err)
	}
	p.reportDir, p.resumed, p.liveBefore = dir, ck.Engine.Rounds, ck.State.LiveBefore
	p.limit, p.settings.MaxBytes = limit, limit
	if p.layerwise != nil {
		p.layerwise.MaxBytes = limit
	}
	if c.IsSet("output") {
		if err := checkModelName("output", c.String("output")); err != nil {
			return nil, err
		}
		p.output = c.String("output")
	}
	net := ck.Engine.Net
	if net.Meta != nil {
		net.Meta = metaValue(net.Meta).(map[string]any)
	}
	// The inputs must be those the run started with; the model itself is
	// not read again and may be gone.
	var inputs []string
	for _, in := range ck.Manifest.Inputs {
		inputs = append(inputs, in.Path)
		f, err := runreport.HashFile(in.Role, in.Path)
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(in.Role, "model") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("--resume %s: %v", dir, err)
		}
		if f.SHA256 != in.SHA256 {
			return nil, fmt.Errorf("--resume %s: the %s %s has changed since the run started (SHA-256 %s, recorded %s)", dir, in.Role, in.Path, f.SHA256, in.SHA256)
		}
	}
	if err := checkRunOutputs(p.output, p.reportDir, c.Bool("overwrite"), set.Output, inputs); err != nil {
		return nil, err
	}
	p.data, p.dataGiven = set.Data, nil
	if err := p.resolve(net); err != nil {
		return nil, err
	}
	if ck.Engine.Stopped == "" {
		if err := checkMemory(p.method, p.layerwise != nil, net, p.splits.Train.X, p.splits.Train.Y, limit); err != nil {
			return nil, err
		}
	}
	p.net, p.engine, p.prior, p.layers2, p.manifest = net, ck.Engine, ck.State.HistoryGroups, ck.State.Layerwise, ck.Manifest
	return p, nil
}
