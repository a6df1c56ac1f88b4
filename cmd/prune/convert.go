package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// convertOptions holds the flags of the convert command.
type convertOptions struct {
	Model     string
	Act, Loss string // of an .npz model
	Output    string
	Overwrite bool
	JSON      bool
	Quiet     bool
}

// convertCommand returns the convert command.
func convertCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` to read: .json (prune-mlp/1) or .npz (PyTorch state_dict)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "model `FILE` to write: .json or .npz (with MODEL.spec.json)"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file (and its spec file) if it exists"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object"},
	}
	flags = append(flags, modelSpecFlags()...)
	return &cli.Command{
		Name:  "convert",
		Usage: "convert a model between .json (prune-mlp/1) and .npz (PyTorch state_dict)",
		UsageText: "prune convert --model IN.npz|IN.json [--act tanh,sigmoid --loss mse] -o OUT.json|OUT.npz [--overwrite]\n\n" +
			"The formats follow the extensions. An .npz archive is written with its spec file OUT.spec.json,\n" +
			"which holds the activations, the loss and the metadata; masks are written in the\n" +
			"torch.nn.utils.prune form (N.weight_orig and N.weight_mask). A .json file written from an\n" +
			"archive keeps the archive's key prefix, module indices and dtype in its metadata (\"npz\"), so\n" +
			"that converting back restores them; values round-trip bit for bit.\n\n" +
			"Example: prune convert --model torch.npz --act relu,relu,softmax --loss ce -o m.json",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o := convertOptions{
				Model: c.String("model"), Act: c.String("act"), Loss: c.String("loss"),
				Output: c.String("output"), Overwrite: c.Bool("overwrite"), JSON: c.Bool("json"), Quiet: isQuiet(c),
			}
			return runConvert(c.Context, o, c.App.Writer, c.App.ErrWriter)
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

// runConvert reads o.Model and writes it to o.Output in the format of the
// output's extension.
func runConvert(_ context.Context, o convertOptions, stdout, stderr io.Writer) error {
	if o.Model == "" {
		return flagErrorf("model", "is required: give the model file to convert")
	}
	if err := checkModelName("model", o.Model); err != nil {
		return err
	}
	if o.Output == "" {
		return flagErrorf("output", "is required: give the model file to write with -o")
	}
	if err := checkModelName("output", o.Output); err != nil {
		return err
	}
	release, err := claimOutput(o.Output, o.Overwrite, modelFiles(o.Model)...)
	if err != nil {
		return err
	}
	defer release()
	n, err := readModel(o.Model, o.Act, o.Loss)
	if err != nil {
		return err
	}
	if !isNPZ(o.Output) {
		if err := simplifyLayout(n); err != nil {
			return fmt.Errorf("%s: %v", o.Model, err)
		}
	}
	if err := saveModel(o.Output, n); err != nil {
		return err
	}
	sum := convertSummary{
		Model: o.Model, Output: o.Output, Files: modelFiles(o.Output),
		From: modelFormat(o.Model), To: modelFormat(o.Output),
		Arch: n.Arch(), Params: n.NumParams(), Live: n.NumLive(),
	}
	if o.JSON {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "converted %s to %s (%s to %s): %s, loss %s, %d parameters, %d live\n",
		sum.Model, sum.Output, sum.From, sum.To, sum.Arch, n.Loss(), sum.Params, sum.Live)
	if !o.Quiet {
		for _, f := range sum.Files {
			fmt.Fprintf(stderr, "wrote %s\n", f)
		}
	}
	return nil
}

// simplifyLayout removes from n's metadata what its .npz layout says that
// writing would do anyway: the tensors listed as masked that have a pruned
// entry, and the whole layout when it is then the default one. A .json file
// then carries a layout only when it matters, and json → npz → json gives
// the same file.
func simplifyLayout(n *nn.Network) error {
	if _, ok := n.Meta[modelio.MetaKey]; !ok {
		return nil
	}
	lay, err := modelio.LayoutOf(n)
	if err != nil {
		return err
	}
	var masked []string
	for _, t := range lay.Masked {
		if !tensorHasPruned(n, lay, t) {
			masked = append(masked, t)
		}
	}
	lay.Masked = masked
	def := modelio.DefaultLayout(n)
	if lay.Prefix == def.Prefix && lay.DType == def.DType && slices.Equal(lay.Modules, def.Modules) && len(lay.Masked) == 0 {
		delete(n.Meta, modelio.MetaKey)
		return nil
	}
	if err := modelio.SetLayout(n, lay); err != nil {
		return err
	}
	n.Meta = metaValue(n.Meta).(map[string]any)
	return nil
}

// tensorHasPruned reports whether the tensor t of the layout, such as
// "2.weight", has a pruned entry in n.
func tensorHasPruned(n *nn.Network, lay modelio.Layout, t string) bool {
	for l, m := range lay.Modules {
		prefix := strconv.Itoa(m) + "."
		if t != prefix+"weight" && t != prefix+"bias" {
			continue
		}
		ly := n.Layer(l)
		start, end := n.Offset(l), n.Offset(l)+ly.Out*ly.In
		if t == prefix+"bias" {
			start, end = end, n.Offset(l+1)
		}
		for q := start; q < end; q++ {
			if !n.IsLive(q) {
				return true
			}
		}
	}
	return false
}
