package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
)

// copyTestdata copies the file name of modelio's testdata to dir.
func copyTestdata(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "modelio", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPyTorchCommands checks the commands on state_dicts that torch.save
// and the safetensors layout wrote: inspect without --act and --loss, the
// logits convention, usage errors (exit code 2) for activations that do not
// fit the loss and for bad --torch-masks, --layers and --test values, and
// convert to each format in both mask forms.
func TestPyTorchCommands(t *testing.T) {
	dir := t.TempDir()
	pt := copyTestdata(t, dir, "fc.pt")
	st := copyTestdata(t, dir, "deep.safetensors")

	code, out, stderr := runArgs("inspect", "--model", pt, "--json")
	var info modelInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("inspect %s: exit %d\n%s%s", pt, code, out, stderr)
	}
	if info.Arch != "4-3-2" || info.Loss != "?" || info.DType != "float32" || len(info.Layers) != 2 || info.Layers[0].Module != "fc1" || info.Layers[1].Activation != "?" || strings.Join(info.Unknown, ",") != "activations,loss" {
		t.Errorf("inspect %s: %+v", pt, info)
	}
	code, out, _ = runArgs("inspect", "--model", st)
	if code != 0 || !strings.Contains(out, "PyTorch state_dict (.safetensors)") || !strings.Contains(out, "12") {
		t.Errorf("inspect %s: exit %d\n%s", st, code, out)
	}
	code, out, _ = runArgs("inspect", "--model", pt, "--act", "relu,linear", "--loss", "ce")
	if code != 0 || !strings.Contains(out, "loss    ce") || strings.Contains(out, "?") {
		t.Errorf("inspect with the logits convention: exit %d\n%s", code, out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "--model", pt, "--act", "relu,tanh", "--loss", "ce"}, "loss ce needs a softmax output layer or a linear one (logits), got tanh"},
		{[]string{"eval", "--model", pt, "--act", "relu,softmax", "--loss", "mse", "--data", "xor"}, "a softmax output layer needs loss ce"},
		{[]string{"convert", "--model", pt, "--act", "relu,linear", "--loss", "ce", "--torch-masks", "zero", "-o", filepath.Join(dir, "o.pt")}, `--torch-masks "zero": want prune or plain`},
		{[]string{"convert", "--model", pt, "--act", "relu,linear", "--loss", "ce", "--layers", "fc1,fc9", "-o", filepath.Join(dir, "o.pt")}, `--layers no module "fc9"`},
		{[]string{"eval", "--model", pt, "--act", "relu,linear", "--loss", "ce", "--data", "xor", "--test", "t.csv"}, "--test \"t.csv\": applies to a CSV data set"},
		{[]string{"eval", "--model", pt, "--data", "xor"}, "give --act and --loss"},
	} {
		if code, _, stderr := runArgs(c.args...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and …%s…\n%s", c.args, code, c.want, stderr)
		}
	}

	// --layers reaches the model of eval, hessian, saliency and laplace.
	data := filepath.Join(dir, "four.csv")
	if err := os.WriteFile(data, []byte("0,1,0,1,1\n1,0,0,1,0\n1,1,0,0,1\n0,0,1,1,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"eval", "--split", "train"}, {"hessian", "--kind", "diag", "-o", filepath.Join(dir, "h.npy")}, {"saliency", "--method", "obd", "-o", filepath.Join(dir, "s.npy")}, {"laplace", "--split", "train", "--curvature", "diag"}} {
		args := append(cmd, "--model", pt, "--act", "relu,linear", "--loss", "ce", "--data", data, "--classes", "--layers")
		if code, _, stderr := runArgs(append(args, "fc1,fc9")...); code != 2 || !strings.Contains(stderr, `--layers no module "fc9"`) {
			t.Errorf("%s --layers fc1,fc9: exit %d\n%s", cmd[0], code, stderr)
		}
		if code, _, stderr := runArgs(append(args, "fc1,fc2")...); code != 0 {
			t.Errorf("%s --layers fc1,fc2: exit %d\n%s", cmd[0], code, stderr)
		}
	}

	// Convert to every format, in both forms; each reads back with its spec
	// file alone.
	for _, ext := range []string{".pt", ".safetensors", ".npz", ".json"} {
		for _, masks := range []string{"prune", "plain"} {
			out := filepath.Join(dir, "c-"+masks+ext[1:]+ext)
			if code, _, stderr := runArgs("convert", "--quiet", "--model", pt, "--act", "relu,linear", "--loss", "ce", "--torch-masks", masks, "-o", out); code != 0 {
				t.Fatalf("convert to %s: exit %d\n%s", out, code, stderr)
			}
			code, js, stderr := runArgs("inspect", "--model", out, "--json")
			var got modelInfo
			if code != 0 || json.Unmarshal([]byte(js), &got) != nil || got.Loss != "ce" || got.Arch != "4-3-2" || got.Layers[1].Activation != "softmax" {
				t.Errorf("inspect %s: exit %d %+v\n%s", out, code, got, stderr)
			}
		}
	}
}

// TestOwnData checks --data FILE.npz with a test split, and --test for a
// CSV file, through train and eval: eval draws the same splits from the data
// options recorded in the model.
func TestOwnData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "mine.npz")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	w := npz.NewWriter(f)
	X := [][]float32{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0.1, 0.9}, {0.9, 0.1}}
	y := []int64{0, 1, 1, 0, 1, 1}
	for _, e := range []struct {
		key string
		v   any
	}{{"X.npy", X}, {"y.npy", y}, {"X_test.npy", X[:4]}, {"y_test.npy", y[:4]}} {
		if err := w.Write(e.key, e.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	model := filepath.Join(dir, "m.pt")
	if code, _, stderr := runArgs("train", "--quiet", "--data", data, "--arch", "2-4-2", "--act", "tanh,linear", "--loss", "ce", "--epochs", "20", "-o", model); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, stderr)
	}
	code, out, stderr := runArgs("eval", "--model", model, "--split", "test", "--json")
	var r evalResult
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.N != 4 || r.Split != "test" {
		t.Errorf("eval: exit %d %+v\n%s", code, r, stderr)
	}

	train, test := filepath.Join(dir, "a.csv"), filepath.Join(dir, "a_test.csv")
	os.WriteFile(train, []byte("x1,x2,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), 0o644)
	os.WriteFile(test, []byte("x1,x2,y\n0,1,1\n1,1,0\n0,0,0\n"), 0o644)
	model = filepath.Join(dir, "c.json")
	if code, _, stderr := runArgs("train", "--quiet", "--data", train, "--test", test, "--classes", "--arch", "2-4-2", "--act", "tanh,softmax", "--loss", "ce", "--epochs", "20", "-o", model); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, stderr)
	}
	code, out, stderr = runArgs("eval", "--model", model, "--split", "test", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.N != 3 {
		t.Errorf("eval of the CSV test file: exit %d %+v\n%s", code, r, stderr)
	}
}
