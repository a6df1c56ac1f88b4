package datasets

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

const (
	minParity = 2
	maxParity = 10
)

// Parse classifies a data set name as understood by Load. It returns the
// kind of data set, one of "xor", "parity", "monks", "sine", "spirals",
// "mnist", "csv" or "arrays" (an .npz file or a directory of .npy files), and its numeric parameter: the number of bits for
// parity (2..10), the problem number for monks (1..3) and 0 otherwise.
//
// Built-in names are matched without regard to case. A name is a CSV path
// if it ends in ".csv" or contains a path separator; otherwise, a name that
// is not built in is a CSV path if it names an existing file. Any other
// name is an error that lists the valid names.
func Parse(name string) (kind string, param int, err error) {
	if name == "" {
		return "", 0, fmt.Errorf("datasets: empty data set name; valid names are %s", nameList())
	}
	if isArrayPath(name) {
		return "arrays", 0, nil
	}
	if isPath(name) {
		return "csv", 0, nil
	}
	lower := strings.ToLower(name)
	switch lower {
	case "xor", "sine", "spirals", "mnist":
		return lower, 0, nil
	}
	for _, p := range []struct {
		prefix   string
		min, max int
		example  string
	}{
		{"parity", minParity, maxParity, "parity4"},
		{"monks", 1, 3, "monks1"},
	} {
		suffix, ok := strings.CutPrefix(lower, p.prefix)
		if !ok {
			continue
		}
		n, ok := parseNatural(suffix)
		if !ok {
			if isFile(name) {
				return "csv", 0, nil
			}
			return "", 0, fmt.Errorf("datasets: bad data set name %q: %s needs a number %d..%d, as in %s", name, p.prefix, p.min, p.max, p.example)
		}
		if n < p.min || n > p.max {
			return "", 0, fmt.Errorf("datasets: bad data set name %q: %s number %d out of range %d..%d", name, p.prefix, n, p.min, p.max)
		}
		return p.prefix, n, nil
	}
	if isFile(name) {
		return "csv", 0, nil
	}
	return "", 0, fmt.Errorf("datasets: unknown data set %q; valid names are %s", name, nameList())
}

// isPath reports whether name is syntactically a CSV path.
func isPath(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".csv") ||
		strings.ContainsRune(name, '/') ||
		strings.ContainsRune(name, os.PathSeparator)
}

// isFile reports whether name is an existing file that is not a directory.
func isFile(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && !fi.IsDir()
}

// parseNatural parses a decimal number written in canonical form: digits
// only, without sign or leading zeros.
func parseNatural(s string) (int, bool) {
	if s == "" || len(s) > 9 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
