package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/secondorder/prune/internal/runreport"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

// monksArgs are the arguments of the example training run.
var monksArgs = []string{"--data", "monks1", "--arch", "17-3-1", "--act", "tanh,sigmoid", "--loss", "mse", "--seed", "1"}

var (
	monksOnce  sync.Once
	monksModel []byte
	monksErr   error
)

// monksModelFile trains the example model once and writes a copy of it to
// a new file in a temporary directory of t.
func monksModelFile(t testing.TB) string {
	t.Helper()
	monksOnce.Do(func() {
		dir, err := os.MkdirTemp("", "prune-test-")
		if err != nil {
			monksErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "m.json")
		var stdout, stderr bytes.Buffer
		if code := run(append(append([]string{"prune", "train"}, monksArgs...), "-o", path), &stdout, &stderr); code != 0 {
			monksErr = errors.New("train failed: " + stderr.String())
			return
		}
		monksModel, monksErr = os.ReadFile(path)
	})
	if monksErr != nil {
		t.Fatal(monksErr)
	}
	path := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(path, monksModel, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runArgs runs the program with args after the program name and returns its
// exit status, standard output and standard error.
func runArgs(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"prune"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestTrainEvalMonks(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.json")
	code, out, errOut := runArgs(append(append([]string{"train"}, monksArgs...), "-o", model)...)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "test:") || !strings.Contains(errOut, "wrote "+model) {
		t.Errorf("train output:\n%s\nstderr:\n%s", out, errOut)
	}

	code, out, errOut = runArgs("eval", "--model", model, "--data", "monks1", "--split", "test", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("eval --json output does not parse: %v\n%s", err, out)
	}
	if res["accuracy"] != 1.0 || res["n"] != 432.0 {
		t.Errorf("eval: accuracy %v, n %v; want 1 and 432\n%s", res["accuracy"], res["n"], out)
	}
	for _, k := range []string{"loss", "mean_loss", "split", "data"} {
		if _, ok := res[k]; !ok {
			t.Errorf("eval --json: no %q in %s", k, out)
		}
	}
	if len(res) != 6 {
		t.Errorf("eval --json: want the keys loss, mean_loss, accuracy, n, split and data, got %s", out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&res); err != nil || dec.More() {
		t.Errorf("eval --json: not exactly one JSON value: %s", out)
	}

	// The model records the data set, so --data may be left out, and the
	// training split drawn with the recorded seed is the one trained on.
	n, err := modelio.Load(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Metrics struct {
			Train nn.Metrics `json:"train"`
		} `json:"metrics"`
		Data dataOptions `json:"data"`
	}
	if !modelio.DecodeMeta(map[string]any{"m": n.Meta}, "m", &meta) {
		t.Fatalf("meta does not decode: %v", n.Meta)
	}
	if meta.Data.Name != "monks1" || meta.Data.Seed != 1 {
		t.Errorf("meta data = %+v", meta.Data)
	}
	code, evalOut, errOut := runArgs("eval", "--model", model, "--split", "train", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, errOut)
	}
	var m nn.Metrics
	if err := json.Unmarshal([]byte(evalOut), &m); err != nil {
		t.Fatal(err)
	}
	if m != meta.Metrics.Train {
		t.Errorf("eval on the recorded training split = %+v, meta has %+v", m, meta.Metrics.Train)
	}
	for _, k := range []string{"arch", "activations", "loss", "seed", "trainer", "epochs_run", "stopped", "version", "time"} {
		if _, ok := n.Meta[k]; !ok {
			t.Errorf("meta has no %q", k)
		}
	}

	// Without --json, one line.
	code, out, _ = runArgs("eval", "--model", model, "--data", "monks1")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "100.00% (432/432)") {
		t.Errorf("eval: exit %d, output %q", code, out)
	}
}

func TestTrainJSON(t *testing.T) {
	model := filepath.Join(t.TempDir(), "m.json")
	code, out, errOut := runArgs("--quiet", "train", "--data", "xor", "--arch", "2-4-1", "--act", "tanh,sigmoid", "--loss", "bce", "--epochs", "50", "--json", "-o", model)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("--quiet: stderr %q", errOut)
	}
	var sum runreport.TrainSummary
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sum); err != nil {
		t.Fatalf("train --json output does not parse: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("train --json printed more than one value:\n%s", out)
	}
	if sum.Epochs != 50 || sum.Arch != "2-4-1" || sum.Loss != "bce" || sum.Model != model || sum.Train.N != 4 || sum.Test == nil {
		t.Errorf("summary = %+v", sum)
	}
}

func TestTrainDefaults(t *testing.T) {
	// The loss defaults to the data set's suggestion and the activations to
	// tanh with an output that fits the loss.
	model := filepath.Join(t.TempDir(), "m.json")
	code, _, errOut := runArgs("train", "--data", "spirals", "--arch", "2-5-1", "--epochs", "2", "-o", model, "-q")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	n, err := modelio.Load(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Loss() != nn.BCE || n.Layer(0).Act != nn.Tanh || n.Layer(1).Act != nn.Sigmoid {
		t.Errorf("got loss %v, activations %v, %v", n.Loss(), n.Layer(0).Act, n.Layer(1).Act)
	}
}

func TestInspect(t *testing.T) {
	model := monksModelFile(t)
	code, out, errOut := runArgs("inspect", "--model", model, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var info modelInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("inspect --json output does not parse: %v\n%s", err, out)
	}
	want := []modelio.LayerInfo{
		{In: 17, Out: 3, Activation: "tanh", Weights: 51, Biases: 3, LiveWeights: 51, LiveBiases: 3},
		{In: 3, Out: 1, Activation: "sigmoid", Weights: 3, Biases: 1, LiveWeights: 3, LiveBiases: 1},
	}
	if info.Format != modelio.Format || info.Arch != "17-3-1" || info.Loss != "mse" || info.Params != 58 || info.Live != 58 || info.Pruned != 0 || info.Sparsity != 0 {
		t.Errorf("inspect = %+v", info)
	}
	if len(info.Layers) != 2 || info.Layers[0] != want[0] || info.Layers[1] != want[1] {
		t.Errorf("layers = %+v, want %+v", info.Layers, want)
	}
	if info.Meta["arch"] != "17-3-1" {
		t.Errorf("meta = %v", info.Meta)
	}

	// A pruned model.
	n, err := modelio.Load(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Prune(n.WeightIndex(0, 1, 4))
	n.Prune(n.WeightIndex(1, 0, 2))
	n.Prune(n.BiasIndex(1, 0))
	if err := modelio.Save(model, n); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runArgs("inspect", "--model", model)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, s := range []string{"parameters  58", "live        55", "pruned      3", "sparsity    5.17%", "meta:"} {
		if !strings.Contains(out, s) {
			t.Errorf("inspect output has no %q:\n%s", s, out)
		}
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		rows[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, s := range []string{"0 - 17 3 tanh 51 3 50 3", "1 - 3 1 sigmoid 3 1 2 0"} {
		if !rows[s] {
			t.Errorf("inspect output has no layer row %q:\n%s", s, out)
		}
	}
}

func TestDatasets(t *testing.T) {
	code, out, _ := runArgs("datasets", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var list []datasetInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("datasets --json output does not parse: %v\n%s", err, out)
	}
	found := false
	for _, d := range list {
		if d.Name == "monks1" {
			found = d.Inputs == 17 && d.Outputs == 1 && d.Loss == "mse" && d.Description != ""
		}
	}
	if !found {
		t.Errorf("no correct monks1 entry in %+v", list)
	}
	code, out, _ = runArgs("datasets")
	if code != 0 || !strings.Contains(out, "monks1") || !strings.Contains(out, "spirals") {
		t.Errorf("datasets: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	model := monksModelFile(t)
	out := filepath.Join(t.TempDir(), "out.json")
	train := func(extra ...string) []string {
		return append(append([]string{"train", "-o", out}, monksArgs...), extra...)
	}
	tests := []struct {
		args []string
		flag string // named in the message
		want string // in the message
	}{
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{}, "", "no command given"},
		{[]string{"train", "--bogus"}, "bogus", "unknown flag --bogus"},
		{[]string{"eval", "--model"}, "model", "--model needs a value"},
		{train("--arch", "17-x-1"), "arch", `--arch "17-x-1": size "x" is not a positive integer`},
		{train("--epochs", "ten"), "epochs", `--epochs "ten": is not an integer`},
		{train("--epochs", "0"), "epochs", "--epochs 0: must be positive"},
		{train("--lr", "fast"), "lr", `--lr "fast": is not a number`},
		{train("--seed", "-1"), "seed", `--seed "-1"`},
		{train("--optimizer", "newton"), "optimizer", `--optimizer "newton": unknown optimizer`},
		{train("--schedule", "wavy"), "schedule", `--schedule "wavy"`},
		{train("--act", "tanh,cosh"), "act", `--act "tanh,cosh": unknown activation "cosh"`},
		{train("--act", "tanh,tanh,tanh"), "act", `--act "tanh,tanh,tanh": want 1 or 2 names, got 3`},
		{train("--act", "tanh,softmax"), "act", "softmax"},
		{train("--loss", "hinge"), "loss", `--loss "hinge"`},
		{train("--momentum", "1.5"), "momentum", "--momentum 1.5 is not in [0, 1)"},
		{train("--valid-fraction", "1"), "valid-fraction", "--valid-fraction 1: not in [0, 1)"},
		{train("--patience", "5"), "patience", "--patience 5 needs validation data"},
		{train("--arch", "2-3-1"), "arch", "--arch 2-3-1 has 2 inputs, but --data monks1 has 17 input columns"},
		{train("--arch", "17-3-2"), "arch", "--arch 17-3-2 has 2 outputs, but --data monks1 needs 1"},
		{train("--data", "monks7"), "data", `--data "monks7"`},
		{train("--data", "nosuchset"), "data", `--data "nosuchset": unknown data set`},
		{train("extra"), "", `unexpected argument "extra"`},
		{[]string{"train", "--data", "monks1", "-o", out}, "arch", "--arch is required"},
		{[]string{"train", "--arch", "17-3-1", "-o", out}, "data", "--data is required"},
		{[]string{"train", "--data", "monks1", "--arch", "17-3-1"}, "output", "--output is required"},
		{[]string{"train", "--data", "monks1", "--arch", "17-3-1", "-o", out, "--quiet=maybe"}, "quiet", `--quiet "maybe": is not a boolean`},
		{[]string{"eval", "--data", "monks1"}, "model", "--model is required"},
		{[]string{"eval", "--model", model, "--split", "dev"}, "split", `--split "dev"`},
		{[]string{"inspect"}, "model", "--model is required"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runArgs(tt.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", tt.args, code, stderr)
			continue
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: stderr %q does not contain %q", tt.args, stderr, tt.want)
		}
		if tt.flag != "" && !strings.Contains(stderr, "--"+tt.flag) {
			t.Errorf("%q: stderr %q does not name --%s", tt.args, stderr, tt.flag)
		}
		if strings.Contains(stdout, "Incorrect Usage") {
			t.Errorf("%q: stdout %q", tt.args, stdout)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%q: wrote %s", tt.args, out)
		}
	}
}

func TestUsageErrorType(t *testing.T) {
	c, err := flagContext(trainCommand().Flags, nil, "--data", "monks1", "--arch", "17-x-1", "-o", filepath.Join(t.TempDir(), "m.json"))
	if err != nil {
		t.Fatal(err)
	}
	err = runTrain(context.Background(), c, &bytes.Buffer{}, &bytes.Buffer{})
	var u *usageError
	if !errors.As(err, &u) || u.Flag != "arch" {
		t.Fatalf("err = %v, want a usage error for --arch", err)
	}
	if got, want := err.Error(), `--arch "17-x-1": size "x" is not a positive integer`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if exitCode(err) != 2 || exitCode(errors.New("x")) != 1 {
		t.Errorf("exit codes %d, %d", exitCode(err), exitCode(errors.New("x")))
	}
}

func TestFailures(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"format": "prune-mlp/1", "loss": "mse", "layers": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "d.csv")
	if err := os.WriteFile(csv, []byte("0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCSV := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(badCSV, []byte("0,0,0\n0,x,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.json")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		args []string
		code int
		want []string // in the message
	}{
		{[]string{"eval", "--model", missing, "--data", "monks1"}, 1, []string{missing}},
		{[]string{"inspect", "--model", missing}, 1, []string{missing}},
		{[]string{"inspect", "--model", bad}, 1, []string{bad, "layers"}},
		{[]string{"eval", "--model", model, "--data", "xor"}, 1, []string{"--data xor: data has 2 input columns, network 17-3-1 has 17 inputs"}},
		{[]string{"eval", "--model", model, "--data", csv, "--split", "train"}, 1, []string{"--data " + csv + ": data has 2 input columns"}},
		{[]string{"eval", "--model", model, "--data", csv}, 1, []string{"--split test: --data " + csv + " has no test split"}},
		{[]string{"eval", "--model", model, "--split", "valid"}, 1, []string{"--split valid", "--valid-fraction"}},
		{[]string{"train", "--data", filepath.Join(dir, "none.csv"), "--arch", "2-2-1", "-o", filepath.Join(dir, "o.json")}, 1, []string{"none.csv"}},
		{[]string{"train", "--data", badCSV, "--arch", "2-2-1", "-o", filepath.Join(dir, "o.json")}, 1, []string{"--data " + badCSV + ":2"}},
		{[]string{"train", "--data", csv, "--arch", "2-2-1", "-o", csv}, 2, []string{"--output", csv}},
		{[]string{"train", "--data", csv, "--arch", "2-2-1", "-o", csv, "--overwrite"}, 2, []string{"--output", csv}},
		{[]string{"train", "--data", csv, "--arch", "2-2-1", "-o", existing}, 1, []string{existing, "--overwrite"}},
		{[]string{"train", "--data", csv, "--arch", "2-2-1", "-o", filepath.Join(dir, "nodir", "m.json")}, 1, []string{"nodir"}},
		{[]string{"train", "--data", "mnist", "--mnist-dir", filepath.Join(dir, "nomnist"), "--arch", "784-10", "-o", filepath.Join(dir, "o.json")}, 1, []string{"--data mnist", "nomnist"}},
	}
	for _, tt := range tests {
		code, _, stderr := runArgs(tt.args...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d\n%s", tt.args, code, tt.code, stderr)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q does not contain %q", tt.args, stderr, w)
			}
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Errorf("existing output overwritten without --overwrite")
	}
	if b, _ := os.ReadFile(csv); !strings.HasPrefix(string(b), "0,0,0") {
		t.Errorf("input overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "o.json")); err == nil {
		t.Errorf("failed train wrote o.json")
	}

	// --overwrite replaces an existing output that is not an input.
	if code, _, stderr := runArgs("train", "-q", "--data", csv, "--arch", "2-2-1", "--epochs", "3", "-o", existing, "--overwrite"); code != 0 {
		t.Fatalf("train --overwrite: exit %d\n%s", code, stderr)
	}
	if _, err := modelio.Load(existing, nil); err != nil {
		t.Errorf("train --overwrite: %v", err)
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	model := filepath.Join(t.TempDir(), "m.json")
	var stdout, stderr bytes.Buffer
	code := runContext(ctx, append(append([]string{"prune", "train"}, monksArgs...), "-o", model), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "no model written") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(model); err == nil {
		t.Errorf("interrupted train wrote %s", model)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs("--version")
	if code != 0 || !strings.Contains(out, toolkitVersion()) {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"train", "--help"}, {"help", "eval"}} {
		code, out, _ := runArgs(args...)
		if code != 0 || !strings.Contains(out, "USAGE") {
			t.Errorf("%q: exit %d, output %q", args, code, out)
		}
	}
}

func TestWithRecordedFlags(t *testing.T) {
	rec := dataOptions{Name: "sine", Options: datasets.Options{Seed: 3, ValidFraction: 0.25, N: 50}}
	meta := map[string]any{}
	rec.Record(meta)
	flags := dataOptions{Name: "sine", Options: datasets.Options{Seed: 7, N: 9, TestN: 4}}
	got := withRecorded(flags, meta, map[string]bool{"seed": true, "test-n": true})
	want := rec
	want.Seed, want.TestN = 7, 4
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withRecorded = %+v, want %+v", got, want)
	}
}
