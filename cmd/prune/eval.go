package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// evalOptions holds the flags of the eval command.
type evalOptions struct {
	Model string
	// Act and Loss give the activations and the loss of an .npz model
	// (--act, --loss); empty when not given.
	Act, Loss string
	Data      dataOptions
	// DataGiven holds the names of the data flags given on the command
	// line. The other fields of Data are taken from the data options
	// recorded in the model, when it has them and the data set is the
	// recorded one.
	DataGiven map[string]bool
	Split     string // train, valid or test
	JSON      bool
}

// evalCommand returns the eval command.
func evalCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to evaluate: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "`SPLIT` to evaluate: train, valid or test"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
	}
	flags = append(flags, modelSpecFlags()...)
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
			d, given := readDataOptions(c)
			o := evalOptions{
				Model:     c.String("model"),
				Act:       c.String("act"),
				Loss:      c.String("loss"),
				Data:      d,
				DataGiven: given,
				Split:     c.String("split"),
				JSON:      c.Bool("json"),
			}
			return runEval(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// evalResult is what eval prints with --json.
type evalResult struct {
	Data  string `json:"data"`
	Split string `json:"split"`
	nn.Metrics
}

// runEval loads the model o.Model, evaluates it with its own loss on the
// split o.Split of the data set o.Data and prints the metrics.
func runEval(_ context.Context, o evalOptions, stdout, _ io.Writer) error {
	if o.Model == "" {
		return flagErrorf("model", "is required: give the model file to evaluate")
	}
	split := strings.ToLower(o.Split)
	switch split {
	case "train", "valid", "test":
	case "validation":
		split = "valid"
	default:
		return flagErrorf("split", "%q: want train, valid or test", o.Split)
	}
	n, d, err := readModelData(o.Model, o.Act, o.Loss, o.Data, o.DataGiven)
	if err != nil {
		return err
	}
	set, err := loadSplit(n, d, split)
	if err != nil {
		return err
	}
	res := evalResult{Data: d.Name, Split: split, Metrics: n.Evaluate(set.X, set.Y)}
	if o.JSON {
		return writeJSON(stdout, res)
	}
	correct := int(res.Accuracy*float64(res.N) + 0.5)
	fmt.Fprintf(stdout, "%s on %s/%s: loss %.6g (%s, mean %.6g)  accuracy %.2f%% (%d/%d)\n",
		o.Model, d.Name, split, res.Loss, n.Loss(), res.MeanLoss, 100*res.Accuracy, correct, res.N)
	return nil
}
