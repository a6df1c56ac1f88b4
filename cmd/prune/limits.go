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
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	return parseSizeFlag("max-csv-size", s)
}

// defaultMemoryText describes the default of --max-memory: the limit and
// where it comes from, physical memory or the cgroup's limit.
func defaultMemoryText() string {
	return sysmem.FormatBytes(hessian.DefaultMemoryLimit()) + ", " + hessian.DefaultMemoryLimitSource()
}
