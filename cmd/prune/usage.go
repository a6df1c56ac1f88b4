package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError is a mistake in the command line: an unknown command, an
// unknown, missing or malformed flag, or a bad flag value. It makes the
// program exit with status 2.
type usageError struct {
	// Flag is the name of the flag at fault, without dashes, or empty.
	Flag string
	// Msg is the complete message, naming the flag.
	Msg string
}

// Error returns the message.
func (e *usageError) Error() string { return e.Msg }

// flagErrorf returns a usage error for the flag name whose message is
// "--name " followed by the formatted text.
func flagErrorf(name, format string, args ...any) error {
	return &usageError{Flag: name, Msg: "--" + name + " " + fmt.Sprintf(format, args...)}
}

// flagValueError returns a usage error for a bad value of flag name, of the
// form `--name "value": reason`, where the reason is taken from err. A
// leading `word "value": ` in err's message, which repeats the value, is
// left out.
func flagValueError(name, value string, err error) error {
	msg := trimPackagePrefix(err.Error())
	q := fmt.Sprintf("%q: ", value)
	if i := strings.Index(msg, q); i >= 0 && !strings.ContainsAny(strings.TrimSpace(msg[:i]), " :") {
		msg = msg[i+len(q):]
	}
	return &usageError{Flag: name, Msg: fmt.Sprintf("--%s %q: %s", name, value, msg)}
}

// trimPackagePrefix removes a leading "datasets: " or "nn: " from an error
// message of a library package.
func trimPackagePrefix(msg string) string {
	for _, p := range []string{"datasets: ", "nn: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	reNoArg     = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	reInvalid   = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): (.*)$`)
)

// onUsageError turns the flag-parsing errors of the cli and flag packages
// into usage errors that name the flag with two dashes.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		return &usageError{Flag: m[1], Msg: fmt.Sprintf("unknown flag --%s", m[1])}
	}
	if m := reNoArg.FindStringSubmatch(msg); m != nil {
		return &usageError{Flag: m[1], Msg: fmt.Sprintf("--%s needs a value", m[1])}
	}
	if m := reInvalid.FindStringSubmatch(msg); m != nil {
		value, name, reason := m[1], m[2], m[3]
		switch flagKind(c, name) {
		case "int":
			reason = "is not an integer"
		case "uint":
			reason = "is not a non-negative integer"
		case "float":
			reason = "is not a number"
		case "bool":
			reason = "is not a boolean (true or false)"
		}
		return &usageError{Flag: name, Msg: fmt.Sprintf("--%s %q: %s", name, value, reason)}
	}
	return &usageError{Msg: msg}
}

// flagKind returns "int", "uint", "float", "bool" or "" for the flag name
// of the command running in c or of its parents.
func flagKind(c *cli.Context, name string) string {
	for _, x := range c.Lineage() {
		if x.Command == nil {
			continue
		}
		for _, f := range x.Command.Flags {
			found := false
			for _, n := range f.Names() {
				found = found || n == name
			}
			if !found {
				continue
			}
			switch f.(type) {
			case *cli.IntFlag, *cli.Int64Flag:
				return "int"
			case *cli.UintFlag, *cli.Uint64Flag:
				return "uint"
			case *cli.Float64Flag:
				return "float"
			case *cli.BoolFlag:
				return "bool"
			}
			return ""
		}
	}
	return ""
}

// refuseZero returns a usage error for the first of the integer flags ints
// or the float flags floats that is given as 0. Zero means the default in
// the options structs, so an explicit zero would be misread.
func refuseZero(c *cli.Context, ints, floats []string) error {
	for _, name := range ints {
		if c.IsSet(name) && c.Int(name) == 0 {
			return flagErrorf(name, "0: must be positive")
		}
	}
	for _, name := range floats {
		if c.IsSet(name) && c.Float64(name) == 0 {
			return flagErrorf(name, "0: must be positive")
		}
	}
	if c.IsSet("max-memory") && c.String("max-memory") == "" {
		return flagErrorf("max-memory", "needs a size, such as 8G")
	}
	return nil
}
