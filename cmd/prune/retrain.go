package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/lm"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
)

// retrainCommand returns the retrain command.
func retrainCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "trained model `FILE`: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
		&cli.StringFlag{Name: "add", Usage: "CSV `FILE` of samples to add to the training split (inputs, then the targets)", Category: "Change"},
		&cli.StringFlag{Name: "remove", Usage: "CSV `FILE` of samples to remove from the training split, each matched to an equal training sample", Category: "Change"},
		&cli.IntFlag{Name: "steps", Value: 1, Usage: "number of Newton steps", Category: "Newton"},
		&cli.BoolFlag{Name: "exact", Usage: "use the exact Hessian of the old data instead of the Gauss–Newton matrix", Category: "Newton"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "weight decay `λ` the model was trained with", DefaultText: "the model's recorded one", Category: "Newton"},
		&cli.Float64Flag{Name: "damping", Usage: "damping added to H + Nλ I in the inverse only, for models trained without weight decay", DefaultText: "0", Category: "Newton"},
		&cli.BoolFlag{Name: "compare", Usage: "also retrain from the old weights with L-BFGS to convergence and report the Newton estimate's error and both times", Category: "Newton"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "model `FILE` to write: .json or .npz", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file if it exists", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1)")...)
	return &cli.Command{
		Name:  "retrain",
		Usage: "update a trained model by Newton steps after adding or removing a few training samples",
		UsageText: "prune retrain --model MODEL.json --add NEW.csv|--remove OLD.csv [--steps 1] [--exact] [--compare] -o OUT.json [flags]\n\n" +
			"Takes Newton steps θ' = θ − (H' + αI)⁻¹∇S'(θ) from the model's parameters on the changed training split,\n" +
			"with H' the old curvature updated by the Gauss–Newton terms of the added or removed samples (the rank-one\n" +
			"recursion of the Optimal Brain Surgeon on the inverse). The prior precision α = Nλ stays fixed, so the\n" +
			"written model's weight decay is λ' = α/N'. The samples are CSV rows of inputs and targets in the units of\n" +
			"the model's data (standardized if it was trained with --standardize).\n\n" +
			"Example: prune retrain --model m.json --add extra.csv --compare -o m2.json",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runRetrain(c.Context, c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func readSamples(flag, path string, n *nn.Network) (*nn.Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %v", flag, err)
	}
	defer f.Close()
	targets := n.Loss().TargetCols(n.Outputs())
	s, err := datasets.ReadCSV(f, path, targets, n.Loss() == nn.CE)
	if err != nil {
		return nil, fmt.Errorf("--%s %s", flag, strings.TrimPrefix(trimPackagePrefix(err.Error()), path+": "))
	}
	if s.Inputs() != n.Inputs() {
		return nil, fmt.Errorf("--%s %s: %d input columns, the model %s has %d inputs (and %d target columns)", flag, path, s.Inputs(), n.Arch(), n.Inputs(), targets)
	}
	if err := n.Check(s.X, s.Y); err != nil {
		return nil, fmt.Errorf("--%s %s: %v", flag, path, trimPackagePrefix(err.Error()))
	}
	return s, nil
}

// runRetrain updates the model by Newton steps as the flags of c say.
func runRetrain(ctx context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	var o struct {
		Model, Act, Loss, Add, Remove, Output string
		Steps                                 int
		Exact, HasDecay, Compare              bool
		Decay, Damping                        float64
	}
	o.Model, o.Act, o.Loss, o.Add, o.Remove, o.Output = c.String("model"), c.String("act"), c.String("loss"), c.String("add"), c.String("remove"), c.String("output")
	o.Steps, o.Exact, o.HasDecay, o.Compare = c.Int("steps"), c.Bool("exact"), c.IsSet("weight-decay"), c.Bool("compare")
	o.Decay, o.Damping = c.Float64("weight-decay"), c.Float64("damping")
	data, given, dataErr := readDataOptions(c)
	quiet := isQuiet(c)
	if o.Model == "" {
		return flagErrorf("model", "is required: give the trained model")
	}
	if o.Add == "" && o.Remove == "" {
		return flagErrorf("add", "or --remove is required: give the samples that change")
	}
	if o.Steps < 1 {
		return flagErrorf("steps", "%d: must be positive", o.Steps)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"weight-decay", o.Decay}, {"damping", o.Damping}} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			return flagErrorf(f.name, "%v: must be a finite number not below 0", f.v)
		}
	}
	if o.Output != "" {
		if err := checkModelName("output", o.Output); err != nil {
			return err
		}
	}
	inputs := append(modelFiles(o.Model), o.Add, o.Remove)
	if err := checkOutput(o.Output, c.Bool("overwrite"), inputs...); err != nil {
		return err
	}
	n, d, err := modelInput{Path: o.Model, Act: o.Act, Loss: o.Loss, Data: data, Given: given, Err: dataErr}.load()
	if err != nil {
		return err
	}
	if err := checkOutput(o.Output, c.Bool("overwrite"), append(inputs, d.Inputs()...)...); err != nil {
		return err
	}
	train, err := loadSplit(n, d, "train")
	if err != nil {
		return err
	}
	var add, rem *nn.Data
	if o.Add != "" {
		if add, err = readSamples("add", o.Add, n); err != nil {
			return err
		}
	}
	if o.Remove != "" {
		if rem, err = readSamples("remove", o.Remove, n); err != nil {
			return err
		}
	}
	lambda, _ := prune.WeightDecayOf(n)
	if o.HasDecay {
		lambda = o.Decay
	}
	N0, _ := train.X.Dims()

	start := time.Now()
	u, err := lm.NewUpdater(ctx, n, train.X, train.Y, &lm.UpdaterSettings{WeightDecay: lambda, Exact: o.Exact, Damping: o.Damping})
	if err != nil {
		hint := ""
		if lambda == 0 && o.Damping == 0 {
			hint = " (the model has no weight decay: give --damping, such as 1e-4)"
		}
		return fmt.Errorf("--model %s: %v%s", o.Model, strings.TrimPrefix(err.Error(), "lm: "), hint)
	}
	setup := time.Since(start)
	start = time.Now()
	if add != nil {
		if err := u.Add(ctx, add.X, add.Y); err != nil {
			return fmt.Errorf("--add %s: %v", o.Add, strings.TrimPrefix(err.Error(), "lm: "))
		}
	}
	if rem != nil {
		if err := u.Remove(ctx, rem.X, rem.Y); err != nil {
			return fmt.Errorf("--remove %s: %v", o.Remove, strings.TrimPrefix(err.Error(), "lm: "))
		}
	}
	res, err := u.Step(ctx, o.Steps)
	if err != nil {
		return fmt.Errorf("Newton steps: %v", strings.TrimPrefix(err.Error(), "lm: "))
	}
	update := time.Since(start)
	out := u.Net()
	X, Y := u.Data()
	N, _ := X.Dims()
	lam2 := u.WeightDecay()
	sum := runreport.NewtonSummary{
		Model: o.Model, Output: o.Output, N: N, Alpha: u.Alpha(), WeightDecay: lam2, Steps: res.Steps,
		Curvature: "gn", ObjectiveOld: res.Start / float64(N), ObjectiveNewton: res.End / float64(N), GradNorm: res.GradNorm / float64(N),
		SetupSeconds: setup.Seconds(), UpdateSeconds: update.Seconds(), Train: out.Evaluate(X, Y),
	}
	if o.Exact {
		sum.Curvature = "exact"
	}
	if add != nil {
		sum.Added = add.Len()
	}
	if rem != nil {
		sum.Removed = rem.Len()
	}
	if o.Compare {
		if sum.Compare, err = runreport.CompareNewton(ctx, n, out, X, Y, lam2, sum.ObjectiveOld, sum.ObjectiveNewton); err != nil {
			return fmt.Errorf("--compare: retraining: %v", err)
		}
	}

	out.Meta = metaValue(sum.Meta(n.Meta, o.Add, o.Remove, N0)).(map[string]any)
	if err := saveModel(o.Output, out); err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	sum.WriteText(stdout, N0)
	if !quiet {
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(modelFiles(o.Output), ", "))
	}
	return nil
}
