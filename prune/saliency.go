package prune

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/secondorder/prune/hessian"
)

// Need is the curvature information a saliency uses.
type Need int

// The curvature needs of a saliency.
const (
	NeedNone     Need = iota // the parameter values only
	NeedDiagonal             // the diagonal of a curvature matrix, O(W) memory
	NeedInverse              // the inverse of a dense curvature matrix, O(W²) memory
)

var needNames = [...]string{NeedNone: "none", NeedDiagonal: "diagonal", NeedInverse: "inverse"}

// String returns none, diagonal or inverse.
func (n Need) String() string {
	if n < 0 || int(n) >= len(needNames) {
		return fmt.Sprintf("Need(%d)", int(n))
	}
	return needNames[n]
}

// Saliency is a rule that ranks parameters for removal, the extension
// point of Run: a new rule is a new type. Begin is called once per round
// with the live parameters p.Params of p.Net, in ascending order (position
// i is parameter p.Params[i]), and the objective's curvature on p.X and p.Y,
// that of E plus env.Decay·I, and gradient env.Gradient. It must not modify
// p.Net.
type Saliency interface {
	Need() Need
	Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error)
}

// Scorer ranks and removes the parameters of one round, at the positions of
// the Problem given to Begin, w holding their current values. Score writes
// the saliency of removing each position not removed yet to sal and its
// predicted increase of E (NaN for none) to pred; it returns an error when
// the curvature no longer allows a score (such as a *hessian.PivotError).
// Remove sets w[i] to exactly zero, adds the rule's update, if any, to the
// other entries and updates the scorer for the remaining positions.
type Scorer interface {
	Score(sal, pred, w []float64) error
	Remove(i int, w []float64) error
}

// Env holds what Run lends a Saliency's Begin: MaxBytes, the limit of dense
// W×W matrices (see hessian.CheckMemory); Decay, the μ of the objective's
// penalty ½μ‖θ‖² (λN for the weight decay λ), whose Hessian μI is added to
// every curvature; Gradient, the objective's gradient at the positions (nil:
// zero); and Report, which receives the curvature's numerical issues.
type Env struct {
	MaxBytes int64
	Decay    float64
	Gradient []float64
	Report   func(Issue)
}

func (e *Env) report(is Issue) {
	if e != nil && e.Report != nil {
		e.Report(is)
	}
}

func (e *Env) decay() float64 {
	if e == nil {
		return 0
	}
	return e.Decay
}

func (e *Env) gradient() []float64 {
	if e == nil {
		return nil
	}
	return e.Gradient
}

func (e *Env) maxBytes() int64 {
	if e == nil {
		return 0
	}
	return e.MaxBytes
}

// Curvature selects the curvature matrix a saliency is computed from.
type Curvature int

// The curvatures: OBS uses Exact, GaussNewton, Fisher and Recursive, OBD
// the diagonals of all but Recursive.
const (
	Exact              Curvature = iota // hessian.Exact, H = ∇²E
	GaussNewton                         // hessian.GaussNewton
	Fisher                              // hessian.Fisher
	Recursive                           // hessian.RecursiveInverse, for OBS
	BeckerLeCun                         // hessian.BeckerLeCun, for OBD
	LevenbergMarquardt                  // hessian.BeckerLeCun with LM, for OBD
	Hutchinson                          // hessian.Hutchinson on Exact, for OBD
)

var curvatureNames = [...]string{
	Exact:              "exact",
	GaussNewton:        "gn",
	Fisher:             "fisher",
	Recursive:          "recursive",
	BeckerLeCun:        "diag-bl",
	LevenbergMarquardt: "diag-lm",
	Hutchinson:         "hutchinson",
}

// String returns the name of the curvature: exact, gn, fisher, recursive,
// diag-bl, diag-lm or hutchinson, the name of its hessian.Kind.
func (c Curvature) String() string {
	if c < 0 || int(c) >= len(curvatureNames) {
		return fmt.Sprintf("Curvature(%d)", int(c))
	}
	return curvatureNames[c]
}

// Kind returns the curvature's entry in the registry of hessian.Kinds.
func (c Curvature) Kind() (hessian.Kind, error) {
	if c < 0 || int(c) >= len(curvatureNames) {
		return hessian.Kind{}, fmt.Errorf("unknown curvature %v", c)
	}
	return hessian.KindNamed(curvatureNames[c])
}

// Builder returns a curvature of a problem, for a saliency to use a
// curvature of the program's own (OBD.Builder, OBS.Builder).
type Builder func(p *hessian.Problem) hessian.Curvature

// ParseCurvature returns the curvature with the given name (see String).
func ParseCurvature(s string) (Curvature, error) {
	for i, name := range curvatureNames {
		if name == s {
			return Curvature(i), nil
		}
	}
	return 0, fmt.Errorf("unknown curvature %q (want exact, gn, fisher, recursive, diag-bl, diag-lm or hutchinson)", s)
}

// Magnitude is magnitude pruning, saliency |w_q| (the ranking of OBD with
// h_qq = 1), with no curvature and no prediction of the increase of E (NaN).
type Magnitude struct{}

// Need returns NeedNone.
func (Magnitude) Need() Need { return NeedNone }

// Begin returns the magnitude scorer.
func (Magnitude) Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error) {
	return magnitudeScorer{}, nil
}

type magnitudeScorer struct{}

func (magnitudeScorer) Score(sal, pred, w []float64) error {
	for i, v := range w {
		sal[i] = math.Abs(v)
		pred[i] = math.NaN()
	}
	return nil
}

// Static reports that a removal moves no other parameter.
func (magnitudeScorer) Static() bool { return true }

func (magnitudeScorer) Remove(i int, w []float64) error {
	w[i] = 0
	return nil
}

// OBD is Optimal Brain Damage: the saliency of parameter q, and its
// predicted increase of the objective, is
//
//	s_q = −g_q w_q + ½ h_qq w_q²,
//
// with g = Env.Gradient (nil: the classic ½ h_qq w_q²) and h_qq the diagonal
// of Curvature (default Exact), or of Builder's curvature when not nil, plus
// Env.Decay, once per round; Probes and Src are those of
// hessian.Hutchinson. A removal moves no other parameter; negative h_qq are
// reported as an IssueNegativeDiagonal.
//
// References:
//
//	Y. LeCun, J. S. Denker and S. A. Solla, Optimal Brain Damage, NIPS 2,
//	  1989.
type OBD struct {
	Curvature Curvature
	Builder   Builder
	Probes    int
	Src       rand.Source
}

// Need returns NeedDiagonal.
func (OBD) Need() Need { return NeedDiagonal }

// Validate returns an error when the curvature cannot give OBD a diagonal.
func (o OBD) Validate() error {
	if o.Builder == nil {
		k, err := o.Curvature.Kind()
		if err != nil || !k.Diagonal {
			return fieldErrorf("OBD", "Curvature", "%v cannot serve OBD: it needs one with a diagonal, %s", o.Curvature,
				hessian.KindList(func(k hessian.Kind) bool { return k.Diagonal }))
		}
	}
	if o.Probes < 0 {
		return fieldErrorf("OBD", "Probes", "%d is negative", o.Probes)
	}
	return nil
}

// Begin computes the diagonal over the live parameters of p.
func (o OBD) Begin(ctx context.Context, p *hessian.Problem, env *Env) (Scorer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := make([]float64, p.Dim())
	var err error
	name := o.Curvature.String()
	if o.Builder != nil {
		name = "own curvature"
		err = builtDiagTo(ctx, o.Builder(p), d)
	} else {
		k, _ := o.Curvature.Kind()
		err = k.DiagTo(ctx, p, hessian.KindOptions{Probes: o.Probes, Src: o.Src}, d)
	}
	if err != nil {
		return nil, fmt.Errorf("OBD diagonal (%s): %w", name, err)
	}
	if mu := env.decay(); mu != 0 {
		for i := range d {
			d[i] += mu
		}
	}
	neg := 0
	for i, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			q := paramIndex(p, i)
			env.report(Issue{Kind: IssueNotFinite, Index: q, Lambda: math.NaN(),
				Message: fmt.Sprintf("OBD diagonal entry of %v is %v", p.Net.ParamAt(q), v)})
			return nil, fmt.Errorf("OBD diagonal (%v): entry of %v is %v", o.Curvature, p.Net.ParamAt(q), v)
		}
		if v < 0 {
			neg++
		}
	}
	if neg > 0 {
		env.report(Issue{Kind: IssueNegativeDiagonal, Index: -1, Lambda: math.NaN(),
			Message: fmt.Sprintf("%d of %d diagonal entries (%v) are negative, so are their OBD saliencies; --curvature diag-lm or gn is never negative", neg, len(d), o.Curvature)})
	}
	return obdScorer{d: d, g: env.gradient()}, nil
}

// builtDiagTo writes the diagonal of c to dst: by its DiagTo when it has
// one, else from its products with the unit vectors.
func builtDiagTo(ctx context.Context, c hessian.Curvature, dst []float64) error {
	if len(dst) != c.Dim() {
		return fmt.Errorf("the curvature has dimension %d, the problem %d", c.Dim(), len(dst))
	}
	if dg, ok := c.(hessian.Diagonaler); ok {
		return dg.DiagTo(ctx, dst)
	}
	e := make([]float64, len(dst))
	ce := make([]float64, len(dst))
	for i := range dst {
		if err := ctx.Err(); err != nil {
			return err
		}
		e[i] = 1
		c.MulVecTo(ce, e)
		e[i] = 0
		dst[i] = ce[i]
	}
	return nil
}

type obdScorer struct{ d, g []float64 }

func (s obdScorer) Score(sal, pred, w []float64) error {
	for i, v := range w {
		sal[i] = 0.5 * s.d[i] * v * v
		if s.g != nil {
			sal[i] -= s.g[i] * v
		}
		pred[i] = sal[i]
	}
	return nil
}

// Static reports that a removal moves no other parameter.
func (obdScorer) Static() bool { return true }

func (s obdScorer) Remove(i int, w []float64) error {
	w[i] = 0
	return nil
}

// paramIndex returns the flat index of position i of p.
func paramIndex(p *hessian.Problem, i int) int {
	if p.Params == nil {
		return i
	}
	return p.Params[i]
}
