package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

// claimRunOutputs checks that every output of a run can be created, by
// creating and removing a file next to it, takes the locks of the outputs,
// the model file and the report directory, so that a second run writing
// either fails at once, and checks again under the locks that the outputs
// may be written (another run may have written them since the first
// check). It returns the function that releases the locks.
func claimRunOutputs(p *runPlan, overwrite bool) (release func(), err error) {
	var locks []*atomicfile.Lock
	unlock := func() {
		for _, l := range locks {
			l.Unlock()
		}
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	for _, f := range modelFiles(p.output) {
		if err := atomicfile.CheckWritable(f, true); err != nil {
			return nil, fmt.Errorf("--output %s: %v", p.output, err)
		}
	}
	if !overwrite && p.resumed < 0 {
		for _, f := range runreport.ReportFiles {
			if err := checkOutputLink(filepath.Join(p.reportDir, f), false); err != nil {
				return nil, fmt.Errorf("--report %s: %v", p.reportDir, err)
			}
		}
	}
	// Every file of the report directory, checkpoint.json included (it is
	// written after every round, under the directory's lock taken below).
	probes := []string{p.reportDir} // created when missing: its parent must take it
	if _, err := os.Stat(p.reportDir); err == nil {
		probes = probes[:0]
		for _, f := range runreport.ReportFiles {
			probes = append(probes, filepath.Join(p.reportDir, f))
		}
	}
	for _, probe := range probes {
		if err := atomicfile.CheckWritable(probe, true); err != nil {
			return nil, fmt.Errorf("--report %s: %v", p.reportDir, err)
		}
	}
	for _, target := range []struct{ flag, path string }{{"output", p.output}, {"report", p.reportDir}} {
		l, err := atomicfile.TryLock(target.path)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %v", target.flag, target.path, err)
		}
		locks = append(locks, l)
	}
	own := ""
	if p.resumed >= 0 {
		own = p.manifest.Settings.Output
	}
	if err := checkRunOutputs(p.output, p.reportDir, overwrite, own, nil); err != nil {
		return nil, err
	}
	return unlock, nil
}

// saveModelSet adds the files of the model n at path to the set s, with
// errors worded as saveModel's.
func saveModelSet(s *atomicfile.Set, path string, n *nn.Network) error {
	if err := modelio.SaveSet(s, path, n); err != nil {
		return outputError(path, err)
	}
	return nil
}

// checkOutputLink returns an error when the output f is a symbolic link
// whose target does not exist and overwrite is not set: the write would
// replace the link, which os.Stat does not see.
func checkOutputLink(f string, overwrite bool) error {
	fi, err := os.Lstat(f)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	if _, err := os.Stat(f); err == nil || overwrite {
		return nil
	}
	target, _ := os.Readlink(f)
	return fmt.Errorf("%s is a symbolic link to %s, which does not exist (give --overwrite to replace the link)", f, target)
}

// joinFailure returns the error of writing the outputs, err, after the
// failure that ended the run, runErr, when there was one, so that the
// first cause (such as a full disk while writing a checkpoint) is not
// hidden by the later one.
func joinFailure(runErr, err error) error {
	if runErr == nil {
		return err
	}
	return fmt.Errorf("pruning failed: %v; then writing the outputs failed: %v", runErr, err)
}

// claimOutput is checkOutput for a command with one output file (and the
// spec file of an .npz model) that then checks that the output can be
// created, takes the output's lock, so that a second command writing it
// fails at once, and checks again under the lock. It returns the function
// that releases the lock.
func claimOutput(out string, overwrite bool, inputs ...string) (release func(), err error) {
	if err := checkOutput(out, overwrite, inputs...); err != nil {
		return nil, err
	}
	for _, f := range modelFiles(out) {
		if err := atomicfile.CheckWritable(f, true); err != nil {
			return nil, fmt.Errorf("--output %s: %v", out, err)
		}
	}
	l, err := atomicfile.TryLock(out)
	if err != nil {
		return nil, fmt.Errorf("--output %s: %v", out, err)
	}
	if err := checkOutput(out, overwrite, inputs...); err != nil {
		l.Unlock()
		return nil, err
	}
	return l.Unlock, nil
}
