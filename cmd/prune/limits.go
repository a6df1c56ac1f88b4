package main

import (
	"strings"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/urfave/cli/v2"
)

// maxCSVSizeFlag returns the --max-csv-size flag of the data flags.
func maxCSVSizeFlag() cli.Flag {
	return &cli.StringFlag{Name: "max-csv-size", Usage: "read CSV files of at most `SIZE` bytes (suffix K, M, G or T; 'off' for no limit)",
		DefaultText: sysmem.FormatBytes(datasets.DefaultMaxCSVBytes), Category: "Data"}
}

// parseMaxCSVSize parses --max-csv-size: empty for the default, "off" for
// no limit (−1).
func parseMaxCSVSize(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return 0, nil
	case "off", "none":
		return -1, nil
	}
	b, err := sysmem.ParseBytes(s)
	if err != nil {
		return 0, flagValueError("max-csv-size", s, memoryFlagError(err))
	}
	if b <= 0 {
		return 0, flagErrorf("max-csv-size", "%q: must be positive (or off)", s)
	}
	return b, nil
}

// defaultMemoryText describes the default of --max-memory: the limit and
// where it comes from, physical memory or the cgroup's limit.
func defaultMemoryText() string {
	return sysmem.FormatBytes(hessian.DefaultMemoryLimit()) + ", " + hessian.DefaultMemoryLimitSource()
}
