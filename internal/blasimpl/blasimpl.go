// Package blasimpl selects the BLAS and LAPACK implementations that every
// gonum call in the toolkit uses. The default build uses gonum's pure-Go
// BLAS and LAPACK; building with -tags openblas links OpenBLAS (Debian:
// libopenblas-dev): its BLAS through gonum.org/v1/netlib's cgo binding, and
// its LAPACK for the Cholesky factorization and inverse (dpotrf, dpotri) and
// the symmetric eigenvalues (dsyevr) through lapack64.Use.
//
// OpenBLAS chooses its kernels ("core") by detecting the CPU at start-up.
// On some virtual machines the detection falls back to a generic or pre-AVX
// core that runs at a fraction of the machine's speed; the environment
// variable OPENBLAS_CORETYPE (for example Haswell, SkylakeX or Zen)
// overrides it. Name reports the core in use, and in that case Warning
// describes the problem, and the program writes it to stderr once at
// start-up.
package blasimpl

// Name returns the BLAS implementation in use: "gonum (pure Go)", or for
// OpenBLAS its version and core, such as
// "OpenBLAS 0.3.21 (netlib cgo, LAPACK from OpenBLAS), core Haswell".
func Name() string { return name() }

// Core returns the OpenBLAS core (openblas_get_corename), or "" in the
// pure-Go build.
func Core() string { return core() }

// Warning returns a warning when OpenBLAS runs a generic or pre-AVX core on
// a CPU with AVX2 or AVX-512, naming OPENBLAS_CORETYPE, and "" otherwise.
func Warning() string { return warning() }

// preAVX lists the OpenBLAS core names (lower case) of CPUs without AVX, and
// the generic fallback.
var preAVX = map[string]bool{
	"generic": true, "unknown": true, "katmai": true, "coppermine": true, "northwood": true,
	"prescott": true, "banias": true, "yonah": true, "core2": true, "penryn": true,
	"dunnington": true, "nehalem": true, "atom": true, "athlon": true, "opteron": true,
	"opteron_sse3": true, "barcelona": true, "bobcat": true, "nano": true,
}

// coreWarning returns the warning for core on a CPU with the given
// features, or "".
func coreWarning(core string, avx2, avx512 bool) string {
	if !avx2 && !avx512 {
		return ""
	}
	if !preAVX[lower(core)] {
		return ""
	}
	isa := "AVX2"
	suggest := "Haswell"
	if avx512 {
		isa, suggest = "AVX-512", "SkylakeX"
	}
	return "warning: OpenBLAS runs its " + core + " kernels on a CPU with " + isa +
		", at a fraction of the machine's speed; set OPENBLAS_CORETYPE (for example OPENBLAS_CORETYPE=" +
		suggest + ") to select the right kernels"
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
