package hessian

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Defaults of KindOptions.Probes and KindOptions.Alpha.
const (
	DefaultProbes = 100
	DefaultAlpha  = 1e-4
)

// KindOptions holds the Probes and Src (nil: a fixed seed) of hutchinson
// and the Alpha of recursive; zero selects the default.
type KindOptions struct {
	Probes int
	Src    rand.Source
	Alpha  float64
}

// Kind describes a named curvature that the command line and package prune
// select by Name (such as "exact" or "diag-lm"), with Desc for messages and
// Help for help texts. Dense reports a dense matrix built directly (a
// Denser, which OBS can invert), Diagonal a diagonal without it (for OBD)
// and Estimate a stochastic one, InverseOnly a kind of which only the
// inverse is built, PSD one positive semi-definite by construction and
// LowRank one kept as a LowRank. New returns the curvature on p, nil for
// InverseOnly and LowRank kinds.
type Kind struct {
	Name, Desc, Help          string
	Dense, Diagonal, Estimate bool
	InverseOnly, PSD, LowRank bool
	New                       func(p *Problem, o KindOptions) Curvature
}

// DenseMemory returns the bytes a dense build of the kind on p needs.
func (k Kind) DenseMemory(p *Problem) int64 {
	b := DenseBytes(p.Dim())
	if k.Name == "exact" && p.Params != nil {
		b += DenseBytes(p.Net.NumParams())
	}
	return b
}

// LowRankRows returns the rank m of a low-rank kind on samples rows of p
// (times the outputs for gn-lowrank), zero for other kinds.
func (k Kind) LowRankRows(p *Problem, samples int) int {
	switch k.Name {
	case "fisher-lowrank":
		return samples
	case "gn-lowrank":
		return samples * p.Net.Outputs()
	}
	return 0
}

// LowRankMemory returns the LowRankBytes of a low-rank kind on samples rows
// of p, zero for other kinds.
func (k Kind) LowRankMemory(p *Problem, samples int) int64 {
	if !k.LowRank {
		return 0
	}
	return LowRankBytes(p.Dim(), k.LowRankRows(p, samples))
}

// DiagTo writes the diagonal (for hutchinson its estimate) of the kind on p
// to dst; it returns an error for a kind without one.
func (k Kind) DiagTo(ctx context.Context, p *Problem, o KindOptions, dst []float64) error {
	if !k.Diagonal {
		return fmt.Errorf("hessian: curvature %s has no diagonal fast path", k.Name)
	}
	switch c := k.New(p, o).(type) {
	case Hutchinson:
		return c.EstimateDiagTo(ctx, dst)
	case Diagonaler:
		return c.DiagTo(ctx, dst)
	}
	return fmt.Errorf("hessian: curvature %s has no diagonal", k.Name)
}

var kinds = []Kind{
	{Name: "exact", Desc: "exact Hessian H", Help: "the exact Hessian H = ∇²E", Dense: true, Diagonal: true,
		New: func(p *Problem, o KindOptions) Curvature { return Exact{P: p} }},
	{Name: "gn", Desc: "Gauss–Newton matrix G", Help: "the Gauss–Newton (outer-product) matrix G = Σ Jᵀ Λ J", Dense: true, Diagonal: true, PSD: true,
		New: func(p *Problem, o KindOptions) Curvature { return GaussNewton{P: p} }},
	{Name: "fisher", Desc: "empirical Fisher matrix F", Help: "the empirical Fisher matrix F = Σ g gᵀ of the per-sample gradients", Dense: true, Diagonal: true, PSD: true,
		New: func(p *Problem, o KindOptions) Curvature { return Fisher{P: p} }},
	{Name: "fisher-lowrank", Desc: "low-rank empirical Fisher matrix λI + F", Help: "the empirical Fisher matrix of m sampled gradients plus damping, in its Woodbury form (O(m·W))", LowRank: true, PSD: true},
	{Name: "gn-lowrank", Desc: "low-rank Gauss–Newton matrix λI + G", Help: "the Gauss–Newton matrix of m sampled rows plus damping, in its Woodbury form (O(m·outputs·W))", LowRank: true, PSD: true},
	{Name: "recursive", Desc: "OBS recursive inverse (NαI + G)⁻¹", Help: "the Optimal Brain Surgeon recursive inverse (NαI + G)⁻¹ of the summed loss", InverseOnly: true, PSD: true},
	{Name: "diag-bl", Desc: "Becker–LeCun diagonal", Help: "the Becker–LeCun back-propagated diagonal approximation of H", Diagonal: true,
		New: func(p *Problem, o KindOptions) Curvature { return BeckerLeCun{P: p} }},
	{Name: "diag-lm", Desc: "Levenberg–Marquardt diagonal", Help: "the Levenberg–Marquardt form of the Becker–LeCun diagonal, without f″ terms, ≥ 0", Diagonal: true, PSD: true,
		New: func(p *Problem, o KindOptions) Curvature { return BeckerLeCun{P: p, LM: true} }},
	{Name: "hutchinson", Desc: "Hutchinson estimate of the diagonal of H", Help: "Hutchinson's estimate of the diagonal of H from Rademacher probes", Diagonal: true, Estimate: true,
		New: func(p *Problem, o KindOptions) Curvature {
			return Hutchinson{C: Exact{P: p}, Probes: o.Probes, Src: o.Src}
		}},
}

// Kinds returns the curvature kinds, in a fixed order.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// KindNamed returns the kind with the given name, case-insensitively.
func KindNamed(name string) (Kind, error) {
	for _, k := range kinds {
		if strings.EqualFold(k.Name, name) {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("unknown curvature %q (want %s)", name, KindList(func(Kind) bool { return true }))
}

// KindList returns the names of the kinds for which keep holds, as
// "a, b or c".
func KindList(keep func(Kind) bool) string {
	var names []string
	for _, k := range kinds {
		if keep(k) {
			names = append(names, k.Name)
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
