package chart

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/secondorder/prune/laplace"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot/vg"
)

// Laplace draws the predictive band of a one-input, one-output
// regression over a grid reaching past the data, with the training data
// and the split's; otherwise the reliability diagram of the predictive and
// MAP probabilities.
func Laplace(ctx context.Context, p *laplace.Posterior, train, set *nn.Data, pr *laplace.Predictive) ([]byte, error) {
	net := p.Net()
	split := pr.Metrics.Split
	if pr.Regression && (net.Inputs() != 1 || net.Outputs() != 1) {
		return nil, fmt.Errorf("the chart is of a regression with 1 input and 1 output, or of a classifier; the model has %d inputs and %d outputs", net.Inputs(), net.Outputs())
	}
	if !pr.Regression {
		what := "predicted probability"
		if pr.CE {
			what = "confidence of the predicted class"
		}
		pn := Panel{Title: fmt.Sprintf("reliability on %s (ECE: Laplace %.3g, MAP %.3g)", split, *pr.Metrics.ECEPredictive, *pr.Metrics.ECEPlugin),
			X: what, Y: "observed frequency", XMax: 1, YMax: 1,
			Series: []Series{{Name: "perfect calibration", X: []float64{0, 1}, Y: []float64{0, 1}, Style: 2, Dashed: true}}}
		for i, P := range []*mat.Dense{pr.Prob, pr.Plugin} {
			name := []string{"Laplace (" + pr.Metrics.Method + ")", "MAP (plug-in)"}[i]
			xs, ys := laplace.ReliabilityOf(P, set.Y, pr.CE).Points()
			pn.Series = append(pn.Series, Series{Name: name, X: xs, Y: ys, Style: i})
		}
		return Column([]Panel{pn}, 6*vg.Inch, 5*vg.Inch)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range []*nn.Data{train, set} {
		for i := range s.Len() {
			lo, hi = math.Min(lo, s.X.At(i, 0)), math.Max(hi, s.X.At(i, 0))
		}
	}
	pad := 0.25 * (hi - lo)
	xs, mean, sd, err := p.Band(ctx, lo-pad, hi+pad, 300)
	if err != nil {
		return nil, err
	}
	b := Band{
		Title:     fmt.Sprintf("%s Laplace predictive (%s): ln evidence %.4g, γ %.3g", net.Arch(), p.Curvature(), p.Evidence().LogEvidence, p.Gamma()),
		BandLabel: "±2σ (1/β + gᵀA⁻¹g)", MeanLabel: "predictive mean", X: xs, Mean: mean, SD: sd,
		Data: []Series{{Name: "training data", X: mat.Col(nil, 0, train.X), Y: mat.Col(nil, 0, train.Y)}},
		Note: fmt.Sprintf("noise σ = 1/√β = %.3g", 1/math.Sqrt(p.Beta())),
	}
	if set != train {
		b.Data = append(b.Data, Series{Name: split + " data", X: mat.Col(nil, 0, set.X), Y: mat.Col(nil, 0, set.Y)})
	}
	return BandChart(b, 7*vg.Inch, 4.5*vg.Inch)
}

// Evidence draws the log evidence and the error against the hidden
// units or live parameters, one point per model, the highest evidence
// named in the title.
func Evidence(rows []laplace.EvidenceRow, byParams bool) ([]byte, error) {
	label := "hidden units"
	x := func(r laplace.EvidenceRow) float64 { return float64(r.Hidden) }
	if byParams {
		label = "live parameters"
		x = func(r laplace.EvidenceRow) float64 { return float64(r.Live) }
	}
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b laplace.EvidenceRow) int { return cmp.Compare(x(a), x(b)) })
	var xs, ev, er []float64
	var bestX float64
	for _, r := range rows {
		xs, ev, er = append(xs, x(r)), append(ev, r.LogEvidence), append(er, r.Error)
		if r.BestByEvid {
			bestX = x(r)
		}
	}
	what := rows[0].Split + " " + rows[0].ErrorName
	return Column([]Panel{
		{Title: fmt.Sprintf("log evidence (highest at %s = %g)", label, bestX), X: label, Y: "ln p(D | α, β)",
			Series: []Series{{Name: "Laplace log evidence", X: xs, Y: ev}}},
		{Title: what, X: label, Y: rows[0].ErrorName, Series: []Series{{Name: what, X: xs, Y: er, Style: 1}}},
	}, 6.5*vg.Inch, 7*vg.Inch)
}
