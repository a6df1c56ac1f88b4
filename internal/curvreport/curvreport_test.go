package curvreport

import (
	"math"
	"strings"
	"testing"

	"github.com/secondorder/prune/hessian"
	"gonum.org/v1/gonum/mat"
)

// The summaries of matrices with known eigenvalues: the diagonal summary
// from the entries, and hessian.Summarize of a rotated diagonal matrix
// QΛQᵀ with the same eigenvalues.
func TestSummariesKnown(t *testing.T) {
	for _, c := range []struct {
		vals     []float64
		cond     float64
		pd       bool
		neg, zer int
	}{
		{[]float64{1, 3}, 3, true, 0, 0},
		{[]float64{-1, 0, 2, 3}, math.Inf(1), false, 1, 1},
		{[]float64{-4, -2}, 2, false, 2, 0},
	} {
		n := len(c.vals)
		tr := 0.0
		for _, v := range c.vals {
			tr += v
		}
		check := func(what string, s hessian.Summary) {
			t.Helper()
			if s.Dim != n || math.Abs(s.Trace-tr) > 1e-12 || math.Abs(s.Min-c.vals[0]) > 1e-12 || math.Abs(s.Max-c.vals[n-1]) > 1e-12 ||
				s.PositiveDefinite != c.pd || s.NegativeCount != c.neg || s.ZeroCount != c.zer ||
				!(math.IsInf(c.cond, 1) && math.IsInf(s.Condition, 1) || math.Abs(s.Condition-c.cond) < 1e-9*c.cond) {
				t.Errorf("%s of eigenvalues %v = %+v", what, c.vals, s)
			}
		}
		check("DiagSummary", DiagSummary(c.vals))
		// Q is a Givens rotation in every pair of coordinates.
		q := mat.NewDense(n, n, nil)
		for i := 0; i < n; i++ {
			q.Set(i, i, 1)
		}
		for i := 0; i+1 < n; i += 2 {
			cs, sn := math.Cos(0.3), math.Sin(0.3)
			q.Set(i, i, cs)
			q.Set(i, i+1, -sn)
			q.Set(i+1, i, sn)
			q.Set(i+1, i+1, cs)
		}
		var a mat.Dense
		a.Mul(q, mat.NewDiagDense(n, c.vals))
		a.Mul(&a, q.T())
		h := mat.NewSymDense(n, nil)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				h.SetSym(i, j, a.At(i, j))
			}
		}
		s, err := hessian.Summarize(h)
		if err != nil {
			t.Fatal(err)
		}
		if c.zer > 0 {
			// Rounding makes the zero eigenvalue tiny, not exactly zero.
			if !(s.Condition > 1e12) {
				t.Errorf("Summarize of eigenvalues %v: condition %v, want huge", c.vals, s.Condition)
			}
			s.Condition = math.Inf(1)
		}
		check("hessian.Summarize", s)
	}
}

func TestValidateNamesFields(t *testing.T) {
	for _, c := range []struct {
		s     Settings
		field string
		other string
	}{
		{Settings{}, "Kind", ""},
		{Settings{Kind: "hessian"}, "Kind", ""},
		{Settings{Kind: "diag", Inverse: true}, "Inverse", "Settings.Kind"},
		{Settings{Kind: "exact", Damping: 1}, "Damping", "Settings.Inverse"},
		{Settings{Kind: "gn", Probes: 3}, "Probes", "Settings.Kind"},
		{Settings{Kind: "gn", NoSpectrum: true, Eigen: 2}, "NoSpectrum", "Settings.Eigen"},
		{Settings{Kind: "diag", FullSpectrum: true}, "FullSpectrum", "Settings.Kind"},
	} {
		err := c.s.Validate()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != c.field || !strings.Contains(err.Error(), c.other) {
			t.Errorf("%+v: %v, want an error about %s", c.s, err, c.field)
		}
	}
	if err := (&Settings{Kind: "exact", Inverse: true, Damping: 1, Eigen: 3}).Validate(); err != nil {
		t.Errorf("valid settings: %v", err)
	}
}
