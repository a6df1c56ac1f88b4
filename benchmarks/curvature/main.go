// Command curvature times the curvature computations of package hessian on
// tanh networks of growing size: the gradient, Hessian-vector products, the
// dense exact, Gauss–Newton and Fisher matrices, the diagonals, Hutchinson's
// estimator and the two inverses, and measures the BLAS's own matrix
// multiply rate for comparison. It writes a Markdown table to -o and to
// standard output.
//
//	go run ./benchmarks/curvature [-sizes 100,1000,5000,20000] [-n 256] [-reps 3] [-o results/curvature.md]
//	go run -tags openblas ./benchmarks/curvature -o results/curvature-openblas.md
//
// The networks are in-h-1 MLPs with one tanh hidden layer, a linear output
// and the mse loss, sized to about W parameters each, plus (with -deep) the
// two-hidden-layer 40-60-40-1 network of about 5000 parameters, on N random
// samples. Each time is the median of -reps runs after one warm-up run; a
// computation whose warm-up run takes longer than -slow is timed by that run
// alone. Dense W×W matrices above -big-w parameters (3.2 GB each at
// W = 20000) are skipped unless -big is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/internal/sysmem"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// netSpec is one benchmark network.
type netSpec struct {
	sizes []int
	note  string
	// skip lists the computations not run on this network, and why.
	skip    []string
	skipWhy string
}

func (s netSpec) arch() string {
	p := make([]string, len(s.sizes))
	for i, n := range s.sizes {
		p[i] = strconv.Itoa(n)
	}
	return strings.Join(p, "-")
}

// params returns the number of parameters of the network.
func (s netSpec) params() int {
	w := 0
	for i := 1; i < len(s.sizes); i++ {
		w += s.sizes[i] * (s.sizes[i-1] + 1)
	}
	return w
}

// knownSizes are the one-hidden-layer networks of the default sizes.
var knownSizes = map[int][]int{
	100:   {10, 8, 1},
	1000:  {30, 31, 1},
	5000:  {50, 96, 1},
	20000: {100, 196, 1},
}

// specFor returns an in-h-1 network with about W parameters: one of
// knownSizes, or in ≈ √(W/2) inputs and h = (W−1)/(in+2) hidden units.
func specFor(W int) netSpec {
	if s, ok := knownSizes[W]; ok {
		return netSpec{sizes: s}
	}
	in := max(2, int(math.Round(math.Sqrt(float64(W)/2))))
	h := max(1, int(math.Round(float64(W-1)/float64(in+2))))
	return netSpec{sizes: []int{in, h, 1}}
}

// op is one timed computation.
type op struct {
	key, name string
	// dense marks the computations that hold W×W matrices, skipped above
	// -big-w without -big; matrices is how many.
	dense    bool
	matrices int
}

var ops = []op{
	{key: "grad", name: "gradient (one pass over N)"},
	{key: "hv", name: "Hv (Exact.MulVecTo, R-operator)"},
	{key: "exact", name: "exact H, dense", dense: true, matrices: 1},
	{key: "gn", name: "Gauss–Newton G, dense", dense: true, matrices: 1},
	{key: "fisher", name: "empirical Fisher F, dense", dense: true, matrices: 1},
	{key: "diag", name: "exact diagonal of H"},
	{key: "bl", name: "Becker–LeCun diagonal"},
	{key: "lm", name: "Levenberg–Marquardt diagonal"},
	{key: "hutch", name: "Hutchinson diagonal"},
	{key: "chol", name: "Cholesky inverse (G + 10⁻⁴I)⁻¹", dense: true, matrices: 2},
	{key: "rec", name: "recursive OBS inverse (α = 10⁻⁴)", dense: true, matrices: 2},
	{key: "eig", name: "eigenvalues of H (EigenSym)", dense: true, matrices: 3},
}

// result is the timing of one computation on one network.
type result struct {
	d    time.Duration
	runs int    // number of timed runs; 0 when skipped
	skip string // why the computation was skipped
}

// config holds the flags.
type config struct {
	n, reps, probes int
	slow            time.Duration
	big             bool
	bigW, eigW      int
	seed            uint64
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("curvature: ")
	var (
		sizesFlag = flag.String("sizes", "100,1000,5000,20000", "comma-separated approximate parameter counts W of the in-h-1 networks")
		deep      = flag.Bool("deep", true, "also time the two-hidden-layer network 40-60-40-1")
		out       = flag.String("o", "results/curvature.md", "Markdown output file (empty: standard output only)")
		cfg       config
	)
	flag.IntVar(&cfg.n, "n", 256, "number N of random samples")
	flag.IntVar(&cfg.reps, "reps", 3, "timed runs per computation after the warm-up run; the median is reported")
	flag.IntVar(&cfg.probes, "probes", 100, "Rademacher probes of the Hutchinson estimate")
	flag.DurationVar(&cfg.slow, "slow", 5*time.Second, "time a computation whose warm-up run takes longer than this by that run alone")
	flag.BoolVar(&cfg.big, "big", false, "also build the dense matrices and inverses above -big-w parameters (3.2 GB per matrix at W = 20000)")
	flag.IntVar(&cfg.bigW, "big-w", 10000, "largest W whose dense matrices are built without -big")
	flag.IntVar(&cfg.eigW, "eig-w", 2000, "largest W whose full spectrum is computed without -big")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the parameters and the data")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected argument %q", flag.Arg(0))
	}
	if cfg.n <= 0 || cfg.reps <= 0 || cfg.probes <= 0 {
		log.Fatal("-n, -reps and -probes must be positive")
	}
	var specs []netSpec
	for _, f := range strings.Split(*sizesFlag, ",") {
		W, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || W < 4 {
			log.Fatalf("-sizes: %q is not a parameter count of at least 4", f)
		}
		specs = append(specs, specFor(W))
	}
	if *deep {
		specs = append(specs, netSpec{
			sizes: []int{40, 60, 40, 1}, note: "2 hidden layers",
			skip:    []string{"chol", "rec", "eig"},
			skipWhy: "not run: this network is for the exact / Gauss–Newton ratio",
		})
	}

	start := time.Now()
	loadStart = benchtime.LoadAverage()
	gemm := benchtime.DGEMMRate(cfg.reps)
	log.Printf("DGEMM 2000×2000: %.1f GFLOP/s", gemm)
	results := make([]map[string]result, len(specs))
	for i, s := range specs {
		results[i] = benchNet(s, cfg)
	}
	md := report(specs, results, gemm, cfg, time.Since(start))
	fmt.Print(md)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := atomicfile.WriteBytes(*out, []byte(md)); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", *out)
	}
}

// measure times fn with benchtime.Measure.
func measure(fn func() error, reps int, slow time.Duration) (result, error) {
	r, err := benchtime.Measure(fn, reps, slow)
	return result{d: r.D, runs: r.Runs}, err
}

// problem returns a randomly initialised network of the spec with n random
// samples (standard normal inputs and targets) over all its parameters.
func problem(s netSpec, n int, seed uint64) *hessian.Problem {
	L := len(s.sizes) - 1
	acts := make([]nn.Activation, L)
	for l := range acts {
		acts[l] = nn.Tanh
	}
	acts[L-1] = nn.Linear
	net, err := nn.New(s.sizes, acts, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, 1))
	rng := rand.New(rand.NewPCG(seed, 2))
	X := mat.NewDense(n, s.sizes[0], nil)
	Y := mat.NewDense(n, s.sizes[L], nil)
	for _, m := range []*mat.Dense{X, Y} {
		raw := m.RawMatrix()
		for i := range raw.Data {
			raw.Data[i] = rng.NormFloat64()
		}
	}
	return hessian.All(net, X, Y)
}

// benchNet times every computation on the network s.
func benchNet(s netSpec, cfg config) map[string]result {
	pr := problem(s, cfg.n, cfg.seed)
	W := pr.Dim()
	ctx := context.Background()
	res := make(map[string]result)

	v := make([]float64, W)
	rng := rand.New(rand.NewPCG(cfg.seed, 4))
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	vec := make([]float64, W)
	// H holds the dense exact, Fisher and Gauss–Newton matrices in turn,
	// the Gauss–Newton one last for the Cholesky inverse; inv holds the
	// inverses.
	var H, inv *mat.SymDense
	haveG := false
	fns := map[string]func() error{
		"grad": func() error { pr.Net.Gradient(vec, pr.X, pr.Y); return nil },
		"hv":   func() error { hessian.Exact{P: pr}.MulVecTo(vec, v); return nil },
		"exact": func() error {
			return hessian.Exact{P: pr}.DenseTo(ctx, H)
		},
		"eig": func() error {
			_, err := hessian.Eigenvalues(H)
			return err
		},
		"fisher": func() error { return hessian.Fisher{P: pr}.DenseTo(ctx, H) },
		"gn": func() error {
			err := hessian.GaussNewton{P: pr}.DenseTo(ctx, H)
			haveG = err == nil
			return err
		},
		"diag": func() error { return hessian.Exact{P: pr}.DiagTo(ctx, vec) },
		"bl":   func() error { return hessian.BeckerLeCun{P: pr}.DiagTo(ctx, vec) },
		"lm":   func() error { return hessian.BeckerLeCun{P: pr, LM: true}.DiagTo(ctx, vec) },
		"hutch": func() error {
			h := hessian.Hutchinson{C: hessian.Exact{P: pr}, Probes: cfg.probes, Src: rand.NewPCG(cfg.seed, 5)}
			return h.EstimateDiagTo(ctx, vec)
		},
		"chol": func() error {
			err := hessian.DampedInverse(inv, H, 1e-4)
			var cond mat.Condition
			if errors.As(err, &cond) {
				// The inverse was computed; only its accuracy is in doubt.
				return nil
			}
			return err
		},
		"rec": func() error {
			return hessian.RecursiveInverse{P: pr, Alpha: 1e-4}.InverseTo(ctx, inv)
		},
	}
	// The order of the runs: the eigenvalues need the exact H, the
	// Cholesky inverse the Gauss–Newton G.
	order := []string{"grad", "hv", "exact", "eig", "fisher", "gn", "chol", "rec", "diag", "bl", "lm", "hutch"}
	for _, key := range order {
		o := opByKey(key)
		if slices.Contains(s.skip, key) {
			res[key] = result{skip: s.skipWhy}
			continue
		}
		if o.dense {
			if reason := skipDense(o, W, cfg); reason != "" {
				res[key] = result{skip: reason}
				log.Printf("%s W=%d %s: skipped (%s)", s.arch(), W, o.name, reason)
				continue
			}
			if H == nil {
				H = mat.NewSymDense(W, nil)
			}
			if o.matrices > 1 && inv == nil && key != "eig" {
				inv = mat.NewSymDense(W, nil)
			}
		}
		if key == "eig" {
			if _, ok := res["exact"]; !ok || res["exact"].runs == 0 {
				res[key] = result{skip: "no dense H"}
				continue
			}
		}
		if key == "chol" && !haveG {
			res[key] = result{skip: "no dense G"}
			continue
		}
		r, err := measure(fns[key], cfg.reps, cfg.slow)
		if err != nil {
			log.Fatalf("%s W=%d %s: %v", s.arch(), W, o.name, err)
		}
		res[key] = r
		log.Printf("%s W=%d %s: %s", s.arch(), W, o.name, formatDuration(r.d))
	}
	return res
}

// skipDense returns why a computation holding W×W matrices is skipped, or
// "" when it runs.
func skipDense(o op, W int, cfg config) string {
	per := sysmem.FormatBytes(hessian.DenseBytes(W))
	limit := o.dense && W > cfg.bigW
	if o.key == "eig" {
		limit = W > cfg.eigW
	}
	if limit && !cfg.big {
		if o.key == "eig" {
			return fmt.Sprintf("O(W³), over a minute at W = 4000 with the pure-Go BLAS; run with -big or a larger -eig-w (now %d)", cfg.eigW)
		}
		return fmt.Sprintf("%s per W×W matrix, and at W = 20000 the Cholesky inverse takes most of an hour with the pure-Go BLAS; run with -big or a larger -big-w (now %d)", per, cfg.bigW)
	}
	if err := hessian.CheckMemory("", W, hessian.DefaultMemoryLimit()/int64(o.matrices)); err != nil {
		return fmt.Sprintf("%d matrices of %s exceed the memory limit of %s", o.matrices, per, sysmem.FormatBytes(hessian.DefaultMemoryLimit()))
	}
	return ""
}

func opByKey(key string) op {
	for _, o := range ops {
		if o.key == key {
			return o
		}
	}
	panic("unknown op " + key)
}

// loadStart is the load average when the benchmark started.
var loadStart string

// envValue returns the value of an environment variable, or "unset".
func envValue(name string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return "unset"
}

// report returns the Markdown report.
func report(specs []netSpec, results []map[string]result, gemm float64, cfg config, total time.Duration) string {
	var b strings.Builder
	b.WriteString("# Curvature benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- %s %s/%s, BLAS: %s, GOMAXPROCS %d (NumCPU %d)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, blasimpl.Name(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(&b, "- CPU: %s\n", benchtime.CPUModel())
	if w := blasimpl.Warning(); w != "" {
		fmt.Fprintf(&b, "- %s\n", w)
	}
	fmt.Fprintf(&b, "- load average (1, 5, 15 min) at the start: %s; at the end: %s\n", loadStart, benchtime.LoadAverage())
	fmt.Fprintf(&b, "- OPENBLAS_CORETYPE: %s, OPENBLAS_NUM_THREADS: %s\n", envValue("OPENBLAS_CORETYPE"), envValue("OPENBLAS_NUM_THREADS"))
	fmt.Fprintf(&b, "- command: `%s`\n", commandLine())
	fmt.Fprintf(&b, "- DGEMM rate (mat.Dense.Mul, 2000×2000, 2n³ flops): **%.1f GFLOP/s**\n", gemm)
	fmt.Fprintf(&b, "- N = %d random samples (standard normal inputs and targets), tanh hidden layers, linear output, mse loss, all parameters covered\n", cfg.n)
	fmt.Fprintf(&b, "- times: median of %d runs after one warm-up run (a run repeats computations shorter than %s); ¹ marks a single run (its warm-up took longer than %s); total wall time %s\n\n", cfg.reps, benchtime.MinRun, cfg.slow, total.Round(time.Second))

	header := []string{"computation"}
	for _, s := range specs {
		h := fmt.Sprintf("%s, W = %d", s.arch(), s.params())
		if s.note != "" {
			h += " (" + s.note + ")"
		}
		header = append(header, h)
	}
	t := newTable(header...)
	for _, o := range ops {
		name := o.name
		if o.key == "hutch" {
			name = fmt.Sprintf("Hutchinson diagonal, %d probes", cfg.probes)
		}
		row := []string{name}
		for _, res := range results {
			r := res[o.key]
			switch {
			case r.runs == 0:
				row = append(row, "—")
			case r.runs == 1 && cfg.reps > 1:
				row = append(row, formatDuration(r.d)+"¹")
			default:
				row = append(row, formatDuration(r.d))
			}
		}
		t.add(row...)
	}
	b.WriteString("## Times\n\n")
	b.WriteString(t.String())
	// The skipped cells, by network and reason.
	var notes []string
	for i, res := range results {
		var why []string
		byWhy := map[string][]string{}
		for _, o := range ops {
			r := res[o.key]
			if r.runs != 0 {
				continue
			}
			if _, ok := byWhy[r.skip]; !ok {
				why = append(why, r.skip)
			}
			byWhy[r.skip] = append(byWhy[r.skip], o.name)
		}
		for _, w := range why {
			notes = append(notes, fmt.Sprintf("- %s, W = %d: %s — %s", specs[i].arch(), specs[i].params(), strings.Join(byWhy[w], "; "), w))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nSkipped (—):\n\n")
		b.WriteString(strings.Join(notes, "\n"))
		b.WriteString("\n")
	}

	// Rates and ratios.
	n := float64(cfg.n)
	rate := func(r result, flops float64) string {
		if r.runs == 0 {
			return "—"
		}
		g := flops / r.d.Seconds() / 1e9
		return fmt.Sprintf("%.1f (%.0f %%)", g, 100*g/gemm)
	}
	ratio := func(a, b result, scale float64) string {
		if a.runs == 0 || b.runs == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a.d.Seconds()/b.d.Seconds()*scale)
	}
	rt := newTable(header...)
	rows := []struct {
		name string
		fn   func(res map[string]result, W, out float64) string
	}{
		{"Hv / gradient", func(r map[string]result, W, out float64) string { return ratio(r["hv"], r["grad"], 1) }},
		{"Hutchinson per probe / Hv", func(r map[string]result, W, out float64) string {
			return ratio(r["hutch"], r["hv"], 1/float64(cfg.probes))
		}},
		{"exact dense / Gauss–Newton dense", func(r map[string]result, W, out float64) string { return ratio(r["exact"], r["gn"], 1) }},
		{"exact dense / (W · Hv)", func(r map[string]result, W, out float64) string { return ratio(r["exact"], r["hv"], 1/W) }},
		{"Gauss–Newton dense, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["gn"], n*out*W*W) }},
		{"exact dense, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["exact"], n*out*W*W) }},
		{"Fisher dense, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["fisher"], n*W*W) }},
		{"Cholesky inverse, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["chol"], W*W*W) }},
		{"recursive inverse, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["rec"], 4*n*out*W*W) }},
		{"eigenvalues, GFLOP/s (% of DGEMM)", func(r map[string]result, W, out float64) string { return rate(r["eig"], 4*W*W*W/3) }},
	}
	for _, row := range rows {
		cells := []string{row.name}
		for i, res := range results {
			s := specs[i]
			cells = append(cells, row.fn(res, float64(s.params()), float64(s.sizes[len(s.sizes)-1])))
		}
		rt.add(cells...)
	}
	b.WriteString("\n## Rates and ratios\n\n")
	b.WriteString(rt.String())
	b.WriteString("\nFlop counts: Gauss–Newton and Fisher builds N·out·W² and N·W² (a multiply-add, 2 flops, per sample and " +
		"entry of the upper triangle); the exact build is counted the same, N·W², which is what its block products " +
		"come to (2N·W_l·W_m per pair of layers l < m, N·W_l² per diagonal block); Cholesky inverse W³ " +
		"(Potrf W³/3 + Potri 2W³/3); recursive inverse 4·N·out·W² (its documented cost); eigenvalues 4W³/3 " +
		"(the reduction to tridiagonal form). Percentages are of the DGEMM rate above.\n")
	return b.String()
}

// commandLine returns the command that ran the benchmark, for the report,
// with the OpenBLAS core type in front when it was set.
func commandLine() string {
	var args []string
	if v, ok := os.LookupEnv("OPENBLAS_CORETYPE"); ok {
		args = append(args, "OPENBLAS_CORETYPE="+v)
	}
	args = append(args, "go run")
	if strings.HasPrefix(blasimpl.Name(), "OpenBLAS") {
		args = append(args, "-tags openblas")
	}
	args = append(args, "./benchmarks/curvature")
	args = append(args, os.Args[1:]...)
	return strings.Join(args, " ")
}
