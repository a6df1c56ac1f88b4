package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/curvreport"
	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// streamPredict is the PCG stream of the Monte Carlo predictive draws.
const streamPredict = 0x70726564 // "pred"

var formatFloats = curvreport.FormatFloats

// laplaceOptions holds the flags of the laplace command and of evidence,
// which fits the same posterior to several models.
type laplaceOptions struct {
	Model     string
	Act, Loss string
	Data      dataOptions
	DataGiven map[string]bool
	Split     string // split of the predictive

	Curvature string  // exact, gn or diag
	Alpha     float64 // zero: from the model's weight decay, else laplace.DefaultAlpha
	Beta      float64 // zero: the maximum-likelihood value
	PerLayer  bool    // one α per layer
	All       bool
	Optimize  bool // re-estimate α and β
	Retrain   bool // retrain between re-estimation steps
	Method    string
	Samples   int
	Seed      uint64
	MaxMemory string

	Output     string // predictive CSV
	Chart      string // PNG
	SaveModel  string // the retrained model
	Overwrite  bool
	JSON       bool
	Quiet      bool
	usageFlags map[string]bool
}

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
			o, err := readLaplaceOptions(c)
			if err != nil {
				return err
			}
			o.Model = c.String("model")
			o.Method = c.String("method")
			o.Samples = c.Int("samples")
			o.Seed = c.Uint64("mc-seed")
			o.SaveModel = c.String("save-model")
			return runLaplace(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// readLaplaceOptions reads the posterior, model-spec, data and output flags
// that laplace and evidence share, after checking that no arguments were
// given.
func readLaplaceOptions(c *cli.Context) (laplaceOptions, error) {
	if err := noArgs(c); err != nil {
		return laplaceOptions{}, err
	}
	d, given := readDataOptions(c)
	o := laplaceOptions{
		Split: c.String("split"), Output: c.String("output"), Chart: c.String("chart"),
		Overwrite: c.Bool("overwrite"), JSON: c.Bool("json"),
		Act: c.String("act"), Loss: c.String("loss"), Data: d, DataGiven: given,
		Curvature: c.String("curvature"), Alpha: c.Float64("alpha"), Beta: c.Float64("beta"),
		PerLayer: c.Bool("per-layer"), All: c.Bool("all"), Optimize: c.Bool("optimize-hyper"),
		Retrain: c.Bool("retrain"), MaxMemory: c.String("max-memory"), Quiet: isQuiet(c),
		usageFlags: map[string]bool{},
	}
	for _, f := range []string{"alpha", "beta"} {
		if c.IsSet(f) {
			o.usageFlags[f] = true
		}
	}
	return o, nil
}

// posteriorPlan is the checked form of the posterior flags.
type posteriorPlan struct {
	curvature laplace.Curvature
	limit     int64
}

func checkPosteriorFlags(o laplaceOptions) (posteriorPlan, error) {
	var p posteriorPlan
	c, err := laplace.ParseCurvature(strings.ToLower(o.Curvature))
	if err != nil {
		return p, flagValueError("curvature", o.Curvature, err)
	}
	p.curvature = c
	for _, f := range []struct {
		name string
		v    float64
	}{{"alpha", o.Alpha}, {"beta", o.Beta}} {
		if o.usageFlags[f.name] && (!(f.v > 0) || math.IsInf(f.v, 1)) {
			return p, flagErrorf(f.name, "%v: must be a positive number", f.v)
		}
	}
	if o.Retrain && !o.Optimize {
		return p, flagErrorf("retrain", "needs --optimize-hyper")
	}
	if p.limit, err = parseMaxMemory(o.MaxMemory); err != nil {
		return p, err
	}
	return p, nil
}

// fitted is a posterior with the steps of the re-estimation that gave it.
type fitted struct {
	post  *laplace.Posterior
	steps []laplace.Step
	// alphaFrom says where the starting α came from.
	alphaFrom string
}

// fitPosterior fits the posterior of n on the training split train as o
// and plan describe.
func fitPosterior(ctx context.Context, n *nn.Network, train *datasets.Set, o laplaceOptions, plan posteriorPlan) (*fitted, error) {
	s := &laplace.Settings{Curvature: plan.curvature, All: o.All, MemoryLimit: plan.limit, Beta: o.Beta}
	regression := n.Loss() == nn.MSE
	if !regression && o.usageFlags["beta"] {
		return nil, flagErrorf("beta", "is for mse models; the model's loss is %s", n.Loss())
	}
	N, _ := train.X.Dims()
	f := &fitted{alphaFrom: "--alpha"}
	alpha := o.Alpha
	var rec laplaceRecord
	if v, ok := n.Meta["laplace"]; ok && alpha == 0 && decodeMeta(v, &rec) && len(rec.Alpha) > 0 {
		// Written by laplace --save-model: the re-estimated hyperparameters.
		alpha, f.alphaFrom = rec.Alpha[0], "the model's laplace record"
		if len(rec.Alpha) == n.NumLayers() && o.PerLayer {
			s.LayerAlpha = rec.Alpha
		}
		if regression && o.Beta == 0 && rec.Beta != nil {
			s.Beta = *rec.Beta
		}
	}
	if alpha == 0 {
		alpha, f.alphaFrom = laplace.DefaultAlpha, "default"
		if lambda, _ := prune.WeightDecayOf(n); lambda > 0 {
			beta := 1.0
			if regression {
				beta = o.Beta
				if beta == 0 {
					beta = float64(N*n.Outputs()) / (2 * n.Objective(train.X, train.Y))
				}
			}
			alpha, f.alphaFrom = float64(N)*beta*lambda, "weight decay"
		}
	}
	s.Alpha = alpha
	if o.PerLayer && s.LayerAlpha == nil {
		s.LayerAlpha = make([]float64, n.NumLayers())
		for l := range s.LayerAlpha {
			s.LayerAlpha[l] = alpha
		}
	}
	var err error
	if o.Optimize {
		f.post, f.steps, err = laplace.Optimize(ctx, n, train.X, train.Y, s, &laplace.OptimizeSettings{Retrain: o.Retrain, FixBeta: o.usageFlags["beta"]})
	} else {
		f.post, err = laplace.Fit(ctx, n, train.X, train.Y, s)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		var me *hessian.MemoryError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("--model %s: the dense %v curvature of %d parameters needs %s, above the memory limit of %s; use --curvature diag or raise --max-memory",
				o.Model, plan.curvature, me.Dim, hessian.FormatBytes(me.Bytes), hessian.FormatBytes(me.Limit))
		}
		if errors.Is(err, laplace.ErrNotPositiveDefinite) {
			return nil, fmt.Errorf("--model %s: %v", o.Model, err)
		}
		return nil, fmt.Errorf("--model %s: %v", o.Model, strings.TrimPrefix(err.Error(), "laplace: "))
	}
	return f, nil
}

// posteriorSummary describes a posterior in the summaries.
type posteriorSummary struct {
	Model       string    `json:"model"`
	Arch        string    `json:"arch"`
	Loss        string    `json:"loss"`
	Curvature   string    `json:"curvature"`
	Params      int       `json:"params"`
	Covered     int       `json:"covered"`
	Hidden      int       `json:"hidden_units"`
	N           int       `json:"n"`
	LogEvidence float64   `json:"log_evidence"`
	Data        float64   `json:"data_term"`
	Prior       float64   `json:"prior_term"`
	LogDet      float64   `json:"logdet_term"`
	LogAlpha    float64   `json:"log_alpha_term"`
	Noise       float64   `json:"noise_term"`
	Alpha       []float64 `json:"alpha"`
	AlphaFrom   string    `json:"alpha_from"`
	Beta        *float64  `json:"beta,omitempty"`
	Gamma       float64   `json:"gamma"`
	LayerGamma  []float64 `json:"layer_gamma"`
	GradNorm    float64   `json:"grad_norm"`
	Steps       int       `json:"reestimation_steps"`
	Retrained   bool      `json:"retrained"`
	TrainLoss   float64   `json:"train_mean_loss"`
}

func summarizePosterior(model string, f *fitted, retrained bool) posteriorSummary {
	p := f.post
	net := p.Net()
	ev := p.Evidence()
	n, _ := p.Samples()
	s := posteriorSummary{
		Model: model, Arch: net.Arch(), Loss: net.Loss().String(), Curvature: p.Curvature().String(),
		Params: net.NumParams(), Covered: p.Dim(), N: n,
		LogEvidence: ev.LogEvidence, Data: ev.Data, Prior: ev.Prior, LogDet: ev.LogDet, LogAlpha: ev.LogAlpha, Noise: ev.Noise,
		Alpha: p.LayerAlpha(), AlphaFrom: f.alphaFrom, Gamma: ev.Gamma, LayerGamma: p.LayerGamma(),
		GradNorm: p.GradNorm(), Steps: len(f.steps), Retrained: retrained,
		TrainLoss: net.Evaluate(p.X, p.Y).MeanLoss,
	}
	if f.steps != nil {
		s.AlphaFrom = "re-estimated"
	}
	for l := 0; l < net.NumLayers()-1; l++ {
		s.Hidden += net.Layer(l).Out
	}
	if p.Regression() {
		b := p.Beta()
		s.Beta = &b
	}
	return s
}

// predictiveSummary holds the predictive metrics on a split.
type predictiveSummary struct {
	Split string `json:"split"`
	N     int    `json:"n"`
	// Regression.
	MeanLoss  *float64 `json:"mean_loss,omitempty"`
	MeanStd   *float64 `json:"mean_std,omitempty"`
	NLL       *float64 `json:"nll,omitempty"`
	Coverage2 *float64 `json:"coverage_2sigma,omitempty"`
	// Classification.
	Accuracy      *float64 `json:"accuracy,omitempty"`
	NLLPredictive *float64 `json:"nll_predictive,omitempty"`
	NLLPlugin     *float64 `json:"nll_plugin,omitempty"`
	ECEPredictive *float64 `json:"ece_predictive,omitempty"`
	ECEPlugin     *float64 `json:"ece_plugin,omitempty"`
	Method        string   `json:"method,omitempty"`
}

type laplaceSummary struct {
	posteriorSummary
	Predictive predictiveSummary `json:"predictive"`
	Files      []string          `json:"files,omitempty"`
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
// writes the files o names.
func runLaplace(ctx context.Context, o laplaceOptions, stdout, stderr io.Writer) error {
	if o.Model == "" {
		return flagErrorf("model", "is required: give the model file")
	}
	plan, err := checkPosteriorFlags(o)
	if err != nil {
		return err
	}
	split, err := checkSplitName(o.Split)
	if err != nil {
		return err
	}
	method, err := laplace.ParseMethod(strings.ToLower(o.Method))
	if err != nil {
		return flagValueError("method", o.Method, err)
	}
	if o.Samples < 1 {
		return flagErrorf("samples", "%d: must be positive", o.Samples)
	}
	if o.SaveModel != "" {
		if !o.Retrain {
			return flagErrorf("save-model", "needs --optimize-hyper --retrain, which change the model")
		}
		if err := checkModelName("save-model", o.SaveModel); err != nil {
			return err
		}
	}
	if err := checkDistinct(map[string]string{"output": o.Output, "chart": o.Chart, "save-model": o.SaveModel}); err != nil {
		return err
	}
	inputs := modelFiles(o.Model)
	if err := checkNewFiles(map[string]string{"output": o.Output, "chart": o.Chart}, o.Overwrite, inputs...); err != nil {
		return err
	}
	if o.SaveModel != "" {
		if err := checkNewFile("save-model", o.SaveModel, o.Overwrite, inputs...); err != nil {
			return err
		}
	}
	n, d, err := readModelData(o.Model, o.Act, o.Loss, o.Data, o.DataGiven)
	if err != nil {
		return err
	}
	if err := checkNewFiles(map[string]string{"output": o.Output, "chart": o.Chart, "save-model": o.SaveModel}, o.Overwrite, append(inputs, d.inputs()...)...); err != nil {
		return err
	}
	train, err := loadSplit(n, d, "train")
	if err != nil {
		return err
	}
	set, err := loadSplit(n, d, split)
	if err != nil {
		return err
	}
	f, err := fitPosterior(ctx, n, train, o, plan)
	if err != nil {
		return err
	}
	sum := laplaceSummary{posteriorSummary: summarizePosterior(o.Model, f, o.Retrain)}
	pred, err := predictive(ctx, f.post, set, method, o.Samples, o.Seed)
	if err != nil {
		return err
	}
	pred.summary.Split = split
	sum.Predictive = pred.summary

	// Outputs, all prepared before any is written.
	type file struct {
		path string
		data []byte
	}
	var files []file
	if o.Output != "" {
		b, err := pred.csv()
		if err != nil {
			return err
		}
		files = append(files, file{o.Output, b})
	}
	if o.Chart != "" {
		b, err := laplaceChart(ctx, f.post, train, set, pred)
		if err != nil {
			return fmt.Errorf("--chart %s: %v", o.Chart, err)
		}
		files = append(files, file{o.Chart, b})
	}
	for _, fl := range files {
		if err := atomicfile.WriteBytes(fl.path, fl.data); err != nil {
			return err
		}
		sum.Files = append(sum.Files, fl.path)
	}
	if o.SaveModel != "" {
		m := f.post.Net()
		m.Meta = map[string]any{}
		for k, v := range n.Meta {
			m.Meta[k] = v
		}
		N, _ := train.X.Dims()
		lam := equivalentDecay(f.post, N)
		m.Meta["laplace"] = laplaceRecord{
			Command: "laplace", Source: o.Model, Alpha: sum.Alpha, Beta: sum.Beta,
			Gamma: sum.Gamma, LogEvidence: sum.LogEvidence, WeightDecay: lam,
		}
		var rec trainerRecord
		if v, ok := n.Meta["trainer"]; ok && decodeMeta(v, &rec) && !math.IsNaN(lam) {
			rec.WeightDecay = lam
			m.Meta["trainer"] = rec
		}
		m.Meta = metaValue(m.Meta).(map[string]any)
		if err := saveModel(o.SaveModel, m); err != nil {
			return err
		}
		sum.Files = append(sum.Files, modelFiles(o.SaveModel)...)
	}
	if o.JSON {
		return writeJSON(stdout, sum)
	}
	printPosterior(stdout, sum.posteriorSummary)
	printPredictive(stdout, sum.Predictive)
	if !o.Quiet {
		for _, p := range sum.Files {
			fmt.Fprintf(stderr, "wrote %s\n", p)
		}
	}
	return nil
}

// laplaceRecord is what laplace --save-model records in the model's
// metadata under "laplace"; later commands start from its α and β.
type laplaceRecord struct {
	Command     string    `json:"command"`
	Source      string    `json:"source"`
	Alpha       []float64 `json:"alpha"`
	Beta        *float64  `json:"beta,omitempty"`
	Gamma       float64   `json:"gamma"`
	LogEvidence float64   `json:"log_evidence"`
	// WeightDecay is the λ of nn's objective whose minimum is the MAP,
	// α/(Nβ), for an isotropic prior.
	WeightDecay float64 `json:"weight_decay_equivalent"`
}

// equivalentDecay returns the weight decay λ = α/(Nβ) of nn's objective
// whose minimum is the MAP of an isotropic posterior, NaN otherwise.
func equivalentDecay(p *laplace.Posterior, N int) float64 {
	return p.Alpha() / (float64(N) * p.Beta())
}

func checkSplitName(s string) (string, error) {
	split := strings.ToLower(s)
	switch split {
	case "train", "valid", "test":
	case "validation":
		split = "valid"
	default:
		return "", flagErrorf("split", "%q: want train, valid or test", s)
	}
	return split, nil
}

func printPosterior(w io.Writer, s posteriorSummary) {
	fmt.Fprintf(w, "%s: %s (loss %s), Laplace posterior on %s over %d of %d parameters, N = %d\n",
		s.Model, s.Arch, s.Loss, s.Curvature, s.Covered, s.Params, s.N)
	fmt.Fprintf(w, "log evidence %.6g  (data %.6g, prior %.6g, −½ln|A| %.6g, ½Σln α %.6g, noise %.6g)\n",
		s.LogEvidence, s.Data, s.Prior, s.LogDet, s.LogAlpha, s.Noise)
	fmt.Fprintf(w, "α %s (%s)", alphaText(s.Alpha), s.AlphaFrom)
	if s.Beta != nil {
		fmt.Fprintf(w, "  β %.6g (noise σ %.4g)", *s.Beta, 1/math.Sqrt(*s.Beta))
	}
	fmt.Fprintf(w, "  γ %.4g of %d (per layer %s)\n", s.Gamma, s.Covered, formatFloats(s.LayerGamma))
	if s.Steps > 0 {
		how := "θ fixed"
		if s.Retrained {
			how = "retrained between steps"
		}
		fmt.Fprintf(w, "hyperparameters re-estimated in %d steps (%s)\n", s.Steps, how)
	}
	fmt.Fprintf(w, "|∇S| at θ %.3g (zero at the MAP of α, β)\n", s.GradNorm)
}

// alphaText formats the prior precisions: one number when the layers share
// it, one per layer otherwise.
func alphaText(a []float64) string {
	for _, v := range a[1:] {
		if v != a[0] {
			return formatFloats(a) + " (per layer)"
		}
	}
	return formatFloats(a[:1])
}

func printPredictive(w io.Writer, p predictiveSummary) {
	if p.MeanStd != nil {
		fmt.Fprintf(w, "predictive on %s (n %d): mean loss %.6g  mean σ %.4g  NLL %.4g  within ±2σ %.1f%%\n",
			p.Split, p.N, *p.MeanLoss, *p.MeanStd, *p.NLL, 100**p.Coverage2)
		return
	}
	fmt.Fprintf(w, "predictive on %s (n %d, %s): accuracy %.2f%%  NLL %.4g (MAP %.4g)  ECE %.4g (MAP %.4g)\n",
		p.Split, p.N, p.Method, 100**p.Accuracy, *p.NLLPredictive, *p.NLLPlugin, *p.ECEPredictive, *p.ECEPlugin)
}

// predictions holds the predictive of a posterior on a split.
type predictions struct {
	set        *datasets.Set
	regression bool
	ce         bool
	mean, std  *mat.Dense // regression: predictive mean, total sd; classification: latent mean and sd
	prob, plug *mat.Dense // classification: predictive and MAP probabilities
	summary    predictiveSummary
}

func predictive(ctx context.Context, p *laplace.Posterior, set *datasets.Set, method laplace.Method, samples int, seed uint64) (*predictions, error) {
	net := p.Net()
	N, _ := set.X.Dims()
	K := net.Outputs()
	pr := &predictions{set: set, regression: p.Regression(), ce: net.Loss() == nn.CE,
		mean: mat.NewDense(N, K, nil), std: mat.NewDense(N, K, nil)}
	pr.summary.N = N
	if pr.regression {
		if err := p.PredictTo(ctx, pr.mean, pr.std, set.X); err != nil {
			return nil, err
		}
		var nll, sd, cover float64
		for i := range N {
			for k := range K {
				v := pr.std.At(i, k)
				s := math.Sqrt(v)
				pr.std.Set(i, k, s)
				r := set.Y.At(i, k) - pr.mean.At(i, k)
				nll += 0.5*math.Log(2*math.Pi*v) + r*r/(2*v)
				sd += s
				if math.Abs(r) <= 2*s {
					cover++
				}
			}
		}
		nk := float64(N * K)
		ml := net.Evaluate(set.X, set.Y).MeanLoss
		nll, sd, cover = nll/nk, sd/nk, cover/nk
		pr.summary.MeanLoss, pr.summary.NLL, pr.summary.MeanStd, pr.summary.Coverage2 = &ml, &nll, &sd, &cover
		return pr, nil
	}
	if err := p.LatentTo(ctx, pr.mean, pr.std, set.X); err != nil {
		return nil, err
	}
	for i := range N {
		for k := range K {
			pr.std.Set(i, k, math.Sqrt(math.Max(pr.std.At(i, k), 0)))
		}
	}
	pr.prob = mat.NewDense(N, K, nil)
	if err := p.ProbTo(ctx, pr.prob, set.X, &laplace.PredictSettings{Method: method, Samples: samples, Src: rand.NewPCG(seed, streamPredict)}); err != nil {
		return nil, err
	}
	pr.plug = net.Forward(set.X)
	acc, nllP := laplace.ClassMetrics(pr.prob, set.Y, pr.ce)
	_, nllM := laplace.ClassMetrics(pr.plug, set.Y, pr.ce)
	eceP := laplace.ReliabilityOf(pr.prob, set.Y, pr.ce).ECE()
	eceM := laplace.ReliabilityOf(pr.plug, set.Y, pr.ce).ECE()
	pr.summary.Accuracy, pr.summary.NLLPredictive, pr.summary.NLLPlugin = &acc, &nllP, &nllM
	pr.summary.ECEPredictive, pr.summary.ECEPlugin = &eceP, &eceM
	pr.summary.Method = method.String()
	if pr.ce && method == laplace.Probit {
		pr.summary.Method = "extended probit"
	}
	return pr, nil
}

// csv returns the predictive as CSV: for regression the target, mean and
// standard deviation of each output; for classification the target, the
// predictive and MAP probabilities, and the latent mean and standard
// deviation of each output.
func (pr *predictions) csv() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	N, K := pr.mean.Dims()
	_, xin := pr.set.X.Dims()
	head := []string{"sample"}
	if xin == 1 {
		head = append(head, "x")
	}
	suffix := func(name string, k int) string {
		if K == 1 {
			return name
		}
		return fmt.Sprintf("%s_%d", name, k)
	}
	_, yc := pr.set.Y.Dims()
	for k := range yc {
		if yc == 1 {
			head = append(head, "target")
		} else {
			head = append(head, suffix("target", k))
		}
	}
	for k := range K {
		if pr.regression {
			head = append(head, suffix("mean", k), suffix("std", k))
		} else {
			head = append(head, suffix("prob", k), suffix("prob_map", k), suffix("latent_mean", k), suffix("latent_std", k))
		}
	}
	if err := w.Write(head); err != nil {
		return nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for i := range N {
		rec := []string{strconv.Itoa(i)}
		if xin == 1 {
			rec = append(rec, f(pr.set.X.At(i, 0)))
		}
		for k := range yc {
			rec = append(rec, f(pr.set.Y.At(i, k)))
		}
		for k := range K {
			if pr.regression {
				rec = append(rec, f(pr.mean.At(i, k)), f(pr.std.At(i, k)))
			} else {
				rec = append(rec, f(pr.prob.At(i, k)), f(pr.plug.At(i, k)), f(pr.mean.At(i, k)), f(pr.std.At(i, k)))
			}
		}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// laplaceChart draws the predictive band of a one-input, one-output
// regression over a grid reaching past the data, with the training data
// and the split's; otherwise the reliability diagram of the predictive and
// MAP probabilities.
func laplaceChart(ctx context.Context, p *laplace.Posterior, train, set *datasets.Set, pr *predictions) ([]byte, error) {
	net := p.Net()
	if pr.regression && net.Inputs() == 1 && net.Outputs() == 1 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range []*datasets.Set{train, set} {
			for i := range s.Len() {
				lo, hi = math.Min(lo, s.X.At(i, 0)), math.Max(hi, s.X.At(i, 0))
			}
		}
		pad := 0.25 * (hi - lo)
		const G = 300
		X := mat.NewDense(G, 1, nil)
		for i := range G {
			X.Set(i, 0, lo-pad+(hi-lo+2*pad)*float64(i)/(G-1))
		}
		mean := mat.NewDense(G, 1, nil)
		variance := mat.NewDense(G, 1, nil)
		if err := p.PredictTo(ctx, mean, variance, X); err != nil {
			return nil, err
		}
		return bandChart(X, mean, variance, train, set, pr.summary.Split, p)
	}
	return reliabilityChart(pr)
}

func bandChart(X, mean, variance *mat.Dense, train, set *datasets.Set, split string, p *laplace.Posterior) ([]byte, error) {
	net := p.Net()
	title := fmt.Sprintf("%s Laplace predictive (%s): ln evidence %.4g, γ %.3g", net.Arch(), p.Curvature(), p.Evidence().LogEvidence, p.Gamma())
	pl := newChart(title, "x", "y", false)
	pl.Legend.Top = false
	G, _ := X.Dims()
	band := make(plotter.XYs, 0, 2*G)
	xs := make([]float64, G)
	ms := make([]float64, G)
	for i := range G {
		xs[i], ms[i] = X.At(i, 0), mean.At(i, 0)
		band = append(band, plotter.XY{X: xs[i], Y: ms[i] + 2*math.Sqrt(variance.At(i, 0))})
	}
	for i := G - 1; i >= 0; i-- {
		band = append(band, plotter.XY{X: xs[i], Y: ms[i] - 2*math.Sqrt(variance.At(i, 0))})
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return nil, err
	}
	poly.Color = color.NRGBA{R: 120, G: 160, B: 230, A: 110}
	poly.LineStyle.Width = 0
	pl.Add(poly)
	pl.Legend.Add("±2σ (1/β + gᵀA⁻¹g)", poly)
	sd := 1 / math.Sqrt(p.Beta())
	mline, err := plotter.NewLine(finitePoints(xs, ms))
	if err != nil {
		return nil, err
	}
	mline.Color = color.RGBA{R: 20, G: 60, B: 170, A: 255}
	mline.Width = vg.Points(1.5)
	pl.Add(mline)
	pl.Legend.Add("predictive mean", mline)
	for i, s := range []*datasets.Set{train, set} {
		if s == nil || (i == 1 && s == train) {
			continue
		}
		pts := make(plotter.XYs, s.Len())
		for j := range pts {
			pts[j] = plotter.XY{X: s.X.At(j, 0), Y: s.Y.At(j, 0)}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Radius = vg.Points(1.6)
		name := "training data"
		sc.Color = color.Black
		if i == 1 {
			name = split + " data"
			sc.Color = color.RGBA{R: 220, G: 80, B: 30, A: 255}
		}
		pl.Add(sc)
		pl.Legend.Add(name, sc)
	}
	pl.Legend.Add(fmt.Sprintf("noise σ = 1/√β = %.3g", sd))
	return renderChart([]*plot.Plot{pl}, 7*vg.Inch, 4.5*vg.Inch)
}

func reliabilityChart(pr *predictions) ([]byte, error) {
	what := "predicted probability"
	if pr.ce {
		what = "confidence of the predicted class"
	}
	pl := newChart(fmt.Sprintf("reliability on %s (ECE: Laplace %.3g, MAP %.3g)", pr.summary.Split, *pr.summary.ECEPredictive, *pr.summary.ECEPlugin),
		what, "observed frequency", false)
	if err := addSeries(pl, "perfect calibration", 2, []float64{0, 1}, []float64{0, 1}, true); err != nil {
		return nil, err
	}
	for i, c := range []struct {
		name string
		P    *mat.Dense
	}{{"Laplace (" + pr.summary.Method + ")", pr.prob}, {"MAP (plug-in)", pr.plug}} {
		b := laplace.ReliabilityOf(c.P, pr.set.Y, pr.ce)
		var xs, ys []float64
		for j := range b.N {
			if b.N[j] > 0 {
				xs = append(xs, b.Conf[j]/b.N[j])
				ys = append(ys, b.Hit[j]/b.N[j])
			}
		}
		if err := addSeries(pl, c.name, i, xs, ys, false); err != nil {
			return nil, err
		}
	}
	pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, 1, 0, 1
	return renderChart([]*plot.Plot{pl}, 6*vg.Inch, 5*vg.Inch)
}
