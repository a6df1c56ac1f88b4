package repro

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// curveMethod is one saliency of the curves benchmark; sal builds it for a
// seed.
type curveMethod struct {
	key, name string
	sal       func(seed uint64) prune.Saliency
}

var curveMethods = []curveMethod{
	{"magnitude", "magnitude", func(uint64) prune.Saliency { return prune.Magnitude{} }},
	{"obd-exact", "OBD, exact diagonal", func(uint64) prune.Saliency { return prune.OBD{} }},
	{"obd-bl", "OBD, Becker–LeCun diagonal", func(uint64) prune.Saliency { return prune.OBD{Curvature: prune.BeckerLeCun} }},
	{"obd-lm", "OBD, LM diagonal", func(uint64) prune.Saliency { return prune.OBD{Curvature: prune.LevenbergMarquardt} }},
	{"obd-gn", "OBD, Gauss–Newton diagonal", func(uint64) prune.Saliency { return prune.OBD{Curvature: prune.GaussNewton} }},
	{"obd-hutchinson", "OBD, Hutchinson diagonal (100 probes)", func(seed uint64) prune.Saliency {
		return prune.OBD{Curvature: prune.Hutchinson, Src: rand.NewPCG(seed, streamProbes)}
	}},
	{"obs-exact", "OBS, exact H", func(uint64) prune.Saliency { return prune.OBS{} }},
	{"obs-gn", "OBS, Gauss–Newton", func(uint64) prune.Saliency { return prune.OBS{Curvature: prune.GaussNewton} }},
	{"obs-fisher", "OBS, empirical Fisher", func(uint64) prune.Saliency { return prune.OBS{Curvature: prune.Fisher} }},
	{"obs-recursive", "OBS, recursive inverse (α = 10⁻⁴)", func(uint64) prune.Saliency { return prune.OBS{Curvature: prune.Recursive} }},
}

// curveData is one data set of the curves benchmark with its network.
type curveData struct {
	key, title, netDesc string
	train               nn.Data
	net                 *nn.Network
	decay               float64
}

// curveRun is one method's pruning of one data set.
type curveRun struct {
	data    *curveData
	method  curveMethod
	perRnd  int
	start   float64 // E before pruning
	steps   []prune.Step
	stopped string
	issues  int
	failure string
}

const curveSparsity = 0.9

func runCurves(ctx context.Context, r *runCtx) error {
	seed := r.o.Seed
	data, err := curveDatasets(ctx, r, seed)
	if err != nil {
		return err
	}
	var runs []*curveRun
	for _, d := range data {
		W := d.net.NumParams()
		per := 1
		if r.o.Quick {
			per = max(1, int(math.Ceil(0.02*float64(W))))
		}
		for _, m := range curveMethods {
			runs = append(runs, &curveRun{data: d, method: m, perRnd: per})
		}
	}
	r.logf("seed %d; pruning to %.0f %% sparsity without retraining, %d methods", seed, 100*curveSparsity, len(curveMethods))
	err = parallel(ctx, len(runs), func(i int) error {
		cr := runs[i]
		res, err := prune.Run(ctx, cr.data.net, nn.Splits{Train: cr.data.train}, &prune.Settings{
			Method: cr.method.sal(seed), PerRound: cr.perRnd, Sparsity: curveSparsity,
		})
		if err != nil {
			if res == nil || ctx.Err() != nil {
				return fmt.Errorf("repro: curves %s %s: %w", cr.data.key, cr.method.key, err)
			}
			cr.failure = err.Error()
		}
		cr.start = res.Start.Train.Loss
		for _, st := range res.History {
			if !st.Undone {
				cr.steps = append(cr.steps, st)
			}
		}
		cr.stopped = res.Stopped
		cr.issues = len(res.Health.Issues)
		r.logf("%s %s: %d removals, stopped %s, %d issues", cr.data.key, cr.method.key, len(cr.steps), cr.stopped, cr.issues)
		return nil
	})
	if err != nil {
		return err
	}

	csv := newCSV("dataset", "method", "removed", "live", "train_loss", "train_mean_loss", "predicted_dE", "real_dE")
	for _, cr := range runs {
		n := float64(cr.data.n())
		W := cr.data.net.NumParams()
		csv.add(cr.data.key, cr.method.key, 0, W, cr.start, cr.start/n, math.NaN(), math.NaN())
		for i, st := range cr.steps {
			csv.add(cr.data.key, cr.method.key, i+1, st.Live, st.Loss, st.Loss/n, st.Predicted, st.Real)
		}
	}
	if err := r.addCSV(csv); err != nil {
		return err
	}

	var b, summary strings.Builder
	fmt.Fprintf(&b, "# Training loss against weights removed, without retraining\n\n")
	fmt.Fprintf(&b, "Command: `%s`. Seed %d.\n\n", r.command(), seed)
	fmt.Fprintf(&b, "## Setup\n\n")
	for _, d := range data {
		fmt.Fprintf(&b, "- **%s**: %s\n", d.key, d.netDesc)
	}
	grid := "the curvature is rebuilt at the current parameters before every removal (one removal per round)"
	if r.o.Quick {
		grid = "the curvature is built once per round of 2 % of the parameters, OBS downdating its inverse after each removal within a round (quick mode's coarser grid)"
	}
	fmt.Fprintf(&b, "- **Pruning**: `prune.Run` to %.0f %% sparsity, biases prunable, no retraining; %s. OBS moves the remaining parameters by its update; OBD and magnitude only zero the parameter removed. Damping of the dense OBS curvatures 10⁻⁴, raised tenfold while not positive definite (counted under *issues*, with OBD's negative diagonal entries).\n", 100*curveSparsity, grid)
	fmt.Fprintf(&b, "- **Issues**: the exact Hessian is indefinite away from a minimum, which every network is after a few removals without retraining; OBS on it then raises the damping tenfold until H + λI is positive definite, and every such attempt counts as an issue. OBD counts a round whose diagonal has negative entries (exact, Becker–LeCun and Hutchinson diagonals). Hutchinson's diagonal is an estimate from 100 Rademacher probes whose entry q has variance Σ_{j≠q} H_qj²/100: where the off-diagonal curvature is large, entries come out negative, and a negative h_qq gives a negative saliency, so OBD removes that weight first however large it is.\n")
	fmt.Fprintf(&b, "- **Columns**: E/N is the mean training loss; *removed before E/N doubles* counts the removals before the first one that takes E/N above twice its value before pruning; *first removal* gives the ΔE = E_after − E_before predicted by the saliency and the real one; Σ over the first quarter sums both over the first ⌈W/4⌉ removals. OBD predicts ½h_qq w_q², OBS w_q²/(2[H⁻¹]_qq), magnitude nothing.\n\n")
	for _, d := range data {
		W := d.net.NumParams()
		fmt.Fprintf(&b, "## %s (%s, W = %d)\n\n", d.key, d.net.Arch(), W)
		t := newMDTable("method", ">removed before E/N doubles", ">E/N, 0 removed", ">25 %", ">50 %", ">75 %", ">90 %", ">first removal: predicted / real ΔE", ">Σ first quarter: predicted / real", ">issues")
		for _, cr := range runs {
			if cr.data != d {
				continue
			}
			n := float64(d.n())
			at := func(f float64) string {
				k := int(math.Ceil(f * float64(W)))
				if k > len(cr.steps) {
					return "—"
				}
				return sci(cr.steps[k-1].Loss / n)
			}
			doubles := len(cr.steps)
			for i, st := range cr.steps {
				if st.Loss > 2*cr.start {
					doubles = i
					break
				}
			}
			first := "—"
			if len(cr.steps) > 0 {
				first = sci(cr.steps[0].Predicted) + " / " + sci(cr.steps[0].Real)
			}
			q := min(len(cr.steps), int(math.Ceil(float64(W)/4)))
			var sp, sr float64
			for _, st := range cr.steps[:q] {
				sp += st.Predicted
				sr += st.Real
			}
			issues := fmt.Sprint(cr.issues)
			if cr.failure != "" {
				issues += fmt.Sprintf(" (stopped after %d removals: %s)", len(cr.steps), cr.failure)
			}
			t.add(cr.method.name, fmt.Sprint(doubles), sci(cr.start/n), at(0.25), at(0.5), at(0.75), at(0.9), first,
				sci(sp)+" / "+sci(sr), issues)
		}
		b.WriteString(t.String() + "\n")
		fmt.Fprintf(&summary, "%s:\n\n%s\n", d.key, t.String())
		fmt.Fprintf(&b, "![training loss against weights removed](%s)\n\n", r.fileName("-"+d.key+".png"))
		png, err := curveChart(d, runs)
		if err != nil {
			return err
		}
		r.add("-"+d.key+".png", png)
	}
	fmt.Fprintf(&b, "## Predicted against real ΔE (OBS)\n\n")
	fmt.Fprintf(&b, "Every removal of the four OBS curvatures, predicted ΔE against the real one on logarithmic axes; the line is equality. Only removals where both are positive can be drawn: ")
	var neg []string
	for _, cr := range runs {
		if !strings.HasPrefix(cr.method.key, "obs") {
			continue
		}
		k := 0
		for _, st := range cr.steps {
			if !(st.Predicted > 0 && st.Real > 0) {
				k++
			}
		}
		neg = append(neg, fmt.Sprintf("%s %s %d of %d", cr.data.key, cr.method.key, k, len(cr.steps)))
	}
	fmt.Fprintf(&b, "the others are %s. A removal made away from a minimum (after earlier removals, without retraining) can lower the loss, and the quadratic model is exact only for a quadratic E.\n\n", strings.Join(neg, ", "))
	fmt.Fprintf(&b, "![predicted against real ΔE](%s)\n", r.fileName("-dE.png"))
	png, err := curveDEChart(data, runs)
	if err != nil {
		return err
	}
	r.add("-dE.png", png)
	r.addMarkdown(b.String())
	r.rep.Summary = summary.String()
	return nil
}

func (d *curveData) n() int {
	n, _ := d.train.X.Dims()
	return n
}

// curveDatasets trains the networks of the three data sets.
func curveDatasets(ctx context.Context, r *runCtx, seed uint64) ([]*curveData, error) {
	mc := r.monksConfig()
	sineN, spiralsN, sineH, spiralsH, iters, restarts := 0, 0, 10, 20, 5000, 3
	if r.o.tiny {
		sineN, spiralsN, sineH, spiralsH, iters, restarts = 40, 40, 4, 4, 300, 1
	}

	// MONK-1 as in the monks benchmark.
	m1 := datasets.Monks(1, seed)
	mtr := m1.Train
	mspec := fitSpec{sizes: []int{17, 3, 1}, acts: []nn.Activation{nn.Tanh, nn.Sigmoid}, loss: nn.MSE, iters: mc.iters, restarts: mc.restarts}
	mspec.decay = mc.decays[0]
	if len(mc.decays) > 1 {
		var err error
		if mspec.decay, _, err = selectDecay(ctx, mspec, mtr, seed, mc); err != nil {
			return nil, err
		}
	}
	mnet, err := fit(ctx, mspec, mtr, seed)
	if err != nil {
		return nil, err
	}

	sn, err := datasets.Sine(sineN, 0, seed)
	if err != nil {
		return nil, err
	}
	str := sn.Train
	sspec := fitSpec{sizes: []int{1, sineH, 1}, acts: []nn.Activation{nn.Tanh, nn.Linear}, loss: nn.MSE, decay: 1e-4, iters: iters, restarts: restarts}
	snet, err := fit(ctx, sspec, str, seed)
	if err != nil {
		return nil, err
	}

	sp, err := datasets.Spirals(spiralsN)
	if err != nil {
		return nil, err
	}
	ptr := sp.Train
	pspec := fitSpec{sizes: []int{2, spiralsH, spiralsH, 1}, acts: []nn.Activation{nn.Tanh, nn.Tanh, nn.Sigmoid}, loss: nn.BCE, decay: 1e-4, iters: iters, restarts: restarts}
	pnet, err := fit(ctx, pspec, ptr, seed)
	if err != nil {
		return nil, err
	}

	acc := func(net *nn.Network, d nn.Data) float64 { return net.Evaluate(d.X, d.Y).Accuracy }
	out := []*curveData{
		{key: "monks1", title: "MONK-1", train: mtr, net: mnet, decay: mspec.decay,
			netDesc: fmt.Sprintf("MONK-1, training set generated with seed %d (124 examples); 17-3-1, tanh hidden, sigmoid output, squared error; trained as in the monks benchmark (L-BFGS, λ = %g by cross-validation, best of %d starts): training accuracy %.1f %%.",
				seed, mspec.decay, mc.restarts, 100*acc(mnet, mtr))},
		{key: "sine", title: "noisy sine", train: str, net: snet, decay: sspec.decay,
			netDesc: fmt.Sprintf("y = sin x + N(0, 0.1²), %d training samples drawn with seed %d; 1-%d-1, tanh hidden, linear output, squared error; L-BFGS ≤ %d iterations on J = E/N + ½λ‖θ‖², λ = 10⁻⁴, best of %d starts: training E/N = %s (noise floor ½·0.1² = 0.005).",
				sn.Train.Len(), seed, sineH, iters, restarts, sci(snet.Evaluate(str.X, str.Y).MeanLoss))},
		{key: "spirals", title: "two spirals", train: ptr, net: pnet, decay: pspec.decay,
			netDesc: fmt.Sprintf("two spirals, %d training points; 2-%d-%d-1, tanh hidden, sigmoid output, binary cross-entropy; L-BFGS ≤ %d iterations, λ = 10⁻⁴, best of %d starts: training accuracy %.1f %%, E/N = %s.",
				sp.Train.Len(), spiralsH, spiralsH, iters, restarts, 100*acc(pnet, ptr), sci(pnet.Evaluate(ptr.X, ptr.Y).MeanLoss))},
	}
	for _, d := range out {
		r.logf("%s: %s, %d parameters: %s", d.key, d.net.Arch(), d.net.NumParams(), d.netDesc)
	}
	return out, nil
}

// curveChart draws the mean training loss against the weights removed for
// every method on the data set d.
func curveChart(d *curveData, runs []*curveRun) ([]byte, error) {
	p := newPlot(fmt.Sprintf("%s (%s, W = %d): no retraining", d.title, d.net.Arch(), d.net.NumParams()), "parameters removed", "training loss E/N")
	n := float64(d.n())
	i := 0
	for _, cr := range runs {
		if cr.data != d {
			continue
		}
		xs := []float64{0}
		ys := []float64{cr.start / n}
		for k, st := range cr.steps {
			xs = append(xs, float64(k+1))
			ys = append(ys, st.Loss/n)
		}
		k := i
		if strings.HasPrefix(cr.method.key, "obs") {
			k += len(chart.Palette) // dashed
		}
		if err := addLine(p, cr.method.key, k, xs, chart.AtLeast(ys, 1e-12)); err != nil {
			return nil, err
		}
		i++
	}
	chart.LogY(p)
	p.Legend.Top = false
	return renderPNG([][]*plot.Plot{{p}}, vg.Points(720), vg.Points(480))
}

// curveDEChart draws the predicted against the real ΔE of every OBS
// removal, one panel per data set.
func curveDEChart(data []*curveData, runs []*curveRun) ([]byte, error) {
	row := make([]*plot.Plot, len(data))
	for k, d := range data {
		p := newPlot(d.title, "predicted ΔE", "real ΔE")
		lo, hi := math.Inf(1), math.Inf(-1)
		i := 0
		for _, cr := range runs {
			if cr.data != d || !strings.HasPrefix(cr.method.key, "obs") {
				continue
			}
			var xs, ys []float64
			for _, st := range cr.steps {
				if st.Predicted > 0 && st.Real > 0 {
					xs = append(xs, st.Predicted)
					ys = append(ys, st.Real)
					lo = math.Min(lo, math.Min(st.Predicted, st.Real))
					hi = math.Max(hi, math.Max(st.Predicted, st.Real))
				}
			}
			if err := addPoints(p, cr.method.key, i, xs, ys); err != nil {
				return nil, err
			}
			i++
		}
		if lo < hi {
			l, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
			if err != nil {
				return nil, err
			}
			p.Add(l)
			chart.LogX(p)
			chart.LogY(p)
		}
		p.Legend.Left = true
		row[k] = p
	}
	return renderPNG([][]*plot.Plot{row}, vg.Points(1100), vg.Points(400))
}
