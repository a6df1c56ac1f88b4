package repro

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// xorMethods are the methods of the xor benchmark.
var xorMethods = []monksMethod{
	{"magnitude", "magnitude", prune.Magnitude{}},
	{"obd-exact", "OBD (exact diagonal)", prune.OBD{}},
	{"obd-lm", "OBD (LM diagonal)", prune.OBD{Curvature: prune.LevenbergMarquardt}},
	{"obs", "OBS (exact H)", prune.OBS{}},
	{"obs-gn", "OBS (Gauss–Newton)", prune.OBS{Curvature: prune.GaussNewton}},
}

// The training of the XOR networks.
const (
	xorDecay = 1e-3
	xorIters = 2000
)

// xorData returns the four XOR patterns.
func xorData() nn.Data {
	return nn.Data{
		X: mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1}),
		Y: mat.NewDense(4, 1, []float64{0, 1, 1, 0}),
	}
}

// xorCase is one seed of the benchmark.
type xorCase struct {
	seed uint64
	net  *nn.Network
	fits bool
	// Per method, in the order of xorMethods: the removals made before
	// XOR first broke, the name of the first parameter removed, and
	// whether some single removal of that kind keeps XOR.
	kept     []int
	first    []string
	possible []bool
	// Per method: whether retraining after the first removal, the mask
	// fixed, fits XOR again; and whether that holds after removing some
	// parameter, zeroed, for the network.
	retrainFits     []bool
	retrainPossible bool
}

func runXOR(ctx context.Context, r *runCtx) error {
	n := 100
	switch {
	case r.o.tiny:
		n = 6
	case r.o.Quick:
		n = 20
	}
	seeds := r.seeds(n)
	r.logf("seeds %s; 2-2-1 tanh/sigmoid, mse, L-BFGS ≤ %d iterations, λ = %g", seedRange(seeds), xorIters, xorDecay)
	cases := make([]*xorCase, len(seeds))
	err := parallel(ctx, len(seeds), func(i int) error {
		c, err := xorRun(ctx, seeds[i])
		cases[i] = c
		return err
	})
	if err != nil {
		return err
	}

	csv := newCSV("seed", "fits", "method", "kept_removals", "first_removed", "first_keeps", "some_removal_keeps",
		"first_retrained_fits", "some_retrained_fits")
	fitted := 0
	for _, c := range cases {
		if !c.fits {
			csv.add(c.seed, false, "", 0, "", false, false, false, false)
			continue
		}
		fitted++
		for k, m := range xorMethods {
			csv.add(c.seed, true, m.key, c.kept[k], c.first[k], c.kept[k] >= 1, c.possible[k], c.retrainFits[k], c.retrainPossible)
		}
	}
	if err := r.addCSV(csv); err != nil {
		return err
	}
	r.logf("%d of %d seeds fit XOR", fitted, len(seeds))

	t := newMDTable("method", ">first removal keeps XOR", ">some removal of this kind keeps XOR", ">first removal + retraining fits XOR",
		">… where some removal + retraining does", ">first 2 keep", ">first 3 keep", ">removals before XOR breaks")
	frac := func(k, n int) string {
		if n == 0 {
			return "—"
		}
		return fmt.Sprintf("%d / %d (%.0f %%)", k, n, 100*float64(k)/float64(n))
	}
	for k, m := range xorMethods {
		first, poss, rfit, rposs, rposFit, two, three := 0, 0, 0, 0, 0, 0, 0
		var kept []float64
		for _, c := range cases {
			if !c.fits {
				continue
			}
			if c.kept[k] >= 1 {
				first++
			}
			if c.possible[k] {
				poss++
			}
			if c.retrainFits[k] {
				rfit++
			}
			if c.retrainPossible {
				rposs++
				if c.retrainFits[k] {
					rposFit++
				}
			}
			if c.kept[k] >= 2 {
				two++
			}
			if c.kept[k] >= 3 {
				three++
			}
			kept = append(kept, float64(c.kept[k]))
		}
		t.add(m.name, frac(first, fitted), frac(poss, fitted), frac(rfit, fitted), frac(rposFit, rposs), frac(two, fitted), frac(three, fitted), pm(kept, 2))
	}

	show := xorShowcase(cases)
	var b strings.Builder
	fmt.Fprintf(&b, "# XOR: which weights each method removes (Hassibi & Stork 1993)\n\n")
	fmt.Fprintf(&b, "Command: `%s`. Seeds %s.\n\n", r.command(), seedRange(seeds))
	fmt.Fprintf(&b, "## Setup\n\n")
	fmt.Fprintf(&b, "- **Network**: 2-2-1, tanh hidden units, sigmoid output, squared error; 9 parameters (6 weights, 3 biases), all prunable.\n")
	fmt.Fprintf(&b, "- **Training**: each seed initialises the network (Glorot uniform) and trains it with full-batch L-BFGS (≤ %d iterations) on J = E/4 + ½λ‖θ‖², λ = %g, on the four patterns. The weight decay gives a non-degenerate minimum; a network fits when all four outputs fall on the right side of 0.5. **%d of %d seeds fit**; the others are left out.\n", xorIters, xorDecay, fitted, len(seeds))
	fmt.Fprintf(&b, "- **Pruning**: one parameter at a time without retraining, the curvature rebuilt at the current parameters before every removal (`prune.Run`, one removal per round), until XOR breaks. OBS moves the other parameters by its update; OBD and magnitude only zero the parameter.\n")
	fmt.Fprintf(&b, "- **Columns**: *first removal keeps XOR*: the network still computes XOR after the method's first removal, without retraining. *some removal of this kind keeps XOR*: the networks where removing some parameter the method's way (zeroing it for magnitude and OBD; with the OBS update on the method's own curvature for OBS) keeps XOR, so that a correct choice exists. *first removal + retraining fits XOR*: after the method's first removal the network is retrained with that parameter held at zero (L-BFGS, same objective) and fits XOR again, so the method did not remove a weight the function needs (Hassibi & Stork's \"correct weight\"); *… where some removal + retraining does* counts this over the networks where zeroing some parameter and retraining fits XOR. *first k keep*: XOR survives k successive removals without retraining. *removals before XOR breaks*: mean ± sd.\n\n")
	fmt.Fprintf(&b, "## Results\n\n%s\n", t.String())
	fmt.Fprintf(&b, "The paper reports that, of OBS, OBD and magnitude pruning, only OBS deleted the correct weights in every case. Without retraining, only a removal that moves the other weights can keep XOR in a network this small; with retraining, the comparison is whether the weight removed was one the function needs. ")
	fmt.Fprintf(&b, "The networks and training differ from the paper's (its XOR network and training are not described in enough detail to repeat them): we use weight decay to reach a non-degenerate minimum, where the quadratic model of OBS is valid; on a network fitted exactly without decay the Hessian is singular at the minimum and the model is poor.\n\n")
	if show != nil {
		fmt.Fprintf(&b, "## One case: seed %d\n\n", show.seed)
		fmt.Fprintf(&b, "The first seed on which OBS keeps XOR and magnitude pruning breaks it (or the first that fits). The first chart shows every parameter's saliency per method, relative to the method's largest, with the parameter removed first in red; the second the network's output over the plane before pruning and after each method's first removal.\n\n")
		st := newMDTable("method", "first removed", "keeps XOR")
		for k, m := range xorMethods {
			keeps := "no"
			if show.kept[k] >= 1 {
				keeps = "yes"
			}
			st.add(m.name, show.first[k], keeps)
		}
		b.WriteString(st.String() + "\n")
		fmt.Fprintf(&b, "![saliencies](%s)\n\n![outputs](%s)\n", r.fileName("-saliency.png"), r.fileName("-surface.png"))
		sal, err := xorSaliencyChart(ctx, show)
		if err != nil {
			return err
		}
		surf, err := xorSurfaceChart(ctx, show)
		if err != nil {
			return err
		}
		r.addMarkdown(b.String())
		r.add("-saliency.png", sal)
		r.add("-surface.png", surf)
	} else {
		r.addMarkdown(b.String())
	}
	r.rep.Summary = t.String()
	return nil
}

// xorRun trains the network of seed and prunes it with every method.
func xorRun(ctx context.Context, seed uint64) (*xorCase, error) {
	d := xorData()
	net, err := nn.New([]int{2, 2, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.MSE)
	if err != nil {
		return nil, err
	}
	net.Init(rand.NewPCG(seed, streamInit))
	if _, err := nn.Train(ctx, net, d, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: xorIters, WeightDecay: xorDecay}); err != nil {
		return nil, err
	}
	c := &xorCase{seed: seed, net: net, fits: misclassified(net, d) == 0}
	if !c.fits {
		return c, nil
	}
	for _, m := range xorMethods {
		res, err := prune.Run(ctx, net, nn.Splits{Train: d}, &prune.Settings{
			Method: m.sal, PerRound: 1, ErrorRise: prune.NoRise, ErrorMeasure: prune.Misclassification,
		})
		if err != nil && (res == nil || ctx.Err() != nil) {
			return nil, err
		}
		kept, first := 0, ""
		for _, st := range res.History {
			if st.Step == 1 {
				first = st.Name
			}
			if !st.Undone {
				kept++
			}
		}
		poss, err := someRemovalKeeps(ctx, net, m.sal)
		if err != nil {
			return nil, err
		}
		one, err := prune.Run(ctx, net, nn.Splits{Train: d}, &prune.Settings{Method: m.sal, PerRound: 1, MaxRounds: 1})
		if err != nil {
			return nil, err
		}
		rfit, err := xorRetrainFits(ctx, one.Net)
		if err != nil {
			return nil, err
		}
		c.kept = append(c.kept, kept)
		c.first = append(c.first, first)
		c.possible = append(c.possible, poss)
		c.retrainFits = append(c.retrainFits, rfit)
	}
	for q := 0; q < net.NumParams() && !c.retrainPossible; q++ {
		z := net.Clone()
		z.Prune(q)
		if c.retrainPossible, err = xorRetrainFits(ctx, z); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// xorRetrainFits retrains a copy of net with its mask fixed, as the
// networks were trained, and reports whether it fits XOR.
func xorRetrainFits(ctx context.Context, net *nn.Network) (bool, error) {
	d := xorData()
	c := net.Clone()
	if _, err := nn.Train(ctx, c, d, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: xorIters, WeightDecay: xorDecay}); err != nil {
		return false, err
	}
	return misclassified(c, d) == 0, nil
}

// someRemovalKeeps reports whether removing some parameter of net keeps
// XOR: by zeroing it, or, for OBS, by the OBS update on the method's
// curvature.
func someRemovalKeeps(ctx context.Context, net *nn.Network, sal prune.Saliency) (bool, error) {
	d := xorData()
	obs, isOBS := sal.(prune.OBS)
	if !isOBS {
		for q := 0; q < net.NumParams(); q++ {
			c := net.Clone()
			c.Prune(q)
			if misclassified(c, d) == 0 {
				return true, nil
			}
		}
		return false, nil
	}
	pr := hessian.Live(net, d.X, d.Y)
	hinv, _, err := obs.Inverse(ctx, pr, nil)
	if err != nil {
		return false, err
	}
	w := make([]float64, len(pr.Params))
	for i, q := range pr.Params {
		w[i] = net.RawParams()[q]
	}
	for i, q := range pr.Params {
		delta, _, err := prune.OBSSet(hinv, w, []int{i})
		if err != nil {
			continue
		}
		c := net.Clone()
		wi := append([]float64(nil), w...)
		floats.Add(wi, delta)
		for j, qj := range pr.Params {
			c.RawParams()[qj] = wi[j]
		}
		c.Prune(q)
		if misclassified(c, d) == 0 {
			return true, nil
		}
	}
	return false, nil
}

// xorShowcase returns the first fitted case on which OBS keeps XOR and
// magnitude pruning breaks it, or else the first fitted case.
func xorShowcase(cases []*xorCase) *xorCase {
	obs, mag := -1, -1
	for k, m := range xorMethods {
		switch m.key {
		case "obs":
			obs = k
		case "magnitude":
			mag = k
		}
	}
	for _, c := range cases {
		if c.fits && c.kept[obs] >= 1 && c.kept[mag] == 0 {
			return c
		}
	}
	for _, c := range cases {
		if c.fits {
			return c
		}
	}
	return nil
}

// xorSaliencyChart draws the saliencies of every method on the case's
// network.
func xorSaliencyChart(ctx context.Context, c *xorCase) ([]byte, error) {
	d := xorData()
	names := make([]string, c.net.NumParams())
	for q := range names {
		names[q] = c.net.ParamAt(q).String()
	}
	row := make([]*plot.Plot, len(xorMethods))
	for k, m := range xorMethods {
		sal, err := prune.Scores(ctx, c.net, d.X, d.Y, &prune.Settings{Method: m.sal})
		if err != nil {
			return nil, err
		}
		top := 0.0
		for _, s := range sal {
			top = math.Max(top, math.Abs(s))
		}
		var xs, ys, cx, cy []float64
		for q, s := range sal {
			v := math.Max(math.Abs(s)/top, 1e-8)
			if names[q] == c.first[k] {
				cx, cy = append(cx, float64(q)), append(cy, v)
			} else {
				xs, ys = append(xs, float64(q)), append(ys, v)
			}
		}
		keeps := "breaks XOR"
		if c.kept[k] >= 1 {
			keeps = "keeps XOR"
		}
		p := newPlot(fmt.Sprintf("%s: removes %s, %s", m.name, c.first[k], keeps), "", "|saliency| / largest")
		p.Title.TextStyle.Font.Size = vg.Points(9)
		if err := addPoints(p, "", 0, xs, ys); err != nil {
			return nil, err
		}
		s, err := plotter.NewScatter(xyPoints(cx, cy))
		if err != nil {
			return nil, err
		}
		s.Shape = draw.CircleGlyph{}
		s.Radius = vg.Points(5)
		s.Color = chart.Red
		p.Add(s)
		chart.LogY(p)
		p.Y.Min *= 0.7 // room below the least salient parameter
		p.NominalX(names...)
		p.X.Tick.Label.Rotation = math.Pi / 3
		p.X.Tick.Label.XAlign = draw.XRight
		row[k] = p
	}
	grid := [][]*plot.Plot{row[:3], row[3:]}
	return renderPNG(grid, vg.Points(900), vg.Points(560))
}

// xorSurfaceChart draws the output of the case's network over the plane
// before pruning and after each method's first removal.
func xorSurfaceChart(ctx context.Context, c *xorCase) ([]byte, error) {
	d := xorData()
	nets := []*nn.Network{c.net}
	titles := []string{"trained"}
	for k, m := range xorMethods {
		res, err := prune.Run(ctx, c.net, nn.Splits{Train: d}, &prune.Settings{Method: m.sal, PerRound: 1, MaxRounds: 1})
		if err != nil {
			return nil, err
		}
		nets = append(nets, res.Net)
		keeps := "breaks"
		if c.kept[k] >= 1 {
			keeps = "keeps"
		}
		titles = append(titles, fmt.Sprintf("%s −%s (%s)", m.key, c.first[k], keeps))
	}
	plots := make([]*plot.Plot, len(nets))
	pal := palette.Heat(16, 1)
	for i, net := range nets {
		g := newSurface(net, -0.5, 1.5, 41)
		p := plot.New()
		p.Title.Text = titles[i]
		p.Title.TextStyle.Font.Size = vg.Points(9)
		p.X.Label.Text, p.Y.Label.Text = "x₁", "x₂"
		h := plotter.NewHeatMap(g, pal)
		h.Min, h.Max = 0, 1
		p.Add(h)
		for k := 0; k < 4; k++ {
			pt := xyPoints([]float64{d.X.At(k, 0)}, []float64{d.X.At(k, 1)})
			s, err := plotter.NewScatter(pt)
			if err != nil {
				return nil, err
			}
			s.Radius = vg.Points(5)
			if d.Y.At(k, 0) == 1 {
				s.Shape = draw.CircleGlyph{}
			} else {
				s.Shape = draw.CrossGlyph{}
			}
			p.Add(s)
		}
		plots[i] = p
	}
	// The heat maps fill their plots: no margins.
	grid := [][]*plot.Plot{plots[:3], plots[3:]}
	return chart.Render(grid, vg.Points(780), vg.Points(540))
}

// surface is the output of a network with two inputs on a square grid.
type surface struct {
	xs []float64
	z  *mat.Dense
}

func newSurface(net *nn.Network, lo, hi float64, n int) surface {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	X := mat.NewDense(n*n, 2, nil)
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			X.Set(r*n+c, 0, xs[c])
			X.Set(r*n+c, 1, xs[r])
		}
	}
	out := net.Forward(X)
	return surface{xs: xs, z: mat.NewDense(n, n, out.RawMatrix().Data)}
}

func (s surface) Dims() (c, r int)   { return len(s.xs), len(s.xs) }
func (s surface) Z(c, r int) float64 { return s.z.At(r, c) }
func (s surface) X(c int) float64    { return s.xs[c] }
func (s surface) Y(r int) float64    { return s.xs[r] }
func xyPoints(xs, ys []float64) plotter.XYs {
	pts := make(plotter.XYs, len(xs))
	for i := range xs {
		pts[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	return pts
}
