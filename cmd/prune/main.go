// Command prune trains, prunes, evaluates and inspects fully connected
// networks with second-order methods (Optimal Brain Damage and Optimal
// Brain Surgeon).
//
// Usage:
//
//	prune [--quiet] COMMAND [flags]
//
// The commands are:
//
//	demo      train MONK-1 17-3-1 and prune it with OBS, end to end
//	train     train a network on a data set and write it to a model file
//	eval      evaluate a model on a split of a data set
//	inspect   describe a model file: layers, parameters, sparsity, metadata
//	run       prune a model and write the pruned model and a report
//	saliency  write the saliency of every parameter to a .npy file
//	hessian   compute a curvature of a model's loss and write it to a .npy file
//	laplace   Laplace posterior of a model: evidence, α, β, γ, predictive
//	evidence  compare the evidence of several models (MacKay's evidence curve)
//	retrain   update a model by Newton steps after adding or removing samples
//	convert   convert a model between .json (prune-mlp/1) and .npz (PyTorch)
//	bench     run a benchmark that reproduces a paper's experiment
//	datasets  list the built-in data sets
//
// Model files are prune-mlp/1 .json files or PyTorch state_dict .npz
// archives, chosen by extension. Run "prune COMMAND --help" for the flags of
// a command.
//
// The exit status is 0 on success, 2 for a usage error (an unknown command,
// an unknown, missing or malformed flag, or a bad flag value) and 1 for any
// other failure (files, data, numerical problems, interruption). An
// interrupted run command saves what it has pruned and also exits with 1.
// An internal error (a panic, which no input should cause) is reported with
// its stack and exits with 3; the Go runtime itself ends the program with 2
// on a fatal error such as running out of memory, which cannot be caught.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/secondorder/prune/hessian"
	"github.com/urfave/cli/v2"
)

// version is the toolkit version recorded in model files and printed by
// --version. It may be set at link time with
// -ldflags "-X main.version=v1.2.3"; when empty, the module version from the
// build information is used.
var version = ""

// toolkitVersion returns the version of the toolkit.
func toolkitVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second one ends the program at once.
		<-ctx.Done()
		stop()
	}()
	code := runContext(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the program with the command-line arguments args (args[0] is
// the program name), writing results to stdout and messages to stderr, and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context whose cancellation interrupts the
// command.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return guard(stderr, func() int { return runApp(ctx, args, stdout, stderr) })
}

// guard returns fn's exit status, or 3 after reporting a panic of fn as an
// internal error on stderr.
func guard(stderr io.Writer, fn func() int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "prune: internal error: %v\n%s\nThis is a bug in the toolkit; please report it with the command that caused it.\n", r, debug.Stack())
			code = exitInternal
		}
	}()
	return fn()
}

// exitInternal is the exit status of an internal error.
const exitInternal = 3

// runApp runs the command line args.
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args = benchArgs(args)
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "prune: %v\n", err)
	me, lr := (*hessian.MemoryError)(nil), (*hessian.LowRankMemoryError)(nil)
	if errors.As(err, &me) || errors.As(err, &lr) {
		fmt.Fprintf(stderr, "The memory limit is --max-memory (a size such as 8G, or off).\n")
	}
	code := exitCode(err)
	if code == 2 {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", commandPath(args))
	}
	return code
}

// exitCode maps an error to an exit status: 2 for usage errors, 1 for
// everything else.
func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	// The cli package's help command reports an unknown help topic with
	// an ExitCoder.
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return 2
	}
	return 1
}

// commandPath returns "prune" or "prune COMMAND" for the command named in
// args, for use in hints.
func commandPath(args []string) string {
	for _, a := range args[min(1, len(args)):] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, c := range commands() {
			if c.HasName(a) {
				return "prune " + c.Name
			}
		}
		break
	}
	return "prune"
}

// commands returns the subcommands of the program.
func commands() []*cli.Command {
	return []*cli.Command{
		demoCommand(),
		trainCommand(),
		evalCommand(),
		inspectCommand(),
		runCommand(),
		saliencyCommand(),
		hessianCommand(),
		laplaceCommand(),
		evidenceCommand(),
		retrainCommand(),
		convertCommand(),
		benchCommand(),
		datasetsCommand(),
	}
}

// newApp returns the command-line application writing to stdout and stderr.
func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := commands()
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		c.HideHelpCommand = true
		c.Flags = append(c.Flags, quietFlag())
	}
	return &cli.App{
		Name:            "prune",
		Usage:           "train, prune, evaluate and inspect networks with second-order pruning",
		Version:         toolkitVersion(),
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags:           []cli.Flag{quietFlag()},
		Commands:        cmds,
		OnUsageError:    onUsageError,
		ExitErrHandler:  func(*cli.Context, error) {}, // run maps errors to exit codes
		HideHelpCommand: false,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return &usageError{Msg: fmt.Sprintf("unknown command %q", c.Args().First())}
			}
			_ = cli.ShowAppHelp(c)
			return &usageError{Msg: "no command given"}
		},
	}
}

// quietFlag returns the --quiet flag, accepted both before and after the
// command name.
func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress progress bars and informational messages"}
}

// isQuiet reports whether --quiet was given before or after the command
// name.
func isQuiet(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Bool("quiet") {
			return true
		}
	}
	return false
}

// noArgs returns a usage error when the command was given positional
// arguments, which no command takes.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return &usageError{Msg: fmt.Sprintf("unexpected argument %q (flags must come before other arguments; all inputs are given with flags)", c.Args().First())}
	}
	return nil
}
