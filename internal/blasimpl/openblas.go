//go:build openblas

package blasimpl

// #cgo LDFLAGS: -lopenblas
// char *openblas_get_corename(void);
// char *openblas_get_config(void);
import "C"

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/netlib/blas/netlib"
)

var (
	coreName = C.GoString(C.openblas_get_corename())
	config   = C.GoString(C.openblas_get_config())
	warnText = coreWarning(coreName, cpuFlag("avx2"), cpuFlag("avx512f"))
)

func init() {
	blas64.Use(netlib.Implementation{})
	lapack64.Use(lapackImpl{})
	if warnText != "" {
		fmt.Fprintln(os.Stderr, warnText)
	}
}

// version returns the version in OpenBLAS's configuration string, such as
// "0.3.21", or "".
func version() string {
	f := strings.Fields(config)
	if len(f) >= 2 && f[0] == "OpenBLAS" {
		return f[1]
	}
	return ""
}

func name() string {
	v := version()
	if v != "" {
		v += " "
	}
	return "OpenBLAS " + v + "(netlib cgo, LAPACK from OpenBLAS), core " + coreName
}

// cpuFlag reports whether the first CPU in /proc/cpuinfo lists flag.
func cpuFlag(flag string) bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			return slices.Contains(strings.Fields(v), flag)
		}
	}
	return false
}

func core() string    { return coreName }
func warning() string { return warnText }
