package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

func TestConvertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pruned := prunedModelFile(t, 12)
	for _, in := range []string{monksModelFile(t), pruned} {
		npz := filepath.Join(dir, "m.npz")
		back := filepath.Join(dir, "back.json")
		if code, _, stderr := runArgs("convert", "-q", "--model", in, "-o", npz, "--overwrite"); code != 0 {
			t.Fatalf("json → npz: exit %d\n%s", code, stderr)
		}
		if _, err := os.Stat(modelio.SpecPath(npz)); err != nil {
			t.Errorf("no spec file: %v", err)
		}
		code, stdout, stderr := runArgs("convert", "--model", npz, "-o", back, "--overwrite")
		if code != 0 {
			t.Fatalf("npz → json: exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, "PyTorch state_dict (.npz) to prune-mlp/1") || !strings.Contains(stderr, "wrote "+back) {
			t.Errorf("summary %q, stderr %q", stdout, stderr)
		}
		if !bytes.Equal(mustRead(t, in), mustRead(t, back)) {
			t.Errorf("%s: json → npz → json changed the file", in)
		}
		// The archive is the same for the same network.
		again := filepath.Join(dir, "again.npz")
		if code, _, stderr := runArgs("convert", "-q", "--model", back, "-o", again, "--overwrite"); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !bytes.Equal(mustRead(t, npz), mustRead(t, again)) || !bytes.Equal(mustRead(t, modelio.SpecPath(npz)), mustRead(t, modelio.SpecPath(again))) {
			t.Errorf("%s: two conversions to .npz differ", in)
		}
	}

	// The pruned parameter stays pruned, and the values are bit-exact.
	npz := filepath.Join(dir, "m.npz")
	a, b := loadModel(t, pruned), mustLoad(t, npz, nil)
	if b.IsLive(12) || b.NumLive() != 57 {
		t.Errorf("mask lost: %d live", b.NumLive())
	}
	for q, x := range a.RawParams() {
		if b.RawParams()[q] != x {
			t.Fatalf("parameter %d: %v, want %v", q, b.RawParams()[q], x)
		}
	}
}

func mustLoad(t *testing.T, path string, spec *modelio.Spec) *nn.Network {
	t.Helper()
	n, err := modelio.Load(path, spec)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConvertErrors(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	npz := filepath.Join(dir, "m.npz")
	if code, _, stderr := runArgs("convert", "-q", "--model", model, "-o", npz); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if err := os.Remove(modelio.SpecPath(npz)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.json")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--model", npz, "-o", out}, 2, []string{"no activations", "give --act and --loss"}},
		{[]string{"--model", npz, "--act", "tanh,sigmoid", "-o", out}, 2, []string{"no loss", "give --act and --loss"}},
		{[]string{"--model", npz, "--act", "tanh,sigmoid", "--loss", "hinge", "-o", out}, 2, []string{`--loss "hinge"`}},
		{[]string{"--model", npz, "--act", "tanh,tanh,tanh", "--loss", "mse", "-o", out}, 1, []string{"3 activations"}},
		{[]string{"--model", model, "-o", filepath.Join(dir, "out.pkl")}, 2, []string{"--output", ".json", ".npz"}},
		{[]string{"--model", model, "-o", model, "--overwrite"}, 2, []string{"same file"}},
		{[]string{"--model", model, "-o", npz}, 1, []string{npz, "--overwrite"}},
		{[]string{"--model", filepath.Join(dir, "none.npz"), "--act", "tanh", "--loss", "mse", "-o", out}, 1, []string{"none.npz"}},
	} {
		code, _, stderr := runArgs(append([]string{"convert"}, c.args...)...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: message lacks %q:\n%s", c.args, w, stderr)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed conversion wrote %s", out)
	}
	// With --act and --loss the archive reads, and eval, inspect and
	// hessian take them too.
	code, _, stderr := runArgs("convert", "-q", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"eval", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse", "--data", "monks1"},
		{"inspect", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse"},
		{"hessian", "--model", npz, "--act", "tanh,sigmoid", "--loss", "mse", "--data", "monks1", "--kind", "diag", "-o", filepath.Join(dir, "h.npy"), "--overwrite"},
	} {
		if code, _, stderr := runArgs(args...); code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
		without := append(append([]string{}, args[:3]...), args[7:]...)
		if args[0] == "inspect" {
			// inspect describes a state_dict without them, and says so.
			if code, out, stderr := runArgs(without...); code != 0 || !strings.Contains(out, "give --act and --loss") || !strings.Contains(out, "loss    ?") {
				t.Errorf("%v: exit %d\n%s%s", without, code, out, stderr)
			}
			continue
		}
		if code, _, stderr := runArgs(without...); code != 2 || !strings.Contains(stderr, "give --act and --loss") {
			t.Errorf("%v: exit %d\n%s", without, code, stderr)
		}
	}
}
