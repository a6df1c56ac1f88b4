package repro

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// evidenceProblem is one data set of the evidence benchmark.
type evidenceProblem struct {
	key, title string
	train      nn.Data
	test       nn.Data
	inputs     int
	out        nn.Activation
	loss       nn.Loss
	errName    string // "test mean loss" or "test misclassification"
	hidden     []int  // hidden units of the sweep
	pathHidden int    // hidden units of the network pruned along the OBS path
	pathSteps  int    // removals between evidence evaluations on the path
	pathMin    int    // live parameters at which the path stops
	restarts   int    // initialisations per architecture
	seedOffset uint64 // keeps the problems' initialisations apart
	testErr    func(*nn.Network) float64
}

// evidenceRow is one fitted model: a point of the sweep or of the path.
type evidenceRow struct {
	problem   string
	path      string // "hidden" or "obs"
	hidden    int
	live      int
	restart   int
	logEv     float64
	alpha     float64
	beta      float64 // NaN for classification
	gamma     float64
	trainLoss float64
	testErr   float64
	steps     int
	failure   string
}

func evidenceProblems(r *runCtx) ([]*evidenceProblem, error) {
	n, testN := 40, 400
	sine, err := datasets.Sine(n, testN, r.o.Seed)
	if err != nil {
		return nil, err
	}
	m3 := datasets.Monks(3, r.o.Seed)
	sp := &evidenceProblem{
		key: "sine", title: fmt.Sprintf("noisy sine, %d training samples", n),
		train: sine.Train, test: sine.Test,
		inputs: 1, out: nn.Linear, loss: nn.MSE, errName: "test mean loss",
		hidden: []int{1, 2, 3, 4, 5, 6, 8, 10, 12}, pathHidden: 8, pathSteps: 2, pathMin: 4, restarts: 3,
	}
	mp := &evidenceProblem{
		key: "monks3", title: "MONK-3 (5 % label noise), bce",
		train: m3.Train, test: m3.Test,
		inputs: 17, out: nn.Sigmoid, loss: nn.BCE, errName: "test misclassification",
		hidden: []int{1, 2, 3, 4, 6}, pathHidden: 4, pathSteps: 6, pathMin: 6, restarts: 3, seedOffset: 100,
	}
	switch {
	case r.o.tiny:
		sp.hidden, sp.restarts, sp.pathHidden, sp.pathSteps = []int{1, 3}, 1, 3, 4
		mp.hidden, mp.restarts, mp.pathHidden, mp.pathSteps, mp.pathMin = []int{1, 2}, 1, 2, 12, 20
	case r.o.Quick:
		sp.hidden, sp.restarts, sp.pathHidden, sp.pathSteps = []int{1, 2, 3, 4, 6, 8}, 2, 6, 3
		mp.hidden, mp.restarts, mp.pathSteps = []int{1, 2, 3, 4}, 1, 8
	}
	for _, p := range []*evidenceProblem{sp, mp} {
		p := p
		p.testErr = func(net *nn.Network) float64 {
			m := net.Evaluate(p.test.X, p.test.Y)
			if p.loss == nn.MSE {
				return m.MeanLoss
			}
			return 1 - m.Accuracy
		}
	}
	return []*evidenceProblem{sp, mp}, nil
}

// runEvidence sweeps the hidden units and follows an OBS pruning path on
// each problem, fitting α (and β) by MacKay's re-estimation with
// retraining at every point, and writes the evidence against the test
// error.
func runEvidence(ctx context.Context, r *runCtx) error {
	problems, err := evidenceProblems(r)
	if err != nil {
		return err
	}
	var rows []evidenceRow
	for _, p := range problems {
		// The sweep: every architecture and restart in parallel.
		type job struct{ h, restart int }
		var jobs []job
		for _, h := range p.hidden {
			for k := range p.restarts {
				jobs = append(jobs, job{h, k})
			}
		}
		out := make([]evidenceRow, len(jobs))
		err := parallel(ctx, len(jobs), func(i int) error {
			j := jobs[i]
			row, _, err := fitEvidence(ctx, p, j.h, j.restart, r.o.Seed)
			out[i] = row
			return err
		})
		if err != nil {
			return err
		}
		rows = append(rows, out...)
		r.logf("%s: %d architectures × %d restarts fitted", p.key, len(p.hidden), p.restarts)

		path, err := obsEvidencePath(ctx, p, r.o.Seed)
		if err != nil {
			return err
		}
		rows = append(rows, path...)
		r.logf("%s: OBS path of %d points", p.key, len(path))
	}

	csv := newCSV("dataset", "method", "hidden", "live", "restart", "log_evidence", "alpha", "beta", "gamma",
		"train_mean_loss", "test_error", "reestimation_steps", "stopped")
	for _, row := range rows {
		method := "hidden-sweep"
		if row.path == "obs" {
			method = "obs-path"
		}
		csv.add(row.problem, method, row.hidden, row.live, row.restart, row.logEv, row.alpha, row.beta, row.gamma,
			row.trainLoss, row.testErr, row.steps, row.failure)
	}
	if err := r.addCSV(csv); err != nil {
		return err
	}
	md, summary := evidenceMarkdown(r, problems, rows)
	r.addMarkdown(md)
	r.rep.Summary = summary
	for _, p := range problems {
		png, err := evidenceChart(p, rows)
		if err != nil {
			return err
		}
		r.add("-"+p.key+".png", png)
	}
	return nil
}

// fitEvidence trains a network with h hidden units from initialisation
// restart to the MAP of re-estimated α and β and returns its row and
// posterior.
func fitEvidence(ctx context.Context, p *evidenceProblem, h, restart int, seed uint64) (evidenceRow, *laplace.Posterior, error) {
	row := evidenceRow{problem: p.key, path: "hidden", hidden: h, restart: restart, beta: math.NaN()}
	net, err := nn.New([]int{p.inputs, h, 1}, []nn.Activation{nn.Tanh, p.out}, p.loss)
	if err != nil {
		return row, nil, err
	}
	net.Init(rand.NewPCG(seed, streamInit+p.seedOffset+uint64(1000*h+restart)))
	// A start near a reasonable MAP: a weak prior and, for regression, the
	// noise of a fit by L-BFGS with a little weight decay.
	if _, err := nn.Train(ctx, net, p.train, nn.Data{}, &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 500, WeightDecay: 1e-4}); err != nil {
		return row, nil, err
	}
	return optimizeRow(ctx, p, net, row)
}

// optimizeRow runs MacKay's re-estimation with retraining on net and fills
// in the row; a failure of the re-estimation is recorded in the row, not
// returned.
func optimizeRow(ctx context.Context, p *evidenceProblem, net *nn.Network, row evidenceRow) (evidenceRow, *laplace.Posterior, error) {
	post, steps, err := laplace.Optimize(ctx, net, p.train.X, p.train.Y, &laplace.Settings{Alpha: 1}, &laplace.OptimizeSettings{Retrain: true, Tolerance: 1e-6})
	if ctx.Err() != nil {
		return row, nil, ctx.Err()
	}
	row.steps = len(steps)
	row.live = net.NumLive()
	if err != nil {
		row.failure = strings.TrimPrefix(err.Error(), "laplace: ")
		row.logEv, row.alpha, row.gamma, row.trainLoss, row.testErr = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return row, nil, nil
	}
	ev := post.Evidence()
	fit := post.Net()
	row.logEv, row.alpha, row.gamma = ev.LogEvidence, post.Alpha(), ev.Gamma
	if post.Regression() {
		row.beta = post.Beta()
	}
	row.trainLoss = fit.Evaluate(p.train.X, p.train.Y).MeanLoss
	row.testErr = p.testErr(fit)
	return row, post, nil
}

// obsEvidencePath prunes the best-evidence network of p.pathHidden hidden
// units by OBS on A = βH + αI (the Hessian of the negative log posterior),
// p.pathSteps parameters at a time, and re-fits α, β and θ after each
// round.
func obsEvidencePath(ctx context.Context, p *evidenceProblem, seed uint64) ([]evidenceRow, error) {
	var post *laplace.Posterior
	var row evidenceRow
	bestEv := math.Inf(-1)
	for k := range p.restarts {
		rw, ps, err := fitEvidence(ctx, p, p.pathHidden, k, seed)
		if err != nil {
			return nil, err
		}
		if ps != nil && rw.logEv > bestEv {
			post, row, bestEv = ps, rw, rw.logEv
		}
	}
	if post == nil {
		return nil, nil
	}
	row.path = "obs"
	rows := []evidenceRow{row}
	net := post.Net()
	for net.NumLive() > p.pathMin {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A over the live parameters: β times the Gauss–Newton matrix plus α.
		pr := hessian.Live(net, p.train.X, p.train.Y)
		G, err := hessian.Dense(ctx, hessian.GaussNewton{P: pr}, 0)
		if err != nil {
			return nil, err
		}
		G.ScaleSym(post.Beta(), G)
		if err := hessian.DampedInverse(G, G, post.Alpha()); err != nil {
			var cond mat.Condition
			if !errors.As(err, &cond) {
				return nil, err
			}
		}
		live := pr.Params
		w := make([]float64, len(live))
		th := net.RawParams()
		for i, q := range live {
			w[i] = th[q]
		}
		alive := make([]bool, len(live))
		for i := range alive {
			alive[i] = true
		}
		for range min(p.pathSteps, net.NumLive()-p.pathMin) {
			q, _, delta := prune.OBSStep(G, w, alive)
			if q < 0 {
				break
			}
			for i := range w {
				w[i] += delta[i]
			}
			w[q] = 0
			alive[q] = false
			if err := hessian.Downdate(G, q); err != nil {
				break
			}
		}
		for i, q := range live {
			th[q] = w[i]
		}
		for i, q := range live {
			if !alive[i] {
				net.Prune(q)
			}
		}
		next := evidenceRow{problem: p.key, path: "obs", hidden: p.pathHidden, beta: math.NaN()}
		next, ps, err := optimizeRow(ctx, p, net, next)
		if err != nil {
			return nil, err
		}
		rows = append(rows, next)
		if ps == nil {
			break
		}
		post, net = ps, ps.Net()
	}
	return rows, nil
}

// bestBy returns, per hidden-unit count, the restart of highest evidence.
func bestBy(rows []evidenceRow, problem string) []evidenceRow {
	best := map[int]evidenceRow{}
	var order []int
	for _, r := range rows {
		if r.problem != problem || r.path != "hidden" || r.failure != "" {
			continue
		}
		b, ok := best[r.hidden]
		if !ok {
			order = append(order, r.hidden)
		}
		if !ok || r.logEv > b.logEv {
			best[r.hidden] = r
		}
	}
	out := make([]evidenceRow, len(order))
	for i, h := range order {
		out[i] = best[h]
	}
	return out
}

func evidenceMarkdown(r *runCtx, problems []*evidenceProblem, rows []evidenceRow) (string, string) {
	var b strings.Builder
	b.WriteString("# The evidence against the test error (MacKay 1992)\n\n")
	fmt.Fprintf(&b, "Command: `%s`.\n\n", r.command())
	b.WriteString("Every network is trained by L-BFGS (λ = 10⁻⁴), then α (and β for mse) are re-estimated from " +
		"γ = Σ λᵢ/(λᵢ+α) with the network retrained to the MAP of S = βE + ½α‖θ‖² by Levenberg–Marquardt between " +
		"steps, until they change by less than 10⁻⁶; the log evidence is that of the Laplace approximation on the " +
		"Gauss–Newton matrix over the live parameters (package laplace). Per architecture the restart of highest " +
		"evidence is shown. The OBS path prunes the best network of its size by OBS on A = βH + αI and re-fits " +
		"θ, α and β after every round.\n\n")
	var summary strings.Builder
	for _, p := range problems {
		fmt.Fprintf(&b, "## %s\n\n", p.title)
		best := bestBy(rows, p.key)
		t := newMDTable("hidden units", "parameters", "ln evidence", "α", "β", "γ", "train E/N", p.errName, "restarts")
		bi, ei := -1, -1
		for i, row := range best {
			if bi < 0 || row.logEv > best[bi].logEv {
				bi = i
			}
			if ei < 0 || row.testErr < best[ei].testErr {
				ei = i
			}
		}
		for i, row := range best {
			h := fmt.Sprint(row.hidden)
			if i == bi {
				h += " (highest evidence)"
			}
			if i == ei {
				h += " (lowest test error)"
			}
			t.add(h, fmt.Sprint(row.live), fmt.Sprintf("%.2f", row.logEv), sci(row.alpha), sci(row.beta), fmt.Sprintf("%.2f", row.gamma),
				sci(row.trainLoss), sci(row.testErr), fmt.Sprint(p.restarts))
		}
		b.WriteString(t.String())
		failed := 0
		for _, row := range rows {
			if row.problem == p.key && row.failure != "" {
				failed++
			}
		}
		if failed > 0 {
			fmt.Fprintf(&b, "\n%d fits failed to re-estimate the hyperparameters (see the CSV's stopped column).\n", failed)
		}
		if bi >= 0 && ei >= 0 {
			fmt.Fprintf(&summary, "%s: highest evidence at %d hidden units (%s %s), lowest %s at %d (%s)\n",
				p.key, best[bi].hidden, p.errName, sci(best[bi].testErr), p.errName, best[ei].hidden, sci(best[ei].testErr))
			if bi == ei {
				b.WriteString("\nThe evidence picks the architecture that generalises best.\n")
			} else {
				fmt.Fprintf(&b, "\nThe evidence picks %d hidden units, whose %s is %s; the lowest is %s at %d.\n",
					best[bi].hidden, p.errName, sci(best[bi].testErr), sci(best[ei].testErr), best[ei].hidden)
			}
		}
		fmt.Fprintf(&b, "\n### OBS pruning path, %d hidden units\n\n", p.pathHidden)
		pt := newMDTable("live parameters", "ln evidence", "α", "β", "γ", "train E/N", p.errName)
		for _, row := range rows {
			if row.problem != p.key || row.path != "obs" {
				continue
			}
			pt.add(fmt.Sprint(row.live), fmt.Sprintf("%.2f", row.logEv), sci(row.alpha), sci(row.beta), fmt.Sprintf("%.2f", row.gamma), sci(row.trainLoss), sci(row.testErr))
		}
		b.WriteString(pt.String())
		fmt.Fprintf(&b, "\nChart: `%s`.\n\n", r.fileName("-"+p.key+".png"))
	}
	return b.String(), summary.String()
}

// evidenceChart draws, for one problem, the log evidence and the test
// error against the hidden units (every restart as a point, the best per
// architecture as a line) and against the live parameters of the OBS
// path.
func evidenceChart(p *evidenceProblem, rows []evidenceRow) ([]byte, error) {
	ev := newPlot(p.title+": evidence", "hidden units", "ln p(D | α, β)")
	te := newPlot(p.title+": "+p.errName, "hidden units", p.errName)
	var ax, ay, ae []float64
	for _, r := range rows {
		if r.problem == p.key && r.path == "hidden" && r.failure == "" {
			ax = append(ax, float64(r.hidden))
			ay = append(ay, r.logEv)
			ae = append(ae, r.testErr)
		}
	}
	if err := addPoints(ev, "every restart", 1, ax, ay); err != nil {
		return nil, err
	}
	if err := addPoints(te, "every restart", 1, ax, ae); err != nil {
		return nil, err
	}
	var bx, by, be []float64
	for _, r := range bestBy(rows, p.key) {
		bx = append(bx, float64(r.hidden))
		by = append(by, r.logEv)
		be = append(be, r.testErr)
	}
	if err := addLine(ev, "highest-evidence restart", 0, bx, by); err != nil {
		return nil, err
	}
	if err := addLine(te, "highest-evidence restart", 0, bx, be); err != nil {
		return nil, err
	}
	pe := newPlot(fmt.Sprintf("OBS path from %d hidden units: evidence", p.pathHidden), "live parameters", "ln p(D | α, β)")
	pt := newPlot(fmt.Sprintf("OBS path: %s", p.errName), "live parameters", p.errName)
	var px, py, pz []float64
	for _, r := range rows {
		if r.problem == p.key && r.path == "obs" && r.failure == "" {
			px = append(px, float64(r.live))
			py = append(py, r.logEv)
			pz = append(pz, r.testErr)
		}
	}
	if err := addLine(pe, "after each OBS round", 2, px, py); err != nil {
		return nil, err
	}
	if err := addPoints(pe, "", 2, px, py); err != nil {
		return nil, err
	}
	if err := addLine(pt, "after each OBS round", 2, px, pz); err != nil {
		return nil, err
	}
	if err := addPoints(pt, "", 2, px, pz); err != nil {
		return nil, err
	}
	return renderPNG([][]*plot.Plot{{ev, te}, {pe, pt}}, 11*vg.Inch, 8*vg.Inch)
}
