package repro

import (
	"fmt"
	"github.com/secondorder/prune/internal/benchtime"
	"runtime"

	"github.com/secondorder/prune/internal/blasimpl"
)

// Environment describes the machine and the build a benchmark runs on.
type Environment struct {
	GoVersion  string // runtime.Version
	OS, Arch   string
	BLAS       string // blasimpl.Name
	GOMAXPROCS int
	NumCPU     int
	CPU        string // the model name of /proc/cpuinfo, or "unknown"
}

// CurrentEnvironment returns the environment of the running program.
func CurrentEnvironment() Environment {
	return Environment{
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		BLAS:       blasimpl.Name(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPU:        benchtime.CPUModel(),
	}
}

// Lines returns the environment as lines of text.
func (e Environment) Lines() []string {
	return []string{
		fmt.Sprintf("Go: %s %s/%s", e.GoVersion, e.OS, e.Arch),
		fmt.Sprintf("BLAS: %s", e.BLAS),
		fmt.Sprintf("GOMAXPROCS: %d (CPUs: %d)", e.GOMAXPROCS, e.NumCPU),
		fmt.Sprintf("CPU: %s", e.CPU),
	}
}
