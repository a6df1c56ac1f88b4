package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/secondorder/prune/datasets"
	"github.com/urfave/cli/v2"
)

// datasetsCommand returns the datasets command.
func datasetsCommand() *cli.Command {
	return &cli.Command{
		Name:      "datasets",
		Usage:     "list the built-in data sets",
		UsageText: "prune datasets [--json]\n\nBesides these, --data accepts the path of a CSV file: inputs first, then the target columns.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON array"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runDatasets(c.Bool("json"), c.App.Writer)
		},
	}
}

// datasetInfo describes a built-in data set.
type datasetInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Inputs      int    `json:"inputs"`
	Outputs     int    `json:"outputs"`
	Loss        string `json:"loss"`
}

// runDatasets prints the built-in data sets.
func runDatasets(asJSON bool, stdout io.Writer) error {
	var list []datasetInfo
	for _, d := range datasets.Names() {
		list = append(list, datasetInfo{Name: d.Name, Description: d.Description, Inputs: d.Inputs, Outputs: d.Outputs, Loss: d.Loss})
	}
	if asJSON {
		return writeJSON(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "name\tinputs\toutputs\tloss\tdescription\n")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", d.Name, d.Inputs, d.Outputs, d.Loss, d.Description)
	}
	return tw.Flush()
}
