package repro

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/prune/datasets"
)

// monksDir is the directory of the original UCI MONK's files shipped
// with the tests of package datasets.
const monksDir = "../../datasets/testdata/monks"

// expectation describes the files a tiny run of a benchmark writes.
type expectation struct {
	name      string
	mdColumns []string // the header cells of a table of the Markdown file
	csvHeader []string
	csvRows   func(t *testing.T, rows [][]string) int // the expected number of data rows
	pngs      []string                                // suffixes of the charts
	volatile  bool                                    // the numbers are timings
}

func fixed(n int) func(*testing.T, [][]string) int {
	return func(*testing.T, [][]string) int { return n }
}

func haveDir(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

func expectations(t *testing.T) []expectation {
	if !haveDir(monksDir) {
		t.Fatalf("the MONK's files are missing from %s", monksDir)
	}
	// The generated and the UCI splits.
	const splits = 2
	return []expectation{
		{
			name:      "monks",
			mdColumns: []string{"problem", "method", "retrain", "solved", "params left", "fewest", "train acc %", "test acc %", "best run", "stopped"},
			csvHeader: []string{"split", "problem", "seed", "decay", "solved", "method", "retrain", "weights_before", "weights_left", "train_acc", "test_acc", "stopped"},
			// splits × 2 problems × 2 seeds × (trained + 4 methods × 2)
			csvRows: fixed(splits * 2 * 2 * 9),
			pngs:    []string{"-generated.png"},
		},
		{
			name:      "xor",
			mdColumns: []string{"method", "first removal keeps XOR", "some removal of this kind keeps XOR", "first removal + retraining fits XOR", "… where some removal + retraining does", "first 2 keep", "first 3 keep", "removals before XOR breaks"},
			csvHeader: []string{"seed", "fits", "method", "kept_removals", "first_removed", "first_keeps", "some_removal_keeps", "first_retrained_fits", "some_retrained_fits"},
			// One row per seed that does not fit, one per method for
			// every seed that does.
			csvRows: func(t *testing.T, rows [][]string) int {
				seeds := map[string]bool{}
				fitted := map[string]bool{}
				for _, r := range rows {
					seeds[r[0]] = true
					if r[1] == "true" {
						fitted[r[0]] = true
					}
				}
				if len(seeds) != 6 {
					t.Errorf("xor: %d seeds in the CSV, want 6", len(seeds))
				}
				if len(fitted) == 0 {
					t.Errorf("xor: no seed fits")
				}
				return len(seeds) - len(fitted) + len(fitted)*len(xorMethods)
			},
			pngs: []string{"-saliency.png", "-surface.png"},
		},
		{
			name:      "curves",
			mdColumns: []string{"method", "removed before E/N doubles", "E/N, 0 removed", "25 %", "50 %", "75 %", "90 %", "first removal: predicted / real ΔE", "Σ first quarter: predicted / real", "issues"},
			csvHeader: []string{"dataset", "method", "removed", "live", "train_loss", "train_mean_loss", "predicted_dE", "real_dE"},
			// Per method: the start and ⌈0.9 W⌉ removals on MONK-1
			// 17-3-1 (W = 58), sine 1-4-1 (13) and spirals 2-4-4-1 (37).
			csvRows: fixed(len(curveMethods) * ((1 + 53) + (1 + 12) + (1 + 34))),
			pngs:    []string{"-monks1.png", "-sine.png", "-spirals.png", "-dE.png"},
		},
		{
			name:      "mnist",
			mdColumns: []string{"sparsity", "kept %", "method", "one-shot", "retrained", "iterative"},
			csvHeader: []string{"sparsity", "method", "variant", "kept_weights", "kept_fraction", "fc1_kept", "fc2_kept", "fc3_kept", "test_error", "test_mean_loss"},
			// The dense network, then 2 sparsities × 3 methods × 3
			// variants.
			csvRows: fixed(1 + 2*3*3),
			pngs:    []string{".png"},
		},
		{
			name:      "mnist-gradual",
			mdColumns: []string{"method", "seed 1", "best", "mean ± sd", "dense (mean)", "time per run (s)"},
			csvHeader: []string{"seed", "method", "dense_test_error", "final_test_error", "sparsity", "seconds", "prune_seconds", "fc1_kept", "fc2_kept", "fc3_kept"},
			// One seed × 3 methods.
			csvRows:  fixed(3),
			pngs:     []string{".png"},
			volatile: true,
		},
		{
			name:      "evidence",
			mdColumns: []string{"hidden units", "parameters", "ln evidence", "α", "β", "γ", "train E/N", "test mean loss", "restarts"},
			csvHeader: []string{"dataset", "method", "hidden", "live", "restart", "log_evidence", "alpha", "beta", "gamma", "train_mean_loss", "test_error", "reestimation_steps", "stopped"},
			// Tiny: 2 sizes × 1 restart per problem, and an OBS path.
			csvRows: func(t *testing.T, rows [][]string) int {
				obs := 0
				for _, r := range rows {
					if r[1] == "obs-path" {
						obs++
					}
				}
				if obs < 2 {
					t.Errorf("evidence: %d points on the OBS paths, want at least 2", obs)
				}
				return 4 + obs
			},
			pngs: []string{"-sine.png", "-monks3.png"},
		},
		{
			name:      "mlpnet",
			mdColumns: []string{"method", "50 %", "90 %"},
			csvHeader: []string{"sparsity", "method", "kept_weights", "test_accuracy", "train_dE_real", "dE_predicted", "seconds", "peak_heap_bytes", "planned_bytes", "damping"},
			// The dense network, then 2 sparsities × 8 methods.
			csvRows:  fixed(1 + 2*8),
			pngs:     []string{".png"},
			volatile: true,
		},
		{
			name:      "speed",
			mdColumns: []string{"computation", "W = 25 (4-4-1, k = 3)", "× gradient", "W = 61 (8-6-1, k = 3)", "× gradient"},
			csvHeader: []string{"op", "arch", "W", "seconds", "ratio_to_gradient", "runs"},
			csvRows:   fixed(2*len(speedOps) + 4),
			pngs:      []string{".png"},
			volatile:  true,
		},
	}
}

// tinyRun runs a benchmark in tiny mode into a new directory with the
// given GOMAXPROCS.
func tinyRun(t *testing.T, name string, procs int) (string, *Report) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	dir := t.TempDir()
	o := &Options{Out: dir, tiny: true, MonksDir: monksDir}
	rep, err := Run(context.Background(), name, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, rep
}

// results returns the Markdown without its environment section.
func results(t *testing.T, md []byte) []byte {
	t.Helper()
	i := bytes.Index(md, []byte("\n"+EnvironmentHeading+"\n"))
	if i < 0 {
		t.Fatalf("no %q section", EnvironmentHeading)
	}
	return md[:i]
}

func TestBenchmarksTiny(t *testing.T) {
	for _, e := range expectations(t) {
		t.Run(e.name, func(t *testing.T) {
			if e.name == "mnist" || e.name == "mlpnet" || e.name == "mnist-gradual" {
				if _, err := datasets.LoadMNIST("", 1, 1); err != nil {
					t.Skipf("MNIST not available: %v", err)
				}
			}
			dir, rep := tinyRun(t, e.name, 2)
			checkFiles(t, e, dir, rep)
			if e.volatile {
				return
			}
			// The same options give the same numbers on one CPU.
			dir1, _ := tinyRun(t, e.name, 1)
			for _, suffix := range []string{".md", ".csv"} {
				a, err := os.ReadFile(filepath.Join(dir, e.name+suffix))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(dir1, e.name+suffix))
				if err != nil {
					t.Fatal(err)
				}
				if suffix == ".md" {
					a, b = results(t, a), results(t, b)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s%s differs between runs with GOMAXPROCS 2 and 1:\n%s", e.name, suffix, firstDiff(a, b))
				}
			}
		})
	}
}

// checkFiles checks the files of a tiny run.
func checkFiles(t *testing.T, e expectation, dir string, rep *Report) {
	t.Helper()
	want := []string{e.name + ".md", e.name + ".csv"}
	for _, p := range e.pngs {
		want = append(want, e.name+p)
	}
	got := map[string]bool{}
	for _, f := range rep.Files {
		if filepath.Dir(f) != dir {
			t.Errorf("file %s not in %s", f, dir)
		}
		got[filepath.Base(f)] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("%s not written; wrote %v", w, rep.Files)
		}
	}
	if rep.Summary == "" {
		t.Error("empty summary")
	}

	md, err := os.ReadFile(filepath.Join(dir, e.name+".md"))
	if err != nil {
		t.Fatal(err)
	}
	header := "| " + strings.Join(e.mdColumns, " | ") + " |\n"
	i := bytes.Index(md, []byte(header))
	if i < 0 {
		t.Fatalf("%s.md has no table with the columns %q", e.name, header)
	}
	lines := strings.Split(string(md[i:]), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "|--") && !strings.HasPrefix(lines[1], "|-") {
		t.Errorf("%s.md: no separator row under the header", e.name)
	}
	rows := 0
	for _, l := range lines[2:] {
		if !strings.HasPrefix(l, "|") {
			break
		}
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") - 1; n != len(e.mdColumns) {
			t.Errorf("%s.md: row %q has %d cells, want %d", e.name, l, n, len(e.mdColumns))
		}
		rows++
	}
	if rows == 0 {
		t.Errorf("%s.md: the table has no rows", e.name)
	}
	if !bytes.Contains(md, []byte("\n"+EnvironmentHeading+"\n")) {
		t.Errorf("%s.md has no environment section", e.name)
	}
	for _, s := range []string{"BLAS: ", "GOMAXPROCS: ", "CPU: ", "Go: "} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("%s.md does not give the %s", e.name, strings.TrimSuffix(s, ": "))
		}
	}

	f, err := os.Open(filepath.Join(dir, e.name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s.csv: %v", e.name, err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(e.csvHeader, ",") {
		t.Fatalf("%s.csv header %v, want %v", e.name, recs[0], e.csvHeader)
	}
	if n := e.csvRows(t, recs[1:]); len(recs)-1 != n {
		t.Errorf("%s.csv has %d rows, want %d", e.name, len(recs)-1, n)
	}
	for _, r := range recs[1:] {
		for k, h := range e.csvHeader {
			if isNumericColumn(h) && r[k] != "" {
				if _, err := strconv.ParseFloat(r[k], 64); err != nil {
					t.Errorf("%s.csv column %s: %q is not a number", e.name, h, r[k])
				}
			}
		}
	}

	for _, p := range e.pngs {
		f, err := os.Open(filepath.Join(dir, e.name+p))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s%s: %v", e.name, p, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
			t.Errorf("%s%s is %v, too small", e.name, p, b)
		}
	}
}

// isNumericColumn reports whether a CSV column holds numbers.
func isNumericColumn(h string) bool {
	switch h {
	case "split", "solved", "method", "retrain", "variant", "stopped", "fits", "first_removed", "first_keeps", "some_removal_keeps", "first_retrained_fits", "some_retrained_fits", "dataset", "op", "arch":
		return false
	}
	return true
}

// firstDiff describes the first differing line of a and b.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			return "line " + strconv.Itoa(i+1) + ":\n" + la[i] + "\n" + lb[i]
		}
	}
	return "lengths " + strconv.Itoa(len(la)) + " and " + strconv.Itoa(len(lb))
}

func TestRunErrors(t *testing.T) {
	if _, err := Run(context.Background(), "nope", &Options{Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "monks") {
		t.Errorf("unknown benchmark: error %v, want one listing the names", err)
	}
	if _, err := Run(context.Background(), "monks", &Options{Out: t.TempDir(), tiny: true, MonksDir: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Error("missing MONK's directory: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := Run(ctx, "xor", &Options{Out: dir, tiny: true}); err == nil {
		t.Error("canceled context: no error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("canceled run wrote %d files", len(ents))
	}
}

func TestNamesDescribe(t *testing.T) {
	want := []string{"monks", "xor", "curves", "mnist", "mnist-gradual", "evidence", "mlpnet", "speed"}
	if got := Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		if Describe(n) == "" {
			t.Errorf("no description of %s", n)
		}
	}
	if Describe("nope") != "" {
		t.Error("description of an unknown benchmark")
	}
}

func TestQuickFileNames(t *testing.T) {
	r := &runCtx{name: "xor", o: Options{Quick: true}}
	if got := r.fileName(".md"); got != "xor-quick.md" {
		t.Errorf("quick Markdown file %q, want xor-quick.md", got)
	}
}
