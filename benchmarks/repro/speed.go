package repro

import (
	"context"
	"errors"
	"fmt"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/internal/chart"
	"math/rand/v2"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// speedConfig holds the sizes of a speed run.
type speedConfig struct {
	nets     [][]int // in-h-1 networks
	n        int     // samples
	reps     int
	probes   int
	slow     time.Duration // a computation slower than this is timed once
	removals []int         // OBS removals timed per network
	lwSizes  []int
	lwCalib  int
	gemmN    int
}

func (r *runCtx) speedConfig() speedConfig {
	c := speedConfig{
		nets:     [][]int{{10, 8, 1}, {30, 31, 1}, {50, 96, 1}},
		n:        256,
		reps:     3,
		probes:   100,
		slow:     5 * time.Second,
		removals: []int{10, 10, 4},
		lwSizes:  []int{784, 300, 100, 10},
		lwCalib:  2048,
		gemmN:    2000,
	}
	switch {
	case r.o.tiny:
		c.nets, c.n, c.reps, c.probes = [][]int{{4, 4, 1}, {8, 6, 1}}, 32, 1, 4
		c.removals = []int{3, 3}
		c.lwSizes, c.lwCalib, c.gemmN = []int{20, 8, 4}, 64, 64
		c.slow = time.Second
	case r.o.Quick:
		c.nets, c.removals = c.nets[:2], c.removals[:2]
		c.reps = 2
	}
	return c
}

// speedOp is one timed computation on an in-h-1 network.
type speedOp struct {
	key, name string
}

var speedOps = []speedOp{
	{"grad", "gradient of E (one pass over N)"},
	{"hv", "Hv, exact (Pearlmutter R-operator)"},
	{"exact", "exact H, dense"},
	{"gn", "Gauss–Newton G, dense"},
	{"fisher", "empirical Fisher F, dense"},
	{"diag", "exact diagonal of H"},
	{"bl", "Becker–LeCun diagonal"},
	{"lm", "Levenberg–Marquardt diagonal"},
	{"hutch", "Hutchinson diagonal (100 probes)"},
	{"chol", "Cholesky inverse (G + 10⁻⁴I)⁻¹"},
	{"rec", "recursive OBS inverse (α = 10⁻⁴)"},
	{"downdate", "one downdate of H⁻¹ (rank one, O(W²))"},
	{"obs-dd", "OBS removal (G), one G⁻¹ per round + downdates (per removal)"},
	{"obs-rb", "OBS removal (G), G and G⁻¹ rebuilt every removal (per removal)"},
}

// speedTime is the timing of one computation.
type speedTime struct {
	d    time.Duration
	runs int
}

// measure times fn with benchtime.Measure; runs counts every call.
func measure(fn func() error, reps int, slow time.Duration) (speedTime, error) {
	r, err := benchtime.Measure(fn, reps, slow)
	return speedTime{d: r.D, runs: r.Runs * r.Calls}, err
}

func runSpeed(ctx context.Context, r *runCtx) error {
	cfg := r.speedConfig()
	seed := r.o.Seed
	r.logf("seed %d; networks %v (tanh hidden, linear output, mse) on N = %d random samples; median of %d runs", seed, cfg.nets, cfg.n, cfg.reps)
	gemm := benchtime.DGEMMRateN(cfg.gemmN, cfg.reps)
	r.logf("DGEMM %d×%d: %.2f GFLOP/s", cfg.gemmN, cfg.gemmN, gemm)

	times := make([]map[string]speedTime, len(cfg.nets))
	Ws := make([]int, len(cfg.nets))
	for i, sizes := range cfg.nets {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr := speedProblem(sizes, cfg.n, seed)
		Ws[i] = pr.Dim()
		t, err := speedNet(ctx, r, pr, cfg, cfg.removals[i])
		if err != nil {
			return fmt.Errorf("repro: speed %s: %w", archString(sizes), err)
		}
		times[i] = t
	}

	lw, lwErr := speedLayerwise(ctx, r, cfg, seed)
	if lwErr != nil {
		return lwErr
	}

	csv := newCSV("op", "arch", "W", "seconds", "ratio_to_gradient", "runs")
	for _, op := range speedOps {
		for i, sizes := range cfg.nets {
			t, ok := times[i][op.key]
			if !ok {
				continue
			}
			csv.add(op.key, archString(sizes), Ws[i], t.d.Seconds(), t.d.Seconds()/times[i]["grad"].d.Seconds(), t.runs)
		}
	}
	for _, l := range lw {
		csv.add("layerwise-"+l.method, archString(cfg.lwSizes), l.W, l.total.Seconds(), "", 1)
	}
	if err := r.addCSV(csv); err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Speed of the curvature computations and of pruning\n\n")
	fmt.Fprintf(&b, "Command: `%s`. Timings depend on the machine, the BLAS and the load: see the environment at the end; the ratios to the gradient travel better than the times. Every time is the median of %d runs after a warm-up run (computations faster than 100 ms repeated within a run; those slower than %s timed once).\n\n", r.command(), cfg.reps, cfg.slow)
	fmt.Fprintf(&b, "- **Networks**: in-h-1 with tanh hidden units and a linear output, squared error, Glorot initialisation from seed %d, on N = %d samples of standard normal inputs and targets; all parameters, biases included.\n", seed, cfg.n)
	fmt.Fprintf(&b, "- **DGEMM** (mat.Dense.Mul, %d×%d): %.2f GFLOP/s, for scale.\n", cfg.gemmN, cfg.gemmN, gemm)
	fmt.Fprintf(&b, "- **OBS removals**: `prune.Run` with OBS on the Gauss–Newton matrix G, damping 10⁻⁴, removing k parameters (k in the header): in one round from one inverse downdated after each removal, or one removal per round so that G is rebuilt and inverted each time. Both include the pass over the training data after each removal that measures the real ΔE. Per removal = total / k. G is used because it is positive semi-definite: the exact Hessian of these untrained networks is indefinite, and OBS on it spends most of its time in the damping search (a Cholesky attempt per tenfold rise of λ), which would be timed instead.\n\n")
	hdr := []string{"computation"}
	for i, sizes := range cfg.nets {
		hdr = append(hdr, fmt.Sprintf(">W = %d (%s, k = %d)", Ws[i], archString(sizes), cfg.removals[i]), ">× gradient")
	}
	t := newMDTable(hdr...)
	for _, op := range speedOps {
		row := []string{op.name}
		for i := range cfg.nets {
			tm, ok := times[i][op.key]
			if !ok {
				row = append(row, "—", "")
				continue
			}
			row = append(row, formatDuration(tm.d), fmt.Sprintf("%.3g", tm.d.Seconds()/times[i]["grad"].d.Seconds()))
		}
		t.add(row...)
	}
	row := []string{"OBS: rebuilding ÷ downdating, per removal"}
	for i := range cfg.nets {
		row = append(row, fmt.Sprintf("%.3g×", times[i]["obs-rb"].d.Seconds()/times[i]["obs-dd"].d.Seconds()), "")
	}
	t.add(row...)
	b.WriteString(t.String() + "\n")
	fmt.Fprintf(&b, "![times against W](%s)\n\n", r.fileName(".png"))

	fmt.Fprintf(&b, "## Layer-wise OBS on %s at 90 %% sparsity\n\n", archString(cfg.lwSizes))
	fmt.Fprintf(&b, "`prune.Layerwise` on a randomly initialised ReLU network (seed %d) with %d calibration inputs uniform in [0, 1], each layer pruned to 90 %% of its weights, one run each (GOMAXPROCS workers over rows).\n\n", seed, cfg.lwCalib)
	lh := []string{"method", ">total"}
	for l := 0; l < len(cfg.lwSizes)-1; l++ {
		lh = append(lh, fmt.Sprintf(">fc%d (%d×%d)", l+1, cfg.lwSizes[l+1], cfg.lwSizes[l]+1))
	}
	lt := newMDTable(lh...)
	for _, l := range lw {
		row := []string{l.method, formatDuration(l.total)}
		for _, d := range l.layers {
			row = append(row, formatDuration(d))
		}
		lt.add(row...)
	}
	b.WriteString(lt.String())
	r.addMarkdown(b.String())
	r.rep.Summary = t.String() + "\n" + lt.String()

	png, err := speedChart(Ws, times)
	if err != nil {
		return err
	}
	r.add(".png", png)
	return nil
}

// speedProblem returns a randomly initialised in-h-1 network with n random
// samples over all its parameters.
func speedProblem(sizes []int, n int, seed uint64) *hessian.Problem {
	L := len(sizes) - 1
	acts := make([]nn.Activation, L)
	for l := range acts {
		acts[l] = nn.Tanh
	}
	acts[L-1] = nn.Linear
	net, err := nn.New(sizes, acts, nn.MSE)
	if err != nil {
		panic(err)
	}
	net.Init(rand.NewPCG(seed, streamInit))
	rng := rand.New(rand.NewPCG(seed, streamFolds))
	X := mat.NewDense(n, sizes[0], nil)
	Y := mat.NewDense(n, sizes[L], nil)
	for _, m := range []*mat.Dense{X, Y} {
		raw := m.RawMatrix()
		for i := range raw.Data {
			raw.Data[i] = rng.NormFloat64()
		}
	}
	return hessian.All(net, X, Y)
}

// speedNet times every computation on one network.
func speedNet(ctx context.Context, r *runCtx, pr *hessian.Problem, cfg speedConfig, k int) (map[string]speedTime, error) {
	W := pr.Dim()
	v := make([]float64, W)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	vec := make([]float64, W)
	H := mat.NewSymDense(W, nil)
	G := mat.NewSymDense(W, nil)
	inv := mat.NewSymDense(W, nil)
	work := mat.NewSymDense(W, nil)
	data := nn.Splits{Train: pr.Data}
	fns := []struct {
		key string
		fn  func() error
	}{
		{"grad", func() error { pr.Net.Gradient(vec, pr.X, pr.Y); return nil }},
		{"hv", func() error { hessian.Exact{P: pr}.MulVecTo(vec, v); return nil }},
		{"exact", func() error { return hessian.Exact{P: pr}.DenseTo(ctx, H) }},
		{"gn", func() error { return hessian.GaussNewton{P: pr}.DenseTo(ctx, G) }},
		{"fisher", func() error { return hessian.Fisher{P: pr}.DenseTo(ctx, H) }},
		{"diag", func() error { return hessian.Exact{P: pr}.DiagTo(ctx, vec) }},
		{"bl", func() error { return hessian.BeckerLeCun{P: pr}.DiagTo(ctx, vec) }},
		{"lm", func() error { return hessian.BeckerLeCun{P: pr, LM: true}.DiagTo(ctx, vec) }},
		{"hutch", func() error {
			return hessian.Hutchinson{C: hessian.Exact{P: pr}, Probes: cfg.probes, Src: rand.NewPCG(1, 2)}.EstimateDiagTo(ctx, vec)
		}},
		{"chol", func() error {
			err := hessian.DampedInverse(inv, G, 1e-4)
			var cond mat.Condition
			if errors.As(err, &cond) {
				// The inverse was computed; only its accuracy is in doubt.
				return nil
			}
			return err
		}},
		{"rec", func() error { return hessian.RecursiveInverse{P: pr, Alpha: 1e-4}.InverseTo(ctx, work) }},
		{"downdate", func() error {
			// A fresh copy per call, so that every call downdates a full
			// inverse; the copy is O(W²) too and included.
			work.CopySym(inv)
			return hessian.Downdate(work, W/2)
		}},
		{"obs-dd", func() error {
			_, err := prune.Run(ctx, pr.Net, data, &prune.Settings{Method: prune.OBS{Curvature: prune.GaussNewton}, PerRound: k, MaxRounds: 1})
			return err
		}},
		{"obs-rb", func() error {
			_, err := prune.Run(ctx, pr.Net, data, &prune.Settings{Method: prune.OBS{Curvature: prune.GaussNewton}, PerRound: 1, MaxRounds: k})
			return err
		}},
	}
	out := map[string]speedTime{}
	for _, f := range fns {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := measure(f.fn, cfg.reps, cfg.slow)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		if f.key == "obs-dd" || f.key == "obs-rb" {
			t.d /= time.Duration(k)
		}
		out[f.key] = t
		r.logf("W = %d %s: %s", W, f.key, formatDuration(t.d))
	}
	return out, nil
}

// lwTime is the timing of one layer-wise run.
type lwTime struct {
	method string
	W      int
	total  time.Duration
	layers []time.Duration
}

func speedLayerwise(ctx context.Context, r *runCtx, cfg speedConfig, seed uint64) ([]lwTime, error) {
	L := len(cfg.lwSizes) - 1
	acts := make([]nn.Activation, L)
	for l := range acts {
		acts[l] = nn.ReLU
	}
	acts[L-1] = nn.Softmax
	net, err := nn.New(cfg.lwSizes, acts, nn.CE)
	if err != nil {
		return nil, err
	}
	net.Init(rand.NewPCG(seed, streamInit))
	rng := rand.New(rand.NewPCG(seed, streamFolds))
	X := mat.NewDense(cfg.lwCalib, cfg.lwSizes[0], nil)
	for i := range X.RawMatrix().Data {
		X.RawMatrix().Data[i] = rng.Float64()
	}
	var out []lwTime
	for _, m := range []prune.LayerwiseMethod{prune.LayerwiseOBC, prune.LayerwiseSparseGPT, prune.LayerwiseOBD, prune.LayerwiseMagnitude} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, rep, err := prune.Layerwise(ctx, net, X, &prune.LayerwiseSettings{Sparsity: 0.9, Method: m})
		if err != nil {
			return nil, fmt.Errorf("repro: speed layer-wise %v: %w", m, err)
		}
		lt := lwTime{method: m.String(), W: net.NumParams(), total: rep.Time}
		for _, l := range rep.Layers {
			lt.layers = append(lt.layers, l.Time)
		}
		out = append(out, lt)
		r.logf("layer-wise %v on %s at 90 %%: %s", m, archString(cfg.lwSizes), formatDuration(rep.Time))
	}
	return out, nil
}

// formatDuration formats d with three significant digits.
func formatDuration(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	}
	return fmt.Sprintf("%.3g µs", s*1e6)
}

// speedChart draws the time of every computation against W.
func speedChart(Ws []int, times []map[string]speedTime) ([]byte, error) {
	p := newPlot("time against the number of parameters W (N = samples fixed)", "W", "seconds")
	for i, op := range speedOps {
		var xs, ys []float64
		for k, W := range Ws {
			if t, ok := times[k][op.key]; ok {
				xs = append(xs, float64(W))
				ys = append(ys, t.d.Seconds())
			}
		}
		if err := addLine(p, op.key, i, xs, ys); err != nil {
			return nil, err
		}
		if err := addPoints(p, "", i, xs, ys); err != nil {
			return nil, err
		}
	}
	chart.LogX(p)
	chart.LogY(p)
	p.Legend.Left = true
	return renderPNG([][]*plot.Plot{{p}}, vg.Points(640), vg.Points(480))
}
