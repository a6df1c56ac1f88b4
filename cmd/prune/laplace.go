package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// streamPredict is the PCG stream of the Monte Carlo predictive draws.
const streamPredict = 0x70726564 // "pred"

// laplaceFlags returns the flags that set up the posterior, followed by the
// model-spec and data flags (seedUsage the usage of --seed), shared by
// laplace and evidence.
func laplaceFlags(seedUsage string) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "curvature", Value: laplace.GaussNewton.String(), Usage: "`H` of the posterior precision A = βH + αI: exact, gn (Gauss–Newton) or diag (diagonal of gn)", Category: "Posterior"},
		&cli.Float64Flag{Name: "alpha", Usage: "prior precision `α` > 0", DefaultText: "Nβλ (Nλ for classification) from the model's weight decay λ, else 1", Category: "Posterior"},
		&cli.Float64Flag{Name: "beta", Usage: "noise precision `β` > 0 of an mse model; --optimize-hyper then keeps it fixed", DefaultText: "NK/Σ‖ŷ−t‖² at the model's parameters", Category: "Posterior"},
		&cli.BoolFlag{Name: "per-layer", Usage: "one prior precision per layer (re-estimated per layer with --optimize-hyper)", Category: "Posterior"},
		&cli.BoolFlag{Name: "all", Usage: "cover all parameters, pruned ones included, instead of the live ones", Category: "Posterior"},
		&cli.BoolFlag{Name: "optimize-hyper", Usage: "re-estimate α (and β) from γ = Σ λᵢ/(λᵢ+α) until they converge", Category: "Posterior"},
		&cli.BoolFlag{Name: "retrain", Usage: "with --optimize-hyper, retrain to the MAP (Levenberg–Marquardt) between re-estimation steps", Category: "Posterior"},
		&cli.StringFlag{Name: "max-memory", Usage: "refuse dense W×W matrices needing more than `SIZE` bytes (suffix K, M, G or T; 'off' for no limit)", DefaultText: "half the physical memory", Category: "Posterior"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, layersFlag())
	return append(flags, dataFlags(seedUsage)...)
}

// laplaceCommand returns the laplace command.
func laplaceCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE`: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "`SPLIT` of the predictive: train, valid or test"},
		&cli.StringFlag{Name: "method", Value: laplace.Probit.String(), Usage: "classification predictive: probit (extended probit for ce) or mc (Monte Carlo)", Category: "Predictive"},
		&cli.IntFlag{Name: "samples", Value: laplace.DefaultSamples, Usage: "Monte Carlo draws per sample of --method mc", Category: "Predictive"},
		&cli.Uint64Flag{Name: "mc-seed", Value: 1, Usage: "`SEED` of the Monte Carlo draws", Category: "Predictive"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "CSV `FILE` of the predictive on --split: mean and standard deviation (regression) or probabilities (classification)", Category: "Output"},
		&cli.StringFlag{Name: "chart", Usage: "PNG `FILE`: the data, the predictive mean and a ±2σ band for a 1-input regression, else a reliability chart", Category: "Output"},
		&cli.StringFlag{Name: "save-model", Usage: "model `FILE` to write the network retrained by --optimize-hyper --retrain to", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace output files that exist", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, laplaceFlags("seed of the data draw (default: the model's, else 1)")...)
	return &cli.Command{
		Name:  "laplace",
		Usage: "fit the Laplace approximation of a model's posterior: evidence, α, β, γ and the predictive",
		UsageText: "prune laplace --model MODEL.json [--data NAME|FILE.csv] [--curvature exact|gn|diag] [--optimize-hyper [--retrain]]\n" +
			"              [--split test] [-o PREDICTIVE.csv] [--chart CHART.png] [--json] [flags]\n\n" +
			"The posterior is N(θ_MAP, A⁻¹) with A = βH + αI (mse) or H + αI (bce, ce), H the curvature of the summed\n" +
			"training loss E. A model trained with weight decay λ on N samples is the MAP for α = Nβλ (Nλ for\n" +
			"classification). Data flags that are not given take the values recorded in the model, as in eval.\n\n" +
			"Example: prune laplace --model sine.json --optimize-hyper --retrain -o pred.csv --chart band.png",
		Flags: flags,
		Action: func(c *cli.Context) error {
			p, err := readPosteriorFlags(c)
			if err != nil {
				return err
			}
			return runLaplace(c, p)
		},
	}
}

// posteriorFlags is what the flags shared by laplace and evidence select.
type posteriorFlags struct {
	in       modelInput
	s        laplace.Settings
	perLayer bool
	// opt is nil without --optimize-hyper.
	opt   *laplace.OptimizeSettings
	split string
}

// readPosteriorFlags reads the posterior, model-spec and data flags that
// laplace and evidence share, after checking that no arguments were given.
func readPosteriorFlags(c *cli.Context) (posteriorFlags, error) {
	p := posteriorFlags{in: readModelInput(c), perLayer: c.Bool("per-layer")}
	if err := noArgs(c); err != nil {
		return p, err
	}
	if err := decodeFlags(c, &p.s); err != nil {
		return p, err
	}
	if err := refuseZero(c, nil, []string{"alpha", "beta"}); err != nil {
		return p, err
	}
	if err := flagWords(p.s.Validate()); err != nil {
		return p, err
	}
	var err error
	if p.s.MemoryLimit, err = parseMaxMemory(c.String("max-memory")); err != nil {
		return p, err
	}
	if c.Bool("optimize-hyper") {
		p.opt = &laplace.OptimizeSettings{FixBeta: c.IsSet("beta")}
		if err := decodeFlags(c, p.opt); err != nil {
			return p, err
		}
	} else if c.Bool("retrain") {
		return p, flagErrorf("retrain", "needs --optimize-hyper")
	}
	p.split, err = parseSplit(c.String("split"))
	return p, err
}

// fitted is a model read with its data and its fitted posterior.
type fitted struct {
	net        *nn.Network
	train, set *nn.Data // the training split and the split of --split
	post       *laplace.Posterior
	sum        laplace.Summary
}

// fitModel reads the model and data of in, checks that outputs are new
// files (inputs and the data's files being inputs) and fits the posterior
// on the training split. With several models, errors of reading one name
// it.
func (p posteriorFlags) fitModel(ctx context.Context, in modelInput, outputs map[string]string, overwrite bool, inputs []string, several bool) (*fitted, error) {
	n, d, err := in.load()
	if err != nil && several {
		return nil, fmt.Errorf("--model %s: %w", in.Path, err)
	} else if err != nil {
		return nil, err
	}
	if err := checkNewFiles(outputs, overwrite, append(inputs, d.Inputs()...)...); err != nil {
		return nil, err
	}
	f := &fitted{net: n}
	if f.train, err = loadSplit(n, d, "train"); err != nil {
		return nil, err
	}
	if f.set, err = loadSplit(n, d, p.split); err != nil {
		return nil, err
	}
	f.post, f.sum, err = p.fit(ctx, in.Path, n, f.train)
	return f, err
}

// fit fits the posterior of n on the training split train.
func (p posteriorFlags) fit(ctx context.Context, model string, n *nn.Network, train *nn.Data) (*laplace.Posterior, laplace.Summary, error) {
	s := p.s
	if n.Loss() != nn.MSE && s.Beta != 0 {
		return nil, laplace.Summary{}, flagErrorf("beta", "is for mse models; the model's loss is %s", n.Loss())
	}
	from := laplace.StartingPrior(n, train.X, train.Y, &s, p.perLayer)
	if from == "Settings.Alpha" {
		from = "--alpha"
	}
	var post *laplace.Posterior
	var steps []laplace.Step
	var err error
	if p.opt != nil {
		post, steps, err = laplace.Optimize(ctx, n, train.X, train.Y, &s, p.opt)
	} else {
		post, err = laplace.Fit(ctx, n, train.X, train.Y, &s)
	}
	var me *hessian.MemoryError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, laplace.Summary{}, fmt.Errorf("interrupted: %w", ctx.Err())
	case errors.As(err, &me):
		return nil, laplace.Summary{}, fmt.Errorf("--model %s: the dense %v curvature of %d parameters needs %s, above the memory limit of %s; use --curvature diag or raise --max-memory",
			model, s.Curvature, me.Dim, sysmem.FormatBytes(me.Bytes), sysmem.FormatBytes(me.Limit))
	case errors.Is(err, laplace.ErrNotPositiveDefinite):
		return nil, laplace.Summary{}, fmt.Errorf("--model %s: %v", model, err)
	default:
		return nil, laplace.Summary{}, fmt.Errorf("--model %s: %v", model, strings.TrimPrefix(err.Error(), "laplace: "))
	}
	sum := laplace.SummaryOf(post, steps, from)
	sum.Model, sum.Retrained = model, p.opt != nil && p.opt.Retrain
	return post, sum, nil
}

type laplaceSummary struct {
	laplace.Summary
	Predictive laplace.Metrics `json:"predictive"`
	Files      []string        `json:"files,omitempty"`
}

// checkNewFile checks an output file before any work: its directory must
// exist, it must not be an input and it must not exist without overwrite.
func checkNewFile(flag, path string, overwrite bool, inputs ...string) error {
	if path == "" {
		return nil
	}
	if err := atomicfile.CheckNotInput(path, inputs...); err != nil {
		return &usageError{Flag: flag, Msg: "--" + flag + ": " + err.Error()}
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("--%s %s: is a directory", flag, path)
		}
		if !overwrite {
			return fmt.Errorf("--%s %s: file exists (give --overwrite to replace it)", flag, path)
		}
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--%s %s: directory %s does not exist", flag, path, dir)
	} else if err != nil || !fi.IsDir() {
		return fmt.Errorf("--%s %s: %s is not a directory", flag, path, dir)
	}
	return nil
}

// checkNewFiles is checkNewFile for each output, keyed by its flag.
func checkNewFiles(outputs map[string]string, overwrite bool, inputs ...string) error {
	for flag, path := range outputs {
		if err := checkNewFile(flag, path, overwrite, inputs...); err != nil {
			return err
		}
	}
	return nil
}

// checkDistinct returns a usage error when two outputs name the same file.
func checkDistinct(outputs map[string]string) error {
	flags := slices.Sorted(func(yield func(string) bool) {
		for k := range outputs {
			if !yield(k) {
				return
			}
		}
	})
	for i, a := range flags {
		for _, b := range flags[i+1:] {
			if outputs[a] != "" && outputs[b] != "" && sameName(outputs[a], outputs[b]) {
				return &usageError{Flag: b, Msg: fmt.Sprintf("--%s and --%s name the same file %s", a, b, outputs[a])}
			}
		}
	}
	return nil
}

// runLaplace fits the posterior, computes the predictive on the split and
// writes the files the flags name.
func runLaplace(c *cli.Context, p posteriorFlags) error {
	ctx, stdout, stderr := c.Context, c.App.Writer, c.App.ErrWriter
	model, output, chartFile, saveTo, overwrite := p.in.Path, c.String("output"), c.String("chart"), c.String("save-model"), c.Bool("overwrite")
	if model == "" {
		return flagErrorf("model", "is required: give the model file")
	}
	var ps laplace.PredictSettings
	if err := decodeFlags(c, &ps); err != nil {
		return err
	}
	if ps.Samples < 1 {
		return flagErrorf("samples", "%d: must be positive", ps.Samples)
	}
	ps.Src = rand.NewPCG(c.Uint64("mc-seed"), streamPredict)
	if saveTo != "" {
		if p.opt == nil || !p.opt.Retrain {
			return flagErrorf("save-model", "needs --optimize-hyper --retrain, which change the model")
		}
		if err := checkModelName("save-model", saveTo); err != nil {
			return err
		}
	}
	outputs := map[string]string{"output": output, "chart": chartFile, "save-model": saveTo}
	if err := checkDistinct(outputs); err != nil {
		return err
	}
	inputs := modelFiles(model)
	if err := checkNewFiles(outputs, overwrite, inputs...); err != nil {
		return err
	}
	f, err := p.fitModel(ctx, p.in, outputs, overwrite, inputs, false)
	if err != nil {
		return err
	}
	n, train, set, post, ps0 := f.net, f.train, f.set, f.post, f.sum
	sum := laplaceSummary{Summary: ps0}
	pred, err := laplace.PredictiveOf(ctx, post, set.X, set.Y, ps.Method, ps.Samples, ps.Src)
	if err != nil {
		return err
	}
	pred.Metrics.Split = p.split
	sum.Predictive = pred.Metrics

	// Outputs, all prepared before any is written.
	var files [][2]string
	if output != "" {
		b, err := pred.CSV()
		if err != nil {
			return err
		}
		files = append(files, [2]string{output, string(b)})
	}
	if chartFile != "" {
		b, err := chart.Laplace(ctx, post, train, set, pred)
		if err != nil {
			return fmt.Errorf("--chart %s: %v", chartFile, err)
		}
		files = append(files, [2]string{chartFile, string(b)})
	}
	for _, f := range files {
		if err := atomicfile.WriteBytes(f[0], []byte(f[1])); err != nil {
			return err
		}
		sum.Files = append(sum.Files, f[0])
	}
	if saveTo != "" {
		m := post.Net()
		m.Meta = map[string]any{}
		for k, v := range n.Meta {
			m.Meta[k] = v
		}
		rec := post.Record("laplace", model)
		m.Meta["laplace"] = rec
		var tr modelio.Trainer
		if modelio.DecodeMeta(n.Meta, modelio.TrainerKey, &tr) && !math.IsNaN(rec.WeightDecay) {
			tr.WeightDecay = rec.WeightDecay
			m.Meta["trainer"] = tr
		}
		m.Meta = metaValue(m.Meta).(map[string]any)
		if err := saveModel(saveTo, m); err != nil {
			return err
		}
		sum.Files = append(sum.Files, modelFiles(saveTo)...)
	}
	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	sum.Summary.WriteText(stdout)
	sum.Predictive.WriteText(stdout)
	if !isQuiet(c) {
		for _, f := range sum.Files {
			fmt.Fprintf(stderr, "wrote %s\n", f)
		}
	}
	return nil
}
