package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/chart"
	"github.com/secondorder/prune/laplace"
	"github.com/urfave/cli/v2"
)

// evidenceCommand returns the evidence command.
func evidenceCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE`s to compare (repeat the flag, or separate with commas)"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "`SPLIT` on which the error is measured: train, valid or test"},
		&cli.StringFlag{Name: "x", Value: "hidden", Usage: "`AXIS` of the chart: hidden (hidden units) or params (live parameters)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "CSV `FILE` of the table", Category: "Output"},
		&cli.StringFlag{Name: "chart", Usage: "PNG `FILE`: the log evidence and the error against --x (MacKay's evidence curve)", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace output files that exist", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the table as one JSON object", Category: "Output"},
	}
	flags = append(flags, laplaceFlags("seed of the data draw (default: each model's, else 1)")...)
	return &cli.Command{
		Name:  "evidence",
		Usage: "compare the Laplace evidence of several models, to choose an architecture or a pruning level",
		UsageText: "prune evidence --model A.json --model B.json … [--data NAME] [--curvature gn] [--optimize-hyper [--retrain]]\n" +
			"               [--x hidden|params] [-o TABLE.csv] [--chart CURVE.png] [--json]\n\n" +
			"Fits the Laplace posterior of every model (see 'prune laplace') on its training split and prints\n" +
			"the log evidence, α, β and γ with the error on --split: the mean loss for mse models, the\n" +
			"misclassification otherwise. The model of highest evidence is marked.\n\n" +
			"Example: prune evidence -m h1.json -m h3.json -m h8.json --optimize-hyper --chart curve.png",
		Flags: flags,
		Action: func(c *cli.Context) error {
			p, err := readPosteriorFlags(c)
			if err != nil {
				return err
			}
			var models []string
			for _, m := range c.StringSlice("model") {
				for _, s := range strings.Split(m, ",") {
					if s = strings.TrimSpace(s); s != "" {
						models = append(models, s)
					}
				}
			}
			return runEvidence(c, models, p)
		},
	}
}

type evidenceTable struct {
	Models []laplace.EvidenceRow `json:"models"`
	Files  []string              `json:"files,omitempty"`
}

func runEvidence(c *cli.Context, models []string, p posteriorFlags) error {
	ctx, stdout, stderr := c.Context, c.App.Writer, c.App.ErrWriter
	quiet, asJSON := isQuiet(c), c.Bool("json")
	if len(models) == 0 {
		return flagErrorf("model", "is required: give the models to compare")
	}
	axis := strings.ToLower(c.String("x"))
	if axis != "hidden" && axis != "params" {
		return flagErrorf("x", "%q: want hidden or params", axis)
	}
	outputs := map[string]string{"output": c.String("output"), "chart": c.String("chart")}
	if err := checkDistinct(outputs); err != nil {
		return err
	}
	var inputs []string
	for _, m := range models {
		inputs = append(inputs, modelFiles(m)...)
	}
	if err := checkNewFiles(outputs, c.Bool("overwrite"), inputs...); err != nil {
		return err
	}
	var tab evidenceTable
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		in := p.in
		in.Path = m
		f, err := p.fitModel(ctx, in, outputs, c.Bool("overwrite"), nil, true)
		if err != nil {
			return err
		}
		row := laplace.EvidenceRowOf(f.sum, f.post, f.set.X, f.set.Y, p.split)
		tab.Models = append(tab.Models, row)
		if !quiet && !asJSON {
			fmt.Fprintf(stderr, "%s: log evidence %.6g\n", m, row.LogEvidence)
		}
	}
	laplace.MarkBest(tab.Models)

	var files [][2]string
	if f := outputs["output"]; f != "" {
		b, err := laplace.EvidenceCSV(tab.Models)
		if err != nil {
			return err
		}
		files = append(files, [2]string{f, string(b)})
	}
	if f := outputs["chart"]; f != "" {
		b, err := chart.Evidence(tab.Models, axis == "params")
		if err != nil {
			return fmt.Errorf("--chart %s: %v", f, err)
		}
		files = append(files, [2]string{f, string(b)})
	}
	for _, f := range files {
		if err := atomicfile.WriteBytes(f[0], []byte(f[1])); err != nil {
			return err
		}
		tab.Files = append(tab.Files, f[0])
	}
	if asJSON {
		return writeJSON(stdout, tab)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\tarch\thidden\tlive\tln evidence\tα\tβ\tγ\ttrain loss\t%s %s\t\n", p.split, tab.Models[0].ErrorName)
	for _, r := range tab.Models {
		beta := "-"
		if r.Beta != nil {
			beta = strconv.FormatFloat(*r.Beta, 'g', 5, 64)
		}
		mark := ""
		if r.BestByEvid {
			mark = " *"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%d\t%.6g\t%s\t%s\t%.4g\t%.5g\t%.5g\t\n", r.Model, mark, r.Arch, r.Hidden, r.Live,
			r.LogEvidence, laplace.AlphaText(r.Alpha), beta, r.Gamma, r.TrainLoss, r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !quiet {
		for _, f := range tab.Files {
			fmt.Fprintf(stderr, "wrote %s\n", f)
		}
	}
	return nil
}
