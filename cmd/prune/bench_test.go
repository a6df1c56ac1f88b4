package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secondorder/prune/benchmarks/repro"
)

func TestBenchList(t *testing.T) {
	code, stdout, stderr := runArgs("bench", "--list")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, name := range repro.Names() {
		if !strings.Contains(stdout, name+" ") {
			t.Errorf("--list lacks %s:\n%s", name, stdout)
		}
	}
	code, stdout, _ = runArgs("bench", "--list", "--json")
	var list []benchEntry
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil || len(list) != len(repro.Names()) {
		t.Errorf("--list --json: exit %d\n%s", code, stdout)
	}
}

func TestBenchErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "no benchmark given"},
		{[]string{"bench", "nosuch"}, `unknown benchmark "nosuch"`},
		{[]string{"bench", "xor", "monks"}, "unexpected argument"},
		{[]string{"bench", "--list", "xor"}, "--list takes no benchmark name"},
		{[]string{"bench", "--seeds", "0", "xor"}, "--seeds 0"},
	} {
		code, _, stderr := runArgs(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d\n%s", c.args, code, stderr)
		}
	}
}

func TestBenchArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"prune bench monks --quick", "prune bench --quick monks"},
		{"prune -q bench monks --quick --out r --seeds 2", "prune -q bench --quick --out r --seeds 2 monks"},
		{"prune bench --out monks xor --quick", "prune bench --out monks --quick xor"},
		{"prune bench --out=r xor", "prune bench --out=r xor"},
		{"prune bench --list", "prune bench --list"},
		{"prune train --data monks1", "prune train --data monks1"},
		{"prune bench -- xor --quick", "prune bench -- xor --quick"},
	} {
		if got := strings.Join(benchArgs(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%q → %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBenchRun runs no benchmark: the quick ones take from 15 s to a few
// minutes, and .ci/run runs each of them through this command. An
// interrupted run writes nothing.
func TestBenchRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runBench(ctx, "xor", &repro.Options{Quick: true, Out: dir}, false, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupted bench: %v", err)
	}
	t.Log("the quick benchmarks are run by .ci/run (prune bench NAME --quick)")
}
