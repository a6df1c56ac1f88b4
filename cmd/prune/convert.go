package main

import (
	"fmt"

	"github.com/secondorder/prune/modelio"
	"github.com/urfave/cli/v2"
)

// convertCommand returns the convert command.
func convertCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to read: .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "model `FILE` to write: .json, or .npz, .pt, .pth or .safetensors (with OUT.spec.json)"},
		torchMasksFlag(),
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file (and its spec file) if it exists"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object"},
	}
	flags = append(flags, append(modelSpecFlags(), layersFlag())...)
	return &cli.Command{
		Name:  "convert",
		Usage: "convert a model between .json (prune-mlp/1) and the PyTorch state_dict formats (.npz, .pt, .safetensors)",
		UsageText: "prune convert --model IN.pt|IN.safetensors|IN.npz|IN.json [--act relu,relu,linear --loss ce] [--layers fc1,fc2,fc3]\n" +
			"          -o OUT.json|OUT.pt|OUT.safetensors|OUT.npz [--torch-masks prune|plain] [--overwrite]\n\n" +
			"The formats follow the extensions. A state_dict is written with its spec file OUT.spec.json,\n" +
			"which holds the activations, the loss and the metadata; pruned tensors are written in the\n" +
			"torch.nn.utils.prune form (NAME_orig and NAME_mask), or with --torch-masks plain under their\n" +
			"own keys with the pruned entries zero. A .json file written from a state_dict keeps its key\n" +
			"names and dtype in its metadata (\"npz\"), so that converting back restores them; values\n" +
			"round-trip bit for bit.\n\n" +
			"Example: prune convert --model lenet.pt --act relu,relu,linear --loss ce -o m.json",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			in := modelInput{Path: c.String("model"), Act: c.String("act"), Loss: c.String("loss"), Layers: c.String("layers")}
			return runConvert(c, in, c.String("output"), c.String("torch-masks"))
		},
	}
}

// convertSummary is what convert prints with --json.
type convertSummary struct {
	Model  string   `json:"model"`
	Output string   `json:"output"`
	Files  []string `json:"files"`
	From   string   `json:"from"`
	To     string   `json:"to"`
	Arch   string   `json:"arch"`
	Params int      `json:"params"`
	Live   int      `json:"live"`
}

// runConvert reads the model and writes it to output in the format of the
// output's extension, its pruned tensors in the form masks.
func runConvert(c *cli.Context, o modelInput, output, masks string) error {
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	if o.Path == "" {
		return flagErrorf("model", "is required: give the model file to convert")
	}
	if err := checkModelName("model", o.Path); err != nil {
		return err
	}
	if output == "" {
		return flagErrorf("output", "is required: give the model file to write with -o")
	}
	if err := checkModelName("output", output); err != nil {
		return err
	}
	release, err := claimOutput(output, c.Bool("overwrite"), modelFiles(o.Path)...)
	if err != nil {
		return err
	}
	defer release()
	if err := checkTorchMasks(masks); err != nil {
		return err
	}
	n, err := readModelLayers(o.Path, o.Act, o.Loss, o.Layers)
	if err != nil {
		return err
	}
	if err := setTorchMasks(n, masks); err != nil {
		return err
	}
	if !isNPZ(output) {
		if err := modelio.SimplifyLayout(n); err != nil {
			return fmt.Errorf("%s: %v", o.Path, err)
		}
	}
	if err := saveModel(output, n); err != nil {
		return err
	}
	sum := convertSummary{
		Model: o.Path, Output: output, Files: modelFiles(output),
		From: modelFormat(o.Path), To: modelFormat(output),
		Arch: n.Arch(), Params: n.NumParams(), Live: n.NumLive(),
	}
	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "converted %s to %s (%s to %s): %s, loss %s, %d parameters, %d live\n",
		sum.Model, sum.Output, sum.From, sum.To, sum.Arch, n.Loss(), sum.Params, sum.Live)
	if !isQuiet(c) {
		for _, f := range sum.Files {
			fmt.Fprintf(stderr, "wrote %s\n", f)
		}
	}
	return nil
}
