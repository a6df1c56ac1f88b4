package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
)

// Streams of the PCG generators seeded with --seed for the shuffling of
// retraining and the Hutchinson probes of the run command.
const (
	streamRetrain = 0x72657472 // "retr"
	streamHutch   = 0x68757463 // "hutc"
)

// runOptions holds the flags of the run command. Zero values and nil
// pointers mean the defaults.
type runOptions struct {
	Model     string
	Act, Loss string // of an .npz model
	Data      dataOptions
	// DataGiven holds the names of the data flags given on the command
	// line; the others are taken from the model, as in eval.
	DataGiven map[string]bool

	// Layers (--layers) and TorchMasks (--torch-masks) choose the Linear
	// modules of a state_dict model and the form of the pruned tensors
	// written, empty for the defaults; FullHistory lists every removal in
	// the report (--full-history).
	Layers, TorchMasks string
	FullHistory        bool

	Method    string   // obs (default), obd or magnitude
	Curvature string   // default exact
	Damping   *float64 // λ of OBS, ρ of --layerwise
	Alpha     float64  // α of --curvature recursive
	Probes    int      // Hutchinson probes
	Objective string   // trained (default) or loss
	Samples   int      // m of a low-rank curvature, rows of --block
	Block     string   // obs block size B or "rows"; empty: global
	Joint     bool     // remove a round's set jointly

	AuditRows     int  // rows of the per-removal audit, 0: the default
	AuditRemovals int  // audited removals per round, 0: the default
	AuditAll      bool // audit every removal on every row
	NoAudit       bool

	RetrainEpochs int
	Optimizer     string
	LearningRate  float64
	WeightDecay   *float64
	Batch         int

	StopErrorRise  *float64
	ErrorMeasure   string // loss (default) or misclassification
	ErrorSplit     string // train (default) or valid
	TargetWeights  int
	TargetSparsity float64
	Budget         float64
	PerRound       int
	Fraction       float64
	MaxRounds      int
	RebuildEvery   int
	PerLayer       bool
	ProtectBiases  bool
	Layerwise      bool

	MaxMemory string // empty: hessian.DefaultMemoryLimit

	Output    string
	Report    string // default: the output's name without extension + "-report"
	Resume    string
	Overwrite bool
	JSON      bool
	Quiet     bool

	// Given holds the names of the flags given on the command line, for
	// the note on the flags --layerwise ignores and the check of the flags
	// --resume refuses; nil when the options do not come from a command
	// line.
	Given map[string]bool

	// afterRound, when not nil, is called after the checkpoint of every
	// round is written, with the number of rounds done.
	afterRound func(rounds int)
	// afterPrepare, when not nil, is called once the run is prepared and
	// its outputs claimed, before pruning starts.
	afterPrepare func()
}

// runCommand returns the run command.
func runCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "trained model `FILE` to prune: .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)", Category: "Model"},
		&cli.StringFlag{Name: "method", Value: "obs", Usage: "saliency `METHOD`: obs (Optimal Brain Surgeon), obd (Optimal Brain Damage) or magnitude", Category: "Method"},
		&cli.StringFlag{Name: "curvature", Usage: "`CURVATURE` of obs: exact, gn, fisher, fisher-lowrank, gn-lowrank or recursive; of obd: exact (the exact diagonal), diag-bl, diag-lm, gn, fisher or hutchinson", DefaultText: "exact", Category: "Method"},
		&cli.Float64Flag{Name: "damping", Usage: "damping `λ` ≥ 0 added to the diagonal of the obs matrix, raised tenfold while it is not positive definite; with --layerwise the relative damping ρ > 0 of the layer Hessians", DefaultText: fmt.Sprintf("%g; %g with --layerwise", prune.DefaultDamping, prune.DefaultLayerwiseDamping), Category: "Method"},
		&cli.Float64Flag{Name: "alpha", Usage: "initial damping `α` > 0 of --curvature recursive", DefaultText: "1e-4", Category: "Method"},
		&cli.IntFlag{Name: "probes", Usage: "number `S` of Rademacher probes of --curvature hutchinson", DefaultText: "100", Category: "Method"},
		samplesFlag(), blockFlag(),
		&cli.BoolFlag{Name: "joint", Usage: "remove each round's parameters together with the multi-weight OBS update of the set (--curvature fisher-lowrank or gn-lowrank, or --block); its predicted ΔE is the round's", DefaultText: "joint with a low-rank curvature unless --budget, --stop-error-rise or --rebuild-every is given; else one at a time with downdates", Category: "Rounds"},
		&cli.StringFlag{Name: "objective", Usage: "`OBJECTIVE` whose curvature obs and obd use: trained (the loss plus the model's recorded weight decay λ, H + λN·I, its gradient taken as zero), gradient (trained, with its gradient in the quadratic models; exact for single removals, poor for large rounds far from a minimum) or loss (the loss alone)", DefaultText: "trained", Category: "Method"},
		&cli.BoolFlag{Name: "layerwise", Usage: "one-shot layer-wise OBS (OBC, or SparseGPT for large layers) to --target-sparsity on the training inputs; --method obd and magnitude select the layer-wise OBD and magnitude rules", Category: "Method"},

		&cli.IntFlag{Name: "target-weights", Usage: "stop when `N` live parameters (weights and biases) are left", Category: "Stopping"},
		&cli.Float64Flag{Name: "target-sparsity", Usage: "stop when the `FRACTION` of parameters pruned reaches this value, in [0, 1)", DefaultText: fmt.Sprintf("%g when no other stopping flag is given", prune.DefaultSparsity), Category: "Stopping"},
		&cli.Float64Flag{Name: "stop-error-rise", Usage: "stop when the error rises more than `R` above that of the model given, undoing the removal or retraining that broke the rule; 0 stops at any rise", DefaultText: "off", Category: "Stopping"},
		&cli.StringFlag{Name: "error-measure", Usage: "`MEASURE` of --stop-error-rise: loss (the mean loss E/N) or misclassification (the fraction misclassified)", DefaultText: "misclassification for classification (loss bce or ce, or mse on 0/1 targets), else loss", Category: "Stopping"},
		&cli.StringFlag{Name: "error-split", Usage: "`SPLIT` that --stop-error-rise watches: train or valid", DefaultText: "train", Category: "Stopping"},
		&cli.Float64Flag{Name: "budget", Usage: "stop before the sum of the predicted ΔE of all removals would exceed `ΔE` (obs and obd)", DefaultText: "off", Category: "Stopping"},
		&cli.IntFlag{Name: "max-rounds", Usage: "stop after `N` rounds", DefaultText: "off", Category: "Stopping"},

		&cli.IntFlag{Name: "per-round", Usage: "remove `K` parameters per round, one at a time (obs rescores after each; magnitude and obd rank once per round)", Category: "Rounds"},
		&cli.Float64Flag{Name: "fraction", Usage: "remove this `FRACTION` of the prunable live parameters per round, in (0, 1]", DefaultText: fmt.Sprintf("%g unless --per-round is given (%g with a low-rank curvature)", prune.DefaultFraction, prune.DefaultWoodburyFraction), Category: "Rounds"},
		&cli.IntFlag{Name: "audit-rows", Usage: "measure the real ΔE of removals on a seeded subsample of `N` training rows", DefaultText: fmt.Sprint(prune.DefaultAuditRows), Category: "Rounds"},
		&cli.IntFlag{Name: "audit-removals", Usage: "measure the real ΔE of a seeded sample of `N` removals per round (magnitude and obd: each alone, from the round's start)", DefaultText: fmt.Sprint(prune.DefaultAuditRemovals), Category: "Rounds"},
		&cli.BoolFlag{Name: "audit-all", Usage: "measure the real ΔE of every removal on every training row", Category: "Rounds"},
		&cli.BoolFlag{Name: "no-audit", Usage: "do not measure the real ΔE of single removals (that of every round is still measured)", Category: "Rounds"},
		&cli.IntFlag{Name: "rebuild-every", Usage: "rebuild the curvature after every `N` removals within a round", DefaultText: "once per round", Category: "Rounds"},
		&cli.BoolFlag{Name: "per-layer", Usage: "rank the parameters within each layer, so that every layer loses about the same fraction per round", Category: "Rounds"},
		&cli.BoolFlag{Name: "protect-biases", Usage: "never remove a bias", Category: "Rounds"},

		&cli.IntFlag{Name: "retrain-epochs", Usage: "retrain for `N` epochs (L-BFGS: iterations) after every round with the mask fixed, with the model's recorded trainer settings; 0 does not retrain", Category: "Retraining"},
		&cli.StringFlag{Name: "optimizer", Usage: "`OPTIMIZER` of retraining: adam, sgd or lbfgs", DefaultText: "the model's, else adam", Category: "Retraining"},
		&cli.Float64Flag{Name: "lr", Usage: "learning `RATE` of retraining with adam or sgd", DefaultText: "the model's", Category: "Retraining"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "L2 penalty `λ` of retraining", DefaultText: "the model's", Category: "Retraining"},
		&cli.IntFlag{Name: "batch", Usage: "minibatch `SIZE` of retraining with adam or sgd", DefaultText: "the model's", Category: "Retraining"},

		&cli.StringFlag{Name: "max-memory", Usage: "refuse dense W×W matrices needing more than `SIZE` bytes in all (suffix K, M, G or T; 'off' for no limit)", DefaultText: defaultMemoryText(), Category: "Method"},

		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "pruned model `FILE` to write, masks included: .json, .npz, .pt, .pth or .safetensors", Category: "Output"},
		&cli.StringFlag{Name: "report", Usage: "`DIR` for history.csv, report.json, curve.png, dE.png and checkpoint.json, created when missing", DefaultText: "the output's name without its extension, followed by -report", Category: "Output"},
		&cli.StringFlag{Name: "resume", Usage: "continue the run whose report directory is `DIR` from DIR/checkpoint.json, with its settings", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file and the files of the report directory if they exist", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, append(modelSpecFlags(), layersFlag(), torchMasksFlag(), fullHistoryFlag())...)
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1), of the shuffling of retraining and of the Hutchinson probes")...)
	return &cli.Command{
		Name:  "run",
		Usage: "prune a trained model with OBS, OBD or magnitude saliencies and write the pruned model and a report",
		UsageText: "prune run --model MODEL.json|MODEL.npz [--data NAME|FILE.csv] [--method obs|obd|magnitude] [--curvature C]\n" +
			"          [--target-weights N | --target-sparsity F] [--stop-error-rise R [--error-measure M]] [--budget ΔE]\n" +
			"          [--per-round K | --fraction F] [--retrain-epochs N] [--layerwise] -o PRUNED.json|PRUNED.npz\n" +
			"          [--report DIR] [--overwrite] [--json] [flags]\n" +
			"prune run --resume DIR [-o PRUNED.json] [--json]\n\n" +
			"Each round builds one curvature on the training split, removes the least salient parameters one at\n" +
			"a time (OBS moves the others and downdates H⁻¹ after each; magnitude and OBD rank once), optionally\n" +
			"retrains with the mask fixed, and evaluates every split, until a stopping rule holds. It writes\n" +
			"the pruned model (its masks included) to -o and to the report directory:\n\n" +
			"  history.csv      one row per removal: step, round, index, name, saliency, predicted_dE, real_dE,\n" +
			"                   loss (training E after it, when audited on every row), error (of\n" +
			"                   --stop-error-rise), live, undone;\n" +
			"                   empty cells do not apply\n" +
			"  report.json      rounds, history, stop reason, health (numerical issues) and a manifest (SHA-256\n" +
			"                   of the inputs, every setting, toolkit and Go versions, BLAS)\n" +
			"  curve.png        training loss and misclassification against the parameters left\n" +
			"  dE.png           predicted against real ΔE of every removal (not for magnitude or --layerwise)\n" +
			"  checkpoint.json  the network and state after the last complete round, for --resume\n\n" +
			"The same inputs and seed give the same bytes whatever the number of threads; times go to the\n" +
			"standard output only. A run stopped by Ctrl-C or SIGTERM saves the network pruned so far to -o\n" +
			"and the report, says where, and exits with status 1; --resume DIR then ends where an\n" +
			"uninterrupted run would have. Without a stopping flag the target is --target-sparsity 0.5.\n" +
			"--layerwise prunes in one shot and ignores the flags of the rounds and of the other stopping\n" +
			"rules. Data flags that are not given take the values recorded in the model, as in 'prune eval'.\n\n" +
			"Example: prune run --model m.json --method obs --stop-error-rise 0 --error-measure misclassification --per-round 1 -o pruned.json",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			d, given := readDataOptions(c)
			o := runOptions{
				Model:          c.String("model"),
				Act:            c.String("act"),
				Loss:           c.String("loss"),
				Data:           d,
				DataGiven:      given,
				Method:         c.String("method"),
				Curvature:      c.String("curvature"),
				Alpha:          c.Float64("alpha"),
				Probes:         c.Int("probes"),
				Objective:      c.String("objective"),
				Samples:        c.Int("samples"),
				Block:          c.String("block"),
				Joint:          c.Bool("joint"),
				AuditRows:      c.Int("audit-rows"),
				AuditRemovals:  c.Int("audit-removals"),
				AuditAll:       c.Bool("audit-all"),
				NoAudit:        c.Bool("no-audit"),
				RetrainEpochs:  c.Int("retrain-epochs"),
				Optimizer:      c.String("optimizer"),
				LearningRate:   c.Float64("lr"),
				Batch:          c.Int("batch"),
				ErrorMeasure:   c.String("error-measure"),
				ErrorSplit:     c.String("error-split"),
				TargetWeights:  c.Int("target-weights"),
				TargetSparsity: c.Float64("target-sparsity"),
				Budget:         c.Float64("budget"),
				PerRound:       c.Int("per-round"),
				Fraction:       c.Float64("fraction"),
				MaxRounds:      c.Int("max-rounds"),
				RebuildEvery:   c.Int("rebuild-every"),
				PerLayer:       c.Bool("per-layer"),
				ProtectBiases:  c.Bool("protect-biases"),
				Layerwise:      c.Bool("layerwise"),
				MaxMemory:      c.String("max-memory"),
				Output:         c.String("output"),
				Layers:         c.String("layers"),
				TorchMasks:     c.String("torch-masks"),
				FullHistory:    c.Bool("full-history"),
				Report:         c.String("report"),
				Resume:         c.String("resume"),
				Overwrite:      c.Bool("overwrite"),
				JSON:           c.Bool("json"),
				Quiet:          isQuiet(c),
				Given:          map[string]bool{},
			}
			for _, f := range c.Command.Flags {
				if name := f.Names()[0]; c.IsSet(name) {
					o.Given[name] = true
				}
			}
			if c.IsSet("damping") {
				v := c.Float64("damping")
				o.Damping = &v
			}
			if c.IsSet("weight-decay") {
				v := c.Float64("weight-decay")
				o.WeightDecay = &v
			}
			if c.IsSet("stop-error-rise") {
				v := c.Float64("stop-error-rise")
				o.StopErrorRise = &v
			}
			if err := refuseZero(c,
				[]string{"probes", "samples", "per-round", "max-rounds", "rebuild-every", "batch", "target-weights", "audit-rows", "audit-removals"},
				[]string{"alpha", "lr", "fraction", "target-sparsity", "budget"}); err != nil {
				return err
			}
			return runRun(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runSettings holds the checked settings of a run, with the defaults
// filled in. It is recorded in the manifest and the checkpoint, and a
// resumed run takes its settings from there.
type runSettings struct {
	Model string      `json:"model"`
	Act   string      `json:"act,omitempty"`
	Loss  string      `json:"loss,omitempty"`
	Data  dataOptions `json:"data"`

	Method    string `json:"method"`
	Curvature string `json:"curvature,omitempty"`
	// Damping is λ of OBS on a dense matrix, ρ of --layerwise.
	Damping   *float64 `json:"damping,omitempty"`
	Alpha     float64  `json:"alpha,omitempty"`
	Probes    int      `json:"probes,omitempty"`
	Layerwise bool     `json:"layerwise,omitempty"`
	// Samples is m of a low-rank curvature, or the rows of a block
	// curvature (0: all); Block the block size of block OBS and BlockRows
	// one block per unit; Joint removes each round's set jointly.
	Samples   int  `json:"samples,omitempty"`
	Block     int  `json:"block,omitempty"`
	BlockRows bool `json:"block_rows,omitempty"`
	Joint     bool `json:"joint,omitempty"`
	// Objective is trained or loss, and ObjectiveDecay the weight decay
	// λ of the trained objective, read from the model.
	Objective      string  `json:"objective,omitempty"`
	ObjectiveDecay float64 `json:"objective_weight_decay,omitempty"`

	AuditRows     int  `json:"audit_rows,omitempty"`
	AuditRemovals int  `json:"audit_removals,omitempty"`
	NoAudit       bool `json:"no_audit,omitempty"`

	Retrain *trainerRecord `json:"retrain,omitempty"`

	StopErrorRise  *float64 `json:"stop_error_rise,omitempty"`
	ErrorMeasure   string   `json:"error_measure,omitempty"`
	ErrorSplit     string   `json:"error_split,omitempty"`
	TargetWeights  int      `json:"target_weights,omitempty"`
	TargetSparsity float64  `json:"target_sparsity,omitempty"`
	Budget         float64  `json:"budget,omitempty"`
	MaxRounds      int      `json:"max_rounds,omitempty"`
	PerRound       int      `json:"per_round,omitempty"`
	Fraction       float64  `json:"fraction,omitempty"`
	RebuildEvery   int      `json:"rebuild_every,omitempty"`
	PerLayer       bool     `json:"per_layer,omitempty"`
	ProtectBiases  bool     `json:"protect_biases,omitempty"`

	Output string `json:"output"`
	Report string `json:"report"`
}

// describe returns a description of the method, such as
// "OBS (exact Hessian, λ = 0.0001)".
func (s runSettings) describe() string {
	if s.Layerwise {
		m := "layer-wise OBS (OBC or SparseGPT)"
		switch s.Method {
		case "obd":
			m = "layer-wise OBD"
		case "magnitude":
			// The damping of the layer Hessians does not apply.
			return "layer-wise magnitude"
		}
		return fmt.Sprintf("%s, ρ = %g", m, *s.Damping)
	}
	switch s.Method {
	case "magnitude":
		return "magnitude"
	case "obd":
		names := map[string]string{
			"exact": "exact diagonal", "gn": "Gauss–Newton diagonal", "fisher": "Fisher diagonal",
			"diag-bl": "Becker–LeCun diagonal", "diag-lm": "Levenberg–Marquardt diagonal",
			"hutchinson": fmt.Sprintf("Hutchinson diagonal, %d probes", s.Probes),
		}
		return "OBD (" + names[s.Curvature] + ")"
	}
	names := map[string]string{"exact": "exact Hessian", "gn": "Gauss–Newton matrix", "fisher": "Fisher matrix"}
	if d := s.describeOBS(names); d != "" {
		return d
	}
	if s.Curvature == "recursive" {
		return fmt.Sprintf("OBS (recursive inverse, α = %g)", s.Alpha)
	}
	return fmt.Sprintf("OBS (%s, λ = %g)", names[s.Curvature], *s.Damping)
}

// saliency returns the saliency of the settings; probes is the source of
// the Hutchinson probes.
func (s runSettings) saliency(probes rand.Source) prune.Saliency {
	switch s.Method {
	case "magnitude":
		return prune.Magnitude{}
	case "obd":
		c, _ := prune.ParseCurvature(s.Curvature)
		return prune.OBD{Curvature: c, Probes: s.Probes, Src: probes}
	}
	if sal := s.obsVariant(probes); sal != nil {
		return sal
	}
	c, _ := prune.ParseCurvature(s.Curvature)
	o := prune.OBS{Curvature: c, Alpha: s.Alpha}
	if c != prune.Recursive {
		o.Damping = *s.Damping
		if o.Damping == 0 {
			o.Damping = prune.NoDamping
		}
	}
	return o
}

// objectiveOf returns the objective named by the settings.
func objectiveOf(name string) prune.Objective {
	o, err := prune.ParseObjective(name)
	if err != nil {
		return prune.TrainedObjective
	}
	return o
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// methodCurvatures lists the curvatures of each method, from the registry
// of hessian.Kinds; the first is the default.
var methodCurvatures = map[string][]string{
	"obs": kindNamesWhere(func(k hessian.Kind) bool { return k.Dense || k.InverseOnly || k.LowRank }),
	"obd": kindNamesWhere(func(k hessian.Kind) bool { return k.Diagonal }),
}

// kindNamesWhere returns the names of the hessian.Kinds for which keep
// holds.
func kindNamesWhere(keep func(hessian.Kind) bool) []string {
	var names []string
	for _, k := range hessian.Kinds() {
		if keep(k) {
			names = append(names, k.Name)
		}
	}
	return names
}

// positiveFinite reports whether v is a finite number above 0.
func positiveFinite(v float64) bool { return v > 0 && !math.IsInf(v, 1) }

// checkRunOptions checks the flags that need neither the model nor the
// data and returns the settings they give; Data, Retrain and the paths are
// filled in later.
func checkRunOptions(o runOptions) (runSettings, error) {
	var s runSettings
	if o.Model == "" {
		return s, flagErrorf("model", "is required: give the trained model file to prune")
	}
	if err := checkModelName("model", o.Model); err != nil {
		return s, err
	}
	if err := checkSpecFlags(o.Act, o.Loss); err != nil {
		return s, err
	}
	s.Model, s.Act, s.Loss = o.Model, o.Act, o.Loss
	s.Method = strings.ToLower(cmpOr(o.Method, "obs"))
	if _, ok := methodCurvatures[s.Method]; !ok && s.Method != "magnitude" {
		return s, flagErrorf("method", "%q: want obs, obd or magnitude", o.Method)
	}
	s.Layerwise = o.Layerwise
	given := func(name string) bool { return o.Given[name] }

	if s.Layerwise {
		// The flags of the rounds and of the other stopping rules do
		// not apply; doRun notes those given.
		if o.Damping != nil && !positiveFinite(*o.Damping) {
			return s, flagErrorf("damping", "%v: with --layerwise the relative damping must be a positive number", *o.Damping)
		}
		s.Damping = ptr(prune.DefaultLayerwiseDamping)
		if o.Damping != nil {
			s.Damping = ptr(*o.Damping)
		}
		if !(o.TargetSparsity >= 0 && o.TargetSparsity < 1) {
			return s, flagErrorf("target-sparsity", "%v: not in [0, 1)", o.TargetSparsity)
		}
		s.TargetSparsity = cmpOr(o.TargetSparsity, prune.DefaultSparsity)
		s.PerLayer, s.ProtectBiases = o.PerLayer, o.ProtectBiases
	} else {
		if err := checkMethodFlags(o, &s); err != nil {
			return s, err
		}

		// Stopping rules.
		if o.StopErrorRise != nil {
			if !(*o.StopErrorRise >= 0) || math.IsInf(*o.StopErrorRise, 1) {
				return s, flagErrorf("stop-error-rise", "%v: must be a finite number not below 0", *o.StopErrorRise)
			}
			s.StopErrorRise = ptr(*o.StopErrorRise)
			switch m := strings.ToLower(o.ErrorMeasure); m {
			case "":
				// Resolved with the data: misclassification for
				// classification, else loss.
			case "loss":
				s.ErrorMeasure = "loss"
			case "misclassification", "error":
				s.ErrorMeasure = "misclassification"
			default:
				return s, flagErrorf("error-measure", "%q: want loss or misclassification", o.ErrorMeasure)
			}
			switch sp := strings.ToLower(o.ErrorSplit); sp {
			case "", "train", "training":
				s.ErrorSplit = "train"
			case "valid", "validation":
				s.ErrorSplit = "valid"
			default:
				return s, flagErrorf("error-split", "%q: want train or valid", o.ErrorSplit)
			}
		} else {
			for _, name := range []string{"error-measure", "error-split"} {
				if given(name) || (name == "error-measure" && o.ErrorMeasure != "") || (name == "error-split" && o.ErrorSplit != "") {
					return s, flagErrorf(name, "applies only with --stop-error-rise")
				}
			}
		}
		if o.TargetWeights < 0 {
			return s, flagErrorf("target-weights", "%d: must be positive", o.TargetWeights)
		}
		if !(o.TargetSparsity >= 0 && o.TargetSparsity < 1) {
			return s, flagErrorf("target-sparsity", "%v: not in [0, 1)", o.TargetSparsity)
		}
		if !(o.Budget >= 0) || math.IsInf(o.Budget, 1) {
			return s, flagErrorf("budget", "%v: must be a positive number", o.Budget)
		}
		if o.Budget > 0 && s.Method == "magnitude" {
			return s, flagErrorf("budget", "needs a method that predicts ΔE (obs or obd), not magnitude")
		}
		if o.MaxRounds < 0 {
			return s, flagErrorf("max-rounds", "%d: must be positive", o.MaxRounds)
		}
		s.TargetWeights, s.TargetSparsity, s.Budget, s.MaxRounds = o.TargetWeights, o.TargetSparsity, o.Budget, o.MaxRounds
		if s.TargetWeights == 0 && s.TargetSparsity == 0 && s.StopErrorRise == nil && s.Budget == 0 && s.MaxRounds == 0 {
			s.TargetSparsity = prune.DefaultSparsity
		}

		// Rounds.
		if o.PerRound < 0 {
			return s, flagErrorf("per-round", "%d: must be positive", o.PerRound)
		}
		if !(o.Fraction >= 0 && o.Fraction <= 1) {
			return s, flagErrorf("fraction", "%v: not in (0, 1]", o.Fraction)
		}
		if o.PerRound > 0 && o.Fraction > 0 {
			return s, &usageError{Flag: "fraction", Msg: "--per-round and --fraction exclude each other"}
		}
		if o.RebuildEvery < 0 {
			return s, flagErrorf("rebuild-every", "%d: must be positive", o.RebuildEvery)
		}
		s.PerRound, s.Fraction, s.RebuildEvery = o.PerRound, o.Fraction, o.RebuildEvery
		if s.PerRound == 0 && s.Fraction == 0 {
			s.Fraction = prune.DefaultFraction
			if s.Method == "obs" && isLowRank(s.Curvature) {
				s.Fraction = prune.DefaultWoodburyFraction
			}
		}
		s.PerLayer, s.ProtectBiases = o.PerLayer, o.ProtectBiases
		if err := checkAuditFlags(o, &s); err != nil {
			return s, err
		}
	}

	// Retraining; the trainer is resolved with the model's metadata.
	if o.RetrainEpochs < 0 {
		return s, flagErrorf("retrain-epochs", "%d: must not be negative", o.RetrainEpochs)
	}
	if o.RetrainEpochs == 0 {
		for _, f := range []struct {
			name string
			set  bool
		}{{"optimizer", o.Optimizer != ""}, {"lr", o.LearningRate != 0}, {"weight-decay", o.WeightDecay != nil}, {"batch", o.Batch != 0}} {
			if f.set {
				return s, flagErrorf(f.name, "applies only with --retrain-epochs")
			}
		}
	}
	if strings.EqualFold(o.Optimizer, optimizerLM) {
		return s, flagErrorf("optimizer", "lm: retraining between rounds uses nn's optimizers: give adam, sgd or lbfgs (a model trained with lm is retrained with lbfgs when --optimizer is not given)")
	}
	if o.Optimizer != "" {
		if _, err := nn.ParseOptimizer(o.Optimizer); err != nil {
			return s, flagValueError("optimizer", o.Optimizer, err)
		}
	}
	if o.LearningRate < 0 || math.IsNaN(o.LearningRate) || math.IsInf(o.LearningRate, 0) {
		return s, flagErrorf("lr", "%v: must be a positive number", o.LearningRate)
	}
	if o.WeightDecay != nil && (!(*o.WeightDecay >= 0) || math.IsInf(*o.WeightDecay, 1)) {
		return s, flagErrorf("weight-decay", "%v: must be a finite number not below 0", *o.WeightDecay)
	}
	if o.Batch < 0 {
		return s, flagErrorf("batch", "%d: must be positive", o.Batch)
	}
	if o.Output == "" {
		return s, flagErrorf("output", "is required: give the pruned model file to write with -o")
	}
	if err := checkModelName("output", o.Output); err != nil {
		return s, err
	}
	s.Output = o.Output
	s.Report = o.Report
	if s.Report == "" {
		s.Report = strings.TrimSuffix(o.Output, filepath.Ext(o.Output)) + "-report"
	}
	return s, nil
}

// checkMethodFlags checks --curvature, --damping, --alpha and --probes for
// the method s.Method, which must be obs, obd or magnitude, and fills them
// into s with their defaults.
func checkMethodFlags(o runOptions, s *runSettings) error {
	curvs := methodCurvatures[s.Method]
	if c := strings.ToLower(o.Curvature); c != "" {
		if s.Method == "magnitude" {
			return flagErrorf("curvature", "applies to --method obs and obd, not magnitude")
		}
		if s.Method == "obd" && c == "diag" {
			c = "exact"
		}
		if !slices.Contains(curvs, c) {
			return flagErrorf("curvature", "%q: --method %s takes %s", o.Curvature, s.Method, orList(curvs))
		}
		s.Curvature = c
	} else if s.Method != "magnitude" {
		s.Curvature = curvs[0]
	}
	switch obj := strings.ToLower(o.Objective); {
	case obj == "" || obj == "trained":
		s.Objective = "trained"
	case obj == "loss" || obj == "gradient":
		s.Objective = obj
	default:
		return flagErrorf("objective", "%q: want trained, gradient or loss", o.Objective)
	}
	if s.Method == "magnitude" && o.Objective != "" {
		return flagErrorf("objective", "applies to --method obs and obd, not magnitude")
	}
	if s.Method == "magnitude" {
		s.Objective = ""
	}
	if err := checkOBSVariantFlags(o, s); err != nil {
		return err
	}
	denseOBS := s.Method == "obs" && s.Curvature != "recursive" && !isLowRank(s.Curvature)
	if o.Damping != nil {
		if !denseOBS && !isLowRank(s.Curvature) {
			return flagErrorf("damping", "applies to --method obs with --curvature exact, gn, fisher, fisher-lowrank or gn-lowrank, and to --layerwise")
		}
		if !(*o.Damping >= 0) || math.IsInf(*o.Damping, 1) {
			return flagErrorf("damping", "%v: must be a finite number not below 0", *o.Damping)
		}
	}
	if denseOBS {
		s.Damping = ptr(prune.DefaultDamping)
		if o.Damping != nil {
			s.Damping = ptr(*o.Damping)
		}
	}
	if o.Alpha != 0 {
		if s.Curvature != "recursive" || s.Method != "obs" {
			return flagErrorf("alpha", "applies only to --method obs --curvature recursive")
		}
		if !positiveFinite(o.Alpha) {
			return flagErrorf("alpha", "%v: must be a positive number", o.Alpha)
		}
	}
	if s.Curvature == "recursive" {
		s.Alpha = cmpOr(o.Alpha, 1e-4)
	}
	if o.Probes != 0 {
		if s.Curvature != "hutchinson" {
			return flagErrorf("probes", "applies only to --method obd --curvature hutchinson")
		}
		if o.Probes < 0 {
			return flagErrorf("probes", "%d: must be positive", o.Probes)
		}
	}
	if s.Curvature == "hutchinson" {
		s.Probes = cmpOr(o.Probes, 100)
	}
	return nil
}

// checkAuditFlags checks --audit-rows, --audit-removals, --audit-all and
// --no-audit and fills them into s.
func checkAuditFlags(o runOptions, s *runSettings) error {
	switch {
	case o.AuditRows < 0:
		return flagErrorf("audit-rows", "%d: must be positive", o.AuditRows)
	case o.AuditRemovals < 0:
		return flagErrorf("audit-removals", "%d: must be positive", o.AuditRemovals)
	case o.NoAudit && (o.AuditAll || o.AuditRows > 0 || o.AuditRemovals > 0):
		return &usageError{Flag: "no-audit", Msg: "--no-audit excludes --audit-all, --audit-rows and --audit-removals"}
	case o.AuditAll && (o.AuditRows > 0 || o.AuditRemovals > 0):
		return &usageError{Flag: "audit-all", Msg: "--audit-all excludes --audit-rows and --audit-removals"}
	}
	s.NoAudit = o.NoAudit
	s.AuditRows, s.AuditRemovals = o.AuditRows, o.AuditRemovals
	if o.AuditAll {
		s.AuditRows, s.AuditRemovals = prune.AuditAll, prune.AuditAll
	}
	return nil
}

// plural returns "1 round", "2 rounds" and so on.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// cmpOr returns v, or def when v is the zero value.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// orList returns the names as "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ignoredByLayerwise lists the flags that --layerwise ignores.
var ignoredByLayerwise = []string{"curvature", "alpha", "probes", "stop-error-rise", "error-measure", "error-split",
	"target-weights", "budget", "max-rounds", "per-round", "fraction", "rebuild-every", "objective",
	"audit-rows", "audit-removals", "audit-all", "no-audit", "samples", "block", "joint"}

// retrainRecord returns the trainer of retraining: the one recorded in the
// model's metadata, or Adam's defaults, with the flags of o applied, for
// o.RetrainEpochs epochs; nil without retraining. hasValid tells whether
// there are validation data, without which early stopping is turned off.
//
// A model trained with Levenberg–Marquardt (optimizer lm, package lm),
// which the engine's retraining does not run, is retrained with L-BFGS and
// the recorded weight decay unless --optimizer is given; note then says
// so, to be printed.
func retrainSettings(o runOptions, meta map[string]any, hasValid bool) (rec *trainerRecord, note string, err error) {
	if o.RetrainEpochs == 0 {
		return nil, "", nil
	}
	var r trainerRecord
	if v, ok := meta["trainer"]; !ok || !decodeMeta(v, &r) || r.Optimizer == "" {
		r = newTrainerRecord(nn.TrainSettings{})
	}
	if strings.EqualFold(r.Optimizer, optimizerLM) && o.Optimizer == "" {
		r = newTrainerRecord(nn.TrainSettings{Optimizer: nn.LBFGS, WeightDecay: r.WeightDecay})
		note = fmt.Sprintf("note: %s was trained with Levenberg–Marquardt (lm); retraining uses lbfgs with its weight decay %g (give --optimizer to choose another)", o.Model, r.WeightDecay)
	}
	rec = &r
	if o.Optimizer != "" && !strings.EqualFold(o.Optimizer, rec.Optimizer) {
		opt, _ := nn.ParseOptimizer(o.Optimizer)
		*rec = newTrainerRecord(nn.TrainSettings{Optimizer: opt, WeightDecay: rec.WeightDecay})
	}
	s, err := trainSettingsOf(*rec)
	if err != nil {
		return nil, "", fmt.Errorf("%s: the recorded trainer: %v (give --optimizer)", o.Model, err)
	}
	s.Epochs = o.RetrainEpochs
	if o.LearningRate != 0 {
		s.LearningRate = o.LearningRate
	}
	if o.WeightDecay != nil {
		s.WeightDecay = *o.WeightDecay
	}
	if o.Batch != 0 {
		s.BatchSize = o.Batch
	}
	if !hasValid {
		s.Patience = 0
	}
	if err := s.Validate(); err != nil {
		return nil, "", &usageError{Msg: "retraining flags: " + err.Error()}
	}
	out := newTrainerRecord(s)
	return &out, note, nil
}

// trainSettingsOf returns the trainer settings of a record.
func trainSettingsOf(r trainerRecord) (nn.TrainSettings, error) {
	var s nn.TrainSettings
	opt, err := nn.ParseOptimizer(r.Optimizer)
	if err != nil {
		return s, err
	}
	s.Optimizer = opt
	if r.Schedule != "" {
		if s.Schedule, err = nn.ParseSchedule(r.Schedule); err != nil {
			return s, err
		}
	}
	s.Epochs, s.BatchSize, s.LearningRate = r.Epochs, r.Batch, r.LearningRate
	s.Momentum = r.Momentum
	if opt == nn.SGD && r.Momentum == 0 {
		s.Momentum = nn.NoMomentum
	}
	s.Beta1, s.Beta2, s.Epsilon = r.Beta1, r.Beta2, r.Epsilon
	s.WeightDecay, s.StepEvery, s.StepGamma = r.WeightDecay, r.StepEvery, r.StepGamma
	s.Patience, s.Tolerance = r.Patience, r.Tolerance
	return s, s.Validate()
}

// parseMaxMemory parses --max-memory: empty for the default limit, "off"
// for none (−1).
func parseMaxMemory(s string) (int64, error) {
	if s == "" {
		return hessian.DefaultMemoryLimit(), nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "none":
		return -1, nil
	}
	b, err := hessian.ParseBytes(s)
	if err != nil {
		return 0, flagValueError("max-memory", s, memoryFlagError(err))
	}
	if b <= 0 {
		return 0, flagErrorf("max-memory", "%q: must be positive (or off)", s)
	}
	return b, nil
}

// memoryNeed returns the bytes of the dense matrices the method holds at
// once for a network of total parameters with live of them live, and a
// description; zero for the methods without dense matrices. It follows
// prune.OBS: the matrix and its inverse, and for the exact Hessian a build
// buffer over all parameters; the recursive inverse alone. workers is the
// number of goroutines of --layerwise, each holding a copy of a layer's
// inverse.
func memoryNeed(s runSettings, net *nn.Network, workers int) (int64, string) {
	live, total := net.NumLive(), net.NumParams()
	if s.Layerwise {
		return layerwiseMemoryNeed(s.Method, net, workers)
	}
	if s.Method != "obs" {
		return 0, ""
	}
	if b, what := variantMemoryNeed(s, net); what != "" {
		return b, what
	}
	switch s.Curvature {
	case "recursive":
		return hessian.DenseBytes(live), fmt.Sprintf("the OBS recursive inverse over %d live parameters", live)
	case "exact":
		return 2*hessian.DenseBytes(live) + hessian.DenseBytes(total),
			fmt.Sprintf("OBS on the exact Hessian over %d live parameters (the matrix, its inverse and a %d×%d build buffer)", live, total, total)
	}
	return 2 * hessian.DenseBytes(live), fmt.Sprintf("OBS on the %s over %d live parameters (the matrix and its inverse)", map[string]string{"gn": "Gauss–Newton matrix", "fisher": "Fisher matrix"}[s.Curvature], live)
}

// checkRunMemory returns an error naming the estimate, the limit and the
// cheaper alternatives when the method needs more than limit bytes.
func checkRunMemory(s runSettings, net *nn.Network, limit int64) error {
	if limit < 0 {
		return nil
	}
	need, what := memoryNeed(s, net, runtime.GOMAXPROCS(0))
	if need <= limit {
		return nil
	}
	alt := "--curvature fisher-lowrank --samples M (O(M·W)), --block B (O(B·W)), --method obd with a diagonal curvature (exact, diag-bl, diag-lm; O(W) memory), --method obd --curvature hutchinson (matrix-free Hessian-vector products), --layerwise (one (In+1)×(In+1) matrix per layer)"
	if s.Layerwise {
		alt = "--method magnitude --layerwise, --method obd without --layerwise (O(W) memory)"
	}
	return fmt.Errorf("--max-memory: %s needs about %s, above the limit of %s; cheaper: %s, or raise --max-memory; nothing written",
		what, hessian.FormatBytes(need), limitText(limit), alt)
}

// runState is what the report needs besides the engine's state
// (prune.State) and, for --layerwise, the state of the run: what the
// checkpoint holds besides the network, and what a resumed run continues
// from.
type runState struct {
	// Rounds and Steps count the rounds and the removals (undone ones
	// included) so far.
	Rounds int `json:"rounds"`
	Steps  int `json:"steps"`

	// Params and LiveBefore count the parameters and the live ones of
	// the model given, and Start holds its metrics.
	Params     int        `json:"params"`
	LiveBefore int        `json:"live_before"`
	Start      evalRecord `json:"start"`

	History   []stepRecord  `json:"history"`
	RoundList []roundRecord `json:"round_list"`
	Issues    []issueRecord `json:"issues"`
	Layerwise []layerRecord `json:"layerwise,omitempty"`

	// HistorySample and HistoryGroups, when set, describe History as the
	// compact history of a report (compactHistory): a sample of the
	// removals and their sums by round and layer. A finished run's
	// checkpoint holds its history so when the report needs no more.
	HistorySample *historySample `json:"history_sample,omitempty"`
	HistoryGroups []historyGroup `json:"history_groups,omitempty"`

	// RetrainRNG and ProbeRNG hold the state of the generators of
	// retraining and of the Hutchinson probes (rand.PCG.MarshalBinary).
	RetrainRNG []byte `json:"retrain_rng,omitempty"`
	ProbeRNG   []byte `json:"probe_rng,omitempty"`

	// Stopped is set when the run has ended with this state.
	Stopped string `json:"stopped,omitempty"`
}

// runPlan is a checked run, everything loaded, before any output is
// created.
type runPlan struct {
	set      runSettings
	manifest manifest
	limit    int64
	net      *nn.Network // the network to continue from
	splits   *datasets.Splits
	data     prune.Data
	state    runState
	// resumed is the number of rounds of the checkpoint resumed, −1 for a
	// new run.
	resumed    int
	retrainSrc *rand.PCG
	probeSrc   *rand.PCG
	ignored    []string // flags --layerwise ignores that were given
	notes      []string // notes to print before the work starts
	// engine is the state of prune.Run of the checkpoint resumed.
	engine *prune.State

	// output and reportDir are the paths written: those of the settings,
	// or for a resumed run the -o given and the directory resumed.
	output, reportDir string

	torchMasks  string // --torch-masks
	fullHistory bool   // --full-history
}

// prepareRun checks the options, loads the model and the data and
// evaluates the model on every split, stopping when ctx is done. It
// creates no file.
func prepareRun(ctx context.Context, o runOptions) (*runPlan, error) {
	if o.Resume != "" {
		return prepareResume(o)
	}
	set, err := checkRunOptions(o)
	if err != nil {
		return nil, err
	}
	limit, err := parseMaxMemory(o.MaxMemory)
	if err != nil {
		return nil, err
	}
	p := &runPlan{resumed: -1, limit: limit, output: set.Output, reportDir: set.Report}
	if set.Layerwise {
		for _, name := range ignoredByLayerwise {
			if o.Given[name] {
				p.ignored = append(p.ignored, "--"+name)
			}
		}
	}
	// The outputs are checked against the model before it is read.
	if err := checkRunOutputs(p.output, p.reportDir, o.Overwrite, "", modelFiles(set.Model)); err != nil {
		return nil, err
	}
	if err := checkTorchMasks(o.TorchMasks); err != nil {
		return nil, err
	}
	p.torchMasks, p.fullHistory = o.TorchMasks, o.FullHistory
	n, err := readModelLayers(set.Model, set.Act, set.Loss, o.Layers)
	if err != nil {
		return nil, err
	}
	if n.Meta != nil {
		n.Meta = metaValue(n.Meta).(map[string]any)
	}
	d := o.Data.withRecorded(recordedData(n.Meta), o.DataGiven)
	if err := d.check(); err != nil {
		return nil, err
	}
	set.Data = d
	if err := checkRunOutputs(p.output, p.reportDir, o.Overwrite, "", append(modelFiles(set.Model), d.inputs()...)); err != nil {
		return nil, err
	}
	p.set = set
	if err := p.loadData(n); err != nil {
		return nil, err
	}
	if set.Objective == "trained" || set.Objective == "gradient" {
		set.ObjectiveDecay, _ = prune.WeightDecayOf(n)
	}
	if set.StopErrorRise != nil && set.ErrorMeasure == "" {
		set.ErrorMeasure = "loss"
		if prune.IsClassification(n, p.data.Train.Y) {
			set.ErrorMeasure = "misclassification"
		}
	}
	var note string
	if set.Retrain, note, err = retrainSettings(o, n.Meta, p.data.Valid.X != nil); err != nil {
		return nil, err
	}
	if note != "" {
		p.notes = append(p.notes, note)
	}
	if set.ErrorSplit == "valid" && p.data.Valid.X == nil {
		return nil, flagErrorf("error-split", "valid needs validation data: give --valid-fraction")
	}
	if err := checkRunMemory(set, n, limit); err != nil {
		return nil, err
	}
	inputs, err := hashInputs(set)
	if err != nil {
		return nil, err
	}
	p.set = set
	p.net = n
	p.manifest = manifest{Toolkit: toolkitVersion(), Go: runtime.Version(), BLAS: blasimpl.Name(), Inputs: inputs, Settings: set}
	p.retrainSrc = rand.NewPCG(d.Seed, streamRetrain)
	p.probeSrc = rand.NewPCG(d.Seed, streamHutch)
	start, err := p.evalContext(ctx, n)
	if err != nil {
		return nil, err
	}
	p.state = runState{
		Params:     n.NumParams(),
		LiveBefore: n.NumLive(),
		Start:      start,
		History:    []stepRecord{},
		RoundList:  []roundRecord{},
		Issues:     []issueRecord{},
	}
	return p, nil
}

// loadData loads the data set of the plan's settings and checks every
// split against the network.
func (p *runPlan) loadData(n *nn.Network) error {
	d := p.set.Data
	splits, err := d.load()
	if err != nil {
		return err
	}
	if splits.Train == nil || splits.Train.Len() == 0 {
		return d.errorf("no training samples")
	}
	for _, s := range []*datasets.Set{splits.Train, splits.Valid, splits.Test} {
		if s != nil {
			if err := checkFit(n, s, d, false, "the model's loss "+n.Loss().String()); err != nil {
				return err
			}
		}
	}
	p.splits = splits
	p.data = prune.Data{Train: nn.Data{X: splits.Train.X, Y: splits.Train.Y}}
	if splits.Valid != nil {
		p.data.Valid = nn.Data{X: splits.Valid.X, Y: splits.Valid.Y}
	}
	if splits.Test != nil {
		p.data.Test = nn.Data{X: splits.Test.X, Y: splits.Test.Y}
	}
	return nil
}

// eval returns the metrics of n on every split.
func (p *runPlan) eval(n *nn.Network) evalRecord {
	r, _ := p.evalContext(context.Background(), n)
	return r
}

// evalContext returns the metrics of n on every split, or ctx.Err() when
// ctx is done first; the evaluation checks ctx between blocks of samples.
func (p *runPlan) evalContext(ctx context.Context, n *nn.Network) (evalRecord, error) {
	var r evalRecord
	var err error
	if r.Train, err = n.EvaluateContext(ctx, p.data.Train.X, p.data.Train.Y); err != nil {
		return evalRecord{}, err
	}
	if p.data.Valid.X != nil {
		m, err := n.EvaluateContext(ctx, p.data.Valid.X, p.data.Valid.Y)
		if err != nil {
			return evalRecord{}, err
		}
		r.Valid = &m
	}
	if p.data.Test.X != nil {
		m, err := n.EvaluateContext(ctx, p.data.Test.X, p.data.Test.Y)
		if err != nil {
			return evalRecord{}, err
		}
		r.Test = &m
	}
	return r, nil
}

// checkRunOutputs checks the output model and the report directory before
// anything is written. own, when not empty, is the output of the run being
// resumed, which may be replaced; the files of a resumed run's report
// directory may be replaced too.
func checkRunOutputs(output, report string, overwrite bool, own string, inputs []string) error {
	var reportPaths []string
	for _, f := range reportFiles {
		reportPaths = append(reportPaths, filepath.Join(report, f))
	}
	resumed := own != ""
	if err := checkOutput(output, overwrite || (resumed && sameName(output, own)), append(slices.Clone(inputs), reportPaths...)...); err != nil {
		return err
	}
	fi, err := os.Stat(report)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(filepath.Clean(report))
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return fmt.Errorf("--report %s: directory %s does not exist", report, parent)
		}
		return nil
	case err != nil:
		return fmt.Errorf("--report %s: %v", report, err)
	case !fi.IsDir():
		return fmt.Errorf("--report %s: not a directory", report)
	}
	for _, path := range reportPaths {
		if err := atomicfile.CheckNotInput(path, inputs...); err != nil {
			return &usageError{Flag: "report", Msg: "--report: " + err.Error()}
		}
	}
	if overwrite || resumed {
		return nil
	}
	if _, err := os.Stat(filepath.Join(report, checkpointFile)); err == nil {
		return fmt.Errorf("--report %s holds the checkpoint of an earlier run: give --resume %s to continue it, or --overwrite to start again", report, report)
	}
	for _, path := range reportPaths {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("--report %s: %s exists (give --overwrite to replace it)", report, path)
		}
	}
	return nil
}

// sameName reports whether a and b name the same file.
func sameName(a, b string) bool {
	return atomicfile.CheckNotInput(a, b) != nil
}

// hashInputs returns the inputs of a run with their SHA-256: the model
// file, the spec file of an .npz model when it exists, a CSV data file and
// the UCI MONK's files.
func hashInputs(set runSettings) ([]inputFile, error) {
	var files []inputFile
	add := func(role, path string, optional bool) error {
		f, err := hashFile(role, path)
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		files = append(files, f)
		return nil
	}
	if err := add("model", set.Model, false); err != nil {
		return nil, err
	}
	if isNPZ(set.Model) {
		if err := add("model-spec", modelio.SpecPath(set.Model), true); err != nil {
			return nil, err
		}
	}
	if set.Data.isCSV() {
		if err := add("data", set.Data.Name, false); err != nil {
			return nil, err
		}
	}
	if kind, k, _ := datasets.Parse(set.Data.Name); kind == "monks" && set.Data.MonksDir != "" {
		for _, split := range []string{"train", "test"} {
			name := fmt.Sprintf("monks-%d.%s", k, split)
			if err := add("data-"+split, filepath.Join(set.Data.MonksDir, name), false); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// hashFile returns the size and SHA-256 of the file at path.
func hashFile(role, path string) (inputFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return inputFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return inputFile{}, fmt.Errorf("%s: %v", path, err)
	}
	return inputFile{Role: role, Path: path, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// runOutcome is the result of a run.
type runOutcome struct {
	report *runReport
	files  []string // paths written: the model, then the report's files
	// reportDir is the report directory written.
	reportDir string
	net       *nn.Network
	seconds   float64
	resumed   int // rounds of the checkpoint resumed, −1 for a new run
	ignored   []string
	// err is the error that ended the run early (interruption or a
	// failure), after the outputs were written.
	err error
	// memory and memoryWhat are the planner's estimate of the first
	// round's memory and what it holds, zero for methods without one.
	memory     int64
	memoryWhat string
}

// runRun prunes the model as o describes, writes the pruned model, the
// report and the checkpoint, and prints a summary. Every check and load
// happens before any output is created.
func runRun(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	out, err := doRun(ctx, o, stderr)
	if err != nil {
		return err
	}
	if out.err != nil {
		return out.err
	}
	if o.JSON {
		return writeJSON(stdout, newRunSummary(out))
	}
	printRunSummary(stdout, out)
	return nil
}

// doRun runs the run command without printing the summary. It returns an
// error when nothing was written; an interruption or a failure after
// outputs were written is in the outcome's err.
func doRun(ctx context.Context, o runOptions, stderr io.Writer) (*runOutcome, error) {
	t0 := time.Now()
	prep := &stageBar{w: stderr, on: !o.Quiet && isTerminal(stderr)}
	prep.start("loading the model and the data, evaluating the model", -1)
	p, err := prepareRun(ctx, o)
	prep.stop()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, errors.New("interrupted while evaluating the model before pruning; nothing was written")
		}
		return nil, err
	}
	release, err := claimRunOutputs(p, o.Overwrite)
	if err != nil {
		return nil, err
	}
	defer release()
	if o.afterPrepare != nil {
		o.afterPrepare()
	}
	for _, note := range p.notes {
		if !o.Quiet {
			fmt.Fprintln(stderr, note)
		}
	}
	if len(p.ignored) > 0 && !o.Quiet {
		fmt.Fprintf(stderr, "note: --layerwise prunes in one shot and ignores %s\n", strings.Join(p.ignored, ", "))
	}
	lp := &pruneLoop{p: p, cur: p.net, st: p.state, afterRound: o.afterRound, engine: p.engine}
	if !o.Quiet && isTerminal(stderr) {
		lp.bar = &pruneBar{w: stderr}
	}
	var runErr error
	switch {
	case p.state.Stopped != "":
		// A finished run: its outputs are written again.
		if e := p.engine; e != nil {
			lp.records(e.History, e.RoundList, e.Issues)
			lp.cur, lp.final = e.Net, e.Net
		}
	case p.set.Layerwise:
		runErr = lp.layerwise(ctx)
	default:
		runErr = lp.loop(ctx)
	}
	lp.bar.close()
	if runErr != nil && lp.final == nil {
		// Nothing to write: a layer-wise run that did not finish, or
		// settings that prune.Run refused.
		if ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
			return nil, fmt.Errorf("interrupted; nothing written to %s", p.output)
		}
		return nil, fmt.Errorf("%v; nothing written to %s", runErr, p.output)
	}
	out, err := lp.finish(runErr)
	if err != nil {
		return nil, joinFailure(runErr, err)
	}
	out.seconds = time.Since(t0).Seconds()
	out.memory, out.memoryWhat = memoryNeed(p.set, p.net, runtime.GOMAXPROCS(0))
	out.resumed = p.resumed
	out.ignored = p.ignored
	if runErr != nil {
		where := fmt.Sprintf("saved the network pruned so far (%d of %d parameters live) to %s and the report to %s", out.report.LiveAfter, out.report.Params, p.output, p.reportDir)
		switch {
		case ctx.Err() != nil && errors.Is(runErr, ctx.Err()) && p.set.Layerwise:
			out.err = fmt.Errorf("interrupted while retraining; %s (not retrained)", where)
		case ctx.Err() != nil && errors.Is(runErr, ctx.Err()) && lp.st.Rounds == 0:
			out.err = fmt.Errorf("interrupted in round 1, before any round was complete; %s; no checkpoint was written, so there is nothing to resume: run the command again to start over", where)
		case ctx.Err() != nil && errors.Is(runErr, ctx.Err()):
			out.err = fmt.Errorf("interrupted in round %d; %s; continue with: prune run --resume %s", lp.st.Rounds+1, where, p.reportDir)
		default:
			out.err = fmt.Errorf("pruning failed: %v; %s", runErr, where)
		}
	}
	return out, nil
}

// pruneLoop runs the rounds of a plan.
type pruneLoop struct {
	p   *runPlan
	cur *nn.Network // the network after the last complete round
	st  runState    // the state after the last complete round

	// final is the network to write: cur, or the network of an
	// incomplete round.
	final *nn.Network

	bar        *pruneBar
	afterRound func(int)

	// engine is the state of prune.Run after its last complete round,
	// nil before the first and for --layerwise.
	engine *prune.State
}

// settings returns the prune.Settings of the run, which starts from the
// engine's state of a checkpoint when there is one.
func (lp *pruneLoop) settings() *prune.Settings {
	set := lp.p.set
	s := &prune.Settings{
		Method:        set.saliency(lp.p.probeSrc),
		PerRound:      set.PerRound,
		Fraction:      set.Fraction,
		PerLayer:      set.PerLayer,
		ProtectBiases: set.ProtectBiases,
		RebuildEvery:  set.RebuildEvery,
		TargetLive:    set.TargetWeights,
		Sparsity:      set.TargetSparsity,
		Budget:        set.Budget,
		MaxRounds:     set.MaxRounds,
		MaxBytes:      lp.p.limit,
		AuditRows:     set.AuditRows,
		AuditRemovals: set.AuditRemovals,
		NoAudit:       set.NoAudit,
		AuditSeed:     set.Data.Seed,
		Objective:     objectiveOf(set.Objective),
		WeightDecay:   set.ObjectiveDecay,
		Joint:         set.Joint,
		Resume:        lp.engine,
	}
	if set.Retrain != nil {
		ts, _ := trainSettingsOf(*set.Retrain)
		ts.Src = lp.p.retrainSrc
		s.Retrain = &ts
	}
	if set.StopErrorRise != nil {
		s.ErrorMeasure = prune.MeanLoss
		if set.ErrorMeasure == "misclassification" {
			s.ErrorMeasure = prune.Misclassification
		}
		if set.ErrorSplit == "valid" {
			s.ErrorSplit = prune.ValidSplit
		}
		s.ErrorRise = *set.StopErrorRise
		if s.ErrorRise == 0 {
			s.ErrorRise = prune.NoRise
		}
	}
	if lp.bar != nil {
		s.Recorder = lp.bar
	}
	s.OnState = func(st *prune.State) error {
		lp.engine = st
		lp.cur = st.Net
		if err := lp.checkpoint(); err != nil {
			return err
		}
		if st.Stopped == "" && lp.afterRound != nil {
			lp.afterRound(st.Rounds)
		}
		return nil
	}
	return s
}

// loop runs prune.Run, which writes a checkpoint after every complete
// round, and takes the records of the report from its result.
func (lp *pruneLoop) loop(ctx context.Context) error {
	res, err := prune.Run(ctx, lp.cur, lp.p.data, lp.settings())
	if res == nil {
		return err
	}
	lp.records(res.History, res.Rounds, res.Health.Issues)
	lp.final = res.Net
	if err == nil {
		lp.st.Stopped = res.Stopped
	}
	return err
}

// records sets the records of the report from the engine's history,
// rounds and issues.
func (lp *pruneLoop) records(history []prune.Step, rounds []prune.Round, issues []prune.Issue) {
	lp.st.History, lp.st.Issues = lp.renumber(history, issues)
	lp.st.RoundList = make([]roundRecord, len(rounds))
	done := 0
	for i, rd := range rounds {
		lp.st.RoundList[i] = lp.roundRecord(rd, rd.Round)
		done = rd.Round
	}
	lp.st.Rounds, lp.st.Steps = done, len(history)
}

// renumber returns the records of the removals and the issues of the
// engine.
func (lp *pruneLoop) renumber(history []prune.Step, issues []prune.Issue) ([]stepRecord, []issueRecord) {
	steps := make([]stepRecord, len(history))
	for i, s := range history {
		steps[i] = stepRecord{
			Step: s.Step, Round: s.Round, Index: s.Index, Name: s.Name,
			Saliency: jnum(s.Saliency), Predicted: jnum(s.Predicted), Real: jnum(s.Real),
			Loss: jnum(s.Loss), Error: jnum(s.Error), Live: s.Live, Undone: s.Undone,
		}
	}
	recs := make([]issueRecord, len(issues))
	for i, is := range issues {
		r := issueRecord{Round: is.Round, Step: is.Step, Kind: is.Kind, Index: is.Index, Lambda: jnum(is.Lambda), Message: is.Message}
		if is.Index >= 0 && is.Index < lp.p.net.NumParams() {
			r.Param = lp.p.net.ParamAt(is.Index).String()
		}
		recs[i] = r
	}
	return steps, recs
}

// roundRecord returns the record of round rd, numbered n.
func (lp *pruneLoop) roundRecord(rd prune.Round, n int) roundRecord {
	hasValid, hasTest := lp.p.data.Valid.X != nil, lp.p.data.Test.X != nil
	r := roundRecord{
		Round: n, Removed: rd.Removed, Live: rd.Live,
		Predicted: jnum(rd.Predicted), Real: jnum(rd.Real), Damping: jnum(rd.Damping), Rebuilds: rd.Rebuilds,
		Pruned: newEvalRecord(rd.Pruned, hasValid, hasTest),
	}
	if rd.Retrain != nil {
		e := newEvalRecord(rd.Retrained, hasValid, hasTest)
		r.Retrained = &e
		r.Retrain = &retrainRecord{Epochs: rd.Retrain.Epochs, Stopped: rd.Retrain.Stopped}
	}
	return r
}

// layerwise prunes the network in one shot with prune.Layerwise and
// retrains it once when the settings say so.
func (lp *pruneLoop) layerwise(ctx context.Context) error {
	set := lp.p.set
	method := prune.LayerwiseAuto
	switch set.Method {
	case "obd":
		method = prune.LayerwiseOBD
	case "magnitude":
		method = prune.LayerwiseMagnitude
	}
	var stage *stageBar
	if lp.bar != nil {
		stage = &stageBar{w: lp.bar.w, on: true}
	}
	ls := &prune.LayerwiseSettings{
		Sparsity:    set.TargetSparsity,
		Method:      method,
		Damping:     *set.Damping,
		PruneBiases: !set.ProtectBiases,
		PerLayer:    set.PerLayer,
		MaxBytes:    lp.p.limit,
	}
	if stage != nil {
		last := -1
		layers := lp.cur.NumLayers()
		ls.Progress = func(layer, done, total int) {
			if layer != last {
				stage.start(fmt.Sprintf("layer %d of %d", layer+1, layers), total)
				last = layer
			}
			stage.add()
			if layer == layers-1 && done == total {
				stage.start("evaluating the pruned network", -1)
			}
		}
		// prune.LayerwiseRun evaluates the model on every split before the
		// first row.
		stage.start("evaluating the model, collecting the layer inputs", -1)
	}
	var retrain *nn.TrainSettings
	if set.Retrain != nil {
		ts, _ := trainSettingsOf(*set.Retrain)
		ts.Src = lp.p.retrainSrc
		retrain = &ts
	}
	res, rep, err := prune.LayerwiseRun(ctx, lp.cur, lp.p.data, ls, retrain)
	stage.stop()
	if res == nil {
		return err
	}
	for l, ly := range rep.Layers {
		lp.st.Layerwise = append(lp.st.Layerwise, layerRecord{
			Layer: l, Method: ly.Method.String(), Sparsity: ly.Sparsity,
			WeightsBefore: ly.WeightsBefore, WeightsAfter: ly.WeightsAfter, BiasesBefore: ly.BiasesBefore, BiasesAfter: ly.BiasesAfter,
			Lambda: jnum(ly.Lambda), Predicted: jnum(ly.Predicted), Actual: jnum(ly.Actual), DampingTerm: jnum(ly.DampingTerm),
		})
	}
	lp.records(res.History, res.Rounds, res.Health.Issues)
	lp.cur, lp.final = res.Net, res.Net
	if err != nil {
		return err
	}
	lp.st.Stopped = res.Stopped
	return lp.checkpoint()
}

// finish writes the pruned model and the report, after a run ended by
// runErr (nil for a normal end), and returns the outcome.
func (lp *pruneLoop) finish(runErr error) (*runOutcome, error) {
	p := lp.p
	net := lp.final
	if net == nil {
		net = lp.cur
	}
	if lp.bar != nil {
		fin := &stageBar{w: lp.bar.w, on: true}
		fin.start("evaluating the pruned network, writing the model and the report", -1)
		defer fin.stop()
	}
	stopped := lp.st.Stopped
	history := append([]stepRecord{}, lp.st.History...)
	issues := append([]issueRecord{}, lp.st.Issues...)
	rounds := append([]roundRecord{}, lp.st.RoundList...)
	errMsg := ""
	if runErr != nil {
		stopped = prune.StoppedFailed
		if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
			stopped = prune.StoppedCanceled
		} else {
			errMsg = runErr.Error()
		}
	}
	rep := &runReport{
		Format:     reportFormat,
		Output:     p.output,
		Method:     p.set.describe(),
		Stopped:    stopped,
		Error:      errMsg,
		Params:     lp.st.Params,
		LiveBefore: lp.st.LiveBefore,
		LiveAfter:  net.NumLive(),
		Start:      lp.st.Start,
		Final:      p.eval(net),
		Rounds:     rounds,
		History:    history,
		Layerwise:  lp.st.Layerwise,
		Health:     newHealthRecord(issues),
		Manifest:   p.manifest,
	}
	// A compact history read from a checkpoint.
	rep.HistorySample, rep.HistoryGroups = lp.st.HistorySample, lp.st.HistoryGroups
	rep.fullHistory = p.fullHistory
	out := &runOutcome{report: rep, net: net}

	pruned := net.Clone()
	if pruned.Meta == nil {
		pruned.Meta = map[string]any{}
	}
	pruned.Meta["data"] = p.manifest.Settings.Data
	// The model records its provenance by content, without the paths, so
	// that its bytes do not depend on where the files were.
	settings := metaValue(p.manifest.Settings).(map[string]any)
	for _, k := range []string{"model", "output", "report"} {
		delete(settings, k)
	}
	var inputs []map[string]any
	for _, in := range p.manifest.Inputs {
		inputs = append(inputs, map[string]any{"role": in.Role, "bytes": in.Bytes, "sha256": in.SHA256})
	}
	pruned.Meta["pruning"] = map[string]any{
		"command":     "run",
		"method":      rep.Method,
		"settings":    settings,
		"stopped":     stopped,
		"params":      rep.Params,
		"live_before": rep.LiveBefore,
		"live":        rep.LiveAfter,
		"rounds":      len(rep.Rounds),
		"removals":    rep.removals(),
		"inputs":      inputs,
		"metrics":     rep.Final,
		"version":     toolkitVersion(),
	}
	pruned.Meta = metaValue(pruned.Meta).(map[string]any)
	if err := setTorchMasks(pruned, p.torchMasks); err != nil {
		return nil, err
	}
	var set atomicfile.Set // the model and the report, renamed together
	defer set.Abort()
	if err := saveModelSet(&set, p.output, pruned); err != nil {
		return nil, err
	}
	out.files = modelFiles(p.output)
	if err := os.MkdirAll(p.reportDir, 0o755); err != nil {
		return nil, fmt.Errorf("--report %s: %v", p.reportDir, err)
	}
	paths, err := writeReport(&set, p.reportDir, rep)
	out.files = append(out.files, paths...)
	if err == nil {
		err = set.Commit()
	}
	if err != nil {
		return nil, fmt.Errorf("--report %s: %v", p.reportDir, err)
	}
	out.reportDir = p.reportDir
	return out, nil
}

// pruneBar is a prune.Recorder that shows a progress bar over the removals
// on a terminal.
type pruneBar struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	offset  int // removals of earlier rounds
	removed int
}

// Record advances the bar.
func (b *pruneBar) Record(e prune.Event) {
	if b.bar == nil {
		total := -1
		if e.Target >= 0 {
			total = max(1, e.Live-e.Target)
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetElapsedTime(true),
		}
		if total > 0 {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
		} else {
			opts = append(opts, progressbar.OptionSpinnerType(14))
		}
		b.bar = progressbar.NewOptions(total, opts...)
	}
	if e.Kind == prune.EventRemoval && e.Step != nil && !e.Step.Undone {
		b.removed++
		_ = b.bar.Set(b.removed)
	}
	b.bar.Describe(fmt.Sprintf("pruning: %d live", e.Live))
}

// close removes the bar from the terminal.
func (b *pruneBar) close() {
	if b == nil || b.bar == nil {
		return
	}
	_ = b.bar.Clear()
}

// runSummary is what run prints with --json.
type runSummary struct {
	Output     string         `json:"output"`
	Report     string         `json:"report"`
	Files      []string       `json:"files"`
	Method     string         `json:"method"`
	Stopped    string         `json:"stopped"`
	Params     int            `json:"params"`
	LiveBefore int            `json:"live_before"`
	LiveAfter  int            `json:"live_after"`
	Rounds     int            `json:"rounds"`
	Removals   int            `json:"removals"`
	Undone     int            `json:"undone"`
	Start      evalRecord     `json:"start"`
	Final      evalRecord     `json:"final"`
	Health     map[string]int `json:"health"`
	// Damping gives the smallest and largest damping λ the rounds used,
	// after any escalation; absent for methods without one.
	Damping *dampingRange `json:"damping,omitempty"`
	// Objective is trained or loss, and ObjectiveDecay the weight decay
	// λ of the trained objective (its curvature adds λN·I).
	Objective      string  `json:"objective,omitempty"`
	ObjectiveDecay float64 `json:"objective_weight_decay"`
	// Memory is the planner's estimate of a round's memory, checked
	// against --max-memory before anything is allocated.
	Memory     *memoryRecord `json:"memory,omitempty"`
	Resumed    *int          `json:"resumed_from_round,omitempty"`
	Ignored    []string      `json:"ignored_flags,omitempty"`
	Seconds    float64       `json:"seconds"`
	GOMAXPROCS int           `json:"gomaxprocs"`
}

// newRunSummary returns the summary of a run.
func newRunSummary(out *runOutcome) runSummary {
	r := out.report
	s := runSummary{
		Output: r.Output, Report: out.reportDir, Files: out.files, Method: r.Method, Stopped: r.Stopped,
		Params: r.Params, LiveBefore: r.LiveBefore, LiveAfter: r.LiveAfter, Rounds: len(r.Rounds), Removals: r.removals(),
		Start: r.Start, Final: r.Final, Health: r.Health.Counts, Ignored: out.ignored,
		Seconds: out.seconds, GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	for _, st := range r.History {
		if st.Undone {
			s.Undone++
		}
	}
	s.Objective, s.ObjectiveDecay = r.Manifest.Settings.Objective, r.Manifest.Settings.ObjectiveDecay
	for _, rd := range r.Rounds {
		if d := float64(rd.Damping); !math.IsNaN(d) {
			if s.Damping == nil {
				s.Damping = &dampingRange{Min: d, Max: d}
			}
			s.Damping.Min, s.Damping.Max = math.Min(s.Damping.Min, d), math.Max(s.Damping.Max, d)
		}
	}
	if out.resumed >= 0 {
		s.Resumed = ptr(out.resumed)
	}
	if out.memory > 0 {
		s.Memory = &memoryRecord{Bytes: out.memory, Text: hessian.FormatBytes(out.memory), What: out.memoryWhat}
	}
	return s
}

// dampingRange is the smallest and the largest damping of a run.
type dampingRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// printRunSummary prints the summary of a run as text.
func printRunSummary(w io.Writer, out *runOutcome) {
	s := newRunSummary(out)
	r := out.report
	if s.Resumed != nil {
		fmt.Fprintf(w, "resumed from %s after round %d\n", filepath.Join(s.Report, checkpointFile), *s.Resumed)
	}
	undone := ""
	if s.Undone > 0 {
		undone = fmt.Sprintf(", %d undone", s.Undone)
	}
	fmt.Fprintf(w, "pruned %s with %s on %s: %d → %d of %d parameters live in %s (%s%s); stopped: %s\n",
		r.Manifest.Settings.Model, r.Method, r.Manifest.Settings.Data.Name, s.LiveBefore, s.LiveAfter, s.Params,
		plural(s.Rounds, "round"), plural(s.Removals, "removal"), undone, s.Stopped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "\tlive\ttrain loss\ttrain acc\t"
	if r.Start.Valid != nil {
		header += "valid acc\t"
	}
	if r.Start.Test != nil {
		header += "test acc\t"
	}
	fmt.Fprintln(tw, header)
	for _, row := range []struct {
		name string
		live int
		e    evalRecord
	}{{"before", s.LiveBefore, r.Start}, {"after", s.LiveAfter, r.Final}} {
		line := fmt.Sprintf("%s\t%d\t%.6g\t%.2f%%\t", row.name, row.live, row.e.Train.MeanLoss, 100*row.e.Train.Accuracy)
		if row.e.Valid != nil {
			line += fmt.Sprintf("%.2f%%\t", 100*row.e.Valid.Accuracy)
		}
		if row.e.Test != nil {
			line += fmt.Sprintf("%.2f%%\t", 100*row.e.Test.Accuracy)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	if d := s.Damping; d != nil && d.Min == d.Max {
		fmt.Fprintf(w, "damping: λ = %g in every round\n", d.Min)
	} else if d != nil {
		fmt.Fprintf(w, "damping: λ from %g to %g (see the rounds of report.json)\n", d.Min, d.Max)
	}
	if s.Objective != "" {
		fmt.Fprintf(w, "objective: %s (weight decay λ = %g)\n", s.Objective, s.ObjectiveDecay)
	}
	if m := s.Memory; m != nil {
		fmt.Fprintf(w, "memory: planned %s for %s\n", m.Text, m.What)
	}
	fmt.Fprintf(w, "health: %s\n", healthLine(r.Health))
	fmt.Fprintf(w, "wrote %s\n", strings.Join(out.files, ", "))
	fmt.Fprintf(w, "time %.3g s, GOMAXPROCS %d\n", s.Seconds, s.GOMAXPROCS)
}
