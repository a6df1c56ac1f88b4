package runreport

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// IssuesOf returns the records of the issues of a run on net, each with
// the name of its parameter.
func IssuesOf(issues []prune.Issue, net *nn.Network) []Issue {
	recs := make([]Issue, len(issues))
	for i, is := range issues {
		r := Issue{Round: is.Round, Step: is.Step, Kind: is.Kind, Index: is.Index, Lambda: Num(is.Lambda), Message: is.Message}
		if is.Index >= 0 && is.Index < net.NumParams() {
			r.Param = net.ParamAt(is.Index).String()
		}
		recs[i] = r
	}
	return recs
}

// ParamSaliency is the saliency of one parameter.
type ParamSaliency struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Saliency Num    `json:"saliency"`
}

// Saliencies summarises the saliencies of a network's parameters: how many
// were scored and how many are pruned (NaN), the minimum, median and
// maximum, the 10 smallest and, on request, all in canonical order.
type Saliencies struct {
	Params   int             `json:"params"`
	Scored   int             `json:"scored"`
	Pruned   int             `json:"pruned"`
	Min      Num             `json:"min"`
	Median   Num             `json:"median"`
	Max      Num             `json:"max"`
	Smallest []ParamSaliency `json:"smallest"`
	All      []ParamSaliency `json:"all,omitempty"`

	listAll bool
}

// SalienciesOf returns the summary of the saliencies sal of net's
// parameters, listing all of them when all is set.
func SalienciesOf(sal []float64, net *nn.Network, all bool) Saliencies {
	s := Saliencies{Params: len(sal), Min: Num(math.NaN()), Median: Num(math.NaN()), Max: Num(math.NaN())}
	var scored []ParamSaliency
	for q, v := range sal {
		if math.IsNaN(v) {
			s.Pruned++
			continue
		}
		scored = append(scored, ParamSaliency{Index: q, Name: net.ParamAt(q).String(), Saliency: Num(v)})
	}
	s.Scored = len(scored)
	if s.listAll = all; all {
		s.All = slices.Clone(scored)
	}
	slices.SortStableFunc(scored, func(a, b ParamSaliency) int {
		switch {
		case a.Saliency < b.Saliency:
			return -1
		case a.Saliency > b.Saliency:
			return 1
		}
		return 0
	})
	k := len(scored)
	if k == 0 {
		return s
	}
	s.Min, s.Max = scored[0].Saliency, scored[k-1].Saliency
	if k%2 == 1 {
		s.Median = scored[k/2].Saliency
	} else {
		s.Median = (scored[k/2-1].Saliency + scored[k/2].Saliency) / 2
	}
	s.Smallest = scored[:min(10, k)]
	return s
}

// SaliencySummary is the account of the saliency command (JSON with --json).
type SaliencySummary struct {
	Model   string `json:"model"`
	Data    string `json:"data"`
	Samples int    `json:"samples"`
	Method  string `json:"method"`
	// Damping is the damping λ the saliencies were computed with, after
	// any escalation (null for methods without one), and Decay the λN of
	// the trained objective's penalty (0 for the loss alone).
	Damping Num     `json:"damping"`
	Decay   float64 `json:"objective_decay"`
	Health  Health  `json:"health"`
	Output  string  `json:"output"`
	Saliencies
	Seconds float64 `json:"seconds"`
	// Objective names the objective of a curvature's saliencies, empty
	// for magnitude; it is printed in the text only.
	Objective string `json:"-"`
}

// WriteText prints the summary and the smallest saliencies (or all of them).
func (s *SaliencySummary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s saliencies of %s on %s/train (%d samples)\n", s.Method, s.Model, s.Data, s.Samples)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "parameters\t%d (%d scored, %d pruned: NaN)\n", s.Params, s.Scored, s.Pruned)
	fmt.Fprintf(tw, "output\t%s (float64, %d)\n", s.Output, s.Params)
	fmt.Fprintf(tw, "min / median / max\t%.6g / %.6g / %.6g\n", float64(s.Min), float64(s.Median), float64(s.Max))
	if !math.IsNaN(float64(s.Damping)) {
		fmt.Fprintf(tw, "damping\tλ = %g\n", float64(s.Damping))
	}
	if s.Objective != "" {
		fmt.Fprintf(tw, "objective\t%s (λN = %g)\n", s.Objective, s.Decay)
	}
	fmt.Fprintf(tw, "health\t%s\n", s.Health.Line())
	fmt.Fprintf(tw, "time\t%.3g s\n", s.Seconds)
	tw.Flush()
	list, title := s.Smallest, "smallest"
	if s.listAll {
		list, title = s.All, "all, in canonical order"
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "index\tparameter\tsaliency\t\n")
	for _, p := range list {
		fmt.Fprintf(tw, "%d\t%s\t%.6g\t\n", p.Index, p.Name, float64(p.Saliency))
	}
	return tw.Flush()
}
