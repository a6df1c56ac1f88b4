package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/curvreport"
	"github.com/secondorder/prune/internal/npyfile"
	"github.com/urfave/cli/v2"
)

// hessianCommand returns the hessian command.
func hessianCommand() *cli.Command {
	var kindHelp strings.Builder
	for _, k := range curvreport.Kinds() {
		help := k.Help
		switch {
		case k.Name == "recursive":
			help += ", N samples, α = --alpha"
		case k.Name == "hutchinson":
			help += " (--probes)"
		}
		if k.Matrix {
			help += " (W×W)"
		} else {
			help += " (W)"
		}
		fmt.Fprintf(&kindHelp, "  %-11s %s\n", k.Name, help)
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` whose curvature is computed: .json (prune-mlp/1) or .npz (PyTorch state_dict)", Category: "Curvature"},
		&cli.StringFlag{Name: "kind", Usage: "curvature `KIND`: " + curvreport.KindNames(), Category: "Curvature"},
		&cli.StringFlag{Name: "split", Value: "train", Usage: "`SPLIT` whose summed loss E the curvature is of: train, valid or test", Category: "Curvature"},
		&cli.BoolFlag{Name: "all", Usage: "cover all parameters, pruned ones included, instead of the live ones", Category: "Curvature"},
		&cli.BoolFlag{Name: "inverse", Usage: "write the inverse (C + λI)⁻¹ of a matrix kind (exact, gn, fisher), by a Cholesky factorization", Category: "Curvature"},
		&cli.Float64Flag{Name: "damping", Usage: "damping `λ` ≥ 0 of --inverse", DefaultText: "0, undamped", Category: "Curvature"},
		&cli.BoolFlag{Name: "escalate", Usage: "with --inverse, multiply the damping by 10 (starting from 10⁻⁸‖C‖_F when it is 0) until C + λI is positive definite and well conditioned; each failed step is logged to stderr", Category: "Curvature"},
		&cli.Float64Flag{Name: "alpha", Usage: "initial damping `α` > 0 of --kind recursive", DefaultText: fmt.Sprint(hessian.DefaultAlpha), Category: "Curvature"},
		&cli.IntFlag{Name: "probes", Usage: "number `S` of Rademacher probes of --kind hutchinson", DefaultText: fmt.Sprint(hessian.DefaultProbes), Category: "Curvature"},
		&cli.Uint64Flag{Name: "probe-seed", Value: 1, Usage: "`SEED` of the Hutchinson probes and of the Lanczos start vector", Category: "Curvature"},
		&cli.IntFlag{Name: "eigen", Usage: "report the `K` largest and the K smallest eigenvalues: of the matrix for the matrix kinds, of the curvature the vector approximates (H for diag, diag-bl and hutchinson, G for diag-lm) by Lanczos for the vector kinds", DefaultText: "none", Category: "Spectrum"},
		&cli.BoolFlag{Name: "lanczos", Usage: "find the extreme eigenvalues by Lanczos iterations, a few dozen matrix–vector products (the default for the matrix kinds)", Category: "Spectrum"},
		&cli.BoolFlag{Name: "full-spectrum", Usage: "compute all eigenvalues of the matrix for the summary, adding the condition number and the counts of negative and zero eigenvalues (O(W³) time and a second W×W matrix)", Category: "Spectrum"},
		&cli.BoolFlag{Name: "no-spectrum", Usage: "skip the eigenvalues of the summary", Category: "Spectrum"},
		&cli.StringFlag{Name: "max-memory", Usage: "refuse W×W matrices needing more than `SIZE` bytes in all (suffix K, M, G or T; 'off' for no limit)", DefaultText: defaultMemoryText(), Category: "Curvature"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "NumPy `FILE`.npy to write (float64, C order)", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file if it exists", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, layersFlag())
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1)")...)
	return &cli.Command{
		Name:  "hessian",
		Usage: "compute a curvature of a model's training loss and write it to a .npy file",
		UsageText: "prune hessian --model MODEL.json|MODEL.npz --kind KIND [--data NAME|FILE.csv] [--split train] [--all]\n" +
			"              [--inverse [--damping λ] [--escalate]] [--eigen K] [--lanczos] [--max-memory 8G]\n" +
			"              -o OUT.npy [--overwrite] [--json] [flags]\n\n" +
			"Computes a curvature C of the summed loss E = Σₙ ℓₙ of the model over a split of the data set\n" +
			"(the training split by default), with respect to the live parameters (or all of them with\n" +
			"--all) in the canonical order of the model file, and writes it as a float64 NumPy array: a W×W\n" +
			"matrix for the matrix kinds, a vector of length W for the others. The summary gives the kind,\n" +
			"W, which parameters are covered, the trace, the extreme eigenvalues (of the matrix C, not of\n" +
			"its inverse; of the vector's entries for the vector kinds), the condition number, whether C is\n" +
			"positive definite and the time taken; for --kind recursive they describe the written matrix.\n" +
			"With --json an infinite condition number (a zero eigenvalue) is null. Data flags that are not\n" +
			"given take the values recorded in the model, as in 'prune eval'.\n\n" +
			"Kinds:\n" + kindHelp.String() + "\n" +
			"A W×W matrix takes 8·W² bytes; with its eigenvalues the command needs two, with --inverse three.\n" +
			"Larger networks need a vector kind, --lanczos, or layer-wise OBS.\n\n" +
			"Example: prune hessian --model m.json --kind exact -o h.npy",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := refuseZero(c, []string{"probes", "eigen"}, []string{"alpha"}); err != nil {
				return err
			}
			if c.IsSet("probe-seed") && c.Uint64("probe-seed") == 0 {
				return flagErrorf("probe-seed", "0: must be positive")
			}
			var s curvreport.Settings
			err := decodeFlags(c, &s)
			if err != nil {
				return err
			}
			if s.MaxBytes, err = parseMaxMemory(c.String("max-memory")); err != nil {
				return err
			}
			return runHessian(c, readModelInput(c), s)
		},
	}
}

// hessianSummary is what the hessian command prints with --json.
type hessianSummary = curvreport.Summary

// runHessian computes the curvature s describes for the model and data of
// in, writes it to --output and prints a summary. Nothing is written when
// any step fails.
func runHessian(c *cli.Context, in modelInput, s curvreport.Settings) error {
	ctx, stdout, stderr := c.Context, c.App.Writer, c.App.ErrWriter
	output := c.String("output")
	if in.Path == "" {
		return flagErrorf("model", "is required: give the model file")
	}
	if err := flagWords(s.Validate()); err != nil {
		return err
	}
	split, err := parseSplit(c.String("split"))
	if err != nil {
		return err
	}
	if err := checkNPYOutput(output); err != nil {
		return err
	}
	// The output is checked against the model before the model is read,
	// so that naming the model as the output is reported as such; the data
	// files are known once the model's recorded data options are.
	if err := checkOutput(output, c.Bool("overwrite"), modelFiles(in.Path)...); err != nil {
		return err
	}
	n, d, err := in.load()
	if err != nil {
		return err
	}
	release, err := claimOutput(output, c.Bool("overwrite"), append(d.Inputs(), modelFiles(in.Path)...)...)
	if err != nil {
		return err
	}
	defer release()
	set, err := loadSplit(n, d, split)
	if err != nil {
		return err
	}
	pr, params := hessian.Live(n, set.X, set.Y), "live"
	if c.Bool("all") {
		pr, params = hessian.All(n, set.X, set.Y), "all"
	}
	if pr.Dim() == 0 {
		return fmt.Errorf("%s has no live parameters (give --all to cover the pruned ones)", in.Path)
	}
	quiet := isQuiet(c)
	bar := &stageBar{w: stderr, on: !quiet && isTerminal(stderr)}
	s.Progress = barProgress{bar}
	s.Log = func(l float64, err error) {
		if !quiet {
			fmt.Fprintf(stderr, "damping %.4g failed: %v; escalating\n", l, err)
		}
	}
	start := time.Now()
	res, err := curvreport.Compute(ctx, pr, &s)
	var me *hessian.MemoryError
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("interrupted; nothing written to %s", output)
	case errors.Is(err, curvreport.ErrNotFinite):
		return fmt.Errorf("%v (%s on --data %s); nothing written", err, in.Path, d.Name)
	case errors.As(err, &me):
		if s.Spectrum() == "lanczos" {
			me.Alternatives = lanczosMemoryAdvice
		}
		return flagWords(err)
	default:
		return fmt.Errorf("%w; nothing written", flagWords(err))
	}
	sum := &res.Summary
	sum.Model, sum.Data, sum.Split, sum.Samples = in.Path, d.Name, split, set.Len()
	sum.Params, sum.Output, sum.BLAS = params, output, blasimpl.Name()
	bar.start("writing "+output, -1)
	if res.Matrix != nil {
		err = npyfile.WriteSym(output, res.Matrix)
	} else {
		err = npyfile.WriteVector(output, res.Vector)
	}
	if err != nil {
		return fmt.Errorf("--output %s: %v", output, err)
	}
	bar.stop()
	sum.Seconds = time.Since(start).Seconds()
	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	return sum.WriteText(stdout)
}

// checkNPYOutput returns a usage error when --output is missing or does
// not name a .npy file.
func checkNPYOutput(output string) error {
	if output == "" {
		return flagErrorf("output", "is required: give the .npy file to write with -o")
	}
	if !strings.HasSuffix(strings.ToLower(output), ".npy") {
		return flagErrorf("output", "%q: the file name must end in .npy", output)
	}
	return nil
}

// barProgress shows the stages of a library computation on a stageBar.
type barProgress struct{ b *stageBar }

func (p barProgress) Start(desc string, total int) { p.b.start(desc, total) }
func (p barProgress) Add()                         { p.b.add() }
func (p barProgress) Stop()                        { p.b.stop() }

// stageBar shows the current stage of a long computation on a terminal: a
// bar over a known number of steps, or a spinner with the elapsed time. It
// does nothing when it is off.
type stageBar struct {
	w   io.Writer
	on  bool
	bar *progressbar.ProgressBar
	n   int
	max int
	msg string
}

// start replaces the current stage with one described by desc of total
// steps, or of an unknown number when total is negative.
func (s *stageBar) start(desc string, total int) {
	s.stop()
	if !s.on {
		return
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(s.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(true),
	}
	if total > 0 {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
	} else {
		opts = append(opts, progressbar.OptionSpinnerType(14))
		total = -1
	}
	s.n, s.max, s.msg = 0, total, desc
	s.bar = progressbar.NewOptions(total, opts...)
}

// add advances the current stage by one step.
func (s *stageBar) add() {
	if s.bar == nil {
		return
	}
	s.n++
	if s.max < 0 {
		s.bar.Describe(fmt.Sprintf("%s (%d)", s.msg, s.n))
		return
	}
	_ = s.bar.Add(1)
}

// stop removes the current stage from the terminal.
func (s *stageBar) stop() {
	if s == nil || s.bar == nil {
		return
	}
	_ = s.bar.Finish()
	_ = s.bar.Clear()
	s.bar = nil
}
