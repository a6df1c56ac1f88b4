// Package repro runs the benchmarks that reproduce the experiments of the
// pruning papers the toolkit implements, and writes their results as
// Markdown tables, CSV files and PNG charts.
//
// The benchmarks are:
//
//   - monks: Hassibi and Stork's MONK's experiment, OBS, OBD and magnitude
//     pruning under the rule "remove weights while the training error does
//     not rise", with and without retraining, over several seeds, on
//     generated splits and on the original UCI files;
//   - xor: how often each method's first removals break a 2-2-1 XOR
//     network, over 100 seeds;
//   - curves: the training loss against the number of weights removed,
//     without retraining, for every saliency and curvature, and the ΔE
//     predicted by OBS against the real one;
//   - mnist: LeNet-300-100 pruned to 50–98 % sparsity by magnitude, OBD and
//     layer-wise OBS, one-shot, retrained, and pruned and retrained in
//     steps;
//   - evidence: the Laplace evidence and the test error against the number
//     of hidden units and along an OBS pruning path (MacKay 1992);
//   - speed: the time of the curvature computations and of pruning.
//
// Run runs one benchmark by name (see Names) and writes OUT/NAME.md,
// OUT/NAME.csv and charts OUT/NAME*.png, each file atomically; with
// Options.Quick the file names carry a "-quick" suffix so that a quick run
// does not replace the results of a full one. Everything but the speed
// benchmark is deterministic: the same options give byte-identical Markdown
// and CSV files on any number of CPUs, except for the final section of the
// Markdown file, which starts with the line EnvironmentHeading and holds the
// Go version, the BLAS, GOMAXPROCS, the CPU and the wall time.
package repro

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/secondorder/prune/internal/atomicfile"
)

// DefaultOut is the output directory when Options.Out is empty.
const DefaultOut = "results"

// DefaultSeed is the first seed when Options.Seed is zero.
const DefaultSeed = 1

// EnvironmentHeading starts the last section of every Markdown file, the
// one that describes the machine and the run and so varies between runs.
const EnvironmentHeading = "## Environment"

// Options holds the settings of Run. A nil *Options, and any zero field,
// selects the documented default.
type Options struct {
	// Out is the directory the files are written to, created when
	// missing; default DefaultOut.
	Out string

	// Quick runs a smaller version of the benchmark (see Describe) and
	// writes NAME-quick.md, NAME-quick.csv and NAME-quick*.png.
	Quick bool

	// Seeds is the number of seeds of the benchmarks that repeat over
	// seeds (monks, xor); zero means the benchmark's default.
	Seeds int

	// Seed is the first seed; the seeds are Seed, Seed+1, … Zero means
	// DefaultSeed.
	Seed uint64

	// MonksDir is the directory of the original UCI MONK's files
	// monks-N.train and monks-N.test. When set, monks runs on these
	// splits as well as on generated ones.
	MonksDir string

	// MNISTDir is the directory of the MNIST IDX files; empty means the
	// default of datasets.MNISTDir.
	MNISTDir string

	// Log receives progress lines and a description of the run (seeds,
	// settings, Go version, BLAS, GOMAXPROCS, CPU); nil discards them.
	Log io.Writer

	// tiny shrinks every benchmark to a size that runs in seconds, for
	// the tests of the files written.
	tiny bool
}

// Report describes a finished benchmark.
type Report struct {
	// Name is the benchmark's name.
	Name string

	// Files lists the paths written, in the order written.
	Files []string

	// Summary holds the main results table in Markdown.
	Summary string

	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// benchmark is one entry of the registry.
type benchmark struct {
	name, desc string
	run        func(ctx context.Context, r *runCtx) error
}

var registry = []benchmark{
	{"monks", "Hassibi & Stork 1993: MONK's 1–3, OBS, OBD and magnitude pruning while the training error does not rise, with and without retraining, over seeds (default 10; quick 3), on generated splits and on the UCI splits with MonksDir", runMonks},
	{"xor", "Hassibi & Stork 1993: 2-2-1 XOR networks over seeds (default 100; quick 20): how often each method's first removals break XOR", runXOR},
	{"curves", "training loss against weights removed without retraining, every saliency and curvature, on MONK-1, noisy sine and two spirals; OBS predicted against real ΔE (quick: the curvature rebuilt every 2 % of the weights instead of after every removal)", runCurves},
	{"mnist", "LeNet-300-100 on MNIST pruned to 50–98 % by magnitude, OBD and layer-wise OBS: one-shot, retrained, and pruned and retrained in steps (quick: 10k training and 2k test images, 3 epochs)", runMNIST},
	{"mnist-gradual", "LeNet-300-100 on MNIST (L2-regularised Adam) pruned in 8 steps to 95 % by magnitude, layer-wise OBS and Woodbury OBS with retraining between steps, over seeds (default 3): the best and mean test error (quick: 10k training images, 4 steps, 1 seed)", runGradual},
	{"evidence", "MacKay 1992: Laplace evidence and test error against hidden units and along an OBS pruning path, noisy sine (mse) and MONK-3 (bce), α and β re-estimated with retraining (quick: fewer sizes and restarts)", runEvidence},
	{"mlpnet", "MLPNet 784-40-20-10 (no biases) on MNIST pruned one-shot to 50–98 % by magnitude, OBD, layer-wise OBS, block OBS (B = 100, 1000) and Woodbury OBS on the empirical Fisher (m = 1000 in one round, and gradual one-shot in 32 rounds of m = 200) and gradual row-block Gauss–Newton OBS (32 rounds of 4000 images, 3000 the hardest): accuracy, time, memory (quick: 10k training and 2k test images, 8 epochs, 50/90/95 %, m = 200, B = 100 and 500, 8 gradual rounds, 4 row-block rounds of 200 images, 150 the hardest)", runMLPNet},
	{"speed", "time of the gradient, Hv, dense curvatures, diagonals, inverses, OBS removals with downdates and with rebuilds, and layer-wise OBS on 784-300-100-10 (quick: W ≈ 100 and 1000 only)", runSpeed},
}

// Names returns the names of the benchmarks in a fixed order.
func Names() []string {
	names := make([]string, len(registry))
	for i, b := range registry {
		names[i] = b.name
	}
	return names
}

// Describe returns a one-line description of the benchmark name, or ""
// when there is none of that name.
func Describe(name string) string {
	for _, b := range registry {
		if b.name == name {
			return b.desc
		}
	}
	return ""
}

// Run runs the benchmark name with the options o (nil for the defaults)
// and writes its files. It returns an error for an unknown name, a file
// that cannot be written, missing data (MNIST, or the UCI files named by
// MonksDir) or a failed computation; when ctx is done it stops and returns
// ctx.Err() without writing the files of the benchmark.
func Run(ctx context.Context, name string, o *Options) (*Report, error) {
	var opt Options
	if o != nil {
		opt = *o
	}
	if opt.Out == "" {
		opt.Out = DefaultOut
	}
	if opt.Seed == 0 {
		opt.Seed = DefaultSeed
	}
	if opt.Seeds < 0 {
		return nil, fmt.Errorf("repro: %d seeds", opt.Seeds)
	}
	var b *benchmark
	for i := range registry {
		if registry[i].name == name {
			b = &registry[i]
		}
	}
	if b == nil {
		return nil, fmt.Errorf("repro: unknown benchmark %q (want %s)", name, strings.Join(Names(), ", "))
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("repro: %w", err)
	}
	r := &runCtx{o: opt, name: name, start: time.Now(), env: CurrentEnvironment()}
	r.rep = &Report{Name: name}
	r.logf("benchmark %s: %s", name, b.desc)
	r.logf("output %s, quick %v, seeds from %d", opt.Out, opt.Quick, opt.Seed)
	for _, line := range r.env.Lines() {
		r.logf("%s", line)
	}
	if err := b.run(ctx, r); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.flush(); err != nil {
		return nil, err
	}
	r.rep.Elapsed = time.Since(r.start)
	r.logf("%s done in %s", name, r.rep.Elapsed.Round(time.Millisecond))
	return r.rep, nil
}

// runCtx is the state of one Run shared by the benchmarks.
type runCtx struct {
	o     Options
	name  string
	start time.Time
	env   Environment
	rep   *Report

	// files holds the files to write at the end, in order; the Markdown
	// file is completed with the environment section when written.
	files []pendingFile
}

type pendingFile struct {
	base string
	data []byte
	md   bool
}

// logf writes a progress line to the log.
func (r *runCtx) logf(format string, args ...any) {
	if r.o.Log == nil {
		return
	}
	fmt.Fprintf(r.o.Log, "%s: %s\n", r.name, fmt.Sprintf(format, args...))
}

// stem returns the base name of the benchmark's files.
func (r *runCtx) stem() string {
	if r.o.Quick {
		return r.name + "-quick"
	}
	return r.name
}

// fileName returns the base name of the file with the given suffix, such
// as ".md" or "-generated.png".
func (r *runCtx) fileName(suffix string) string { return r.stem() + suffix }

// add queues a file for writing.
func (r *runCtx) add(suffix string, data []byte) {
	r.files = append(r.files, pendingFile{base: r.fileName(suffix), data: data})
}

// addMarkdown queues the Markdown file; the environment section is
// appended when it is written.
func (r *runCtx) addMarkdown(md string) {
	r.files = append(r.files, pendingFile{base: r.fileName(".md"), data: []byte(md), md: true})
}

// addCSV queues the CSV file.
func (r *runCtx) addCSV(c *csvTable) error {
	data, err := c.bytes()
	if err != nil {
		return err
	}
	r.add(".csv", data)
	return nil
}

// flush writes the queued files atomically.
func (r *runCtx) flush() error {
	for _, f := range r.files {
		data := f.data
		if f.md {
			var b bytes.Buffer
			b.Write(data)
			if !bytes.HasSuffix(data, []byte("\n")) {
				b.WriteByte('\n')
			}
			b.WriteString("\n" + EnvironmentHeading + "\n\n")
			b.WriteString("Not part of the results: it describes the machine and the run.\n\n")
			for _, line := range r.env.Lines() {
				b.WriteString("- " + line + "\n")
			}
			fmt.Fprintf(&b, "- wall time: %s\n", time.Since(r.start).Round(time.Second))
			data = b.Bytes()
		}
		path := filepath.Join(r.o.Out, f.base)
		if err := atomicfile.WriteBytes(path, data); err != nil {
			return fmt.Errorf("repro: %w", err)
		}
		r.rep.Files = append(r.rep.Files, path)
		r.logf("wrote %s", path)
	}
	return nil
}

// seeds returns the seeds of the run: n of them by default, or
// Options.Seeds.
func (r *runCtx) seeds(n int) []uint64 {
	if r.o.Seeds > 0 {
		n = r.o.Seeds
	}
	s := make([]uint64, n)
	for i := range s {
		s[i] = r.o.Seed + uint64(i)
	}
	return s
}

// seedRange describes seeds as "a–b" or "a".
func seedRange(s []uint64) string {
	if len(s) == 1 {
		return fmt.Sprint(s[0])
	}
	return fmt.Sprintf("%d–%d", s[0], s[len(s)-1])
}

// command returns the command line that reproduces the run.
func (r *runCtx) command(extra ...string) string {
	parts := []string{"prune bench", r.name}
	if r.o.Quick {
		parts = append(parts, "--quick")
	}
	if r.o.Seeds > 0 {
		parts = append(parts, fmt.Sprintf("--seeds %d", r.o.Seeds))
	}
	if r.o.Seed != DefaultSeed {
		parts = append(parts, fmt.Sprintf("--seed %d", r.o.Seed))
	}
	parts = append(parts, extra...)
	return strings.Join(parts, " ")
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
