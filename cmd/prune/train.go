package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/lm"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// Streams of the PCG generators seeded with --seed for initialisation and
// shuffling. The datasets package uses its own streams for the data draw.
const (
	streamInit    = 0x696e6974 // "init"
	streamShuffle = 0x73687566 // "shuf"
)

// trainCommand returns the train command.
func trainCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "arch", Usage: "layer `SIZES` from inputs to outputs, such as 17-3-1", Category: "Network"},
		&cli.StringFlag{Name: "act", Usage: "`ACTIVATIONS`, one for all layers or one per layer: tanh, sigmoid, relu, linear, softmax", DefaultText: "tanh, and for the output layer sigmoid with bce, softmax with ce, linear with mse", Category: "Network"},
		&cli.StringFlag{Name: "loss", Usage: "`LOSS`: mse, bce or ce", DefaultText: "the data set's suggested loss", Category: "Network"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "model `FILE` to write: .json (prune-mlp/1) or .npz (PyTorch state_dict and MODEL.spec.json)", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file if it exists", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
		&cli.StringFlag{Name: "optimizer", Value: nn.Adam.String(), Usage: "optimizer: adam, sgd, lbfgs or lm (Levenberg–Marquardt)", Category: "Trainer"},
		&cli.IntFlag{Name: "epochs", DefaultText: fmt.Sprintf("%d, %d major iterations for lbfgs, %d steps for lm", nn.DefaultEpochs, nn.DefaultLBFGSEpochs, lm.DefaultEpochs), Usage: "maximum number of epochs", Category: "Trainer"},
		&cli.IntFlag{Name: "batch", DefaultText: fmt.Sprint(nn.DefaultBatchSize), Usage: "minibatch size of adam and sgd", Category: "Trainer"},
		&cli.Float64Flag{Name: "lr", DefaultText: fmt.Sprintf("%v for adam, %v for sgd", nn.DefaultAdamRate, nn.DefaultSGDRate), Usage: "learning rate of adam and sgd", Category: "Trainer"},
		&cli.Float64Flag{Name: "momentum", DefaultText: fmt.Sprint(nn.DefaultMomentum), Usage: "momentum of sgd, in [0, 1)", Category: "Trainer"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "L2 penalty coefficient on the parameters", Category: "Trainer"},
		&cli.StringFlag{Name: "schedule", Value: nn.ConstantLR.String(), Usage: "learning-rate schedule: constant, step or cosine", Category: "Trainer"},
		&cli.IntFlag{Name: "step-every", DefaultText: "a quarter of --epochs", Usage: "epochs between the rate steps of --schedule step", Category: "Trainer"},
		&cli.Float64Flag{Name: "step-gamma", DefaultText: fmt.Sprint(nn.DefaultStepGamma), Usage: "factor of each rate step of --schedule step", Category: "Trainer"},
		&cli.IntFlag{Name: "patience", DefaultText: "off", Usage: "stop after this many epochs without a better validation loss and keep the best parameters (needs --valid-fraction)", Category: "Trainer"},
		&cli.Float64Flag{Name: "tolerance", DefaultText: "off", Usage: "stop once the mean training loss falls below this value", Category: "Trainer"},
	}
	flags = append(flags, dataFlags("seed of the data draw, the initialisation and the shuffling")...)
	return &cli.Command{
		Name:  "train",
		Usage: "train a network on a data set and write it to a model file",
		UsageText: "prune train --data NAME|FILE.csv --arch 17-3-1 [--act tanh,sigmoid] [--loss mse] [--seed 1] -o MODEL.json|MODEL.npz [flags]\n\n" +
			"The output format follows the extension: .json for a prune-mlp/1 file, .npz for a PyTorch state_dict\n" +
			"with its spec file MODEL.spec.json (activations, loss and metadata) next to it.\n\n" +
			"Example: prune train --data monks1 --arch 17-3-1 --act tanh,sigmoid --loss mse --seed 1 -o m.json",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runTrain(c.Context, c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// readTrainer decodes the trainer flags of c into the settings of
// nn.Train; useLM reports --optimizer lm (package lm), which takes the
// epochs, weight decay, tolerance and patience.
func readTrainer(c *cli.Context) (s nn.TrainSettings, useLM bool, err error) {
	// Zero means the trainer's default, so an explicit zero is refused
	// where it would be misread, and an explicit zero momentum turns
	// momentum off.
	if err := refuseZero(c, []string{"epochs", "batch", "step-every"}, []string{"lr", "step-gamma"}); err != nil {
		return s, false, err
	}
	if opt := c.String("optimizer"); strings.EqualFold(opt, optimizerLM) {
		useLM = true
	} else if s.Optimizer, err = nn.ParseOptimizer(opt); err != nil {
		return s, false, flagValueError("optimizer", opt, err)
	}
	if s.Schedule, err = nn.ParseSchedule(c.String("schedule")); err != nil {
		return s, false, flagValueError("schedule", c.String("schedule"), err)
	}
	s.Epochs, s.BatchSize, s.StepEvery, s.Patience = c.Int("epochs"), c.Int("batch"), c.Int("step-every"), c.Int("patience")
	s.LearningRate, s.Momentum, s.WeightDecay = c.Float64("lr"), c.Float64("momentum"), c.Float64("weight-decay")
	s.StepGamma, s.Tolerance = c.Float64("step-gamma"), c.Float64("tolerance")
	if c.IsSet("momentum") && s.Momentum == 0 {
		s.Momentum = nn.NoMomentum
	}
	if err := s.Validate(); err != nil {
		return s, false, libraryError(err)
	}
	return s, useLM, nil
}

// networkSpec is the network described by --arch, --act and --loss.
// Acts is nil when --act was not given and HasLoss is false when --loss was
// not given; resolve fills them in once the data set is known.
type networkSpec struct {
	Sizes   []int
	Acts    []nn.Activation
	Loss    nn.Loss
	HasLoss bool
}

// parseNetwork parses --arch, --act and --loss.
func parseNetwork(arch, act, loss string) (networkSpec, error) {
	var spec networkSpec
	if arch == "" {
		return spec, flagErrorf("arch", "is required: give the layer sizes from inputs to outputs, such as 17-3-1")
	}
	sizes, err := nn.ParseArch(arch)
	if err != nil {
		return spec, flagValueError("arch", arch, err)
	}
	spec.Sizes = sizes
	if loss != "" {
		if spec.Loss, err = nn.ParseLoss(loss); err != nil {
			return spec, flagValueError("loss", loss, err)
		}
		spec.HasLoss = true
	}
	if act != "" {
		if spec.Acts, err = nn.ParseActivations(act, len(sizes)-1); err != nil {
			return spec, flagValueError("act", act, err)
		}
	}
	return spec, nil
}

// resolve fills in the loss suggested by the data set when --loss was not
// given, and the default activations when --act was not given: tanh for
// the hidden layers and, for the output layer, the activation the loss
// needs or linear for mse.
func (spec *networkSpec) resolve(d dataOptions, suggested string) error {
	if !spec.HasLoss {
		loss, err := nn.ParseLoss(suggested)
		if err != nil {
			return dataErrorf(d, "suggested loss: %v; give --loss", err)
		}
		spec.Loss, spec.HasLoss = loss, true
	}
	if spec.Acts == nil {
		layers := len(spec.Sizes) - 1
		spec.Acts = make([]nn.Activation, layers)
		for l := range spec.Acts {
			spec.Acts[l] = nn.Tanh
		}
		spec.Acts[layers-1] = nn.Linear
		if out, fixed := spec.Loss.OutputActivation(); fixed {
			spec.Acts[layers-1] = out
		}
	}
	return nil
}

// checkOutput checks the output file name before any work is done: it must
// be given, its directory must exist, it must not be an input, and it must
// not exist unless overwrite is set. For an .npz model file the same holds
// for its spec file (modelio.SpecPath), which is written with it.
func checkOutput(out string, overwrite bool, inputs ...string) error {
	if out == "" {
		return flagErrorf("output", "is required: give the model file to write with -o")
	}
	for _, f := range modelFiles(out) {
		if err := atomicfile.CheckNotInput(f, inputs...); err != nil {
			return &usageError{Flag: "output", Msg: "--output: " + err.Error()}
		}
		if err := checkOutputLink(f, overwrite); err != nil {
			return fmt.Errorf("--output %s: %v", out, err)
		}
		if fi, err := os.Stat(f); err == nil {
			if fi.IsDir() {
				return fmt.Errorf("--output %s: %s is a directory", out, f)
			}
			if !overwrite {
				if f != out {
					return fmt.Errorf("--output %s: its spec file %s exists (give --overwrite to replace it)", out, f)
				}
				return fmt.Errorf("--output %s: file exists (give --overwrite to replace it)", out)
			}
		}
	}
	dir := filepath.Dir(out)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--output %s: directory %s does not exist", out, dir)
	} else if err != nil {
		return fmt.Errorf("--output %s: %v", out, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("--output %s: %s is not a directory", out, dir)
	}
	return nil
}

// checkFit returns an error naming --arch when the network's inputs or
// outputs do not match the data, and naming --data when the data do not
// suit the network otherwise (targets the loss cannot use, values that
// are not finite). archFlag tells whether the network comes from --arch;
// lossDesc names the loss and where it comes from, such as "--loss mse".
func checkFit(n *nn.Network, set *nn.Data, d dataOptions, archFlag bool, lossDesc string) error {
	loss := n.Loss()
	switch {
	case loss == nn.CE && set.Classes == 0:
		hint := ""
		if d.Kind() == "csv" {
			hint = " (give --classes if the target column holds class indices)"
		}
		return dataErrorf(d, "%s needs class-index targets, but the data have %d target column(s) of values%s", lossDesc, set.Targets(), hint)
	case loss != nn.CE && set.Classes > 0:
		return dataErrorf(d, "the data have class-index targets (%d classes), which only loss ce can use, not %s", set.Classes, lossDesc)
	}
	if archFlag {
		if set.Inputs() != n.Inputs() {
			return flagErrorf("arch", "%s has %d inputs, but --data %s has %d input columns", n.Arch(), n.Inputs(), d.Name, set.Inputs())
		}
		if set.Outputs() != n.Outputs() {
			return flagErrorf("arch", "%s has %d outputs, but --data %s needs %d", n.Arch(), n.Outputs(), d.Name, set.Outputs())
		}
	} else if set.Classes > 0 && set.Classes > n.Outputs() {
		return dataErrorf(d, "the data have %d classes, network %s has %d outputs", set.Classes, n.Arch(), n.Outputs())
	}
	if err := n.Check(set.X, set.Y); err != nil {
		if archFlag {
			return dataErrorf(d, "%s: %v", set.Name, err)
		}
		return dataErrorf(d, "%v", err)
	}
	return nil
}

// runTrain trains a network as the flags of c say, writes it to --output
// and prints a summary to stdout. Progress goes to stderr when stderr is a
// terminal and --quiet is not given. On failure or interruption nothing is
// written.
func runTrain(ctx context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	data, _, err := readDataOptions(c)
	if err != nil {
		return err
	}
	output, quiet := c.String("output"), isQuiet(c)
	if err := checkData(data); err != nil {
		return err
	}
	settings, useLM, err := readTrainer(c)
	if err != nil {
		return err
	}
	spec, err := parseNetwork(c.String("arch"), c.String("act"), c.String("loss"))
	if err != nil {
		return err
	}
	if output != "" {
		if err := checkModelName("output", output); err != nil {
			return err
		}
	}
	release, err := claimOutput(output, c.Bool("overwrite"), data.Inputs()...)
	if err != nil {
		return err
	}
	defer release()

	splits, err := loadData(data)
	if err != nil {
		return err
	}
	if err := spec.resolve(data, splits.Loss); err != nil {
		return err
	}
	acts, loss := spec.Acts, spec.Loss
	n, err := nn.New(spec.Sizes, acts, loss)
	if err != nil {
		return &usageError{Flag: "act", Msg: fmt.Sprintf("--act %s with --loss %s: %v", joinActs(acts), loss, err)}
	}
	if settings.Patience > 0 && splits.Valid.X == nil {
		return flagErrorf("patience", "%d needs validation data: give --valid-fraction", settings.Patience)
	}
	lossDesc := "--loss " + loss.String()
	if c.String("loss") == "" {
		lossDesc = fmt.Sprintf("loss %s, the data set's suggestion", loss)
	}
	for _, s := range []*nn.Data{&splits.Train, &splits.Valid, &splits.Test} {
		if s.X != nil {
			if err := checkFit(n, s, data, true, lossDesc); err != nil {
				return err
			}
		}
	}

	n.Init(rand.NewPCG(data.Seed, streamInit))
	settings.Src = rand.NewPCG(data.Seed, streamShuffle)
	var bar *barRecorder
	if !quiet && isTerminal(stderr) {
		bar = &barRecorder{w: stderr}
		settings.Recorder = bar
	}
	train, valid := splits.Train, splits.Valid
	start := time.Now()
	res, err := trainWith(ctx, useLM, n, train, valid, &settings)
	bar.close()
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("interrupted after %d epochs; no model written to %s", res.Epochs, output)
	case errors.Is(err, nn.ErrDiverged):
		return fmt.Errorf("training on --data %s: %v; no model written (try a smaller --lr)", data.Name, err)
	default:
		return fmt.Errorf("training on --data %s: %v; no model written", data.Name, err)
	}
	if err := n.CheckFinite(); err != nil {
		return fmt.Errorf("training on --data %s: %v; no model written (try a smaller --lr)", data.Name, err)
	}

	sum := runreport.TrainSummaryOf(n, splits, res, output, data)
	n.Meta = sum.Meta(trainerRecordFor(useLM, settings), toolkitVersion(), start)
	data.Record(n.Meta)
	n.Meta = metaValue(n.Meta).(map[string]any)
	if err := saveModel(output, n); err != nil {
		return err
	}

	if c.Bool("json") {
		return writeJSON(stdout, sum)
	}
	sum.WriteText(stdout)
	if !quiet {
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(modelFiles(output), ", "))
	}
	return nil
}

// actNames returns the names of the activations.
func actNames(acts []nn.Activation) []string {
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return s
}

// joinActs returns the activations as a comma-separated list.
func joinActs(acts []nn.Activation) string { return strings.Join(actNames(acts), ",") }

// writeJSON writes v to w as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
