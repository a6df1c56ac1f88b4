package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
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
			o, err := readLaplaceOptions(c)
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
			return runEvidence(c.Context, models, c.String("x"), o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// evidenceRow is one model of the evidence table.
type evidenceRow struct {
	posteriorSummary
	Live       int     `json:"live_params"`
	Error      float64 `json:"error"`
	ErrorName  string  `json:"error_measure"`
	Split      string  `json:"split"`
	BestByEvid bool    `json:"highest_evidence"`
}

type evidenceTable struct {
	Models []evidenceRow `json:"models"`
	Files  []string      `json:"files,omitempty"`
}

func runEvidence(ctx context.Context, models []string, axis string, o laplaceOptions, stdout, stderr io.Writer) error {
	if len(models) == 0 {
		return flagErrorf("model", "is required: give the models to compare")
	}
	plan, err := checkPosteriorFlags(o)
	if err != nil {
		return err
	}
	split, err := checkSplitName(o.Split)
	if err != nil {
		return err
	}
	axis = strings.ToLower(axis)
	if axis != "hidden" && axis != "params" {
		return flagErrorf("x", "%q: want hidden or params", axis)
	}
	if err := checkDistinct(map[string]string{"output": o.Output, "chart": o.Chart}); err != nil {
		return err
	}
	var inputs []string
	for _, m := range models {
		inputs = append(inputs, modelFiles(m)...)
	}
	if err := checkNewFiles(map[string]string{"output": o.Output, "chart": o.Chart}, o.Overwrite, inputs...); err != nil {
		return err
	}
	var tab evidenceTable
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		n, err := readModel(m, o.Act, o.Loss)
		if err != nil {
			return err
		}
		d := o.Data.withRecorded(recordedData(n.Meta), o.DataGiven)
		if err := d.check(); err != nil {
			return fmt.Errorf("--model %s: %w", m, err)
		}
		if err := checkNewFiles(map[string]string{"output": o.Output, "chart": o.Chart}, o.Overwrite, d.inputs()...); err != nil {
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
		mo := o
		mo.Model = m
		f, err := fitPosterior(ctx, n, train, mo, plan)
		if err != nil {
			return err
		}
		row := evidenceRow{posteriorSummary: summarizePosterior(m, f, o.Retrain), Live: n.NumLive(), Split: split}
		net := f.post.Net()
		met := net.Evaluate(set.X, set.Y)
		if n.Loss() == nn.MSE {
			row.Error, row.ErrorName = met.MeanLoss, "mean loss"
		} else {
			row.Error, row.ErrorName = 1-met.Accuracy, "misclassification"
		}
		tab.Models = append(tab.Models, row)
		if !o.Quiet && !o.JSON {
			fmt.Fprintf(stderr, "%s: log evidence %.6g\n", m, row.LogEvidence)
		}
	}
	best := 0
	for i, r := range tab.Models {
		if r.LogEvidence > tab.Models[best].LogEvidence {
			best = i
		}
	}
	tab.Models[best].BestByEvid = true

	var files [][2]string
	var data [][]byte
	if o.Output != "" {
		b, err := evidenceCSV(tab.Models)
		if err != nil {
			return err
		}
		files, data = append(files, [2]string{"output", o.Output}), append(data, b)
	}
	if o.Chart != "" {
		b, err := evidenceChart(tab.Models, axis)
		if err != nil {
			return fmt.Errorf("--chart %s: %v", o.Chart, err)
		}
		files, data = append(files, [2]string{"chart", o.Chart}), append(data, b)
	}
	for i, f := range files {
		if err := atomicfile.WriteBytes(f[1], data[i]); err != nil {
			return err
		}
		tab.Files = append(tab.Files, f[1])
	}
	if o.JSON {
		return writeJSON(stdout, tab)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\tarch\thidden\tlive\tln evidence\tα\tβ\tγ\ttrain loss\t%s %s\t\n", split, tab.Models[0].ErrorName)
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
			r.LogEvidence, alphaText(r.Alpha), beta, r.Gamma, r.TrainLoss, r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.Quiet {
		for _, p := range tab.Files {
			fmt.Fprintf(stderr, "wrote %s\n", p)
		}
	}
	return nil
}

func evidenceCSV(rows []evidenceRow) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"model", "arch", "hidden_units", "live_params", "covered", "log_evidence", "alpha", "beta", "gamma", "train_mean_loss", "split", "error_measure", "error", "highest_evidence"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
	for _, r := range rows {
		beta := ""
		if r.Beta != nil {
			beta = f(*r.Beta)
		}
		_ = w.Write([]string{r.Model, r.Arch, strconv.Itoa(r.Hidden), strconv.Itoa(r.Live), strconv.Itoa(r.Covered),
			f(r.LogEvidence), strings.ReplaceAll(formatFloats(r.Alpha), " ", ";"), beta, f(r.Gamma), f(r.TrainLoss),
			r.Split, r.ErrorName, f(r.Error), strconv.FormatBool(r.BestByEvid)})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// evidenceChart draws the log evidence and the error against the hidden
// units or live parameters, one point per model, the highest evidence
// marked by the title.
func evidenceChart(rows []evidenceRow, axis string) ([]byte, error) {
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	x := func(r evidenceRow) float64 {
		if axis == "params" {
			return float64(r.Live)
		}
		return float64(r.Hidden)
	}
	sort.SliceStable(idx, func(a, b int) bool { return x(rows[idx[a]]) < x(rows[idx[b]]) })
	var xs, ev, er []float64
	bestX := math.NaN()
	for _, i := range idx {
		r := rows[i]
		xs = append(xs, x(r))
		ev = append(ev, r.LogEvidence)
		er = append(er, r.Error)
		if r.BestByEvid {
			bestX = x(r)
		}
	}
	label := "hidden units"
	if axis == "params" {
		label = "live parameters"
	}
	p1 := newChart(fmt.Sprintf("log evidence (highest at %s = %g)", label, bestX), label, "ln p(D | α, β)", false)
	if err := addSeries(p1, "Laplace log evidence", 0, xs, ev, false); err != nil {
		return nil, err
	}
	p2 := newChart(rows[0].Split+" "+rows[0].ErrorName, label, rows[0].ErrorName, false)
	if err := addSeries(p2, rows[0].Split+" "+rows[0].ErrorName, 1, xs, er, false); err != nil {
		return nil, err
	}
	return renderChart([]*plot.Plot{p1, p2}, 6.5*vg.Inch, 7*vg.Inch)
}
