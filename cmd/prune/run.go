package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/runreport"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"github.com/urfave/cli/v2"
)

// Streams of the PCG generators seeded with --seed for the shuffling of
// retraining and the samples of the saliency (Hutchinson probes, rows).
const (
	streamRetrain = 0x72657472 // "retr"
	streamHutch   = 0x68757463 // "hutc"
)

// runFlags returns the flags of the run command.
func runFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "trained model `FILE` to prune: .json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)", Category: "Model"},
		&cli.StringFlag{Name: "method", Value: "obs", Usage: "saliency `METHOD`: obs (Optimal Brain Surgeon), obd (Optimal Brain Damage) or magnitude", Category: "Method"},
		&cli.StringFlag{Name: "curvature", Usage: "`CURVATURE` of obs: exact, gn, fisher, fisher-lowrank, gn-lowrank or recursive; of obd: exact (the exact diagonal), diag-bl, diag-lm, gn, fisher or hutchinson", DefaultText: "exact", Category: "Method"},
		&cli.Float64Flag{Name: "damping", Usage: "damping `λ` ≥ 0 added to the diagonal of the obs matrix, raised tenfold while it is not positive definite; with --layerwise the relative damping ρ > 0 of the layer Hessians", DefaultText: fmt.Sprintf("%g; %g with --layerwise", prune.DefaultDamping, prune.DefaultLayerwiseDamping), Category: "Method"},
		&cli.Float64Flag{Name: "alpha", Usage: "initial damping `α` > 0 of --curvature recursive", DefaultText: "1e-4", Category: "Method"},
		&cli.IntFlag{Name: "probes", Usage: "number `S` of Rademacher probes of --curvature hutchinson", DefaultText: "100", Category: "Method"},
		samplesFlag(), hardFlag(), blockFlag(),
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
	return flags
}

// runCommand returns the run command.
func runCommand() *cli.Command {
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
		Flags: runFlags(),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return runRun(c.Context, c, c.App.Writer, c.App.ErrWriter, runHooks{})
		},
	}
}

// runHooks are called by tests: afterRound after the checkpoint of every
// round with the number of rounds done, atStart when pruning starts.
type runHooks struct {
	afterRound func(rounds int)
	atStart    func()
}

// resumeFlags lists the flags that may be given with --resume: they do not
// change the result, and a run does not record them.
var resumeFlags = map[string]bool{"resume": true, "output": true, "overwrite": true, "json": true, "quiet": true, "max-memory": true}

// runFlagContext returns the context of the run command's flags set to
// the values of flags, as recorded in a checkpoint, and to args.
func runFlagContext(flags map[string]string, args ...string) (*cli.Context, error) {
	return flagContext(runFlags(), flags, args...)
}

// flagContext returns the context of the flags of a command set to the
// values of recorded and to args, as the command line would set them.
func flagContext(cmdFlags []cli.Flag, recorded map[string]string, args ...string) (*cli.Context, error) {
	all := append(slices.Clone(cmdFlags), quietFlag())
	set := flag.NewFlagSet("prune", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range all {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(recorded)) {
		if err := set.Set(name, recorded[name]); err != nil {
			return nil, flagValueError(name, recorded[name], err)
		}
	}
	if err := set.Parse(args); err != nil {
		return nil, &usageError{Msg: err.Error()}
	}
	given := map[string]bool{}
	set.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range all {
		for _, alias := range f.Names()[1:] {
			if given[alias] {
				_ = set.Set(f.Names()[0], set.Lookup(alias).Value.String())
			}
		}
	}
	return cli.NewContext(cli.NewApp(), set, nil), nil
}

// runPlan is a run decoded from its flags, everything loaded, before any
// output is created.
type runPlan struct {
	c                  *cli.Context
	model, act, loss   string
	layers, torchMasks string
	fullHistory, quiet bool
	data               dataOptions
	dataGiven          map[string]bool
	method             method
	settings           prune.Settings // of a run in rounds
	layerwise          *prune.LayerwiseSettings
	retrainSrc         *rand.PCG
	probeSrc           *rand.PCG
	limit              int64
	output, reportDir  string
	ignored, notes     []string

	net      *nn.Network // the network to prune, or that of the checkpoint
	splits   nn.Splits
	manifest runreport.Manifest
	// engine is the state of the checkpoint resumed, nil for a new run;
	// prior sums up the rounds of which it keeps only a sample of the
	// removals.
	engine     *prune.State
	prior      []runreport.Group
	layers2    []runreport.Layer // the layers of a --layerwise checkpoint
	resumed    int               // rounds of the checkpoint resumed, −1 for a new run
	liveBefore int               // live parameters of the model given
}

// readRun decodes the flags of c that need neither the model nor the data.
func readRun(c *cli.Context) (*runPlan, error) {
	p := &runPlan{c: c, model: c.String("model"), act: c.String("act"), loss: c.String("loss"), layers: c.String("layers"),
		torchMasks: c.String("torch-masks"), fullHistory: c.Bool("full-history"), output: c.String("output"),
		reportDir: c.String("report"), resumed: -1, quiet: isQuiet(c),
		retrainSrc: rand.NewPCG(0, streamRetrain), probeSrc: rand.NewPCG(0, streamHutch)}
	var err error
	if p.data, p.dataGiven, err = readDataOptions(c); err != nil {
		return nil, err
	}
	if err := refuseZero(c,
		[]string{"probes", "samples", "per-round", "max-rounds", "rebuild-every", "batch", "target-weights", "audit-rows", "audit-removals"},
		[]string{"alpha", "lr", "fraction", "target-sparsity", "budget"}); err != nil {
		return nil, err
	}
	if p.model == "" {
		return nil, flagErrorf("model", "is required: give the trained model file to prune")
	}
	if err := checkModelName("model", p.model); err != nil {
		return nil, err
	}
	if err := checkSpecFlags(p.act, p.loss); err != nil {
		return nil, err
	}
	if p.limit, err = parseMaxMemory(c.String("max-memory")); err != nil {
		return nil, err
	}
	if err := checkTorchMasks(p.torchMasks); err != nil {
		return nil, err
	}
	mf := readMethodFlags(c)
	if c.Bool("layerwise") {
		if err := p.readLayerwise(c, mf); err != nil {
			return nil, err
		}
	} else if err := p.readRounds(c, mf); err != nil {
		return nil, err
	}
	if err := checkRetrainFlags(c); err != nil {
		return nil, err
	}
	if p.output == "" {
		return nil, flagErrorf("output", "is required: give the pruned model file to write with -o")
	}
	if err := checkModelName("output", p.output); err != nil {
		return nil, err
	}
	if p.reportDir == "" {
		p.reportDir = strings.TrimSuffix(p.output, filepath.Ext(p.output)) + "-report"
	}
	return p, nil
}

// ignoredByLayerwise lists the flags that --layerwise ignores.
var ignoredByLayerwise = []string{"curvature", "alpha", "probes", "stop-error-rise", "error-measure", "error-split",
	"target-weights", "budget", "max-rounds", "per-round", "fraction", "rebuild-every", "objective",
	"audit-rows", "audit-removals", "audit-all", "no-audit", "samples", "hard", "block", "joint"}

// readLayerwise decodes the flags of --layerwise.
func (p *runPlan) readLayerwise(c *cli.Context, mf methodFlags) error {
	for _, name := range ignoredByLayerwise {
		if c.IsSet(name) {
			p.ignored = append(p.ignored, "--"+name)
		}
	}
	m, err := methodFlags{Method: mf.Method}.decode(nil)
	if err != nil {
		return err
	}
	p.method = m
	ls := &prune.LayerwiseSettings{Sparsity: cmpOr(c.Float64("target-sparsity"), prune.DefaultSparsity), Method: layerwiseMethod(m.name),
		Damping: prune.DefaultLayerwiseDamping, PruneBiases: !c.Bool("protect-biases"), PerLayer: c.Bool("per-layer"), MaxBytes: p.limit}
	if mf.Damping != nil {
		if ls.Damping = *mf.Damping; ls.Damping == 0 { // zero is the library's default
			return flagErrorf("damping", "0: with --layerwise the relative damping must be a positive number")
		}
	}
	if err := ls.Validate(1); err != nil {
		return libraryError(err)
	}
	p.layerwise = ls
	p.method.desc = map[string]string{"obs": "layer-wise OBS (OBC or SparseGPT)", "obd": "layer-wise OBD"}[m.name] + fmt.Sprintf(", ρ = %g", ls.Damping)
	if m.name == "magnitude" {
		p.method.desc = "layer-wise magnitude" // the damping does not apply
	}
	return nil
}

// readRounds decodes the flags of a run in rounds into p.settings.
func (p *runPlan) readRounds(c *cli.Context, mf methodFlags) error {
	m, err := mf.decode(p.probeSrc)
	if err != nil {
		return err
	}
	s := &p.settings
	*s = prune.Settings{
		Method: m.saliency, Objective: m.objective, PerRound: c.Int("per-round"), Fraction: c.Float64("fraction"),
		PerLayer: c.Bool("per-layer"), ProtectBiases: c.Bool("protect-biases"), RebuildEvery: c.Int("rebuild-every"),
		TargetLive: c.Int("target-weights"), Sparsity: c.Float64("target-sparsity"), Budget: c.Float64("budget"),
		MaxRounds: c.Int("max-rounds"), AuditRows: c.Int("audit-rows"), AuditRemovals: c.Int("audit-removals"),
		NoAudit: c.Bool("no-audit"), Joint: c.Bool("joint"), MaxBytes: p.limit,
	}
	if c.IsSet("stop-error-rise") {
		if s.ErrorRise = c.Float64("stop-error-rise"); s.ErrorRise == 0 {
			s.ErrorRise = prune.NoRise
		}
		switch e := strings.ToLower(c.String("error-measure")); e {
		case "":
		case "loss":
			s.ErrorMeasure = prune.MeanLoss
		case "misclassification", "error":
			s.ErrorMeasure = prune.Misclassification
		default:
			return flagErrorf("error-measure", "%q: want loss or misclassification", c.String("error-measure"))
		}
		switch sp := strings.ToLower(c.String("error-split")); sp {
		case "", "train", "training":
		case "valid", "validation":
			s.ErrorSplit = prune.ValidSplit
		default:
			return flagErrorf("error-split", "%q: want train or valid", c.String("error-split"))
		}
	}
	for _, x := range []struct {
		cond       bool
		flag, want string
	}{
		{!c.IsSet("stop-error-rise") && c.IsSet("error-measure"), "error-measure", "applies only with --stop-error-rise"},
		{!c.IsSet("stop-error-rise") && c.IsSet("error-split"), "error-split", "applies only with --stop-error-rise"},
		{s.PerRound > 0 && s.Fraction > 0, "fraction", "excludes --per-round: --per-round and --fraction exclude each other"},
		{s.NoAudit && (c.Bool("audit-all") || s.AuditRows > 0 || s.AuditRemovals > 0), "no-audit", "excludes --audit-all, --audit-rows and --audit-removals"},
		{c.Bool("audit-all") && (s.AuditRows > 0 || s.AuditRemovals > 0), "audit-all", "excludes --audit-rows and --audit-removals"},
	} {
		if x.cond {
			return flagErrorf(x.flag, "%s", x.want)
		}
	}
	if c.Bool("audit-all") {
		s.AuditRows, s.AuditRemovals = prune.AuditAll, prune.AuditAll
	}
	if err := s.Validate(); err != nil {
		return libraryError(err)
	}
	if s.Joint {
		m.desc = strings.TrimSuffix(m.desc, ")") + ", joint removals)"
	}
	p.method = m
	return nil
}

// checkRetrainFlags checks the retraining flags that need no model.
func checkRetrainFlags(c *cli.Context) error {
	if c.Int("retrain-epochs") < 0 {
		return flagErrorf("retrain-epochs", "%d: must not be negative", c.Int("retrain-epochs"))
	}
	for _, name := range []string{"optimizer", "lr", "weight-decay", "batch"} {
		if c.IsSet(name) && c.Int("retrain-epochs") == 0 {
			return flagErrorf(name, "applies only with --retrain-epochs")
		}
	}
	if o := c.String("optimizer"); strings.EqualFold(o, optimizerLM) {
		return flagErrorf("optimizer", "lm: retraining between rounds uses nn's optimizers: give adam, sgd or lbfgs (a model trained with lm is retrained with lbfgs when --optimizer is not given)")
	} else if _, err := nn.ParseOptimizer(o); o != "" && err != nil {
		return flagValueError("optimizer", o, err)
	}
	return nil
}

// retrainSettings returns the trainer of retraining: the one recorded in
// the model's metadata, or Adam's defaults, with the flags of c applied;
// nil without retraining. Without validation data early stopping is off.
// A model trained with Levenberg–Marquardt (lm), which the engine's
// retraining does not run, is retrained with L-BFGS and the recorded
// weight decay unless --optimizer is given; note then says so.
func retrainSettings(c *cli.Context, model string, meta map[string]any, hasValid bool) (s *nn.TrainSettings, note string, err error) {
	if c.Int("retrain-epochs") == 0 {
		return nil, "", nil
	}
	var r modelio.Trainer
	if !modelio.DecodeMeta(meta, modelio.TrainerKey, &r) || r.Optimizer == "" {
		r = modelio.TrainerOf(nn.TrainSettings{})
	}
	opt := c.String("optimizer")
	if strings.EqualFold(r.Optimizer, optimizerLM) && opt == "" {
		r = modelio.TrainerOf(nn.TrainSettings{Optimizer: nn.LBFGS, WeightDecay: r.WeightDecay})
		note = fmt.Sprintf("note: %s was trained with Levenberg–Marquardt (lm); retraining uses lbfgs with its weight decay %g (give --optimizer to choose another)", model, r.WeightDecay)
	}
	if opt != "" && !strings.EqualFold(opt, r.Optimizer) {
		o, _ := nn.ParseOptimizer(opt)
		r = modelio.TrainerOf(nn.TrainSettings{Optimizer: o, WeightDecay: r.WeightDecay})
	}
	ts, err := r.Settings()
	if err != nil {
		return nil, "", fmt.Errorf("%s: the recorded trainer: %v (give --optimizer)", model, err)
	}
	ts.Epochs = c.Int("retrain-epochs")
	if c.IsSet("lr") {
		ts.LearningRate = c.Float64("lr")
	}
	if c.IsSet("weight-decay") {
		ts.WeightDecay = c.Float64("weight-decay")
	}
	if c.IsSet("batch") {
		ts.BatchSize = c.Int("batch")
	}
	if !hasValid {
		ts.Patience = 0
	}
	if err := ts.Validate(); err != nil {
		return nil, "", libraryError(err)
	}
	return &ts, note, nil
}

// resolve completes the plan with the network n: the data (the flags not
// given take the model's recorded values), the generators, the trainer, the
// trained objective's weight decay, and the memory check. It reads the data.
func (p *runPlan) resolve(n *nn.Network) error {
	d := p.data
	if p.dataGiven != nil { // not for a resumed run, whose data are resolved
		d = withRecorded(d, n.Meta, p.dataGiven)
	}
	if err := checkData(d); err != nil {
		return err
	}
	p.data = d
	if err := p.loadData(n); err != nil {
		return err
	}
	p.retrainSrc.Seed(d.Seed, streamRetrain)
	p.probeSrc.Seed(d.Seed, streamHutch)
	retrain, note, err := retrainSettings(p.c, p.model, n.Meta, p.splits.Valid.X != nil)
	if err != nil {
		return err
	}
	if note != "" {
		p.notes = append(p.notes, note)
	}
	if retrain != nil {
		retrain.Src = p.retrainSrc
	}
	set := runreport.Settings{Model: p.model, Data: d, Flags: map[string]string{}, Output: p.output, Report: p.reportDir}
	for _, f := range runFlags() {
		if name := f.Names()[0]; p.c.IsSet(name) && !resumeFlags[name] {
			set.Flags[name] = p.c.String(name)
		}
	}
	if retrain != nil {
		set.Retrain = ptr(modelio.TrainerOf(*retrain))
	}
	s := &p.settings
	s.Retrain, s.AuditSeed = retrain, d.Seed
	if p.layerwise == nil {
		if s.Objective != prune.LossObjective && p.method.name != "magnitude" {
			s.WeightDecay, _ = prune.WeightDecayOf(n)
		}
		if p.method.name != "magnitude" {
			set.Objective, set.ObjectiveDecay = s.Objective.String(), s.WeightDecay
		}
		if s.ErrorRise != 0 {
			if s.ErrorMeasure == prune.AutoMeasure {
				s.ErrorMeasure = prune.MeanLoss
				if prune.IsClassification(n, p.splits.Train.Y) {
					s.ErrorMeasure = prune.Misclassification
				}
			}
			set.ErrorMeasure = s.ErrorMeasure.String()
			if s.ErrorSplit == prune.ValidSplit && p.splits.Valid.X == nil {
				return flagErrorf("error-split", "valid needs validation data: give --valid-fraction")
			}
		}
	}
	p.manifest.Settings = set
	return nil
}

// loadData loads the data set of the plan and checks every split against
// the network.
func (p *runPlan) loadData(n *nn.Network) error {
	d := p.data
	splits, err := loadData(d)
	if err != nil {
		return err
	}
	if splits.Train.X == nil || splits.Train.Len() == 0 {
		return dataErrorf(d, "no training samples")
	}
	for _, s := range []*nn.Data{&splits.Train, &splits.Valid, &splits.Test} {
		if s.X != nil {
			if err := checkFit(n, s, d, false, "the model's loss "+n.Loss().String()); err != nil {
				return err
			}
		}
	}
	p.splits = *splits
	return nil
}

// prepareRun decodes the flags of c, loads the model and the data, or the
// checkpoint of --resume, and checks the outputs. It creates no file.
func prepareRun(c *cli.Context) (*runPlan, error) {
	if c.String("resume") != "" {
		return prepareResume(c)
	}
	p, err := readRun(c)
	if err != nil {
		return nil, err
	}
	// The outputs are checked against the model before it is read.
	overwrite := c.Bool("overwrite")
	if err := checkRunOutputs(p.output, p.reportDir, overwrite, "", modelFiles(p.model)); err != nil {
		return nil, err
	}
	n, err := readModelLayers(p.model, p.act, p.loss, p.layers)
	if err != nil {
		return nil, err
	}
	if n.Meta != nil {
		n.Meta = metaValue(n.Meta).(map[string]any)
	}
	if d := withRecorded(p.data, n.Meta, p.dataGiven); checkData(d) == nil {
		if err := checkRunOutputs(p.output, p.reportDir, overwrite, "", append(modelFiles(p.model), d.Inputs()...)); err != nil {
			return nil, err
		}
	}
	if err := p.resolve(n); err != nil {
		return nil, err
	}
	if err := checkMemory(p.method, p.layerwise != nil, n, p.splits.Train.X, p.splits.Train.Y, p.limit); err != nil {
		return nil, err
	}
	inputs, err := runreport.HashInputs(p.manifest.Settings.Model, p.manifest.Settings.Data)
	if err != nil {
		return nil, err
	}
	p.net, p.liveBefore = n, n.NumLive()
	p.manifest = runreport.Manifest{Toolkit: toolkitVersion(), Go: runtime.Version(), BLAS: blasimpl.Name(), Inputs: inputs, Settings: p.manifest.Settings}
	return p, nil
}

// runOutcome is the result of a run.
type runOutcome struct {
	report    *runreport.Report
	files     []string // paths written: the model, then the report's files
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

// runRun prunes the model as the flags of c say, writes the pruned model,
// the report and the checkpoint, and prints a summary.
func runRun(ctx context.Context, c *cli.Context, stdout, stderr io.Writer, h runHooks) error {
	out, err := doRun(ctx, c, stderr, h)
	if err != nil {
		return err
	}
	if out.err != nil {
		return out.err
	}
	if c.Bool("json") {
		return writeJSON(stdout, newRunSummary(out))
	}
	newRunSummary(out).WriteText(stdout, out.report.Health.Line())
	return nil
}

// doRun runs the run command without printing the summary. It returns an
// error when nothing was written; an interruption or a failure after
// outputs were written is in the outcome's err.
func doRun(ctx context.Context, c *cli.Context, stderr io.Writer, h runHooks) (*runOutcome, error) {
	t0 := time.Now()
	quiet := isQuiet(c)
	prep := &stageBar{w: stderr, on: !quiet && isTerminal(stderr)}
	prep.start("loading the model and the data", -1)
	p, err := prepareRun(c)
	prep.stop()
	if err != nil {
		return nil, err
	}
	release, err := claimRunOutputs(p, c.Bool("overwrite"))
	if err != nil {
		return nil, err
	}
	defer release()
	for _, note := range p.notes {
		if !quiet {
			fmt.Fprintln(stderr, note)
		}
	}
	if len(p.ignored) > 0 && !quiet {
		fmt.Fprintf(stderr, "note: --layerwise prunes in one shot and ignores %s\n", strings.Join(p.ignored, ", "))
	}
	lp := &pruneLoop{p: p, hooks: h, engine: p.engine, layers: p.layers2, round: max(p.resumed, 0)}
	if !quiet && isTerminal(stderr) {
		lp.bar = &pruneBar{w: stderr}
	}
	var res *prune.Result
	var runErr error
	switch e := p.engine; {
	case e != nil && e.Stopped != "":
		// A finished run: its outputs are written again.
		res = &prune.Result{Net: e.Net, Start: e.Start, Final: e.Current, History: e.History, Rounds: e.RoundList, Stopped: e.Stopped, Health: prune.Health{Issues: e.Issues}}
	case p.layerwise != nil:
		res, runErr = lp.layerwise(ctx)
	default:
		res, runErr = lp.loop(ctx)
	}
	lp.bar.close()
	if res == nil {
		// Nothing to write: interrupted while evaluating the model, or
		// a layer-wise run that did not finish.
		if ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
			if p.layerwise != nil {
				return nil, fmt.Errorf("interrupted; nothing written to %s", p.output)
			}
			return nil, errors.New("interrupted while evaluating the model before pruning; nothing was written")
		}
		return nil, fmt.Errorf("%v; nothing written to %s", runErr, p.output)
	}
	out, err := lp.finish(res, runErr)
	if err != nil {
		return nil, joinFailure(runErr, err)
	}
	out.seconds = time.Since(t0).Seconds()
	out.memory, out.memoryWhat = memoryNeed(p.method, p.layerwise != nil, p.net, p.splits.Train.X, p.splits.Train.Y)
	out.resumed = p.resumed
	out.ignored = p.ignored
	if runErr != nil {
		where := fmt.Sprintf("saved the network pruned so far (%d of %d parameters live) to %s and the report to %s", out.report.LiveAfter, out.report.Params, p.output, p.reportDir)
		canceled := ctx.Err() != nil && errors.Is(runErr, ctx.Err())
		switch {
		case canceled && p.layerwise != nil:
			out.err = fmt.Errorf("interrupted while retraining; %s (not retrained); continue with: prune run --resume %s", where, p.reportDir)
		case canceled && lp.round == 0:
			out.err = fmt.Errorf("interrupted in round 1, before any round was complete; %s; no checkpoint was written, so there is nothing to resume: run the command again to start over", where)
		case canceled:
			out.err = fmt.Errorf("interrupted in round %d; %s; continue with: prune run --resume %s", lp.round+1, where, p.reportDir)
		default:
			out.err = fmt.Errorf("pruning failed: %v; %s", runErr, where)
		}
	}
	return out, nil
}

// pruneLoop runs the rounds of a plan.
type pruneLoop struct {
	p      *runPlan
	hooks  runHooks
	bar    *pruneBar
	engine *prune.State // after the last complete round
	layers []runreport.Layer
	// round is the number of complete rounds, checkpoints those written,
	// and started tells that pruning started (the model was evaluated).
	round, checkpoints int
	started            bool
}

// loop runs prune.Run, which hands its state to the checkpoint after every
// complete round.
func (lp *pruneLoop) loop(ctx context.Context) (*prune.Result, error) {
	s := lp.p.settings
	s.Resume = lp.engine
	s.Recorder = recorders{lp.bar, lp}
	s.OnState = func(st *prune.State) error {
		lp.engine, lp.round = st, st.Rounds
		if err := lp.checkpoint(); err != nil {
			return err
		}
		if st.Stopped == "" && lp.hooks.afterRound != nil {
			lp.hooks.afterRound(st.Rounds)
		}
		return nil
	}
	res, err := prune.Run(ctx, lp.p.net, lp.p.splits, &s)
	if err != nil && res == nil && !errors.Is(err, ctx.Err()) {
		return nil, libraryError(err)
	}
	return res, err
}

// Record notes the start of pruning for the hooks.
func (lp *pruneLoop) Record(e prune.Event) {
	if e.Kind == prune.EventRoundStart && !lp.started {
		lp.started = true
		if lp.hooks.atStart != nil {
			lp.hooks.atStart()
		}
	}
}

// recorders is a prune.Recorder that hands every event to each of its
// recorders that is not nil.
type recorders []interface{ Record(prune.Event) }

func (rs recorders) Record(e prune.Event) {
	for _, r := range rs {
		if b, ok := r.(*pruneBar); ok && b == nil {
			continue
		}
		r.Record(e)
	}
}

// layerwise prunes the network in one shot with prune.LayerwiseRun, or
// resumes its retraining, and checkpoints its states.
func (lp *pruneLoop) layerwise(ctx context.Context) (*prune.Result, error) {
	p := lp.p
	ls := *p.layerwise
	var stage *stageBar
	if lp.bar != nil && p.engine == nil {
		stage = &stageBar{w: lp.bar.w, on: true}
		last, layers := -1, p.net.NumLayers()
		ls.Progress = func(layer, done, total int) {
			lp.started = true
			if layer != last {
				stage.start(fmt.Sprintf("layer %d of %d", layer+1, layers), total)
				last = layer
			}
			stage.add()
			if layer == layers-1 && done == total {
				stage.start("evaluating the pruned network", -1)
			}
		}
		stage.start("evaluating the model, collecting the layer inputs", -1)
	}
	ls.Resume = p.engine
	ls.OnState = func(st *prune.State, rep prune.LayerwiseReport) error {
		if p.engine == nil {
			lp.layers = runreport.LayersOf(rep)
		}
		lp.started, lp.engine, lp.round = true, st, st.Rounds
		stage.stop()
		if err := lp.checkpoint(); err != nil {
			return err
		}
		if st.Stopped == "" && lp.hooks.afterRound != nil {
			lp.hooks.afterRound(st.Rounds)
		}
		return nil
	}
	res, _, err := prune.LayerwiseRun(ctx, p.net, p.splits, &ls, p.settings.Retrain)
	stage.stop()
	if res != nil {
		lp.started = true
	}
	return res, err
}

// finish writes the pruned model and the report of res, after a run ended
// by runErr (nil for a normal end), and returns the outcome.
func (lp *pruneLoop) finish(res *prune.Result, runErr error) (*runOutcome, error) {
	p := lp.p
	net := res.Net
	if lp.bar != nil {
		fin := &stageBar{w: lp.bar.w, on: true}
		fin.start("writing the model and the report", -1)
		defer fin.stop()
	}
	errMsg := ""
	if runErr != nil && !(errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded)) {
		errMsg = runErr.Error()
	}
	rep := runreport.ReportOf(res, p.splits.Valid.X != nil, p.splits.Test.X != nil)
	rep.Output, rep.Method, rep.Error, rep.LiveBefore = p.output, p.method.desc, errMsg, p.liveBefore
	rep.Layerwise, rep.HistoryGroups, rep.Manifest, rep.FullHistory = lp.layers, p.prior, p.manifest, p.fullHistory
	out := &runOutcome{report: rep, net: net}

	pruned := net.Clone()
	if pruned.Meta == nil {
		pruned.Meta = map[string]any{}
	}
	pruned.Meta["data"] = p.manifest.Settings.Data
	pruned.Meta["pruning"] = rep.Provenance(toolkitVersion())
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
	paths, err := rep.Write(&set, p.reportDir)
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

// healthOf returns the health section of the issues h met on net.
func healthOf(h prune.Health, net *nn.Network) runreport.Health {
	return runreport.NewHealth(runreport.IssuesOf(h.Issues, net))
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

// newRunSummary returns the summary of a run.
func newRunSummary(out *runOutcome) runreport.Summary {
	s := out.report.Summarize(out.reportDir, out.files)
	s.Ignored, s.Seconds, s.GOMAXPROCS = out.ignored, out.seconds, runtime.GOMAXPROCS(0)
	if out.resumed >= 0 {
		s.Resumed = ptr(out.resumed)
	}
	s.Memory = runreport.NewMemory(out.memory, out.memoryWhat)
	return s
}

// checkRunOutputs checks the output model and the report directory before
// anything is written. own, when not empty, is the output of the run being
// resumed, which may be replaced; the files of a resumed run's report
// directory may be replaced too.
func checkRunOutputs(output, report string, overwrite bool, own string, inputs []string) error {
	var reportPaths []string
	for _, f := range runreport.ReportFiles {
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
	if _, err := os.Stat(filepath.Join(report, runreport.CheckpointFile)); err == nil {
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
