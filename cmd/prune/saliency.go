package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/npyfile"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
)

// curvatureFlag returns the --curvature flag of the saliencies, whose
// values are those of hessian's registry: for OBS the kinds with a dense
// matrix, an inverse or a low-rank form, for OBD those with a diagonal.
func curvatureFlag() cli.Flag {
	obs := hessian.KindList(func(k hessian.Kind) bool { return k.Dense || k.InverseOnly || k.LowRank })
	obd := hessian.KindList(func(k hessian.Kind) bool { return k.Diagonal })
	return &cli.StringFlag{Name: "curvature", Usage: "`CURVATURE` of obs: " + obs + "; of obd: " + obd + " (exact: the exact diagonal)", DefaultText: "exact", Category: "Method"}
}

// saliencyCommand returns the saliency command.
func saliencyCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to score: .json (prune-mlp/1) or .npz (PyTorch state_dict)", Category: "Model"},
		&cli.StringFlag{Name: "method", Value: "obs", Usage: "saliency `METHOD`: obs, obd or magnitude", Category: "Method"},
		curvatureFlag(),
		&cli.Float64Flag{Name: "damping", Usage: "damping `λ` ≥ 0 of the obs matrix, raised tenfold while it is not positive definite", DefaultText: fmt.Sprint(prune.DefaultDamping), Category: "Method"},
		&cli.Float64Flag{Name: "alpha", Usage: "initial damping `α` > 0 of --curvature recursive", DefaultText: fmt.Sprint(hessian.DefaultAlpha), Category: "Method"},
		&cli.IntFlag{Name: "probes", Usage: "number `S` of Rademacher probes of --curvature hutchinson", DefaultText: fmt.Sprint(hessian.DefaultProbes), Category: "Method"},
		samplesFlag(), hardFlag(), blockFlag(),
		&cli.StringFlag{Name: "objective", Usage: "`OBJECTIVE` whose curvature obs and obd use: trained (the loss plus the model's recorded weight decay, gradient taken as zero), gradient (with its gradient) or loss", DefaultText: "trained", Category: "Method"},
		&cli.StringFlag{Name: "max-memory", Usage: "refuse dense W×W matrices needing more than `SIZE` bytes in all (suffix K, M, G or T; 'off' for no limit)", DefaultText: defaultMemoryText(), Category: "Method"},
		&cli.BoolFlag{Name: "all", Usage: "list every parameter's saliency in the summary, not only the 10 smallest", Category: "Output"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "NumPy `FILE`.npy to write: float64, one entry per parameter in canonical order, NaN for pruned ones", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file if it exists", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, layersFlag())
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1) and of the Hutchinson probes")...)
	return &cli.Command{
		Name:  "saliency",
		Usage: "write the saliency of every parameter to a .npy file",
		UsageText: "prune saliency --model MODEL.json|MODEL.npz [--data NAME|FILE.csv] [--method obs|obd|magnitude]\n" +
			"               [--curvature C] [--damping λ] [--all] -o S.npy [--overwrite] [--json] [flags]\n\n" +
			"Scores every live parameter of the model on the training split, as the first round of\n" +
			"'prune run' would: OBS L_q = w_q²/(2[H⁻¹]_qq), OBD s_q = ½h_qq w_q², magnitude |w_q|. The .npy file\n" +
			"holds one float64 per parameter in the canonical order (per layer: W row-major, then b);\n" +
			"pruned parameters, which have no saliency, are NaN. The summary gives the number of\n" +
			"parameters, the minimum, median and maximum saliency and the 10 smallest with their names\n" +
			"(every parameter with --all).\n\n" +
			"Example: prune saliency --model m.json --method obd --curvature diag-lm -o s.npy",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := refuseZero(c, []string{"probes", "samples"}, []string{"alpha"}); err != nil {
				return err
			}
			return runSaliency(c.Context, c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runSaliency scores the parameters of the model as the flags of c say,
// writes the saliencies to --output and prints a summary. Nothing is
// written when any step fails.
func runSaliency(ctx context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	in, output, overwrite, all := readModelInput(c), c.String("output"), c.Bool("overwrite"), c.Bool("all")
	if in.Path == "" {
		return flagErrorf("model", "is required: give the model file to score")
	}
	src := rand.NewPCG(0, streamHutch)
	m, err := readMethodFlags(c).decode(src)
	if err != nil {
		return err
	}
	limit, err := parseMaxMemory(c.String("max-memory"))
	if err != nil {
		return err
	}
	if output == "" {
		return flagErrorf("output", "is required: give the .npy file to write with -o")
	}
	if !strings.HasSuffix(strings.ToLower(output), ".npy") {
		return flagErrorf("output", "%q: the file name must end in .npy", output)
	}
	if err := checkOutput(output, overwrite, modelFiles(in.Path)...); err != nil {
		return err
	}
	n, d, err := in.load()
	if err != nil {
		return err
	}
	release, err := claimOutput(output, overwrite, append(modelFiles(in.Path), d.Inputs()...)...)
	if err != nil {
		return err
	}
	defer release()
	train, err := loadSplit(n, d, "train")
	if err != nil {
		return err
	}
	src.Seed(d.Seed, streamHutch)
	if err := checkMemory(m, false, n, train.X, train.Y, limit); err != nil {
		return err
	}
	if n.NumLive() == 0 {
		return fmt.Errorf("%s has no live parameters", in.Path)
	}

	bar := &stageBar{w: stderr, on: !isQuiet(c) && isTerminal(stderr)}
	start := time.Now()
	bar.start(m.desc+" saliencies", -1)
	var decay float64
	if m.objective != prune.LossObjective {
		decay, _ = prune.WeightDecayOf(n)
	}
	res, err := prune.ScoresOf(ctx, n, train.X, train.Y, &prune.Settings{
		Method:      m.saliency,
		Objective:   m.objective,
		WeightDecay: decay,
		MaxBytes:    limit,
	})
	bar.stop()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("interrupted; nothing written to %s", output)
		}
		return fmt.Errorf("saliencies of %s on --data %s: %v; nothing written", in.Path, d.Name, err)
	}
	sal := res.Saliency
	if err := npyfile.WriteVector(output, sal); err != nil {
		return fmt.Errorf("--output %s: %v", output, err)
	}

	sum := runreport.SaliencySummary{
		Model: in.Path, Data: d.Name, Samples: train.Len(), Method: m.desc, Output: output,
		Seconds: time.Since(start).Seconds(),
		Damping: runreport.Num(res.Damping), Decay: res.Decay,
	}
	sum.Health = healthOf(res.Health, n)
	sum.Saliencies = runreport.SalienciesOf(sal, n, all)
	if m.name != "magnitude" {
		sum.Objective = m.objective.String()
	}
	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	return sum.WriteText(stdout)
}
