package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
)

// dataOptions selects a data set and how it is drawn; it is recorded in
// model files (datasets.Spec.Record), so that later commands can draw the
// same splits.
type dataOptions = datasets.Spec

// defaultSeed is the value of --seed when it is not given.
const defaultSeed = 1

// dataFlags returns the flags that select and draw a data set. seedUsage
// describes what --seed drives for the command.
func dataFlags(seedUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "data set: a built-in `NAME` (see 'prune datasets'), a CSV file path, or an .npz file (or a directory of .npy files) of arrays X, y and optionally X_test, y_test, X_valid, y_valid", Category: "Data"},
		&cli.StringFlag{Name: "test", Usage: "CSV `FILE` of the test set of a CSV data set, in the layout of the training file", Category: "Data"},
		&cli.Uint64Flag{Name: "seed", Value: defaultSeed, Usage: seedUsage, Category: "Data"},
		&cli.Float64Flag{Name: "valid-fraction", Usage: "`FRACTION` of the training set held out for validation, in [0, 1)", DefaultText: "none", Category: "Data"},
		&cli.IntFlag{Name: "targets", Usage: "number `K` of trailing target columns of a CSV file", DefaultText: "1", Category: "Data"},
		&cli.BoolFlag{Name: "classes", Usage: "the target column of a CSV file holds class indices 0, 1, …", Category: "Data"},
		&cli.StringFlag{Name: "mnist-dir", Usage: "`DIR` holding the MNIST IDX files", DefaultText: "the GoMNIST module's data", Category: "Data"},
		&cli.StringFlag{Name: "monks-dir", Usage: "`DIR` holding the UCI files monks-N.train and monks-N.test, read instead of generating the MONK's sets", Category: "Data"},
		&cli.IntFlag{Name: "n", Usage: "number `N` of training samples of sine, spirals and mnist", DefaultText: "the data set's", Category: "Data"},
		&cli.IntFlag{Name: "test-n", Usage: "number `N` of test samples of sine and mnist", DefaultText: "the data set's", Category: "Data"},
		&cli.BoolFlag{Name: "standardize", Usage: "standardize the inputs with the training split's mean and standard deviation", Category: "Data"},
		maxCSVSizeFlag(),
	}
}

// readDataOptions returns the data options given on the command line,
// with defaults for the flags not given, and the set of data flags given.
func readDataOptions(c *cli.Context) (dataOptions, map[string]bool, error) {
	var d dataOptions
	d.Name = c.String("data")
	_ = decodeFlags(c, &d.Options) // only plain fields: no error
	given := make(map[string]bool)
	for _, f := range dataFlags("") {
		if name := f.Names()[0]; c.IsSet(name) {
			given[name] = true
		}
	}
	var err error
	d.MaxCSVBytes, err = parseMaxCSVSize(c.String("max-csv-size"))
	return d, given, err
}

// withRecorded returns d with the fields whose flags are not in given
// replaced by those recorded in meta, a model's metadata.
func withRecorded(d dataOptions, meta map[string]any, given map[string]bool) dataOptions {
	return d.WithRecorded(datasets.Recorded(meta), func(field string) bool { return given[flagOf(field)] })
}

// checkData returns a usage error for a missing data set name or an option
// out of range, and for a name that is neither built in nor a CSV path.
func checkData(d dataOptions) error {
	if d.Name == "" {
		return flagErrorf("data", "is required: give a built-in data set name (see 'prune datasets') or a CSV file path")
	}
	return flagWords(d.Validate())
}

// loadData loads the data set. Errors name the --data flag and the data set.
func loadData(d dataOptions) (*nn.Splits, error) {
	s, err := d.Load()
	if err != nil {
		return nil, dataErrorf(d, "%s", trimPackagePrefix(err.Error()))
	}
	return s, nil
}

// dataErrorf returns an error about the data set whose message starts with
// "--data NAME: ". When the message already starts with the name, as the
// errors about a CSV file do, the name is not repeated.
func dataErrorf(d dataOptions, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, d.Name+":") {
		return fmt.Errorf("--data %s", msg)
	}
	return fmt.Errorf("--data %s: %s", d.Name, msg)
}

// metaValue is modelio.MetaValue.
var metaValue = modelio.MetaValue

// modelSpecFlags returns the --act and --loss flags of the commands that
// read a model: a PyTorch state_dict does not hold its activations and
// loss.
func modelSpecFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "act", Usage: "`ACTIVATIONS` of a state_dict model (.npz, .pt, .safetensors), one for all Linear layers or one per layer: tanh, sigmoid, relu, linear, softmax; a linear last layer with --loss ce or bce stands for the logits (as with torch's CrossEntropyLoss, BCEWithLogitsLoss); overrides MODEL.spec.json", Category: "Model"},
		&cli.StringFlag{Name: "loss", Usage: "`LOSS` of a state_dict model: mse, bce or ce; overrides MODEL.spec.json", Category: "Model"},
	}
}

// layersFlag returns the --layers flag of the commands that read a model.
func layersFlag() cli.Flag {
	return &cli.StringFlag{Name: "layers", Usage: "the Linear `MODULES` of a state_dict model in layer order, comma-separated, such as fc1,fc2,fc3", DefaultText: "the Linear modules in file order", Category: "Model"}
}

// torchMasksFlag returns the --torch-masks flag of the commands that write
// a model.
func torchMasksFlag() cli.Flag {
	return &cli.StringFlag{Name: "torch-masks", Usage: "`FORM` of the pruned tensors of a state_dict output: prune (NAME_orig and NAME_mask, as torch.nn.utils.prune keeps them) or plain (NAME with the pruned entries exactly zero, loadable into an unpruned module)", DefaultText: "prune", Category: "Output"}
}

// fullHistoryFlag returns the --full-history flag of the run command.
func fullHistoryFlag() cli.Flag {
	return &cli.BoolFlag{Name: "full-history", Usage: fmt.Sprintf("list every removal in report.json and history.csv; by default a run of more than %d removals lists a sample of them, with a summary by round and layer", runreport.HistoryCap), Category: "Output"}
}

// isNPZ reports whether path names a PyTorch state_dict model file: .npz,
// .pt, .pth or .safetensors, which have a spec file.
func isNPZ(path string) bool { return modelio.IsStateDict(path) }

// checkModelName returns a usage error naming the flag when path does not
// end in a model file extension.
func checkModelName(flag, path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range modelio.Extensions {
		if ext == e {
			return nil
		}
	}
	return flagErrorf(flag, "%q: the file name must end in .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)", path)
}

// checkSpecFlags returns a usage error for a malformed --act or --loss.
func checkSpecFlags(act, loss string) error {
	if act != "" {
		for _, a := range strings.Split(act, ",") {
			if _, err := nn.ParseActivation(strings.TrimSpace(a)); err != nil {
				return flagValueError("act", act, err)
			}
		}
	}
	if loss != "" {
		if _, err := nn.ParseLoss(strings.TrimSpace(loss)); err != nil {
			return flagValueError("loss", loss, err)
		}
	}
	return nil
}

// readModel reads the model file at path, a prune-mlp/1 .json file or a
// PyTorch state_dict, with the activations act and the loss loss of --act
// and --loss (empty when not given), its Linear modules in file order.
func readModel(path, act, loss string) (*nn.Network, error) {
	return readModelLayers(path, act, loss, "")
}

// modelInput is what the model, model-spec (--act, --loss, --layers) and
// data flags of a command select.
type modelInput struct {
	Path, Act, Loss, Layers string
	Data                    dataOptions
	// Given holds the names of the data flags given on the command line;
	// the others are taken from the model.
	Given map[string]bool
	// Err is an error of reading the data flags, returned by load.
	Err error
}

// readModelInput reads the model, model-spec and data flags of c.
func readModelInput(c *cli.Context) modelInput {
	d, given, err := readDataOptions(c)
	return modelInput{Path: c.String("model"), Act: c.String("act"), Loss: c.String("loss"), Layers: c.String("layers"), Data: d, Given: given, Err: err}
}

// load reads the model and fills the data options that were not given with
// the ones recorded in the model, then checks them.
func (m modelInput) load() (*nn.Network, dataOptions, error) {
	if m.Err != nil {
		return nil, dataOptions{}, m.Err
	}
	n, err := readModelLayers(m.Path, m.Act, m.Loss, m.Layers)
	if err != nil {
		return nil, dataOptions{}, err
	}
	d := withRecorded(m.Data, n.Meta, m.Given)
	if err := checkData(d); err != nil {
		return nil, dataOptions{}, err
	}
	return n, d, nil
}

// parseSplit returns the canonical name of a --split value: train, valid
// or test.
func parseSplit(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "train", "training":
		return "train", nil
	case "valid", "validation":
		return "valid", nil
	case "test":
		return "test", nil
	}
	return "", flagErrorf("split", "%q: want train, valid or test", s)
}

// loadSplit loads the data set d, checked, and returns its split, checked
// against the network n.
func loadSplit(n *nn.Network, d dataOptions, split string) (*nn.Data, error) {
	splits, err := loadData(d)
	if err != nil {
		return nil, err
	}
	set, err := splits.Split(split)
	if err != nil {
		hint := ""
		if split == "valid" {
			hint = " (give --valid-fraction to hold one out)"
		}
		return nil, fmt.Errorf("--split %s: --data %s has no %s split%s", split, d.Name, split, hint)
	}
	if err := checkFit(n, set, d, false, "the model's loss "+n.Loss().String()); err != nil {
		return nil, err
	}
	return set, nil
}

// readModelLayers is readModel with the Linear modules named by layers
// (--layers, comma-separated), or in file order when layers is empty. A
// state_dict whose activations or loss are given neither by the flags nor
// by its spec file, and activations that do not fit the loss, are usage
// errors.
func readModelLayers(path, act, loss, layers string) (*nn.Network, error) {
	n, err := loadModelFile(path, act, loss, layers)
	var ue *usageError
	if errors.As(err, &ue) {
		return nil, err
	}
	if errors.Is(err, modelio.ErrNoSpec) {
		return nil, &usageError{Flag: "act", Msg: trimModelioPrefix(err.Error()) + "; give --act and --loss"}
	}
	var al *nn.ActLossError
	if errors.As(err, &al) {
		return nil, &usageError{Flag: "act", Msg: fmt.Sprintf("--act %q with --loss %q: %s", act, loss, al.Msg)}
	}
	if err != nil {
		return nil, errors.New(trimModelioPrefix(err.Error()))
	}
	return n, nil
}

// loadModelFile checks the flags and loads the model, returning modelio's
// errors as they are.
func loadModelFile(path, act, loss, layers string) (*nn.Network, error) {
	if err := checkModelName("model", path); err != nil {
		return nil, err
	}
	if err := checkSpecFlags(act, loss); err != nil {
		return nil, err
	}
	var spec *modelio.Spec
	if act != "" || loss != "" || layers != "" {
		spec = &modelio.Spec{Activations: act, Loss: loss}
	}
	if layers != "" {
		if !isNPZ(path) {
			return nil, flagErrorf("layers", "applies to state_dict models (.npz, .pt, .safetensors), not to %s", path)
		}
		for _, m := range strings.Split(layers, ",") {
			spec.Layers = append(spec.Layers, strings.TrimSpace(m))
		}
	}
	n, err := modelio.Load(path, spec)
	if err != nil && layers != "" && strings.Contains(err.Error(), ": layers: ") {
		return nil, &usageError{Flag: "layers", Msg: "--layers " + strings.SplitN(err.Error(), ": layers: ", 2)[1]}
	}
	return n, err
}

// checkTorchMasks returns a usage error for a --torch-masks value other
// than prune and plain.
func checkTorchMasks(form string) error {
	switch form {
	case "", modelio.MasksPrune, modelio.MasksPlain:
		return nil
	}
	return flagErrorf("torch-masks", "%q: want prune or plain", form)
}

// setTorchMasks checks --torch-masks and sets the form of n's pruned
// tensors (modelio.SetMasks).
func setTorchMasks(n *nn.Network, form string) error {
	if err := checkTorchMasks(form); err != nil {
		return err
	}
	return modelio.SetMasks(n, form)
}

// trimModelioPrefix removes a leading "modelio: " from an error message.
func trimModelioPrefix(msg string) string { return strings.TrimPrefix(msg, "modelio: ") }

// modelFiles returns the files of the model at path: the file itself and,
// for an .npz archive, its spec file.
func modelFiles(path string) []string {
	if path == "" {
		return nil
	}
	if isNPZ(path) {
		return []string{path, modelio.SpecPath(path)}
	}
	return []string{path}
}

// saveModel writes n to the model file path (and the spec file of an .npz
// archive). Errors name the output.
func saveModel(path string, n *nn.Network) error {
	if err := modelio.Save(path, n); err != nil {
		return outputError(path, err)
	}
	return nil
}

// outputError words an error of writing the model file path.
func outputError(path string, err error) error {
	msg := trimModelioPrefix(err.Error())
	if strings.HasPrefix(msg, path) {
		return errors.New(msg)
	}
	return fmt.Errorf("--output %s: %s", path, msg)
}
