package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/nn"
	"github.com/urfave/cli/v2"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Streams of the PCG generators seeded with --probe-seed for the Hutchinson
// probes and the Lanczos start vector.
const (
	streamProbes  = 0x70726f62 // "prob"
	streamLanczos = 0x6c616e63 // "lanc"
)

// curvatureKind is a value of --kind.
type curvatureKind struct {
	Name string
	// Desc names the curvature in messages and summaries.
	Desc string
	// Matrix is set for the kinds written as a W×W matrix; the others
	// are written as a vector of length W.
	Matrix bool
	// Help is the description in the command's help.
	Help string
}

// curvatureKinds lists the values of --kind in the order of the help: the
// hessian.Kinds with a matrix, the exact diagonal as "diag", and the kinds
// with only a diagonal.
var curvatureKinds = func() []curvatureKind {
	var matrices, vectors []curvatureKind
	for _, k := range hessian.Kinds() {
		help := k.Help
		switch k.Name {
		case "recursive":
			help += ", N samples, α = --alpha"
		case "hutchinson":
			help += " (--probes)"
		}
		if k.Dense || k.InverseOnly {
			matrices = append(matrices, curvatureKind{k.Name, k.Desc, true, help + " (W×W)"})
		} else if k.Diagonal {
			vectors = append(vectors, curvatureKind{k.Name, k.Desc, false, help + " (W)"})
		}
	}
	diag := curvatureKind{"diag", "exact diagonal of H", false, "the exact diagonal of H (W)"}
	return append(append(matrices, diag), vectors...)
}()

// kindNames returns the names of the kinds as "a, b, … or z".
func kindNames() string {
	names := make([]string, len(curvatureKinds))
	for i, k := range curvatureKinds {
		names[i] = k.Name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// parseKind returns the kind named s.
func parseKind(s string) (curvatureKind, bool) {
	for _, k := range curvatureKinds {
		if strings.EqualFold(s, k.Name) {
			return k, true
		}
	}
	return curvatureKind{}, false
}

// hessianOptions holds the flags of the hessian command. Zero values mean
// the defaults.
type hessianOptions struct {
	Model string
	// Act and Loss give the activations and the loss of an .npz model
	// (--act, --loss); empty when not given.
	Act, Loss string
	Data      dataOptions
	// DataGiven holds the names of the data flags given on the command
	// line; the others are taken from the model, as in eval.
	DataGiven map[string]bool
	Split     string // train (the default), valid or test

	Kind string
	All  bool // all parameters instead of the live ones

	Inverse  bool    // write (C + λI)⁻¹ instead of C
	Damping  float64 // λ
	Escalate bool    // raise λ until the inverse succeeds
	Alpha    float64 // α of --kind recursive; zero means 1e-4

	Probes    int    // Hutchinson probes; zero means 100
	ProbeSeed uint64 // seed of the probes and the Lanczos start vector; zero means 1

	Eigen      int  // number K of largest and smallest eigenvalues to report
	Lanczos    bool // eigenvalues by Lanczos (the default for the matrix kinds)
	FullSpec   bool // all eigenvalues of the formed matrix, O(W³)
	NoSpectrum bool // no eigenvalues at all

	MaxMemory string // limit on the W×W matrices; empty means hessian.DefaultMemoryLimit

	Output    string
	Overwrite bool
	JSON      bool
	Quiet     bool
}

// hessianCommand returns the hessian command.
func hessianCommand() *cli.Command {
	var kindHelp strings.Builder
	for _, k := range curvatureKinds {
		fmt.Fprintf(&kindHelp, "  %-11s %s\n", k.Name, k.Help)
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "model `FILE` whose curvature is computed: .json (prune-mlp/1) or .npz (PyTorch state_dict)", Category: "Curvature"},
		&cli.StringFlag{Name: "kind", Usage: "curvature `KIND`: " + kindNames(), Category: "Curvature"},
		&cli.StringFlag{Name: "split", Value: "train", Usage: "`SPLIT` whose summed loss E the curvature is of: train, valid or test", Category: "Curvature"},
		&cli.BoolFlag{Name: "all", Usage: "cover all parameters, pruned ones included, instead of the live ones", Category: "Curvature"},
		&cli.BoolFlag{Name: "inverse", Usage: "write the inverse (C + λI)⁻¹ of a matrix kind (exact, gn, fisher), by a Cholesky factorization", Category: "Curvature"},
		&cli.Float64Flag{Name: "damping", Usage: "damping `λ` ≥ 0 of --inverse", DefaultText: "0, undamped", Category: "Curvature"},
		&cli.BoolFlag{Name: "escalate", Usage: "with --inverse, multiply the damping by 10 (starting from 10⁻⁸‖C‖_F when it is 0) until C + λI is positive definite and well conditioned; each failed step is logged to stderr", Category: "Curvature"},
		&cli.Float64Flag{Name: "alpha", Usage: "initial damping `α` > 0 of --kind recursive", DefaultText: "1e-4", Category: "Curvature"},
		&cli.IntFlag{Name: "probes", Usage: "number `S` of Rademacher probes of --kind hutchinson", DefaultText: "100", Category: "Curvature"},
		&cli.Uint64Flag{Name: "probe-seed", Value: 1, Usage: "`SEED` of the Hutchinson probes and of the Lanczos start vector", Category: "Curvature"},
		&cli.IntFlag{Name: "eigen", Usage: "report the `K` largest and the K smallest eigenvalues: of the matrix for the matrix kinds, of the curvature the vector approximates (H for diag, diag-bl and hutchinson, G for diag-lm) by Lanczos for the vector kinds", DefaultText: "none", Category: "Spectrum"},
		&cli.BoolFlag{Name: "lanczos", Usage: "find the extreme eigenvalues by Lanczos iterations, a few dozen matrix–vector products (the default for the matrix kinds)", Category: "Spectrum"},
		&cli.BoolFlag{Name: "full-spectrum", Usage: "compute all eigenvalues of the matrix for the summary, adding the condition number and the counts of negative and zero eigenvalues (O(W³) time and a second W×W matrix)", Category: "Spectrum"},
		&cli.BoolFlag{Name: "no-spectrum", Usage: "skip the eigenvalues of the summary", Category: "Spectrum"},
		&cli.StringFlag{Name: "max-memory", Usage: "refuse W×W matrices needing more than `SIZE` bytes in all (suffix K, M, G or T; 'off' for no limit)", DefaultText: defaultMemoryText(), Category: "Curvature"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "NumPy `FILE`.npy to write (float64, C order)", Category: "Output"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the output file if it exists", Category: "Output"},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object", Category: "Output"},
	}
	flags = append(flags, modelSpecFlags()...)
	flags = append(flags, dataFlags("seed of the data draw (default: the model's, else 1)")...)
	return &cli.Command{
		Name:  "hessian",
		Usage: "compute a curvature of a model's training loss and write it to a .npy file",
		UsageText: "prune hessian --model MODEL.json|MODEL.npz --kind KIND [--data NAME|FILE.csv] [--split train] [--all]\n" +
			"              [--inverse [--damping λ] [--escalate]] [--eigen K] [--lanczos] [--max-memory 8G]\n" +
			"              -o OUT.npy [--overwrite] [--json] [flags]\n\n" +
			"Computes a curvature C of the summed loss E = Σₙ ℓₙ of the model over a split of the data set\n" +
			"(the training split by default), with respect to the live parameters (or all of them with\n" +
			"--all) in the canonical order of the model file, and writes it as a float64 NumPy array: a W×W\n" +
			"matrix for the matrix kinds, a vector of length W for the others. The summary gives the kind,\n" +
			"W, which parameters are covered, the trace, the extreme eigenvalues (of the matrix C, not of\n" +
			"its inverse; of the vector's entries for the vector kinds), the condition number, whether C is\n" +
			"positive definite and the time taken; for --kind recursive they describe the written matrix.\n" +
			"With --json an infinite condition number (a zero eigenvalue) is null. Data flags that are not\n" +
			"given take the values recorded in the model, as in 'prune eval'.\n\n" +
			"Kinds:\n" + kindHelp.String() + "\n" +
			"A W×W matrix takes 8·W² bytes; with its eigenvalues the command needs two, with --inverse three.\n" +
			"Larger networks need a vector kind, --lanczos, or layer-wise OBS.\n\n" +
			"Example: prune hessian --model m.json --kind exact -o h.npy",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			d, given := readDataOptions(c)
			o := hessianOptions{
				Model:      c.String("model"),
				Act:        c.String("act"),
				Loss:       c.String("loss"),
				Data:       d,
				DataGiven:  given,
				Split:      c.String("split"),
				Kind:       c.String("kind"),
				All:        c.Bool("all"),
				Inverse:    c.Bool("inverse"),
				Damping:    c.Float64("damping"),
				Escalate:   c.Bool("escalate"),
				Alpha:      c.Float64("alpha"),
				Probes:     c.Int("probes"),
				ProbeSeed:  c.Uint64("probe-seed"),
				Eigen:      c.Int("eigen"),
				Lanczos:    c.Bool("lanczos"),
				FullSpec:   c.Bool("full-spectrum"),
				NoSpectrum: c.Bool("no-spectrum"),
				MaxMemory:  c.String("max-memory"),
				Output:     c.String("output"),
				Overwrite:  c.Bool("overwrite"),
				JSON:       c.Bool("json"),
				Quiet:      isQuiet(c),
			}
			if err := refuseZero(c, []string{"probes", "eigen"}, []string{"alpha"}); err != nil {
				return err
			}
			if c.IsSet("probe-seed") && o.ProbeSeed == 0 {
				return flagErrorf("probe-seed", "0: must be positive")
			}
			return runHessian(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// eigenReport holds extreme eigenvalues.
type eigenReport struct {
	// Method is "dense" (all eigenvalues of the formed matrix) or
	// "lanczos".
	Method string `json:"method"`
	// Of names the matrix whose eigenvalues these are.
	Of string `json:"of"`
	// Largest holds the largest eigenvalues in descending order,
	// Smallest the smallest in ascending order.
	Largest  []float64 `json:"largest"`
	Smallest []float64 `json:"smallest"`
	// Iterations, Converged and the residual norms are those of Lanczos.
	Iterations        int       `json:"iterations,omitempty"`
	Converged         *bool     `json:"converged,omitempty"`
	LargestResiduals  []float64 `json:"largest_residuals,omitempty"`
	SmallestResiduals []float64 `json:"smallest_residuals,omitempty"`
}

// hessianSummary is what the hessian command prints with --json. Fields
// that were not computed are left out; the condition number is null for a
// singular matrix (an eigenvalue exactly zero).
type hessianSummary struct {
	Kind      string `json:"kind"`
	Curvature string `json:"curvature"`
	Model     string `json:"model"`
	Data      string `json:"data"`
	Split     string `json:"split"`
	Samples   int    `json:"samples"`
	// Params is "live" or "all"; W is the number of parameters covered,
	// TotalParams the network's.
	Params      string `json:"params"`
	W           int    `json:"w"`
	TotalParams int    `json:"total_params"`

	Output string `json:"output"`
	Shape  []int  `json:"shape"`
	// Inverse is set when the file holds (C + Damping·I)⁻¹.
	Inverse bool     `json:"inverse"`
	Damping *float64 `json:"damping,omitempty"`
	Alpha   *float64 `json:"alpha,omitempty"`
	Probes  int      `json:"probes,omitempty"`

	// SpectrumOf tells what Trace, Min, Max, Condition, PositiveDefinite
	// and the counts describe: "curvature" (the matrix C, before any
	// inverse), "output" (the written matrix, for --kind recursive) or
	// "entries" (the vector's entries, the eigenvalues of diag(v)).
	SpectrumOf string `json:"spectrum_of"`
	// Spectrum is "dense", "lanczos", "entries" or "none": where Min and
	// Max come from.
	Spectrum string   `json:"spectrum"`
	Trace    float64  `json:"trace"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	// Condition is the 2-norm condition number, nil when it is infinite
	// or was not computed; ConditionJSON is its JSON form, null for an
	// infinite one and absent when it was not computed.
	Condition        *float64        `json:"-"`
	ConditionJSON    json.RawMessage `json:"condition,omitempty"`
	PositiveDefinite *bool           `json:"positive_definite,omitempty"`
	NegativeCount    *int            `json:"negative_count,omitempty"`
	ZeroCount        *int            `json:"zero_count,omitempty"`

	Eigen *eigenReport `json:"eigen,omitempty"`

	// BuildSeconds is the time to compute the curvature, Seconds the
	// time of the whole computation including eigenvalues, the inverse
	// and writing the file.
	BuildSeconds float64 `json:"build_seconds"`
	Seconds      float64 `json:"seconds"`
	// BLAS names the BLAS that computed it, and for OpenBLAS its core.
	BLAS string `json:"blas"`

	// conditionKnown is set when Condition was computed, so that a nil
	// Condition means an infinite one.
	conditionKnown bool
}

// hessianPlan is the checked form of hessianOptions.
type hessianPlan struct {
	kind     curvatureKind
	split    string
	limit    int64 // bytes; negative for no limit
	spectrum string
	eigenK   int
}

// checkHessianOptions checks the flags that need neither the model nor the
// data.
func checkHessianOptions(o hessianOptions) (hessianPlan, error) {
	var p hessianPlan
	if o.Model == "" {
		return p, flagErrorf("model", "is required: give the model file")
	}
	if o.Kind == "" {
		return p, flagErrorf("kind", "is required: give one of %s", kindNames())
	}
	k, ok := parseKind(o.Kind)
	if !ok {
		return p, flagErrorf("kind", "%q: want one of %s", o.Kind, kindNames())
	}
	p.kind = k
	switch s := strings.ToLower(o.Split); s {
	case "", "train", "training":
		p.split = "train"
	case "valid", "validation":
		p.split = "valid"
	case "test":
		p.split = "test"
	default:
		return p, flagErrorf("split", "%q: want train, valid or test", o.Split)
	}
	if o.Output == "" {
		return p, flagErrorf("output", "is required: give the .npy file to write with -o")
	}
	if !strings.HasSuffix(strings.ToLower(o.Output), ".npy") {
		return p, flagErrorf("output", "%q: the file name must end in .npy", o.Output)
	}
	if o.Inverse && (!k.Matrix || k.Name == "recursive") {
		return p, flagErrorf("inverse", "applies to the matrix kinds exact, gn and fisher, not --kind %s", k.Name)
	}
	if math.IsNaN(o.Damping) || math.IsInf(o.Damping, 0) || o.Damping < 0 {
		return p, flagErrorf("damping", "%v: must be a finite number not below 0", o.Damping)
	}
	if o.Damping != 0 && !o.Inverse {
		return p, flagErrorf("damping", "applies only with --inverse")
	}
	if o.Escalate && !o.Inverse {
		return p, flagErrorf("escalate", "applies only with --inverse")
	}
	if math.IsNaN(o.Alpha) || math.IsInf(o.Alpha, 0) || o.Alpha < 0 {
		return p, flagErrorf("alpha", "%v: must be a positive finite number", o.Alpha)
	}
	if o.Alpha != 0 && k.Name != "recursive" {
		return p, flagErrorf("alpha", "applies only to --kind recursive")
	}
	if o.Probes < 0 {
		return p, flagErrorf("probes", "%d: must be positive", o.Probes)
	}
	if o.Probes != 0 && k.Name != "hutchinson" {
		return p, flagErrorf("probes", "applies only to --kind hutchinson")
	}
	if o.Eigen < 0 {
		return p, flagErrorf("eigen", "%d: must be positive", o.Eigen)
	}
	if o.NoSpectrum && (o.Eigen > 0 || o.Lanczos) {
		flag := "eigen"
		if o.Lanczos {
			flag = "lanczos"
		}
		return p, &usageError{Flag: "no-spectrum", Msg: fmt.Sprintf("--no-spectrum and --%s exclude each other", flag)}
	}
	if o.FullSpec {
		switch {
		case o.NoSpectrum || o.Lanczos:
			flag := "no-spectrum"
			if o.Lanczos {
				flag = "lanczos"
			}
			return p, &usageError{Flag: "full-spectrum", Msg: fmt.Sprintf("--full-spectrum and --%s exclude each other", flag)}
		case !k.Matrix:
			return p, flagErrorf("full-spectrum", "applies to the matrix kinds, not --kind %s", k.Name)
		}
	}
	p.limit = hessian.DefaultMemoryLimit()
	if o.MaxMemory != "" {
		switch strings.ToLower(strings.TrimSpace(o.MaxMemory)) {
		case "off", "none":
			p.limit = -1
		default:
			b, err := sysmem.ParseBytes(o.MaxMemory)
			if err != nil {
				return p, flagValueError("max-memory", o.MaxMemory, memoryFlagError(err))
			}
			if b <= 0 {
				return p, flagErrorf("max-memory", "%q: must be positive (or off)", o.MaxMemory)
			}
			p.limit = b
		}
	}
	switch {
	case o.NoSpectrum:
		p.spectrum = "none"
	case o.FullSpec:
		p.spectrum = "dense"
	case o.Lanczos, k.Matrix:
		// The summary's extremes by Lanczos: O(W²) per product with the
		// formed matrix, against O(W³) for the full spectrum.
		p.spectrum = "lanczos"
	default:
		p.spectrum = "entries"
	}
	p.eigenK = o.Eigen
	if o.Lanczos && p.eigenK == 0 {
		p.eigenK = 1
	}
	return p, nil
}

// loadSplit loads the data set d, checked, and returns its split, checked
// against the network n, as eval does.
func loadSplit(n *nn.Network, d dataOptions, split string) (*nn.Data, error) {
	splits, err := d.load()
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

// runHessian computes the curvature o describes, writes it to o.Output and
// prints a summary. Nothing is written when any step fails.
func runHessian(ctx context.Context, o hessianOptions, stdout, stderr io.Writer) error {
	plan, err := checkHessianOptions(o)
	if err != nil {
		return err
	}
	kind := plan.kind
	// The output is checked against the model before the model is read,
	// so that naming the model as the output is reported as such; the data
	// files are known once the model's recorded data options are.
	if err := checkOutput(o.Output, o.Overwrite, modelFiles(o.Model)...); err != nil {
		return err
	}
	n, d, err := readModelData(o.Model, o.Act, o.Loss, o.Data, o.DataGiven)
	if err != nil {
		return err
	}
	release, err := claimOutput(o.Output, o.Overwrite, append(d.inputs(), modelFiles(o.Model)...)...)
	if err != nil {
		return err
	}
	defer release()
	set, err := loadSplit(n, d, plan.split)
	if err != nil {
		return err
	}

	var pr *hessian.Problem
	params := "live"
	if o.All {
		pr, params = hessian.All(n, set.X, set.Y), "all"
	} else {
		pr = hessian.Live(n, set.X, set.Y)
	}
	W := pr.Dim()
	if W == 0 {
		return fmt.Errorf("%s has no live parameters (give --all to cover the pruned ones)", o.Model)
	}
	if kind.Matrix {
		if err := checkHessianMemory(kind, plan, o.Inverse, pr); err != nil {
			return err
		}
	}

	sum := hessianSummary{
		Kind:        kind.Name,
		Curvature:   kind.Desc,
		Model:       o.Model,
		Data:        d.Name,
		Split:       plan.split,
		Samples:     set.Len(),
		Params:      params,
		W:           W,
		TotalParams: n.NumParams(),
		Output:      o.Output,
		Inverse:     o.Inverse,
		Spectrum:    plan.spectrum,
		BLAS:        blasimpl.Name(),
	}
	bar := &stageBar{w: stderr, on: !o.Quiet && isTerminal(stderr)}
	defer bar.stop()
	start := time.Now()
	interrupted := func(err error) error {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("interrupted; nothing written to %s", o.Output)
		}
		return err
	}

	var write func() error
	if kind.Matrix {
		H, err := buildMatrix(ctx, kind, o, plan, pr, bar)
		if err != nil {
			return interrupted(err)
		}
		sum.BuildSeconds = time.Since(start).Seconds()
		sum.Shape = []int{W, W}
		if !symIsFinite(H) {
			return fmt.Errorf("the %s of %s on --data %s has NaN or infinite entries; nothing written", kind.Desc, o.Model, d.Name)
		}
		sum.SpectrumOf = "curvature"
		if kind.Name == "recursive" {
			sum.SpectrumOf = "output"
			a := o.Alpha
			if a == 0 {
				a = 1e-4
			}
			sum.Alpha = &a
		}
		if err := matrixSpectrum(ctx, &sum, H, spectrumOperator(kind, pr, H), kind, plan, o.ProbeSeed, bar); err != nil {
			return interrupted(err)
		}
		if o.Inverse {
			inv, lambda, err := invert(H, kind, o, bar, stderr)
			if err != nil {
				return err
			}
			H = inv
			sum.Damping = &lambda
		}
		write = func() error { return writeNPYMatrix(o.Output, H) }
	} else {
		v, err := buildVector(ctx, kind, o, pr, bar)
		if err != nil {
			return interrupted(err)
		}
		sum.BuildSeconds = time.Since(start).Seconds()
		sum.Shape = []int{W}
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("the %s of %s on --data %s has NaN or infinite entries; nothing written", kind.Desc, o.Model, d.Name)
			}
		}
		if kind.Name == "hutchinson" {
			sum.Probes = o.Probes
			if sum.Probes == 0 {
				sum.Probes = 100
			}
		}
		sum.SpectrumOf = "entries"
		vectorSummary(&sum, v, plan.spectrum != "none")
		if plan.eigenK > 0 {
			base, desc := baseCurvature(kind, pr)
			rep, err := lanczosReport(ctx, base, desc, plan, o.ProbeSeed, bar)
			if err != nil {
				return interrupted(err)
			}
			sum.Eigen = rep
		}
		write = func() error { return writeNPYVector(o.Output, v) }
	}

	bar.start("writing "+o.Output, -1)
	if err := write(); err != nil {
		return fmt.Errorf("--output %s: %v", o.Output, err)
	}
	bar.stop()
	sum.Seconds = time.Since(start).Seconds()
	if o.JSON {
		return writeJSON(stdout, sum)
	}
	printHessianSummary(stdout, sum)
	return nil
}

// checkHessianMemory returns a *hessian.MemoryError when the W×W matrices
// that the command holds at once would need more than plan.limit bytes: the
// matrix, a copy for its eigenvalues, and with an inverse the work matrix
// and the copy that DampedInverse takes for the eigenvalues of a failure.
// The exact build over the live parameters of a pruned network also needs a
// full-order scratch matrix.
func checkHessianMemory(kind curvatureKind, plan hessianPlan, inverse bool, pr *hessian.Problem) error {
	if plan.limit < 0 {
		return nil
	}
	W := pr.Dim()
	count := 1
	what := kind.Desc
	switch {
	case inverse:
		count = 3
		what += " with its inverse"
	case plan.spectrum == "dense":
		count = 2
		what += " with its eigenvalues"
	}
	bytes := int64(count) * hessian.DenseBytes(W)
	if total := pr.Net.NumParams(); kind.Name == "exact" && W < total {
		bytes = max(bytes, hessian.DenseBytes(W)+hessian.DenseBytes(total))
	}
	if count > 1 {
		what += fmt.Sprintf(" (%d matrices)", count)
	}
	if bytes <= plan.limit {
		return nil
	}
	err := &hessian.MemoryError{What: what, Dim: W, Bytes: bytes, Limit: plan.limit}
	if plan.spectrum == "lanczos" {
		err.Alternatives = lanczosMemoryAdvice
	}
	if count == 2 && hessian.DenseBytes(W) <= plan.limit {
		return fmt.Errorf("%w; without --full-spectrum only the matrix is needed", err)
	}
	return err
}

// buildMatrix computes the dense matrix of a matrix kind.
func buildMatrix(ctx context.Context, kind curvatureKind, o hessianOptions, plan hessianPlan, pr *hessian.Problem, bar *stageBar) (*mat.SymDense, error) {
	W := pr.Dim()
	bar.start(fmt.Sprintf("%s, W = %d", kind.Desc, W), -1)
	defer bar.stop()
	// The memory was checked for all matrices together.
	limit := int64(-1)
	switch kind.Name {
	case "exact":
		return hessian.Dense(ctx, hessian.Exact{P: pr}, limit)
	case "gn":
		return hessian.Dense(ctx, hessian.GaussNewton{P: pr}, limit)
	case "fisher":
		return hessian.Dense(ctx, hessian.Fisher{P: pr}, limit)
	case "recursive":
		var dst mat.SymDense
		r := hessian.RecursiveInverse{P: pr, Alpha: o.Alpha, MaxBytes: limit}
		if err := r.InverseTo(ctx, &dst); err != nil {
			return nil, err
		}
		return &dst, nil
	}
	panic("unknown matrix kind " + kind.Name)
}

// buildVector computes the vector of a vector kind.
func buildVector(ctx context.Context, kind curvatureKind, o hessianOptions, pr *hessian.Problem, bar *stageBar) ([]float64, error) {
	v := make([]float64, pr.Dim())
	switch kind.Name {
	case "diag":
		bar.start(kind.Desc, -1)
		defer bar.stop()
		return v, hessian.Exact{P: pr}.DiagTo(ctx, v)
	case "diag-bl", "diag-lm":
		bar.start(kind.Desc, -1)
		defer bar.stop()
		return v, hessian.BeckerLeCun{P: pr, LM: kind.Name == "diag-lm"}.DiagTo(ctx, v)
	case "hutchinson":
		if err := pr.Check(); err != nil {
			return nil, err
		}
		probes := o.Probes
		if probes == 0 {
			probes = 100
		}
		bar.start(kind.Desc, probes)
		defer bar.stop()
		h := hessian.Hutchinson{
			C:      countingCurvature{hessian.Exact{P: pr}, bar},
			Probes: probes,
			Src:    rand.NewPCG(seedOr1(o.ProbeSeed), streamProbes),
		}
		return v, h.EstimateDiagTo(ctx, v)
	}
	panic("unknown vector kind " + kind.Name)
}

// seedOr1 returns s, or 1 when s is zero.
func seedOr1(s uint64) uint64 {
	if s == 0 {
		return 1
	}
	return s
}

// baseCurvature returns the curvature that a vector kind approximates, for
// its eigenvalues, and its description.
func baseCurvature(kind curvatureKind, pr *hessian.Problem) (hessian.Curvature, string) {
	if kind.Name == "diag-lm" {
		return hessian.GaussNewton{P: pr}, "Gauss–Newton matrix G"
	}
	return hessian.Exact{P: pr}, "exact Hessian H"
}

// spectrumOperator returns the products with the matrix H of a matrix kind
// for Lanczos: the matrix-free products of the exact Hessian and the
// Gauss–Newton matrix, the same matrix to rounding at a fraction of the
// cost of a product with the formed W×W matrix, and the formed matrix for
// the other kinds.
func spectrumOperator(kind curvatureKind, pr *hessian.Problem, H *mat.SymDense) hessian.Curvature {
	switch kind.Name {
	case "exact":
		return hessian.Exact{P: pr}
	case "gn":
		return hessian.GaussNewton{P: pr}
	}
	return symCurvature{H}
}

// matrixSpectrum fills the trace and the spectrum fields of sum for the
// matrix H, whose products with vectors op gives.
func matrixSpectrum(ctx context.Context, sum *hessianSummary, H *mat.SymDense, op hessian.Curvature, kind curvatureKind, plan hessianPlan, seed uint64, bar *stageBar) error {
	n := H.SymmetricDim()
	sum.Trace = 0
	for i := 0; i < n; i++ {
		sum.Trace += H.At(i, i)
	}
	of := kind.Desc
	switch plan.spectrum {
	case "none":
		return nil
	case "lanczos":
		rep, err := lanczosReport(ctx, op, of, plan, seed, bar)
		if err != nil {
			return err
		}
		if len(rep.Largest) > 0 {
			sum.Max, sum.Min = &rep.Largest[0], &rep.Smallest[0]
			lanczosDefiniteness(sum, rep, n)
		}
		if plan.eigenK > 0 {
			sum.Eigen = rep
		}
		return nil
	}
	bar.start(fmt.Sprintf("eigenvalues of the %s", of), -1)
	vals, err := hessian.Eigenvalues(H)
	bar.stop()
	if err != nil {
		return fmt.Errorf("eigenvalues of the %s: %v", of, err)
	}
	s := hessian.SummarizeValues(vals, sum.Trace)
	setSpectrum(sum, s)
	if k := min(plan.eigenK, n); k > 0 {
		rep := &eigenReport{Method: "dense", Of: of, Largest: make([]float64, k), Smallest: make([]float64, k)}
		for i := 0; i < k; i++ {
			rep.Smallest[i] = vals[i]
			rep.Largest[i] = vals[n-1-i]
		}
		sum.Eigen = rep
	}
	return nil
}

// lanczosDefiniteness sets what the Lanczos extremes of an n×n matrix
// decide: every Ritz value lies within the spectrum, so a smallest Ritz
// value below −tol proves the matrix indefinite (tol = n·ε·max|θ|, as for
// the dense spectrum); a converged positive one above tol makes it
// positive definite with the condition number θ_max / θ_min. Otherwise the
// fields stay unset.
func lanczosDefiniteness(sum *hessianSummary, rep *eigenReport, n int) {
	lo, hi := rep.Smallest[0], rep.Largest[0]
	tol := float64(n) * 0x1p-52 * math.Max(math.Abs(lo), math.Abs(hi))
	switch {
	case lo < -tol:
		no := false
		sum.PositiveDefinite = &no
	case lo > tol && rep.Converged != nil && *rep.Converged:
		yes := true
		sum.PositiveDefinite = &yes
		c := hi / lo
		sum.Condition = &c
		sum.conditionKnown = true
		sum.ConditionJSON = json.RawMessage(strconv.FormatFloat(c, 'g', -1, 64))
	}
}

// setSpectrum copies the spectral fields of s into sum.
func setSpectrum(sum *hessianSummary, s hessian.Summary) {
	sum.Trace = s.Trace
	sum.Min, sum.Max = &s.Min, &s.Max
	sum.conditionKnown = true
	sum.ConditionJSON = json.RawMessage("null")
	if !math.IsInf(s.Condition, 0) && !math.IsNaN(s.Condition) {
		sum.Condition = &s.Condition
		sum.ConditionJSON = json.RawMessage(strconv.FormatFloat(s.Condition, 'g', -1, 64))
	}
	sum.PositiveDefinite = &s.PositiveDefinite
	sum.NegativeCount, sum.ZeroCount = &s.NegativeCount, &s.ZeroCount
}

// vectorSummary fills the summary fields for the vector v, taken as the
// diagonal matrix diag(v): the trace is the sum, the extreme eigenvalues the
// extreme entries. Entries count as negative or zero exactly, without a
// tolerance. With spectrum false only the trace is set.
func vectorSummary(sum *hessianSummary, v []float64, spectrum bool) {
	var s hessian.Summary
	s.Dim = len(v)
	for _, x := range v {
		s.Trace += x
	}
	if !spectrum || len(v) == 0 {
		sum.Trace = s.Trace
		return
	}
	s.Min, s.Max = slices.Min(v), slices.Max(v)
	small := math.Inf(1)
	for _, x := range v {
		small = math.Min(small, math.Abs(x))
		switch {
		case x < 0:
			s.NegativeCount++
		case x == 0:
			s.ZeroCount++
		}
	}
	s.PositiveDefinite = s.Min > 0
	big := math.Max(math.Abs(s.Min), math.Abs(s.Max))
	if small == 0 {
		s.Condition = math.Inf(1)
	} else {
		s.Condition = big / small
	}
	setSpectrum(sum, s)
	sum.Spectrum = "entries"
}

// lanczosReport runs Lanczos on c for the plan's number of extreme
// eigenvalues.
func lanczosReport(ctx context.Context, c hessian.Curvature, of string, plan hessianPlan, seed uint64, bar *stageBar) (*eigenReport, error) {
	k := max(plan.eigenK, 1)
	bar.start("Lanczos on the "+of, -1)
	defer bar.stop()
	res, err := hessian.Lanczos(ctx, countingCurvature{c, bar}, k, &hessian.LanczosSettings{
		Src:      rand.NewPCG(seedOr1(seed), streamLanczos),
		MaxBytes: plan.limit,
	})
	if err != nil {
		return nil, err
	}
	conv := res.Converged
	return &eigenReport{
		Method:            "lanczos",
		Of:                of,
		Largest:           res.Largest,
		Smallest:          res.Smallest,
		Iterations:        res.Iterations,
		Converged:         &conv,
		LargestResiduals:  res.LargestResiduals,
		SmallestResiduals: res.SmallestResiduals,
	}, nil
}

// invert returns (H + λI)⁻¹ and λ: the damping of o, or with o.Escalate
// the first damping of the escalation that succeeds. H is left as it is.
func invert(H *mat.SymDense, kind curvatureKind, o hessianOptions, bar *stageBar, stderr io.Writer) (*mat.SymDense, float64, error) {
	bar.start("inverting the "+kind.Desc, -1)
	defer bar.stop()
	// The inverse goes to a separate matrix: DampedInverse overwrites its
	// destination also when it reports a near-singular matrix, and each
	// step of the escalation needs the undamped H.
	inv := mat.NewSymDense(H.SymmetricDim(), nil)
	lambda := o.Damping
	if o.Escalate {
		e := &hessian.Escalation{Start: o.Damping}
		e.Log = func(l float64, err error) {
			if o.Quiet {
				return
			}
			bar.stop()
			fmt.Fprintf(stderr, "damping %.4g failed: %s; escalating\n", l, inverseReason(err))
		}
		lambda, err := hessian.DampedInverseEscalating(inv, H, e)
		if err != nil {
			return nil, lambda, fmt.Errorf("--inverse --escalate: %v; nothing written", strings.TrimPrefix(err.Error(), "hessian: "))
		}
		return inv, lambda, nil
	}
	err := hessian.DampedInverse(inv, H, lambda)
	if err == nil {
		return inv, lambda, nil
	}
	var npd *hessian.NotPositiveDefiniteError
	var cond mat.Condition
	switch {
	case errors.As(err, &npd):
		return nil, lambda, fmt.Errorf("--inverse: %s; retry with --damping %g, or give --escalate; nothing written", inverseReason(err), npd.Suggest)
	case errors.As(err, &cond):
		return nil, lambda, fmt.Errorf("--inverse: %s; give a larger --damping or --escalate; nothing written", inverseReason(err))
	case errors.Is(err, hessian.ErrNotFinite):
		return nil, lambda, fmt.Errorf("--inverse: the %s has NaN or infinite entries; nothing written", kind.Desc)
	}
	return nil, lambda, fmt.Errorf("--inverse: %v; nothing written", err)
}

// inverseReason describes a failure of DampedInverse.
func inverseReason(err error) string {
	var npd *hessian.NotPositiveDefiniteError
	var cond mat.Condition
	switch {
	case errors.As(err, &npd):
		msg := fmt.Sprintf("C + λI is not positive definite at λ = %.4g", npd.Lambda)
		if !math.IsNaN(npd.MinEigenvalue) {
			msg += fmt.Sprintf(" (the smallest eigenvalue of C is %.6g)", npd.MinEigenvalue)
		}
		return msg
	case errors.As(err, &cond):
		return fmt.Sprintf("C + λI is near-singular (estimated condition number %.3g, above %.0g)", float64(cond), float64(hessian.MaxCondition))
	}
	return strings.TrimPrefix(err.Error(), "hessian: ")
}

// printHessianSummary prints the summary as aligned text.
func printHessianSummary(w io.Writer, s hessianSummary) {
	what := s.Curvature
	if s.Inverse {
		what = "inverse (C + λI)⁻¹ of the " + s.Curvature
	}
	var extra []string
	if s.Damping != nil {
		extra = append(extra, fmt.Sprintf("λ = %.4g", *s.Damping))
	}
	if s.Alpha != nil {
		extra = append(extra, fmt.Sprintf("α = %g", *s.Alpha))
	}
	if s.Probes > 0 {
		extra = append(extra, fmt.Sprintf("%d probes", s.Probes))
	}
	tail := ""
	if len(extra) > 0 {
		tail = ", " + strings.Join(extra, ", ")
	}
	fmt.Fprintf(w, "%s of %s on %s/%s (%d samples)%s\n", what, s.Model, s.Data, s.Split, s.Samples, tail)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Params == "all" {
		fmt.Fprintf(tw, "parameters\t%d (all)\n", s.W)
	} else {
		fmt.Fprintf(tw, "parameters\t%d live of %d\n", s.W, s.TotalParams)
	}
	shape := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		shape[i] = fmt.Sprint(d)
	}
	fmt.Fprintf(tw, "output\t%s (float64, %s)\n", s.Output, strings.Join(shape, "×"))
	// Labels and notes for what the spectral fields describe.
	of, values, condNote, pdNote := "", "eigenvalues", "", ""
	switch s.SpectrumOf {
	case "entries":
		values, condNote, pdNote = "entries", " (max|v| / min|v|)", " (as diag(v))"
	case "output":
		of = " of the written matrix"
	case "curvature":
		if s.Inverse {
			of = " of C"
		}
	}
	if s.SpectrumOf == "entries" {
		fmt.Fprintf(tw, "trace\t%.6g (sum of the entries)\n", s.Trace)
	} else {
		fmt.Fprintf(tw, "trace%s\t%.6g\n", of, s.Trace)
	}
	if s.Min != nil {
		line := fmt.Sprintf("min %.6g, max %.6g", *s.Min, *s.Max)
		if s.NegativeCount != nil {
			line += fmt.Sprintf("; %d negative, %d zero", *s.NegativeCount, *s.ZeroCount)
		}
		if s.Spectrum == "lanczos" {
			line += " (Lanczos)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\n", values, of, line)
	}
	if s.conditionKnown {
		if s.Condition != nil {
			fmt.Fprintf(tw, "condition%s\t%.4g%s\n", of, *s.Condition, condNote)
		} else {
			fmt.Fprintf(tw, "condition%s\tinfinite (singular)\n", of)
		}
	}
	if s.PositiveDefinite != nil {
		yes := "no"
		if *s.PositiveDefinite {
			yes = "yes"
		}
		fmt.Fprintf(tw, "positive definite\t%s%s\n", yes, pdNote)
	}
	if e := s.Eigen; e != nil {
		how := "all eigenvalues"
		if e.Method == "lanczos" {
			conv := "converged"
			if e.Converged != nil && !*e.Converged {
				conv = "not converged"
			}
			how = fmt.Sprintf("Lanczos, %d products, %s", e.Iterations, conv)
		}
		fmt.Fprintf(tw, "extreme eigenvalues\tof the %s (%s)\n", e.Of, how)
		fmt.Fprintf(tw, "  largest\t%s\n", formatFloats(e.Largest))
		fmt.Fprintf(tw, "  smallest\t%s\n", formatFloats(e.Smallest))
	}
	fmt.Fprintf(tw, "time\t%.3g s (curvature %.3g s)\n", s.Seconds, s.BuildSeconds)
	fmt.Fprintf(tw, "BLAS\t%s\n", s.BLAS)
	tw.Flush()
}

// formatFloats formats numbers separated by spaces.
func formatFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.6g", x)
	}
	return strings.Join(s, " ")
}

// symIsFinite reports whether every entry of the upper triangle of a is
// finite.
func symIsFinite(a *mat.SymDense) bool {
	raw := a.RawSymmetric()
	for i := 0; i < raw.N; i++ {
		for _, v := range raw.Data[i*raw.Stride+i : i*raw.Stride+raw.N] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// symCurvature is a formed symmetric matrix as a hessian.Curvature.
type symCurvature struct{ m *mat.SymDense }

// Dim returns the size of the matrix.
func (c symCurvature) Dim() int { return c.m.SymmetricDim() }

// MulVecTo sets dst = M v.
func (c symCurvature) MulVecTo(dst, v []float64) {
	n := c.Dim()
	blas64.Symv(1, c.m.RawSymmetric(), blas64.Vector{N: n, Inc: 1, Data: v}, 0, blas64.Vector{N: n, Inc: 1, Data: dst})
}

// countingCurvature advances a progress bar with every product of the
// curvature it wraps. It hides the fast paths of the wrapped curvature, so
// it is only for consumers that use products alone.
type countingCurvature struct {
	c   hessian.Curvature
	bar *stageBar
}

// Dim returns the dimension of the wrapped curvature.
func (c countingCurvature) Dim() int { return c.c.Dim() }

// MulVecTo sets dst = C v and advances the bar.
func (c countingCurvature) MulVecTo(dst, v []float64) {
	c.c.MulVecTo(dst, v)
	c.bar.add()
}

// stageBar shows the current stage of a long computation on a terminal: a
// bar over a known number of steps, or a spinner with the elapsed time. It
// does nothing when it is off.
type stageBar struct {
	w   io.Writer
	on  bool
	bar *progressbar.ProgressBar
	n   int
	max int
	msg string
}

// start replaces the current stage with one described by desc of total
// steps, or of an unknown number when total is negative.
func (s *stageBar) start(desc string, total int) {
	s.stop()
	if !s.on {
		return
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(s.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(true),
	}
	if total > 0 {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
	} else {
		opts = append(opts, progressbar.OptionSpinnerType(14))
		total = -1
	}
	s.n, s.max, s.msg = 0, total, desc
	s.bar = progressbar.NewOptions(total, opts...)
}

// add advances the current stage by one step.
func (s *stageBar) add() {
	if s.bar == nil {
		return
	}
	s.n++
	if s.max < 0 {
		s.bar.Describe(fmt.Sprintf("%s (%d)", s.msg, s.n))
		return
	}
	_ = s.bar.Add(1)
}

// stop removes the current stage from the terminal.
func (s *stageBar) stop() {
	if s == nil || s.bar == nil {
		return
	}
	_ = s.bar.Finish()
	_ = s.bar.Clear()
	s.bar = nil
}
