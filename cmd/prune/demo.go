package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/urfave/cli/v2"
)

// The demo's network and training, as in Hassibi and Stork's MONK-1
// experiment: 17-3-1, tanh and sigmoid, squared error, trained to a
// minimum by full-batch L-BFGS with a small weight decay, which makes the
// minimum non-degenerate (the Hessian positive definite), as the
// saliencies assume.
const (
	demoData        = "monks1"
	demoArch        = "17-3-1"
	demoAct         = "tanh,sigmoid"
	demoLoss        = "mse"
	demoOptimizer   = "lbfgs"
	demoIterations  = 3000
	demoWeightDecay = 1e-3
	demoOut         = "prune-demo"
)

// demoCommand returns the demo command.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "train MONK-1 17-3-1 and prune it with Optimal Brain Surgeon, end to end",
		UsageText: "prune demo [--seed 1] [--out " + demoOut + "] [--quiet]\n\n" +
			"Trains a 17-3-1 network (tanh, sigmoid; squared error) on MONK-1, generated from its rule (124\n" +
			"training examples drawn by --seed; the 432 examples of the domain are the test set), with L-BFGS\n" +
			fmt.Sprintf("and weight decay %g, then prunes it with Optimal Brain Surgeon on the exact Hessian, one\n", demoWeightDecay) +
			"parameter at a time, while the training misclassification does not rise: the rule of Hassibi and\n" +
			"Stork (1993), who report 14 weights left with 100 % training and test accuracy. It prints the\n" +
			"network before and after and writes to --out the trained model (model.json), the pruned one\n" +
			"(pruned.json) and the report of 'prune run' (report/). The demo's files in --out are replaced.\n" +
			"It is 'prune train' and 'prune run' with these commands:\n\n" +
			"  prune train --data monks1 --arch 17-3-1 --act tanh,sigmoid --loss mse --optimizer lbfgs \\\n" +
			fmt.Sprintf("      --epochs %d --weight-decay %g --seed 1 -o model.json\n", demoIterations, demoWeightDecay) +
			"  prune run --model model.json --method obs --per-round 1 --stop-error-rise 0 \\\n" +
			"      --error-measure misclassification -o pruned.json --report report",
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "seed", Value: defaultSeed, Usage: "`SEED` of the training draw and the initialisation"},
			&cli.StringFlag{Name: "out", Value: demoOut, Usage: "`DIR` for the files, created when missing"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runDemo(c.Context, c.Uint64("seed"), c.String("out"), isQuiet(c), c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runDemo trains and prunes the demo network with the seed, writing to the
// directory out (default demoOut), and prints the result.
func runDemo(ctx context.Context, seed uint64, out string, quiet bool, stdout, stderr io.Writer) error {
	t0 := time.Now()
	out = cmpOr(out, demoOut)
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return fmt.Errorf("--out %s: not a directory", out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out %s: %v", out, err)
	}
	model := filepath.Join(out, "model.json")
	pruned := filepath.Join(out, "pruned.json")
	report := filepath.Join(out, "report")

	data := dataOptions{Name: demoData, Options: datasets.Options{Seed: seed}}
	splits, err := loadData(data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "MONK-1: %d training examples drawn by seed %d, the %d examples of the domain as the test set\n",
		splits.Train.Len(), seed, splits.Test.Len())
	fmt.Fprintf(stdout, "training %s (%s; %s) by L-BFGS with weight decay %g …\n", demoArch, strings.ReplaceAll(demoAct, ",", ", "), demoLoss, demoWeightDecay)
	tc, err := flagContext(trainCommand().Flags, nil, "--data", demoData, "--seed", fmt.Sprint(seed), "--arch", demoArch, "--act", demoAct,
		"--loss", demoLoss, "-o", model, "--overwrite", "--optimizer", demoOptimizer, "--epochs", fmt.Sprint(demoIterations),
		"--weight-decay", fmt.Sprint(demoWeightDecay), "--quiet")
	if err == nil {
		err = runTrain(ctx, tc, io.Discard, stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "pruning with Optimal Brain Surgeon (exact Hessian), one parameter at a time, while the training misclassification does not rise …")
	args := []string{"--model", model, "--data", demoData, "--seed", fmt.Sprint(seed), "--method", "obs", "--curvature", "exact", "--per-round", "1",
		"--stop-error-rise", "0", "--error-measure", "misclassification", "-o", pruned, "--report", report, "--overwrite"}
	if quiet {
		args = append(args, "--quiet")
	}
	rc, err := runFlagContext(nil, args...)
	if err != nil {
		return err
	}
	res, err := doRun(ctx, rc, stderr, runHooks{})
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	r := res.report
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tparameters\ttrain accuracy\ttest accuracy\t\n")
	fmt.Fprintf(tw, "trained\t%d\t%.2f%%\t%.2f%%\t\n", r.LiveBefore, 100*r.Start.Train.Accuracy, 100*r.Start.Test.Accuracy)
	fmt.Fprintf(tw, "pruned by OBS\t%d\t%.2f%%\t%.2f%%\t\n", r.LiveAfter, 100*r.Final.Train.Accuracy, 100*r.Final.Test.Accuracy)
	fmt.Fprintf(tw, "Hassibi & Stork 1993\t14\t100%%\t100%%\t\n")
	tw.Flush()
	fmt.Fprintln(stdout)
	undone := ""
	if k := len(r.History); k > 0 && r.History[k-1].Undone {
		undone = " (the last one undone: it raised the training misclassification)"
	}
	fmt.Fprintf(stdout, "%d removals in %d rounds%s, stopped: %s; health: %s\n",
		len(r.History), len(r.Rounds), undone, r.Stopped, r.Health.Line())
	fmt.Fprintf(stdout, "wrote %s (trained), %s (pruned, masks included) and the report %s/: %s\n",
		model, pruned, report, strings.Join(r.Files, ", "))
	fmt.Fprintf(stdout, "next: prune inspect --model %s; prune eval --model %s --split test\n", pruned, pruned)
	fmt.Fprintf(stdout, "time %.2g s\n", time.Since(t0).Seconds())
	return nil
}
