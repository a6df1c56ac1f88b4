package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/secondorder/prune/modelio"
	"github.com/urfave/cli/v2"
)

// inspectCommand returns the inspect command.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "describe a model file: layers, parameters, sparsity and metadata",
		UsageText: "prune inspect --model MODEL.json|MODEL.pt|MODEL.safetensors|MODEL.npz [--act … --loss …] [--layers …] [--json]\n\n" +
			"A state_dict is described without --act and --loss too: its layers, keys, dtype and sparsity.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to describe: .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			layersFlag(),
		}, modelSpecFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runInspect(modelInput{Path: c.String("model"), Act: c.String("act"), Loss: c.String("loss"), Layers: c.String("layers")}, c.Bool("json"), c.App.Writer)
		},
	}
}

// modelInfo is what inspect prints with --json.
type modelInfo = modelio.Info

// modelFormat is modelio.FormatOf.
var modelFormat = modelio.FormatOf

// runInspect prints a description of the model file o.Path.
func runInspect(o modelInput, asJSON bool, stdout io.Writer) error {
	if o.Path == "" {
		return flagErrorf("model", "is required: give the model file to describe")
	}
	n, err := readModelLayers(o.Path, o.Act, o.Loss, o.Layers)
	var unknown []string
	if ue := (*usageError)(nil); errors.As(err, &ue) && errors.Is(loadErr(o), modelio.ErrNoSpec) {
		// What a state_dict holds is shown without the activations and the
		// loss, which read as linear and mse and print as "?".
		act, loss := o.Act, o.Loss
		if act == "" {
			act, unknown = "linear", append(unknown, "activations")
		}
		if loss == "" {
			loss, unknown = "mse", append(unknown, "loss")
		}
		n, err = readModelLayers(o.Path, act, loss, o.Layers)
	}
	if err != nil {
		return err
	}
	info := modelio.Describe(o.Path, n)
	info.Unknown = unknown
	if slices.Contains(unknown, "loss") {
		info.Loss = "?"
	}
	if slices.Contains(unknown, "activations") {
		for l := range info.Layers {
			info.Layers[l].Activation = "?"
		}
	}
	if asJSON {
		return writeJSON(stdout, info)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", info.Model)
	fmt.Fprintf(tw, "format\t%s\n", info.Format)
	if info.DType != "" {
		fmt.Fprintf(tw, "dtype\t%s\n", info.DType)
	}
	fmt.Fprintf(tw, "arch\t%s\n", info.Arch)
	fmt.Fprintf(tw, "loss\t%s\n", info.Loss)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\tmodule\tin\tout\tactivation\tweights\tbiases\tlive weights\tlive biases\t\n")
	for l, ly := range info.Layers {
		mod := ly.Module
		if mod == "" {
			mod = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t\n", l, mod, ly.In, ly.Out, ly.Activation, ly.Weights, ly.Biases, ly.LiveWeights, ly.LiveBiases)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(unknown) > 0 {
		fmt.Fprintf(stdout, "\n? the %s: not in the file; give --act and --loss (or MODEL.spec.json), such as --act relu,relu,linear --loss ce for a classifier trained on logits\n", strings.Join(unknown, " and the "))
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "parameters\t%d\n", info.Params)
	fmt.Fprintf(tw, "live\t%d\n", info.Live)
	fmt.Fprintf(tw, "pruned\t%d\n", info.Pruned)
	fmt.Fprintf(tw, "sparsity\t%.2f%%\n", 100*info.Sparsity)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(info.Meta) > 0 {
		b, err := json.MarshalIndent(info.Meta, "  ", "  ")
		if err != nil {
			return fmt.Errorf("%s: meta: %v", o.Path, err)
		}
		fmt.Fprintf(stdout, "\nmeta:\n  %s\n", b)
	}
	return nil
}

// loadErr returns the error of loading the model of o as modelio gives it.
func loadErr(o modelInput) error {
	_, err := loadModelFile(o.Path, o.Act, o.Loss, o.Layers)
	return err
}
