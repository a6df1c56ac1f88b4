package runreport

import (
	"math"
	"slices"

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
	if all {
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
