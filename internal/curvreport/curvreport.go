// Package curvreport computes a named curvature of a problem, as a W×W
// matrix or a vector of length W, with a summary of its spectrum: the trace,
// the extreme eigenvalues (of the formed matrix, by Lanczos, or of the
// vector's entries), the condition number and definiteness, and optionally
// the damped inverse. It is what the prune command's hessian subcommand
// runs; errors name the fields of Settings as "Settings.Field".
package curvreport

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/secondorder/prune/hessian"
	"gonum.org/v1/gonum/mat"
)

// Streams of the PCG generators seeded with Settings.ProbeSeed for the
// Hutchinson probes and the Lanczos start vector.
const (
	streamProbes  = 0x70726f62 // "prob"
	streamLanczos = 0x6c616e63 // "lanc"
)

// Kind is a curvature the package computes: the hessian.Kinds with a
// matrix, the exact diagonal "diag", and the kinds with only a diagonal.
type Kind struct {
	Name, Desc, Help string
	// Matrix is set for the kinds computed as a W×W matrix; the others
	// give a vector of length W.
	Matrix bool
}

// Kinds returns the kinds in a fixed order: the matrices, then the vectors.
func Kinds() []Kind {
	var matrices, vectors []Kind
	for _, k := range hessian.Kinds() {
		if k.Dense || k.InverseOnly {
			matrices = append(matrices, Kind{k.Name, k.Desc, k.Help, true})
		} else if k.Diagonal {
			vectors = append(vectors, Kind{k.Name, k.Desc, k.Help, false})
		}
	}
	diag := Kind{"diag", "exact diagonal of H", "the exact diagonal of H", false}
	return append(append(matrices, diag), vectors...)
}

// KindNames returns the names of the kinds as "a, b, … or z".
func KindNames() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// KindNamed returns the kind named s, case-insensitively.
func KindNamed(s string) (Kind, bool) {
	for _, k := range Kinds() {
		if strings.EqualFold(s, k.Name) {
			return k, true
		}
	}
	return Kind{}, false
}

// Progress follows the stages of a computation: Start begins one of total
// steps (an unknown number when total is negative), Add advances it, Stop
// ends it.
type Progress interface {
	Start(desc string, total int)
	Add()
	Stop()
}

type noProgress struct{}

func (noProgress) Start(string, int) {}
func (noProgress) Add()              {}
func (noProgress) Stop()             {}

// Settings selects the curvature and what is computed from it. Zero values
// select the defaults.
type Settings struct {
	// Kind names the curvature (KindNames); required.
	Kind string

	// Inverse asks for (C + Damping·I)⁻¹ of a dense matrix kind instead of
	// C; Escalate multiplies the damping by 10 (starting from 10⁻⁸‖C‖_F
	// when it is 0) until the inverse succeeds, calling Log after each
	// failed step.
	Inverse  bool
	Damping  float64
	Escalate bool
	Log      func(lambda float64, err error)

	// Alpha is the initial damping of the recursive kind, default
	// hessian.DefaultAlpha; Probes the probes of hutchinson, default
	// hessian.DefaultProbes. ProbeSeed seeds the probes and the Lanczos
	// start vector; zero means 1.
	Alpha     float64
	Probes    int
	ProbeSeed uint64

	// Eigen is the number K of largest and smallest eigenvalues to
	// report. Lanczos finds them by Lanczos iterations (the default for the
	// matrix kinds), FullSpectrum from all eigenvalues of the formed
	// matrix (O(W³)), and NoSpectrum skips the eigenvalues.
	Eigen        int
	Lanczos      bool
	FullSpectrum bool
	NoSpectrum   bool

	// MaxBytes bounds the W×W matrices held at once; zero means
	// hessian.DefaultMemoryLimit(), negative no limit.
	MaxBytes int64

	// Progress, when not nil, follows the stages.
	Progress Progress
}

// FieldError is an invalid setting: Field names it, Msg says why.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return "Settings." + e.Field + " " + e.Msg }

// SettingsField returns the field's name.
func (e *FieldError) SettingsField() string { return e.Field }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{field, fmt.Sprintf(format, args...)}
}

// Validate returns a *FieldError for the first invalid setting.
func (s *Settings) Validate() error {
	if s.Kind == "" {
		return fieldErr("Kind", "is required: give one of %s", KindNames())
	}
	k, ok := KindNamed(s.Kind)
	if !ok {
		return fieldErr("Kind", "%q: want one of %s", s.Kind, KindNames())
	}
	nonNeg := func(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
	switch {
	case s.Inverse && (!k.Matrix || k.Name == "recursive"):
		return fieldErr("Inverse", "applies to the matrix kinds exact, gn and fisher, not Settings.Kind %s", k.Name)
	case !nonNeg(s.Damping):
		return fieldErr("Damping", "%v: must be a finite number not below 0", s.Damping)
	case s.Damping != 0 && !s.Inverse:
		return fieldErr("Damping", "applies only with Settings.Inverse")
	case s.Escalate && !s.Inverse:
		return fieldErr("Escalate", "applies only with Settings.Inverse")
	case !nonNeg(s.Alpha):
		return fieldErr("Alpha", "%v: must be a positive finite number", s.Alpha)
	case s.Alpha != 0 && k.Name != "recursive":
		return fieldErr("Alpha", "applies only to Settings.Kind recursive")
	case s.Probes < 0:
		return fieldErr("Probes", "%d: must be positive", s.Probes)
	case s.Probes != 0 && k.Name != "hutchinson":
		return fieldErr("Probes", "applies only to Settings.Kind hutchinson")
	case s.Eigen < 0:
		return fieldErr("Eigen", "%d: must be positive", s.Eigen)
	case s.NoSpectrum && s.Lanczos:
		return fieldErr("NoSpectrum", "and Settings.Lanczos exclude each other")
	case s.NoSpectrum && s.Eigen > 0:
		return fieldErr("NoSpectrum", "and Settings.Eigen exclude each other")
	case s.FullSpectrum && s.Lanczos:
		return fieldErr("FullSpectrum", "and Settings.Lanczos exclude each other")
	case s.FullSpectrum && s.NoSpectrum:
		return fieldErr("FullSpectrum", "and Settings.NoSpectrum exclude each other")
	case s.FullSpectrum && !k.Matrix:
		return fieldErr("FullSpectrum", "applies to the matrix kinds, not Settings.Kind %s", k.Name)
	}
	return nil
}

// Spectrum returns where the summary's extremes come from: "none",
// "dense" (all eigenvalues), "lanczos" or "entries" (the vector's entries).
func (s *Settings) Spectrum() string {
	k, _ := KindNamed(s.Kind)
	switch {
	case s.NoSpectrum:
		return "none"
	case s.FullSpectrum:
		return "dense"
	case s.Lanczos, k.Matrix:
		// O(W²) per product with the formed matrix, against O(W³) for
		// the full spectrum.
		return "lanczos"
	}
	return "entries"
}

func (s *Settings) eigenK() int {
	if s.Lanczos && s.Eigen == 0 {
		return 1
	}
	return s.Eigen
}

func (s *Settings) limit() int64 {
	if s.MaxBytes == 0 {
		return hessian.DefaultMemoryLimit()
	}
	return s.MaxBytes
}

func (s *Settings) seed() uint64 {
	if s.ProbeSeed == 0 {
		return 1
	}
	return s.ProbeSeed
}

// Eigen holds extreme eigenvalues.
type Eigen struct {
	// Method is "dense" (all eigenvalues of the formed matrix) or
	// "lanczos"; Of names the matrix.
	Method string `json:"method"`
	Of     string `json:"of"`
	// Largest holds the largest eigenvalues in descending order,
	// Smallest the smallest in ascending order.
	Largest  []float64 `json:"largest"`
	Smallest []float64 `json:"smallest"`
	// Iterations, Converged and the residual norms are those of Lanczos.
	Iterations        int       `json:"iterations,omitempty"`
	Converged         *bool     `json:"converged,omitempty"`
	LargestResiduals  []float64 `json:"largest_residuals,omitempty"`
	SmallestResiduals []float64 `json:"smallest_residuals,omitempty"`
}

// Summary describes a computed curvature. Fields that were not computed
// are left out of its JSON; the condition number is null for a singular
// matrix. Model, Data, Split, Samples, Output, Seconds and BLAS describe
// the caller's context and are left to it.
type Summary struct {
	Kind      string `json:"kind"`
	Curvature string `json:"curvature"`
	Model     string `json:"model"`
	Data      string `json:"data"`
	Split     string `json:"split"`
	Samples   int    `json:"samples"`
	// Params is "live" or "all"; W is the number of parameters covered,
	// TotalParams the network's.
	Params      string `json:"params"`
	W           int    `json:"w"`
	TotalParams int    `json:"total_params"`

	Output string `json:"output"`
	Shape  []int  `json:"shape"`
	// Inverse is set when the result is (C + Damping·I)⁻¹.
	Inverse bool     `json:"inverse"`
	Damping *float64 `json:"damping,omitempty"`
	Alpha   *float64 `json:"alpha,omitempty"`
	Probes  int      `json:"probes,omitempty"`

	// SpectrumOf tells what the spectral fields describe: "curvature"
	// (the matrix C, before any inverse), "output" (the written matrix,
	// for the recursive kind) or "entries" (the vector's entries, the
	// eigenvalues of diag(v)). Spectrum is Settings.Spectrum.
	SpectrumOf string   `json:"spectrum_of"`
	Spectrum   string   `json:"spectrum"`
	Trace      float64  `json:"trace"`
	Min        *float64 `json:"min,omitempty"`
	Max        *float64 `json:"max,omitempty"`
	// Condition is the 2-norm condition number, nil when it is infinite
	// or was not computed; ConditionJSON is its JSON form.
	Condition        *float64        `json:"-"`
	ConditionJSON    json.RawMessage `json:"condition,omitempty"`
	PositiveDefinite *bool           `json:"positive_definite,omitempty"`
	NegativeCount    *int            `json:"negative_count,omitempty"`
	ZeroCount        *int            `json:"zero_count,omitempty"`

	Eigen *Eigen `json:"eigen,omitempty"`

	// BuildSeconds is the time to compute the curvature, Seconds that of
	// the whole command.
	BuildSeconds float64 `json:"build_seconds"`
	Seconds      float64 `json:"seconds"`
	BLAS         string  `json:"blas"`

	// conditionKnown is set when Condition was computed, so that a nil
	// Condition means an infinite one.
	conditionKnown bool
}

// Result is a computed curvature: Matrix for the matrix kinds, Vector for
// the others.
type Result struct {
	Matrix  *mat.SymDense
	Vector  []float64
	Summary Summary
}
