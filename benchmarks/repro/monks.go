package repro

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// monksProblem is one MONK's problem and the hidden units of its network.
type monksProblem struct {
	problem, hidden int
}

// The networks of Thrun et al. and Hassibi and Stork.
var monksProblems = []monksProblem{{1, 3}, {2, 2}, {3, 2}}

// monksPublished holds Hassibi and Stork's OBS results: weights left, and
// train and test accuracy in percent.
var monksPublished = map[int][3]string{1: {"14", "100", "100"}, 2: {"15", "100", "100"}, 3: {"4", "93.4", "97.2"}}

// monksMethod is one pruning method of the benchmark.
type monksMethod struct {
	key, name string
	sal       prune.Saliency
}

var monksMethods = []monksMethod{
	{"obs", "OBS (exact H)", prune.OBS{}},
	{"obd-lm", "OBD (LM diagonal)", prune.OBD{Curvature: prune.LevenbergMarquardt}},
	{"obd-exact", "OBD (exact diagonal)", prune.OBD{}},
	{"magnitude", "magnitude", prune.Magnitude{}},
}

// monksConfig holds the sizes of a monks run.
type monksConfig struct {
	seeds        []uint64
	problems     []monksProblem
	decays       []float64 // candidate weight decays λ, chosen by cross-validation
	folds        int
	restarts     int
	iters        int // L-BFGS iterations of training
	retrainIters int // L-BFGS iterations of each retraining
}

func (r *runCtx) monksConfig() monksConfig {
	c := monksConfig{
		seeds:        r.seeds(10),
		problems:     monksProblems,
		decays:       []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2},
		folds:        5,
		restarts:     5,
		iters:        3000,
		retrainIters: 500,
	}
	switch {
	case r.o.tiny:
		c.seeds = r.seeds(2)
		c.problems = []monksProblem{{1, 3}, {3, 2}}
		c.decays = []float64{1e-3}
		c.restarts = 1
		c.iters = 300
		c.retrainIters = 30
	case r.o.Quick:
		c.seeds = r.seeds(3)
	}
	return c
}

// monksRun is the outcome of one network pruned by one method.
type monksRun struct {
	split    string
	problem  int
	seed     uint64
	decay    float64
	method   string // a monksMethod key, or "trained"
	retrain  bool
	before   int // parameters before pruning
	left     int // live parameters after
	trainAcc float64
	testAcc  float64
	stopped  string
	// solved reports whether the trained network, before pruning, fits a
	// training set whose labels follow the rule; it is true when the
	// training set has noisy labels (MONK-3), which no criterion of this
	// kind separates from a poor fit.
	solved bool
	noisy  bool // the training set has labels that contradict the rule
}

// monksJob is the work of one split, problem and seed.
type monksJob struct {
	split string
	prob  monksProblem
	seed  uint64
	data  *nn.Splits
	runs  []monksRun
	cvErr []int // cross-validation errors per decay
}

func runMonks(ctx context.Context, r *runCtx) error {
	cfg := r.monksConfig()
	splits := []string{"generated"}
	if r.o.MonksDir != "" {
		splits = append(splits, "uci")
	}
	r.logf("seeds %s; problems %v; λ grid %v by %d-fold cross-validation, %d restarts, L-BFGS ≤ %d iterations; retraining ≤ %d iterations",
		seedRange(cfg.seeds), cfg.problems, cfg.decays, cfg.folds, cfg.restarts, cfg.iters, cfg.retrainIters)

	var jobs []*monksJob
	for _, split := range splits {
		for _, p := range cfg.problems {
			var uci *nn.Splits
			if split == "uci" {
				var err error
				if uci, err = datasets.LoadMonksDir(r.o.MonksDir, p.problem); err != nil {
					return fmt.Errorf("repro: monks: %w", err)
				}
			}
			for _, seed := range cfg.seeds {
				d := uci
				if d == nil {
					d = datasets.Monks(p.problem, seed)
				}
				jobs = append(jobs, &monksJob{split: split, prob: p, seed: seed, data: d})
			}
		}
	}
	err := parallel(ctx, len(jobs), func(i int) error {
		j := jobs[i]
		if err := j.run(ctx, cfg); err != nil {
			return fmt.Errorf("repro: monks %s MONK-%d seed %d: %w", j.split, j.prob.problem, j.seed, err)
		}
		t := j.runs[0]
		r.logf("%s MONK-%d seed %d: λ %g, trained %.1f/%.1f %%; left %s", j.split, j.prob.problem, j.seed, t.decay,
			100*t.trainAcc, 100*t.testAcc, leftSummary(j.runs[1:]))
		return nil
	})
	if err != nil {
		return err
	}

	csv := newCSV("split", "problem", "seed", "decay", "solved", "method", "retrain", "weights_before", "weights_left",
		"train_acc", "test_acc", "stopped")
	var runs []monksRun
	for _, j := range jobs {
		for _, ru := range j.runs {
			csv.add(ru.split, ru.problem, ru.seed, ru.decay, ru.solved, ru.method, ru.retrain, ru.before, ru.left,
				ru.trainAcc, ru.testAcc, ru.stopped)
			runs = append(runs, ru)
		}
	}
	if err := r.addCSV(csv); err != nil {
		return err
	}

	var md strings.Builder
	summary := monksMarkdown(&md, r, cfg, splits, jobs, runs)
	r.addMarkdown(md.String())
	r.rep.Summary = summary
	for _, split := range splits {
		png, err := monksChart(split, cfg, runs)
		if err != nil {
			return err
		}
		r.add("-"+split+".png", png)
	}
	return nil
}

// leftSummary lists the parameters left by every run, for the log.
func leftSummary(runs []monksRun) string {
	parts := make([]string, len(runs))
	for i, ru := range runs {
		rt := ""
		if ru.retrain {
			rt = "+rt"
		}
		parts[i] = fmt.Sprintf("%s%s %d", ru.method, rt, ru.left)
	}
	return strings.Join(parts, ", ")
}

// run trains the job's network and prunes it with every method.
func (j *monksJob) run(ctx context.Context, cfg monksConfig) error {
	tr := j.data.Train
	te := j.data.Test
	spec := fitSpec{
		sizes: []int{17, j.prob.hidden, 1}, acts: []nn.Activation{nn.Tanh, nn.Sigmoid}, loss: nn.MSE,
		iters: cfg.iters, restarts: cfg.restarts,
	}
	decay := cfg.decays[0]
	if len(cfg.decays) > 1 {
		var err error
		decay, j.cvErr, err = selectDecay(ctx, spec, tr, j.seed, cfg)
		if err != nil {
			return err
		}
	}
	spec.decay = decay
	net, err := fit(ctx, spec, tr, j.seed)
	if err != nil {
		return err
	}
	noise := monksRuleErrors(j.prob.problem, tr)
	base := monksRun{split: j.split, problem: j.prob.problem, seed: j.seed, decay: decay, before: net.NumParams(),
		solved: noise > 0 || misclassified(net, tr) == 0, noisy: noise > 0}
	rec := func(method string, retrain bool, n *nn.Network, stopped string) {
		ru := base
		ru.method, ru.retrain, ru.left, ru.stopped = method, retrain, n.NumLive(), stopped
		ru.trainAcc = n.Evaluate(tr.X, tr.Y).Accuracy
		ru.testAcc = n.Evaluate(te.X, te.Y).Accuracy
		j.runs = append(j.runs, ru)
	}
	rec("trained", false, net, "")
	retrain := &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: cfg.retrainIters, WeightDecay: decay}
	for _, m := range monksMethods {
		for _, rt := range []*nn.TrainSettings{nil, retrain} {
			// The saliencies use the curvature of the objective the
			// network was trained on, with its weight decay.
			res, err := prune.Run(ctx, net, nn.Splits{Train: tr}, &prune.Settings{
				Method: m.sal, PerRound: 1, ErrorRise: prune.NoRise, ErrorMeasure: prune.Misclassification,
				WeightDecay: decay, Retrain: rt, RetrainRescues: true,
			})
			if err != nil && (res == nil || ctx.Err() != nil) {
				return err
			}
			rec(m.key, rt != nil, res.Net, res.Stopped)
		}
	}
	return nil
}

// monksRuleErrors returns the number of examples of d whose label differs
// from the rule of the problem: the label noise of the split.
func monksRuleErrors(problem int, d nn.Data) int {
	sizes := [6]int{3, 3, 2, 3, 4, 2}
	n, _ := d.X.Dims()
	errs := 0
	for i := range n {
		row := d.X.RawRowView(i)
		var a [6]int
		off := 0
		for k, size := range sizes {
			for v := range size {
				if row[off+v] == 1 {
					a[k] = v + 1
				}
			}
			off += size
		}
		if datasets.MonksRule(problem, a) != (d.Y.At(i, 0) >= 0.5) {
			errs++
		}
	}
	return errs
}

// selectDecay returns the weight decay of cfg.decays of least
// cross-validated misclassification on the training data, the larger on
// ties, and the errors of every decay. The folds are drawn from the seed.
func selectDecay(ctx context.Context, spec fitSpec, tr nn.Data, seed uint64, cfg monksConfig) (float64, []int, error) {
	n, _ := tr.X.Dims()
	perm := rand.New(rand.NewPCG(seed, streamFolds)).Perm(n)
	errs := make([]int, len(cfg.decays))
	for k, d := range cfg.decays {
		s := spec
		s.decay = d
		for f := 0; f < cfg.folds; f++ {
			var in, out []int
			for i, p := range perm {
				if i%cfg.folds == f {
					out = append(out, p)
				} else {
					in = append(in, p)
				}
			}
			slices.Sort(in)
			slices.Sort(out)
			net, err := fit(ctx, s, subset(tr, in), seed)
			if err != nil {
				return 0, nil, err
			}
			errs[k] += misclassified(net, subset(tr, out))
		}
	}
	best := 0
	for k := range errs {
		if errs[k] <= errs[best] {
			best = k
		}
	}
	return cfg.decays[best], errs, nil
}

// monksMarkdown writes the Markdown file and returns the summary table.
func monksMarkdown(b *strings.Builder, r *runCtx, cfg monksConfig, splits []string, jobs []*monksJob, runs []monksRun) string {
	extra := []string{}
	if r.o.MonksDir != "" {
		extra = append(extra, "--monks-dir "+r.o.MonksDir)
	}
	fmt.Fprintf(b, "# MONK's problems: OBS, OBD and magnitude pruning (Hassibi & Stork 1993)\n\n")
	fmt.Fprintf(b, "Command: `%s`. Seeds %s (%d per problem and split).\n\n", r.command(extra...), seedRange(cfg.seeds), len(cfg.seeds))
	fmt.Fprintf(b, "## Setup\n\n")
	fmt.Fprintf(b, "- **Networks**: 17-3-1 for MONK-1 (58 parameters with biases), 17-2-1 for MONK-2 and MONK-3 (39); tanh hidden units, sigmoid output, squared error ℓ = ½(y−t)², inputs one-hot coded (17). An output ≥ 0.5 is class 1.\n")
	fmt.Fprintf(b, "- **Data**: `generated` draws the training set of each seed from the 432-example domain by the rule (124 / 169 / 122 examples, 6 labels flipped for MONK-3; `datasets.Monks`), and tests on the whole domain; `uci` uses the original files (the same split for every seed, so only the initialisations and folds vary).\n")
	fmt.Fprintf(b, "- **Training**: full-batch L-BFGS (≤ %d iterations) on J = E/N + ½λ‖θ‖², the best of %d initialisations by J. λ is chosen per problem and seed from {%s} by %d-fold cross-validation on the training set (least held-out misclassification, the larger λ on ties); the test set is never used for a choice. Weight decay gives MONK-3 a network that does not fit its 6 noisy labels, and makes the minimum of every problem non-degenerate, which the Hessian methods assume.\n",
		cfg.iters, cfg.restarts, joinFloats(cfg.decays), cfg.folds)
	fmt.Fprintf(b, "- **Pruning rule** (the paper's): remove one parameter at a time, biases included, while the number of misclassified training examples does not rise above that of the trained network. The misclassification count is the paper's training error for MONK's; a loss-based rule with no tolerance would stop at the first removal, since at a minimum every removal raises the loss.\n")
	fmt.Fprintf(b, "- **Without retraining** (`retrain = no`): `prune.Run` with one removal per round, so the curvature is rebuilt at the current parameters before every removal (as in the OBS procedure); OBS moves all other weights by its update, OBD and magnitude only zero the weight. The removal that breaks the rule is undone.\n")
	fmt.Fprintf(b, "- **With retraining** (`retrain = yes`, LeCun's OBD recipe): `prune.Run` with `Retrain` and `RetrainRescues`: after every removal the network is retrained with the mask fixed (L-BFGS ≤ %d iterations, same λ) and the rule is checked after retraining; the removal that breaks it is undone with its retraining.\n", cfg.retrainIters)
	fmt.Fprintf(b, "- **Methods**: on the objective the network was trained on, N·J = E + ½λN‖θ‖² with E = Σₙ ℓₙ (`prune.Settings.WeightDecay`): OBS on its exact Hessian H + λN·I (damping 10⁻⁴, raised tenfold while not positive definite), its gradient taken as zero as at its minimum; OBD with the Levenberg–Marquardt diagonal (LeCun et al.'s) and with the exact diagonal, each plus λN; magnitude.\n")
	fmt.Fprintf(b, "- **Columns**: *solved*: the seeds whose trained network fits the training set, for MONK-1 and MONK-2, whose labels follow the rule; the others ended in a poor local minimum. MONK-3's training labels are noisy, so a network that fits fewer training examples than another may still be the better one, and every seed counts (—). Parameters left (weights and biases), training and test accuracy: mean ± sample sd over all seeds; *fewest*: the fewest parameters left by any seed; *best run*: the run with the fewest parameters left among the solved seeds (ties: higher training accuracy, then lower seed), as parameters / train %% / test %%.\n\n")

	var summary strings.Builder
	for _, split := range splits {
		fmt.Fprintf(b, "## Results: %s splits\n\n", split)
		t := newMDTable("problem", "method", "retrain", ">solved", ">params left", ">fewest", ">train acc %", ">test acc %", "best run", "stopped")
		for _, p := range cfg.problems {
			sel := func(method string, retrain bool) []monksRun {
				var out []monksRun
				for _, ru := range runs {
					if ru.split == split && ru.problem == p.problem && ru.method == method && ru.retrain == retrain {
						out = append(out, ru)
					}
				}
				return out
			}
			row := func(label, retrain string, rs []monksRun) {
				left, tra, tea := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
				best, solved, fewest, noisy := -1, 0, rs[0].left, true
				stops := map[string]int{}
				for i, ru := range rs {
					left[i], tra[i], tea[i] = float64(ru.left), 100*ru.trainAcc, 100*ru.testAcc
					fewest = min(fewest, ru.left)
					noisy = noisy && ru.noisy
					if ru.solved {
						solved++
						if best < 0 || ru.left < rs[best].left || (ru.left == rs[best].left && ru.trainAcc > rs[best].trainAcc) {
							best = i
						}
					}
					if ru.stopped != "" {
						stops[ru.stopped]++
					}
				}
				bestRun := "—"
				if best >= 0 {
					bt := rs[best]
					bestRun = fmt.Sprintf("%d / %s / %s (seed %d)", bt.left, pct(bt.trainAcc), pct(bt.testAcc), bt.seed)
				}
				sol := fmt.Sprintf("%d / %d", solved, len(rs))
				if noisy {
					sol = "—"
				}
				t.add(fmt.Sprintf("MONK-%d (17-%d-1)", p.problem, p.hidden), label, retrain, sol,
					pm(left, 1), fmt.Sprint(fewest), pm(tra, 1), pm(tea, 1), bestRun, countSummary(stops))
			}
			row("trained, unpruned", "—", sel("trained", false))
			for _, m := range monksMethods {
				row(m.name, "no", sel(m.key, false))
				row(m.name, "yes", sel(m.key, true))
			}
			pub := monksPublished[p.problem]
			t.add(fmt.Sprintf("MONK-%d (17-%d-1)", p.problem, p.hidden), "*OBS, published*", "—", "", pub[0], "", pub[1], pub[2], "", "")
		}
		b.WriteString(t.String() + "\n")
		fmt.Fprintf(&summary, "%s splits:\n\n%s\n", split, t.String())

		fmt.Fprintf(b, "Weight decay chosen by cross-validation (%s splits): ", split)
		var parts []string
		for _, p := range cfg.problems {
			counts := map[string]int{}
			for _, j := range jobs {
				if j.split == split && j.prob.problem == p.problem {
					counts[fmt.Sprintf("λ = %g", j.runs[0].decay)]++
				}
			}
			parts = append(parts, fmt.Sprintf("MONK-%d: %s", p.problem, countSummary(counts)))
		}
		b.WriteString(strings.Join(parts, "; ") + ".\n\n")
		fmt.Fprintf(b, "![parameters left per seed](%s)\n\n", r.fileName("-"+split+".png"))
	}

	fmt.Fprintf(b, "## Differences from the published numbers\n\n")
	fmt.Fprintf(b, "Hassibi & Stork report OBS leaving 14, 15 and 4 weights (table from secondary sources; the abstract gives the equivalent 90 %%, 76 %% and 62 %% fewer weights than back-propagation with weight decay), for one network per problem on the UCI splits. What can make our numbers differ:\n\n")
	fmt.Fprintf(b, "- **Training**: the paper's networks came from back-propagation with weight decay (Thrun et al.'s setup); ours from L-BFGS on a cross-validated λ, best of several starts. The minimum reached, and so the Hessian and the weights OBS sees, differ; a larger λ shrinks the unneeded weights and makes magnitude pruning competitive.\n")
	fmt.Fprintf(b, "- **One network against many**: the paper reports one run per problem; the spread over seeds above shows how much the count depends on the initialisation and, for `generated`, on the training sample. On the UCI splits MONK-3's training set is the published one, whose 6 noisy labels cap the training accuracy at 93.4 %% for a network that learns the rule.\n")
	fmt.Fprintf(b, "- **Counting**: we count every live parameter, biases included (58 and 39 before pruning, as in the paper's table); the stopping rule is on the misclassification count of the training set, with no tolerance.\n")
	fmt.Fprintf(b, "- **Damping and curvature**: we use the exact Hessian of the summed squared error with a small damping, not the penalty's curvature; the paper's exact numerical choices (damping, the α of its recursive inverse) are not known to us.\n")
	fmt.Fprintf(b, "- **Generated splits** differ from the UCI files in which examples are drawn and, for MONK-3, which labels are noisy; their test accuracy is on the same 432-example domain.\n")
	return summary.String()
}

// countSummary formats counts as "key ×n", in key order.
func countSummary(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// joinFloats formats v as a comma-separated list.
func joinFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%g", x)
	}
	return strings.Join(parts, ", ")
}

// monksChart draws the parameters left per seed, per method, for each
// problem of the split.
func monksChart(split string, cfg monksConfig, runs []monksRun) ([]byte, error) {
	var labels []string
	type variant struct {
		method  string
		retrain bool
	}
	var vars []variant
	for _, m := range monksMethods {
		for _, rt := range []bool{false, true} {
			vars = append(vars, variant{m.key, rt})
			l := m.key
			if rt {
				l += " +rt"
			}
			labels = append(labels, l)
		}
	}
	row := make([]*plot.Plot, len(cfg.problems))
	for k, p := range cfg.problems {
		pl := newPlot(fmt.Sprintf("MONK-%d, %s splits", p.problem, split), "", "parameters left")
		for vi, v := range vars {
			var xs, ys []float64
			n := 0
			for _, ru := range runs {
				if ru.split == split && ru.problem == p.problem && ru.method == v.method && ru.retrain == v.retrain {
					// A small deterministic offset keeps equal counts apart.
					off := 0.3 * (float64(n%7)/6 - 0.5)
					xs = append(xs, float64(vi)+off)
					ys = append(ys, float64(ru.left))
					n++
				}
			}
			if err := addPoints(pl, "", vi/2, xs, ys); err != nil {
				return nil, err
			}
		}
		pub := monksPublished[p.problem]
		var w float64
		fmt.Sscan(pub[0], &w)
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: w}, {X: float64(len(vars)) - 0.5, Y: w}})
		if err != nil {
			return nil, err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		pl.Add(l)
		pl.Legend.Add("OBS, published", l)
		pl.NominalX(labels...)
		pl.X.Tick.Label.Rotation = math.Pi / 4
		pl.X.Tick.Label.XAlign = draw.XRight
		pl.Y.Min = 0
		pl.Y.Max = float64(17*p.hidden + 2*p.hidden + 1)
		row[k] = pl
	}
	return renderPNG([][]*plot.Plot{row}, vg.Points(330*float64(len(row))), vg.Points(330))
}
