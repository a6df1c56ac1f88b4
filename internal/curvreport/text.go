package curvreport

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the summary as aligned text.
func (s *Summary) WriteText(w io.Writer) error {
	what := s.Curvature
	if s.Inverse {
		what = "inverse (C + λI)⁻¹ of the " + s.Curvature
	}
	var extra []string
	if s.Damping != nil {
		extra = append(extra, fmt.Sprintf("λ = %.4g", *s.Damping))
	}
	if s.Alpha != nil {
		extra = append(extra, fmt.Sprintf("α = %g", *s.Alpha))
	}
	if s.Probes > 0 {
		extra = append(extra, fmt.Sprintf("%d probes", s.Probes))
	}
	tail := ""
	if len(extra) > 0 {
		tail = ", " + strings.Join(extra, ", ")
	}
	fmt.Fprintf(w, "%s of %s on %s/%s (%d samples)%s\n", what, s.Model, s.Data, s.Split, s.Samples, tail)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Params == "all" {
		fmt.Fprintf(tw, "parameters\t%d (all)\n", s.W)
	} else {
		fmt.Fprintf(tw, "parameters\t%d live of %d\n", s.W, s.TotalParams)
	}
	shape := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		shape[i] = fmt.Sprint(d)
	}
	fmt.Fprintf(tw, "output\t%s (float64, %s)\n", s.Output, strings.Join(shape, "×"))
	// Labels and notes for what the spectral fields describe.
	of, values, condNote, pdNote := "", "eigenvalues", "", ""
	switch s.SpectrumOf {
	case "entries":
		values, condNote, pdNote = "entries", " (max|v| / min|v|)", " (as diag(v))"
	case "output":
		of = " of the written matrix"
	case "curvature":
		if s.Inverse {
			of = " of C"
		}
	}
	if s.SpectrumOf == "entries" {
		fmt.Fprintf(tw, "trace\t%.6g (sum of the entries)\n", s.Trace)
	} else {
		fmt.Fprintf(tw, "trace%s\t%.6g\n", of, s.Trace)
	}
	if s.Min != nil {
		line := fmt.Sprintf("min %.6g, max %.6g", *s.Min, *s.Max)
		if s.NegativeCount != nil {
			line += fmt.Sprintf("; %d negative, %d zero", *s.NegativeCount, *s.ZeroCount)
		}
		if s.Spectrum == "lanczos" {
			line += " (Lanczos)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\n", values, of, line)
	}
	if s.conditionKnown {
		if s.Condition != nil {
			fmt.Fprintf(tw, "condition%s\t%.4g%s\n", of, *s.Condition, condNote)
		} else {
			fmt.Fprintf(tw, "condition%s\tinfinite (singular)\n", of)
		}
	}
	if s.PositiveDefinite != nil {
		yes := "no"
		if *s.PositiveDefinite {
			yes = "yes"
		}
		fmt.Fprintf(tw, "positive definite\t%s%s\n", yes, pdNote)
	}
	if e := s.Eigen; e != nil {
		how := "all eigenvalues"
		if e.Method == "lanczos" {
			conv := "converged"
			if e.Converged != nil && !*e.Converged {
				conv = "not converged"
			}
			how = fmt.Sprintf("Lanczos, %d products, %s", e.Iterations, conv)
		}
		fmt.Fprintf(tw, "extreme eigenvalues\tof the %s (%s)\n", e.Of, how)
		fmt.Fprintf(tw, "  largest\t%s\n", formatFloats(e.Largest))
		fmt.Fprintf(tw, "  smallest\t%s\n", formatFloats(e.Smallest))
	}
	fmt.Fprintf(tw, "time\t%.3g s (curvature %.3g s)\n", s.Seconds, s.BuildSeconds)
	fmt.Fprintf(tw, "BLAS\t%s\n", s.BLAS)
	return tw.Flush()
}

// formatFloats formats numbers with %.6g, separated by spaces.
func formatFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.6g", x)
	}
	return strings.Join(s, " ")
}
