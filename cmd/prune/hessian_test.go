package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/curvreport"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// monksTrain returns the training split that the example model was
// trained on.
func monksTrain(t *testing.T) *nn.Data {
	t.Helper()
	s, err := loadData(dataOptions{Name: "monks1", Options: datasets.Options{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return &s.Train
}

// loadModel reads a model file.
func loadModel(t *testing.T, path string) *nn.Network {
	t.Helper()
	n, err := modelio.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// prunedModelFile writes a copy of the example model with parameter q
// pruned and returns its path.
func prunedModelFile(t *testing.T, q int) string {
	t.Helper()
	n := loadModel(t, monksModelFile(t))
	n.Prune(q)
	path := filepath.Join(t.TempDir(), "pruned.json")
	if err := modelio.Save(path, n); err != nil {
		t.Fatal(err)
	}
	return path
}

// hessianJSON runs the hessian command with --json and returns the decoded
// summary.
func hessianJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := runArgs(append(append([]string{"hessian"}, args...), "--json")...)
	if code != 0 {
		t.Fatalf("hessian %v: exit %d\n%s", args, code, errOut)
	}
	var res map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&res); err != nil || dec.More() {
		t.Fatalf("hessian --json: not one JSON object (%v):\n%s", err, out)
	}
	return res
}

func TestHessianExactMatchesDense(t *testing.T) {
	for _, pruned := range []bool{false, true} {
		model := monksModelFile(t)
		if pruned {
			model = prunedModelFile(t, 7)
		}
		out := filepath.Join(t.TempDir(), "h.npy")
		// By default the extremes come from Lanczos; this H is
		// indefinite, which they prove.
		code, stdout, stderr := runArgs("hessian", "--model", model, "--kind", "exact", "-o", out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, "(Lanczos)") || !regexp.MustCompile(`positive definite +no`).MatchString(stdout) {
			t.Errorf("default summary is not from Lanczos or not indefinite:\n%s", stdout)
		}
		code, stdout, stderr = runArgs("hessian", "--model", model, "--kind", "exact", "--full-spectrum", "-o", out, "--overwrite")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, want := range []string{"exact Hessian H of " + model + " on monks1/train (124 samples)", "parameters", "trace", "eigenvalues", "condition", "positive definite", "time"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
		n := loadModel(t, model)
		set := monksTrain(t)
		want, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.Live(n, set.X, set.Y)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := readNPYMatrix(t, out)
		W := want.SymmetricDim()
		if r, c := got.Dims(); r != W || c != W {
			t.Fatalf("pruned=%v: shape %d×%d, want %d×%d", pruned, r, c, W, W)
		}
		if pruned && W != n.NumParams()-1 {
			t.Errorf("pruned model: W = %d, want %d", W, n.NumParams()-1)
		}
		for i := 0; i < W; i++ {
			for j := 0; j < W; j++ {
				if got.At(i, j) != want.At(i, j) {
					t.Fatalf("pruned=%v: H[%d,%d] = %v, hessian.Dense gives %v", pruned, i, j, got.At(i, j), want.At(i, j))
				}
			}
		}
	}
}

func TestHessianKinds(t *testing.T) {
	model := monksModelFile(t)
	n := loadModel(t, model)
	set := monksTrain(t)
	pr := hessian.Live(n, set.X, set.Y)
	W := n.NumParams()
	ctx := context.Background()
	dir := t.TempDir()
	for _, k := range curvreport.Kinds() {
		out := filepath.Join(dir, k.Name+".npy")
		res := hessianJSON(t, "--model", model, "--kind", k.Name, "-o", out)
		if res["kind"] != k.Name || res["w"] != float64(W) || res["params"] != "live" {
			t.Errorf("%s: summary %v", k.Name, res)
		}
		if k.Matrix {
			m := readNPYMatrix(t, out)
			if r, c := m.Dims(); r != W || c != W {
				t.Errorf("%s: shape %d×%d, want %d×%d", k.Name, r, c, W, W)
			}
			for i := 0; i < W; i++ {
				for j := 0; j < i; j++ {
					if m.At(i, j) != m.At(j, i) {
						t.Fatalf("%s: not symmetric at [%d,%d]", k.Name, i, j)
					}
				}
			}
			continue
		}
		v := readNPYVector(t, out)
		if len(v) != W {
			t.Errorf("%s: %d entries, want %d", k.Name, len(v), W)
			continue
		}
		want := make([]float64, W)
		var err error
		switch k.Name {
		case "diag":
			err = hessian.Exact{P: pr}.DiagTo(ctx, want)
		case "diag-bl":
			err = hessian.BeckerLeCun{P: pr}.DiagTo(ctx, want)
		case "diag-lm":
			err = hessian.BeckerLeCun{P: pr, LM: true}.DiagTo(ctx, want)
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for i := range want {
			sum += v[i]
			if v[i] != want[i] {
				t.Fatalf("%s: [%d] = %v, want %v", k.Name, i, v[i], want[i])
			}
		}
		if tr := res["trace"].(float64); tr != sum {
			t.Errorf("%s: trace %v, sum of the entries %v", k.Name, tr, sum)
		}
	}

	// The matrices equal those of the library.
	for _, c := range []struct {
		kind string
		c    hessian.Curvature
	}{{"gn", hessian.GaussNewton{P: pr}}, {"fisher", hessian.Fisher{P: pr}}} {
		want, err := hessian.Dense(ctx, c.c, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := readNPYMatrix(t, filepath.Join(dir, c.kind+".npy"))
		for i := 0; i < W; i++ {
			for j := 0; j < W; j++ {
				if got.At(i, j) != want.At(i, j) {
					t.Fatalf("%s: [%d,%d] = %v, want %v", c.kind, i, j, got.At(i, j), want.At(i, j))
				}
			}
		}
	}

	// The Hutchinson estimate is close to the exact diagonal, and the
	// probe seed changes it.
	exact := readNPYVector(t, filepath.Join(dir, "diag.npy"))
	hutch := readNPYVector(t, filepath.Join(dir, "hutchinson.npy"))
	var num, den float64
	for i := range exact {
		num += (hutch[i] - exact[i]) * (hutch[i] - exact[i])
		den += exact[i] * exact[i]
	}
	if rel := math.Sqrt(num / den); rel > 0.5 {
		t.Errorf("Hutchinson estimate off by %.2g relative to the exact diagonal", rel)
	}
	other := filepath.Join(dir, "hutchinson2.npy")
	res := hessianJSON(t, "--model", model, "--kind", "hutchinson", "--probes", "10", "--probe-seed", "7", "-o", other)
	if res["probes"] != 10.0 {
		t.Errorf("probes = %v, want 10", res["probes"])
	}
	if h2 := readNPYVector(t, other); h2[0] == hutch[0] && h2[1] == hutch[1] {
		t.Errorf("--probe-seed and --probes do not change the estimate")
	}
}

func TestHessianInverse(t *testing.T) {
	model := monksModelFile(t)
	n := loadModel(t, model)
	set := monksTrain(t)
	const lambda = 1e-3
	for _, kind := range []string{"gn", "exact"} {
		out := filepath.Join(t.TempDir(), "inv.npy")
		res := hessianJSON(t, "--model", model, "--kind", kind, "--inverse", "--damping", "0.001", "-o", out)
		if res["inverse"] != true || res["damping"] != lambda {
			t.Errorf("%s: summary %v", kind, res)
		}
		var c hessian.Curvature = hessian.GaussNewton{P: hessian.Live(n, set.X, set.Y)}
		if kind == "exact" {
			c = hessian.Exact{P: hessian.Live(n, set.X, set.Y)}
		}
		H, err := hessian.Dense(context.Background(), c, 0)
		if err != nil {
			t.Fatal(err)
		}
		W := H.SymmetricDim()
		// The trace in the summary is that of H, not of the inverse.
		var tr float64
		for i := 0; i < W; i++ {
			tr += H.At(i, i)
			H.SetSym(i, i, H.At(i, i)+lambda)
		}
		if math.Abs(res["trace"].(float64)-tr) > 1e-12*math.Abs(tr) {
			t.Errorf("%s: trace %v, want %v", kind, res["trace"], tr)
		}
		inv := readNPYMatrix(t, out)
		var prod mat.Dense
		prod.Mul(inv, H)
		for i := 0; i < W; i++ {
			for j := 0; j < W; j++ {
				want := 0.0
				if i == j {
					want = 1
				}
				if d := math.Abs(prod.At(i, j) - want); d > 1e-8 {
					t.Fatalf("%s: ((H+λI)⁻¹(H+λI))[%d,%d] = %v, want %v", kind, i, j, prod.At(i, j), want)
				}
			}
		}
	}
}

func TestHessianInverseFailures(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "inv.npy")
	// The exact Hessian of the example model is indefinite.
	code, _, errOut := runArgs("hessian", "--model", model, "--kind", "exact", "--inverse", "-o", out)
	if code != 1 || !strings.Contains(errOut, "not positive definite") || !strings.Contains(errOut, "retry with --damping") || !strings.Contains(errOut, "--escalate") {
		t.Errorf("undamped inverse of an indefinite H: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed inverse wrote %s", out)
	}
	code, stdout, errOut := runArgs("hessian", "--model", model, "--kind", "exact", "--inverse", "--escalate", "-o", out, "--json")
	if code != 0 {
		t.Fatalf("--escalate: exit %d\n%s", code, errOut)
	}
	if strings.Count(errOut, "escalating") < 2 {
		t.Errorf("--escalate logs no steps:\n%s", errOut)
	}
	var res hessianSummary
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Damping == nil || !(*res.Damping > 0) {
		t.Errorf("--escalate: damping %v (%v)\n%s", res.Damping, err, stdout)
	}
	if res.Min == nil || *res.Damping < -*res.Min {
		t.Errorf("--escalate: damping %v below −λ_min %v", res.Damping, res.Min)
	}
}

func TestHessianAllVsLive(t *testing.T) {
	model := prunedModelFile(t, 3)
	total := loadModel(t, model).NumParams()
	dir := t.TempDir()
	for _, kind := range []string{"gn", "diag-bl", "recursive"} {
		live := hessianJSON(t, "--model", model, "--kind", kind, "-o", filepath.Join(dir, kind+"-live.npy"))
		all := hessianJSON(t, "--model", model, "--kind", kind, "--all", "-o", filepath.Join(dir, kind+"-all.npy"))
		if live["w"] != float64(total-1) || live["params"] != "live" || live["total_params"] != float64(total) {
			t.Errorf("%s live: w %v, params %v, total %v; want %d, live, %d", kind, live["w"], live["params"], live["total_params"], total-1, total)
		}
		if all["w"] != float64(total) || all["params"] != "all" {
			t.Errorf("%s --all: w %v, params %v; want %d, all", kind, all["w"], all["params"], total)
		}
	}
	// The live matrix is the all matrix without row and column 3, to
	// rounding: the BLAS may sum the products in another order for
	// another size.
	liveM := readNPYMatrix(t, filepath.Join(dir, "gn-live.npy"))
	allM := readNPYMatrix(t, filepath.Join(dir, "gn-all.npy"))
	idx := func(i int) int {
		if i >= 3 {
			return i + 1
		}
		return i
	}
	for i := 0; i < total-1; i++ {
		for j := 0; j < total-1; j++ {
			if a, b := liveM.At(i, j), allM.At(idx(i), idx(j)); math.Abs(a-b) > 1e-13*(math.Abs(a)+math.Abs(b)) {
				t.Fatalf("live[%d,%d] = %v, all[%d,%d] = %v", i, j, liveM.At(i, j), idx(i), idx(j), allM.At(idx(i), idx(j)))
			}
		}
	}
	// Text summaries say which set is covered.
	_, out, _ := runArgs("hessian", "--model", model, "--kind", "diag", "-o", filepath.Join(dir, "d.npy"))
	if !strings.Contains(out, "57 live of 58") {
		t.Errorf("live summary:\n%s", out)
	}
	_, out, _ = runArgs("hessian", "--model", model, "--kind", "diag", "--all", "-o", filepath.Join(dir, "d2.npy"))
	if !strings.Contains(out, "58 (all)") {
		t.Errorf("--all summary:\n%s", out)
	}
}

func TestHessianMaxMemory(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "h.npy")
	for _, kind := range []string{"exact", "gn", "fisher", "recursive"} {
		code, _, errOut := runArgs("hessian", "--model", model, "--kind", kind, "--max-memory", "1K", "-o", out)
		if code != 1 {
			t.Errorf("%s --max-memory 1K: exit %d, want 1\n%s", kind, code, errOut)
		}
		for _, want := range []string{"58×58", "KiB", "memory limit of 1.0 KiB", "diag", "hutchinson", "--max-memory"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: message lacks %q:\n%s", kind, want, errOut)
			}
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: refused run wrote %s", kind, out)
		}
	}
	// An existing output is left alone too.
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runArgs("hessian", "--model", model, "--kind", "exact", "--max-memory", "1K", "-o", out, "--overwrite"); code != 1 {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("refused run changed %s", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("refused run left files: %v", entries)
	}
	// The vector kinds need no W×W matrix; one matrix fits without its
	// eigenvalues.
	if code, _, errOut := runArgs("hessian", "--model", model, "--kind", "diag", "--max-memory", "1K", "-o", filepath.Join(dir, "d.npy")); code != 0 {
		t.Errorf("diag --max-memory 1K: exit %d\n%s", code, errOut)
	}
	code, _, errOut := runArgs("hessian", "--model", model, "--kind", "gn", "--max-memory", "30K", "--full-spectrum", "-o", filepath.Join(dir, "g.npy"))
	if code != 1 || !strings.Contains(errOut, "--full-spectrum") {
		t.Errorf("gn --max-memory 30K: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runArgs("hessian", "--model", model, "--kind", "gn", "--max-memory", "30K", "--no-spectrum", "-o", filepath.Join(dir, "g.npy")); code != 0 {
		t.Errorf("gn --max-memory 30K --no-spectrum: exit %d\n%s", code, errOut)
	}
	// By default the summary's extremes come from Lanczos, which needs
	// only the matrix.
	if code, _, errOut := runArgs("hessian", "--model", model, "--kind", "gn", "--max-memory", "30K", "-o", filepath.Join(dir, "g.npy"), "--overwrite"); code != 0 {
		t.Errorf("gn --max-memory 30K: exit %d\n%s", code, errOut)
	}
}

func TestHessianJSON(t *testing.T) {
	model := monksModelFile(t)
	out := filepath.Join(t.TempDir(), "h.npy")
	res := hessianJSON(t, "--model", model, "--kind", "gn", "--eigen", "3", "--full-spectrum", "-o", out)
	for _, k := range []string{"kind", "curvature", "model", "data", "split", "samples", "params", "w", "total_params",
		"output", "shape", "inverse", "spectrum_of", "spectrum", "trace", "min", "max", "condition",
		"positive_definite", "negative_count", "zero_count", "eigen", "build_seconds", "seconds"} {
		if _, ok := res[k]; !ok {
			t.Errorf("no %q in %v", k, res)
		}
	}
	if res["output"] != out || res["data"] != "monks1" || res["split"] != "train" || res["samples"] != 124.0 || res["spectrum"] != "dense" {
		t.Errorf("summary %v", res)
	}
	eig := res["eigen"].(map[string]any)
	largest, smallest := eig["largest"].([]any), eig["smallest"].([]any)
	if len(largest) != 3 || len(smallest) != 3 || eig["method"] != "dense" {
		t.Fatalf("eigen %v", eig)
	}
	if largest[0] != res["max"] || smallest[0] != res["min"] {
		t.Errorf("eigen %v does not match min %v, max %v", eig, res["min"], res["max"])
	}
	if !(largest[0].(float64) >= largest[1].(float64) && smallest[0].(float64) <= smallest[1].(float64)) {
		t.Errorf("eigen not ordered: %v", eig)
	}
	// G is positive semidefinite.
	if res["positive_definite"] != false || res["negative_count"] != 0.0 {
		t.Errorf("G: positive_definite %v, negative_count %v", res["positive_definite"], res["negative_count"])
	}

	// Lanczos on the formed matrix finds the same extremes.
	lz := hessianJSON(t, "--model", model, "--kind", "gn", "--eigen", "3", "--lanczos", "-o", out, "--overwrite")
	le := lz["eigen"].(map[string]any)
	if le["method"] != "lanczos" || lz["spectrum"] != "lanczos" {
		t.Errorf("--lanczos: %v", lz)
	}
	for i := 0; i < 3; i++ {
		a, b := le["largest"].([]any)[i].(float64), largest[i].(float64)
		if math.Abs(a-b) > 1e-9*math.Abs(largest[0].(float64)) {
			t.Errorf("Lanczos largest[%d] = %v, dense %v", i, a, b)
		}
	}
	if _, ok := lz["condition"]; ok {
		t.Errorf("--lanczos reports a condition number: %v", lz)
	}

	// A vector kind reports its entries and, with --eigen, Lanczos on the
	// curvature it approximates.
	v := hessianJSON(t, "--model", model, "--kind", "diag-lm", "--eigen", "2", "-o", filepath.Join(t.TempDir(), "d.npy"))
	if v["spectrum_of"] != "entries" || v["negative_count"] != 0.0 || v["positive_definite"] != true {
		t.Errorf("diag-lm summary %v", v)
	}
	ve := v["eigen"].(map[string]any)
	if ve["method"] != "lanczos" || ve["of"] != "Gauss–Newton matrix G" || math.Abs(ve["largest"].([]any)[0].(float64)-largest[0].(float64)) > 1e-9*largest[0].(float64) {
		t.Errorf("diag-lm eigen %v, want the largest eigenvalue of G %v", ve, largest[0])
	}

	// A singular matrix has a null condition number in JSON.
	var s hessianSummary
	s.SetSpectrum(hessian.SummarizeValues([]float64{0, 1}, 1))
	b, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(b), `"condition":null`) {
		t.Errorf("singular: %s (%v)", b, err)
	}
}

func TestHessianErrors(t *testing.T) {
	model := monksModelFile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "h.npy")
	csv := filepath.Join(dir, "d.csv")
	if err := os.WriteFile(csv, []byte("1,2,3\n4,5,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	npyModel := filepath.Join(dir, "m.npy")
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(npyModel, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--model", model, "--kind", "hessian", "-o", out}, 2, []string{"--kind", `"hessian"`, "exact, gn, fisher, recursive, diag, diag-bl, diag-lm or hutchinson"}},
		{[]string{"--model", model, "-o", out}, 2, []string{"--kind is required", "exact"}},
		{[]string{"--kind", "exact", "-o", out}, 2, []string{"--model is required"}},
		{[]string{"--model", model, "--kind", "exact"}, 2, []string{"--output is required"}},
		{[]string{"--model", model, "--kind", "exact", "-o", filepath.Join(dir, "h.txt")}, 2, []string{"--output", ".npy"}},
		{[]string{"--model", model, "--kind", "exact", "--damping", "1", "-o", out}, 2, []string{"--damping", "--inverse"}},
		{[]string{"--model", model, "--kind", "exact", "--inverse", "--damping", "-1", "-o", out}, 2, []string{"--damping"}},
		{[]string{"--model", model, "--kind", "diag", "--inverse", "-o", out}, 2, []string{"--inverse", "exact, gn and fisher"}},
		{[]string{"--model", model, "--kind", "recursive", "--inverse", "-o", out}, 2, []string{"--inverse"}},
		{[]string{"--model", model, "--kind", "gn", "--probes", "5", "-o", out}, 2, []string{"--probes", "hutchinson"}},
		{[]string{"--model", model, "--kind", "hutchinson", "--probes", "0", "-o", out}, 2, []string{"--probes"}},
		{[]string{"--model", model, "--kind", "gn", "--alpha", "1e-3", "-o", out}, 2, []string{"--alpha", "recursive"}},
		{[]string{"--model", model, "--kind", "gn", "--eigen", "0", "-o", out}, 2, []string{"--eigen"}},
		{[]string{"--model", model, "--kind", "gn", "--eigen", "2", "--no-spectrum", "-o", out}, 2, []string{"--no-spectrum", "--eigen"}},
		{[]string{"--model", model, "--kind", "gn", "--max-memory", "lots", "-o", out}, 2, []string{"--max-memory", `"lots"`}},
		{[]string{"--model", model, "--kind", "gn", "--split", "dev", "-o", out}, 2, []string{"--split"}},
		{[]string{"--model", model, "--kind", "gn", "--escalate", "-o", out}, 2, []string{"--escalate", "--inverse"}},
		{[]string{"--model", npyModel, "--kind", "gn", "-o", npyModel, "--overwrite"}, 2, []string{"--output", "same file"}},
		{[]string{"--model", model, "--kind", "gn", "--data", "xor", "-o", out}, 1, []string{"--data xor", "17 inputs"}},
		{[]string{"--model", model, "--kind", "gn", "--data", csv, "-o", out}, 1, []string{"--data " + csv}},
		{[]string{"--model", model, "--kind", "gn", "--split", "valid", "-o", out}, 1, []string{"--split valid", "no valid split"}},
		{[]string{"--model", filepath.Join(dir, "missing.json"), "--kind", "gn", "-o", out}, 1, []string{"missing.json"}},
		{[]string{"--model", model, "--kind", "gn", "-o", filepath.Join(dir, "no", "h.npy")}, 1, []string{"does not exist"}},
	} {
		code, _, errOut := runArgs(append([]string{"hessian"}, c.args...)...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: message lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run wrote %s", out)
	}

	// An existing output is replaced only with --overwrite.
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runArgs("hessian", "--model", model, "--kind", "diag", "-o", out)
	if code != 1 || !strings.Contains(errOut, "--overwrite") {
		t.Errorf("existing output: exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("existing output changed without --overwrite")
	}
	if code, _, errOut := runArgs("hessian", "--model", model, "--kind", "diag", "-o", out, "--overwrite"); code != 0 {
		t.Errorf("--overwrite: exit %d\n%s", code, errOut)
	}
	if v := readNPYVector(t, out); len(v) != 58 {
		t.Errorf("--overwrite wrote %d entries", len(v))
	}
}

func TestHessianInterrupted(t *testing.T) {
	model := monksModelFile(t)
	out := filepath.Join(t.TempDir(), "h.npy")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := runContext(ctx, []string{"prune", "hessian", "--model", model, "--kind", "exact", "-o", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("cancelled run: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cancelled run wrote %s", out)
	}
}
