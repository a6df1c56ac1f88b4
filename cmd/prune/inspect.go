package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// inspectOptions holds the flags of the inspect command.
type inspectOptions struct {
	Model string
	// Act and Loss give the activations and the loss of an .npz model
	// (--act, --loss); empty when not given.
	Act, Loss string
	JSON      bool
}

// inspectCommand returns the inspect command.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a model file: layers, parameters, sparsity and metadata",
		UsageText: "prune inspect --model MODEL.json|MODEL.npz [--act … --loss …] [--json]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to describe: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		}, modelSpecFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o := inspectOptions{Model: c.String("model"), Act: c.String("act"), Loss: c.String("loss"), JSON: c.Bool("json")}
			return runInspect(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// layerInfo describes one layer of a model.
type layerInfo struct {
	In          int    `json:"in"`
	Out         int    `json:"out"`
	Activation  string `json:"activation"`
	Weights     int    `json:"weights"`
	Biases      int    `json:"biases"`
	LiveWeights int    `json:"live_weights"`
	LiveBiases  int    `json:"live_biases"`
}

// modelInfo is what inspect prints with --json.
type modelInfo struct {
	Model    string         `json:"model"`
	Format   string         `json:"format"`
	Arch     string         `json:"arch"`
	Loss     string         `json:"loss"`
	Layers   []layerInfo    `json:"layers"`
	Params   int            `json:"params"`
	Live     int            `json:"live"`
	Pruned   int            `json:"pruned"`
	Sparsity float64        `json:"sparsity"` // fraction of parameters pruned
	Meta     map[string]any `json:"meta,omitempty"`
}

// NPZFormat is the format inspect reports for a PyTorch .npz model.
const NPZFormat = "PyTorch state_dict (.npz)"

// modelFormat returns the format of the model file at path, by its
// extension: nn.Format or NPZFormat.
func modelFormat(path string) string {
	if isNPZ(path) {
		return NPZFormat
	}
	return nn.Format
}

// describe returns the description of the network n read from path.
func describe(path string, n *nn.Network) modelInfo {
	info := modelInfo{
		Model:  path,
		Format: modelFormat(path),
		Arch:   n.Arch(),
		Loss:   n.Loss().String(),
		Params: n.NumParams(),
		Live:   n.NumLive(),
		Meta:   n.Meta,
	}
	for l, ly := range n.Layers() {
		w, b := n.LayerLive(l)
		info.Layers = append(info.Layers, layerInfo{
			In: ly.In, Out: ly.Out, Activation: ly.Act.String(),
			Weights: ly.In * ly.Out, Biases: ly.Out,
			LiveWeights: w, LiveBiases: b,
		})
	}
	info.Pruned = info.Params - info.Live
	if info.Params > 0 {
		info.Sparsity = float64(info.Pruned) / float64(info.Params)
	}
	return info
}

// runInspect prints a description of the model file o.Model.
func runInspect(_ context.Context, o inspectOptions, stdout, _ io.Writer) error {
	if o.Model == "" {
		return flagErrorf("model", "is required: give the model file to describe")
	}
	n, err := readModel(o.Model, o.Act, o.Loss)
	if err != nil {
		return err
	}
	info := describe(o.Model, n)
	if o.JSON {
		return writeJSON(stdout, info)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", info.Model)
	fmt.Fprintf(tw, "format\t%s\n", info.Format)
	fmt.Fprintf(tw, "arch\t%s\n", info.Arch)
	fmt.Fprintf(tw, "loss\t%s\n", info.Loss)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\tin\tout\tactivation\tweights\tbiases\tlive weights\tlive biases\t\n")
	for l, ly := range info.Layers {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t\n", l, ly.In, ly.Out, ly.Activation, ly.Weights, ly.Biases, ly.LiveWeights, ly.LiveBiases)
	}
	if err := tw.Flush(); err != nil {
		return err
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
			return fmt.Errorf("%s: meta: %v", o.Model, err)
		}
		fmt.Fprintf(stdout, "\nmeta:\n  %s\n", b)
	}
	return nil
}
