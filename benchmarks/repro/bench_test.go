package repro

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// TestBench runs a benchmark for real when REPRO_BENCH names it, with the
// options REPRO_OUT (default results), REPRO_QUICK=1, REPRO_SEEDS,
// REPRO_SEED, REPRO_MONKS_DIR and REPRO_MNIST_DIR, paths relative to the
// module root, logging to standard error; it is skipped otherwise. For
// example, from the module root:
//
//	REPRO_BENCH=monks REPRO_MONKS_DIR=../shared/data/monks go test ./benchmarks/repro -run TestBench -timeout 0 -v
func TestBench(t *testing.T) {
	name := os.Getenv("REPRO_BENCH")
	if name == "" {
		t.Skip("REPRO_BENCH not set")
	}
	t.Chdir("../..")
	o := &Options{Out: "results", Log: os.Stderr, MonksDir: os.Getenv("REPRO_MONKS_DIR"), MNISTDir: os.Getenv("REPRO_MNIST_DIR")}
	if v := os.Getenv("REPRO_OUT"); v != "" {
		o.Out = v
	}
	o.Quick = os.Getenv("REPRO_QUICK") == "1"
	if v := os.Getenv("REPRO_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		o.Seeds = n
	}
	if v := os.Getenv("REPRO_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		o.Seed = s
	}
	rep, err := Run(context.Background(), name, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s, files %v\n%s", rep.Name, rep.Elapsed, rep.Files, rep.Summary)
}
