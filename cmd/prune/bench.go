package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/secondorder/prune/benchmarks/repro"
	"github.com/urfave/cli/v2"
)

// benchCommand returns the bench command.
func benchCommand() *cli.Command {
	var list strings.Builder
	for _, name := range repro.Names() {
		fmt.Fprintf(&list, "  %-7s %s\n", name, repro.Describe(name))
	}
	return &cli.Command{
		Name:      "bench",
		Usage:     "run a benchmark that reproduces a pruning paper's experiment",
		ArgsUsage: "NAME",
		UsageText: "prune bench NAME [--quick] [--seeds N] [--seed S] [--monks-dir DIR] [--mnist-dir DIR] [--out " + repro.DefaultOut + "]\n" +
			"prune bench --list\n\n" +
			"Runs the benchmark NAME and writes OUT/NAME.md (the tables), OUT/NAME.csv (every number) and the\n" +
			"charts OUT/NAME*.png, replacing those of an earlier run; --quick runs a smaller version and\n" +
			"writes NAME-quick.* instead. Everything but speed gives the same files for the same options on\n" +
			"any number of CPUs, except the closing Environment section of the Markdown file. Progress goes to\n" +
			"the standard error (--quiet turns it off), the main table and the files written to the standard\n" +
			"output.\n\n" +
			"Benchmarks:\n" + list.String() + "\n" +
			"Example: prune bench monks --quick --monks-dir datasets/testdata/monks",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Usage: "list the benchmarks"},
			&cli.BoolFlag{Name: "quick", Usage: "run the smaller version and write NAME-quick.*"},
			&cli.IntFlag{Name: "seeds", Usage: "number `N` of seeds of monks and xor", DefaultText: "the benchmark's"},
			&cli.Uint64Flag{Name: "seed", Value: repro.DefaultSeed, Usage: "first `SEED`; the seeds are SEED, SEED+1, …"},
			&cli.StringFlag{Name: "monks-dir", Usage: "`DIR` of the UCI files monks-N.train and monks-N.test, for monks to run on the original splits too"},
			&cli.StringFlag{Name: "mnist-dir", Usage: "`DIR` of the MNIST IDX files", DefaultText: "the GoMNIST module's data"},
			&cli.StringFlag{Name: "out", Value: repro.DefaultOut, Usage: "`DIR` for the files, created when missing"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			var o repro.Options
			if err := decodeFlags(c, &o); err != nil {
				return err
			}
			if !isQuiet(c) {
				o.Log = c.App.ErrWriter
			}
			name := ""
			args := c.Args().Slice()
			if len(args) > 1 {
				return &usageError{Msg: fmt.Sprintf("unexpected argument %q: give one benchmark NAME", args[1])}
			}
			if len(args) == 1 {
				name = args[0]
			}
			if c.IsSet("seeds") && o.Seeds <= 0 {
				return flagErrorf("seeds", "%d: must be positive", o.Seeds)
			}
			if c.IsSet("seed") && o.Seed == 0 {
				return flagErrorf("seed", "0: must be positive")
			}
			if c.Bool("list") {
				return listBenchmarks(name, c.Bool("json"), c.App.Writer)
			}
			return runBench(c.Context, name, &o, c.Bool("json"), c.App.Writer)
		},
	}
}

// benchSummary is what bench prints with --json.
type benchSummary struct {
	Name    string   `json:"name"`
	Files   []string `json:"files"`
	Summary string   `json:"summary"`
	Seconds float64  `json:"seconds"`
}

// benchEntry is one benchmark of bench --list --json.
type benchEntry struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// listBenchmarks lists the benchmarks.
func listBenchmarks(name string, asJSON bool, stdout io.Writer) error {
	if name != "" {
		return &usageError{Flag: "list", Msg: fmt.Sprintf("--list takes no benchmark name, got %q", name)}
	}
	names := repro.Names()
	if asJSON {
		var entries []benchEntry
		for _, n := range names {
			entries = append(entries, benchEntry{n, repro.Describe(n)})
		}
		return writeJSON(stdout, entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%s\n", n, repro.Describe(n))
	}
	return tw.Flush()
}

// runBench runs the benchmark name with the options o.
func runBench(ctx context.Context, name string, o *repro.Options, asJSON bool, stdout io.Writer) error {
	names := repro.Names()
	if name == "" {
		return &usageError{Msg: fmt.Sprintf("no benchmark given: give one of %s, or --list", orList(names))}
	}
	if !slices.Contains(names, name) {
		return &usageError{Msg: fmt.Sprintf("unknown benchmark %q: want %s", name, orList(names))}
	}
	if o.Seeds < 0 {
		return flagErrorf("seeds", "%d: must be positive", o.Seeds)
	}
	rep, err := repro.Run(ctx, name, o)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("interrupted; the files of benchmark %s were not written", name)
		}
		return errors.New(strings.TrimPrefix(err.Error(), "repro: "))
	}
	if asJSON {
		return writeJSON(stdout, benchSummary{Name: rep.Name, Files: rep.Files, Summary: rep.Summary, Seconds: rep.Elapsed.Seconds()})
	}
	if rep.Summary != "" {
		fmt.Fprintln(stdout, strings.TrimRight(rep.Summary, "\n"))
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(rep.Files, ", "))
	fmt.Fprintf(stdout, "time %s\n", rep.Elapsed.Round(1e6))
	return nil
}

// benchArgs returns the command line args with the benchmark name of a
// bench command moved after the command's flags, so that flags may also
// follow the name, as in "prune bench monks --quick": the cli package stops
// reading flags at the first argument that is not one. Other command lines
// are returned as they are.
func benchArgs(args []string) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // the global flags take no value
	}
	if i >= len(args) || args[i] != "bench" {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range benchCommand().Flags {
		if _, ok := f.(*cli.BoolFlag); !ok {
			for _, n := range f.Names() {
				takesValue[n] = true
			}
		}
	}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			return args
		case strings.HasPrefix(a, "-"):
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] {
				j++
			}
		default:
			out := append(slices.Clone(args[:j]), args[j+1:]...)
			return append(out, a)
		}
	}
	return args
}
