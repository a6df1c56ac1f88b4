package main

import (
	"fmt"
	"io"

	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// evalCommand returns the eval command.
func evalCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to evaluate: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "`SPLIT` to evaluate: train, valid or test"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, layersFlag())
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1)")...)
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a model on a split of a data set",
		UsageText: "prune eval --model MODEL.json|MODEL.npz [--act … --loss …] [--data NAME|FILE.csv] [--split test] [--json] [flags]\n\n" +
			"The loss is the model's. Data flags that are not given take the values that 'prune train'\n" +
			"recorded in the model, so that the same splits are drawn; --data defaults to the model's data set.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runEval(readModelInput(c), c.String("split"), c.Bool("json"), c.App.Writer)
		},
	}
}

// evalResult is what eval prints with --json.
type evalResult struct {
	Data  string `json:"data"`
	Split string `json:"split"`
	nn.Metrics
}

// runEval evaluates the model with its own loss on a split of its data set
// and prints the metrics.
func runEval(in modelInput, split string, asJSON bool, stdout io.Writer) error {
	if in.Path == "" {
		return flagErrorf("model", "is required: give the model file to evaluate")
	}
	split, err := parseSplit(split)
	if err != nil {
		return err
	}
	n, d, err := in.load()
	if err != nil {
		return err
	}
	set, err := loadSplit(n, d, split)
	if err != nil {
		return err
	}
	res := evalResult{Data: d.Name, Split: split, Metrics: n.Evaluate(set.X, set.Y)}
	if asJSON {
		return writeJSON(stdout, res)
	}
	correct := int(res.Accuracy*float64(res.N) + 0.5)
	fmt.Fprintf(stdout, "%s on %s/%s: loss %.6g (%s, mean %.6g)  accuracy %.2f%% (%d/%d)\n",
		in.Path, d.Name, split, res.Loss, n.Loss(), res.MeanLoss, 100*res.Accuracy, correct, res.N)
	return nil
}
