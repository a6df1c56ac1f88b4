package laplace

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"gonum.org/v1/gonum/mat"
)

// Record is what a model whose hyperparameters were re-estimated carries in
// its metadata under "laplace"; StartingPrior starts from its α and β.
type Record struct {
	Command     string    `json:"command"`
	Source      string    `json:"source"`
	Alpha       []float64 `json:"alpha"`
	Beta        *float64  `json:"beta,omitempty"`
	Gamma       float64   `json:"gamma"`
	LogEvidence float64   `json:"log_evidence"`
	// WeightDecay is the λ = α/(Nβ) of nn's objective whose minimum is
	// the MAP of an isotropic posterior (NaN for one α per layer).
	WeightDecay float64 `json:"weight_decay_equivalent"`
}

// recordOf returns the Record in net's metadata, if any.
func recordOf(net *nn.Network) (Record, bool) {
	var rec Record
	v, ok := net.Meta["laplace"]
	if !ok {
		return rec, false
	}
	b, err := json.Marshal(v)
	if err != nil || json.Unmarshal(b, &rec) != nil {
		return rec, false
	}
	return rec, len(rec.Alpha) > 0
}

// StartingPrior fills in the prior of s for net trained on (X, Y) when
// s.Alpha is zero, and returns where α came from: "Settings.Alpha" when it
// was set; else "the model's laplace record" (its α, per layer with
// perLayer, and its β for regression when s.Beta is zero); else "weight
// decay", the MAP's α = Nβλ (Nλ for classification) for the trainer's
// recorded weight decay λ; else "default", DefaultAlpha. With perLayer and
// no per-layer values, every layer gets α.
func StartingPrior(net *nn.Network, X, Y *mat.Dense, s *Settings, perLayer bool) string {
	regression := net.Loss() == nn.MSE
	from := "Settings.Alpha"
	if rec, ok := recordOf(net); ok && s.Alpha == 0 {
		s.Alpha, from = rec.Alpha[0], "the model's laplace record"
		if len(rec.Alpha) == net.NumLayers() && perLayer {
			s.LayerAlpha = rec.Alpha
		}
		if regression && s.Beta == 0 && rec.Beta != nil {
			s.Beta = *rec.Beta
		}
	}
	if s.Alpha == 0 {
		s.Alpha, from = DefaultAlpha, "default"
		if lambda, _ := prune.WeightDecayOf(net); lambda > 0 {
			N, _ := X.Dims()
			beta := 1.0
			if regression {
				beta = s.Beta
				if beta == 0 {
					beta = float64(N*net.Outputs()) / (2 * net.Objective(X, Y))
				}
			}
			s.Alpha, from = float64(N)*beta*lambda, "weight decay"
		}
	}
	if perLayer && s.LayerAlpha == nil {
		s.LayerAlpha = make([]float64, net.NumLayers())
		for l := range s.LayerAlpha {
			s.LayerAlpha[l] = s.Alpha
		}
	}
	return from
}

// Record returns the record of the posterior for a model's metadata, made
// by command from the model file source.
func (p *Posterior) Record(command, source string) Record {
	ev := p.Evidence()
	r := Record{
		Command: command, Source: source, Alpha: p.LayerAlpha(), Gamma: ev.Gamma,
		LogEvidence: ev.LogEvidence, WeightDecay: p.Alpha() / (float64(p.n) * p.Beta()),
	}
	if p.Regression() {
		b := p.Beta()
		r.Beta = &b
	}
	return r
}

// Summary describes a posterior: its network, the evidence and its terms,
// the hyperparameters and where they came from.
type Summary struct {
	Model       string    `json:"model"`
	Arch        string    `json:"arch"`
	Loss        string    `json:"loss"`
	Curvature   string    `json:"curvature"`
	Params      int       `json:"params"`
	Covered     int       `json:"covered"`
	Hidden      int       `json:"hidden_units"`
	N           int       `json:"n"`
	LogEvidence float64   `json:"log_evidence"`
	Data        float64   `json:"data_term"`
	Prior       float64   `json:"prior_term"`
	LogDet      float64   `json:"logdet_term"`
	LogAlpha    float64   `json:"log_alpha_term"`
	Noise       float64   `json:"noise_term"`
	Alpha       []float64 `json:"alpha"`
	AlphaFrom   string    `json:"alpha_from"`
	Beta        *float64  `json:"beta,omitempty"`
	Gamma       float64   `json:"gamma"`
	LayerGamma  []float64 `json:"layer_gamma"`
	GradNorm    float64   `json:"grad_norm"`
	Steps       int       `json:"reestimation_steps"`
	Retrained   bool      `json:"retrained"`
	TrainLoss   float64   `json:"train_mean_loss"`
}

// SummaryOf returns the summary of p, reached by the re-estimation steps
// (nil without re-estimation) from a prior that came from alphaFrom. Model
// and Retrained are left to the caller.
func SummaryOf(p *Posterior, steps []Step, alphaFrom string) Summary {
	net := p.net
	ev := p.Evidence()
	s := Summary{
		Arch: net.Arch(), Loss: net.Loss().String(), Curvature: p.Curvature().String(),
		Params: net.NumParams(), Covered: p.Dim(), N: p.n,
		LogEvidence: ev.LogEvidence, Data: ev.Data, Prior: ev.Prior, LogDet: ev.LogDet, LogAlpha: ev.LogAlpha, Noise: ev.Noise,
		Alpha: p.LayerAlpha(), AlphaFrom: alphaFrom, Gamma: ev.Gamma, LayerGamma: p.LayerGamma(),
		GradNorm: p.GradNorm(), Steps: len(steps),
		TrainLoss: net.Evaluate(p.X, p.Y).MeanLoss,
	}
	if steps != nil {
		s.AlphaFrom = "re-estimated"
	}
	for l := 0; l < net.NumLayers()-1; l++ {
		s.Hidden += net.Layer(l).Out
	}
	if p.Regression() {
		b := p.Beta()
		s.Beta = &b
	}
	return s
}

// WriteText writes the summary as text.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: %s (loss %s), Laplace posterior on %s over %d of %d parameters, N = %d\n",
		s.Model, s.Arch, s.Loss, s.Curvature, s.Covered, s.Params, s.N)
	fmt.Fprintf(w, "log evidence %.6g  (data %.6g, prior %.6g, −½ln|A| %.6g, ½Σln α %.6g, noise %.6g)\n",
		s.LogEvidence, s.Data, s.Prior, s.LogDet, s.LogAlpha, s.Noise)
	fmt.Fprintf(w, "α %s (%s)", AlphaText(s.Alpha), s.AlphaFrom)
	if s.Beta != nil {
		fmt.Fprintf(w, "  β %.6g (noise σ %.4g)", *s.Beta, 1/math.Sqrt(*s.Beta))
	}
	fmt.Fprintf(w, "  γ %.4g of %d (per layer %s)\n", s.Gamma, s.Covered, formatFloats(s.LayerGamma))
	if s.Steps > 0 {
		how := "θ fixed"
		if s.Retrained {
			how = "retrained between steps"
		}
		fmt.Fprintf(w, "hyperparameters re-estimated in %d steps (%s)\n", s.Steps, how)
	}
	fmt.Fprintf(w, "|∇S| at θ %.3g (zero at the MAP of α, β)\n", s.GradNorm)
}

// AlphaText formats prior precisions: one number when the layers share it,
// one per layer otherwise.
func AlphaText(a []float64) string {
	for _, v := range a[1:] {
		if v != a[0] {
			return formatFloats(a) + " (per layer)"
		}
	}
	return formatFloats(a[:1])
}

func formatFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.6g", x)
	}
	return strings.Join(s, " ")
}

// Metrics are the predictive's metrics on a data set: for regression the
// mean loss, the mean predictive standard deviation, the Gaussian NLL per
// output and the fraction within ±2σ; for classification the accuracy and
// the NLL and ECE of the predictive and of the MAP's plug-in probabilities.
type Metrics struct {
	Split string `json:"split"`
	N     int    `json:"n"`

	MeanLoss  *float64 `json:"mean_loss,omitempty"`
	MeanStd   *float64 `json:"mean_std,omitempty"`
	NLL       *float64 `json:"nll,omitempty"`
	Coverage2 *float64 `json:"coverage_2sigma,omitempty"`

	Accuracy      *float64 `json:"accuracy,omitempty"`
	NLLPredictive *float64 `json:"nll_predictive,omitempty"`
	NLLPlugin     *float64 `json:"nll_plugin,omitempty"`
	ECEPredictive *float64 `json:"ece_predictive,omitempty"`
	ECEPlugin     *float64 `json:"ece_plugin,omitempty"`
	Method        string   `json:"method,omitempty"`
}

// WriteText writes the metrics as one line.
func (m *Metrics) WriteText(w io.Writer) {
	if m.MeanStd != nil {
		fmt.Fprintf(w, "predictive on %s (n %d): mean loss %.6g  mean σ %.4g  NLL %.4g  within ±2σ %.1f%%\n",
			m.Split, m.N, *m.MeanLoss, *m.MeanStd, *m.NLL, 100**m.Coverage2)
		return
	}
	fmt.Fprintf(w, "predictive on %s (n %d, %s): accuracy %.2f%%  NLL %.4g (MAP %.4g)  ECE %.4g (MAP %.4g)\n",
		m.Split, m.N, m.Method, 100**m.Accuracy, *m.NLLPredictive, *m.NLLPlugin, *m.ECEPredictive, *m.ECEPlugin)
}

// Predictive is a posterior's predictive on a data set (X, Y).
type Predictive struct {
	X, Y       *mat.Dense
	Regression bool
	CE         bool
	// Mean and Std are the predictive mean and total standard deviation
	// (regression), or the latent mean and standard deviation
	// (classification); Prob and Plugin the predictive and MAP
	// probabilities (classification).
	Mean, Std    *mat.Dense
	Prob, Plugin *mat.Dense
	Metrics      Metrics
}

// PredictiveOf returns the predictive of p on (X, Y), drawing Monte Carlo
// samples from src for the Monte Carlo method.
func PredictiveOf(ctx context.Context, p *Posterior, X, Y *mat.Dense, method Method, samples int, src rand.Source) (*Predictive, error) {
	net := p.net
	N, _ := X.Dims()
	K := net.Outputs()
	pr := &Predictive{X: X, Y: Y, Regression: p.Regression(), CE: net.Loss() == nn.CE,
		Mean: mat.NewDense(N, K, nil), Std: mat.NewDense(N, K, nil)}
	m := &pr.Metrics
	m.N = N
	if pr.Regression {
		if err := p.PredictTo(ctx, pr.Mean, pr.Std, X); err != nil {
			return nil, err
		}
		var nll, sd, cover float64
		for i := range N {
			for k := range K {
				v := pr.Std.At(i, k)
				s := math.Sqrt(v)
				pr.Std.Set(i, k, s)
				r := Y.At(i, k) - pr.Mean.At(i, k)
				nll += 0.5*math.Log(2*math.Pi*v) + r*r/(2*v)
				sd += s
				if math.Abs(r) <= 2*s {
					cover++
				}
			}
		}
		nk := float64(N * K)
		ml := net.Evaluate(X, Y).MeanLoss
		nll, sd, cover = nll/nk, sd/nk, cover/nk
		m.MeanLoss, m.NLL, m.MeanStd, m.Coverage2 = &ml, &nll, &sd, &cover
		return pr, nil
	}
	if err := p.LatentTo(ctx, pr.Mean, pr.Std, X); err != nil {
		return nil, err
	}
	for i := range N {
		for k := range K {
			pr.Std.Set(i, k, math.Sqrt(math.Max(pr.Std.At(i, k), 0)))
		}
	}
	pr.Prob = mat.NewDense(N, K, nil)
	if err := p.ProbTo(ctx, pr.Prob, X, &PredictSettings{Method: method, Samples: samples, Src: src}); err != nil {
		return nil, err
	}
	pr.Plugin = net.Forward(X)
	acc, nllP := ClassMetrics(pr.Prob, Y, pr.CE)
	_, nllM := ClassMetrics(pr.Plugin, Y, pr.CE)
	eceP := ReliabilityOf(pr.Prob, Y, pr.CE).ECE()
	eceM := ReliabilityOf(pr.Plugin, Y, pr.CE).ECE()
	m.Accuracy, m.NLLPredictive, m.NLLPlugin = &acc, &nllP, &nllM
	m.ECEPredictive, m.ECEPlugin = &eceP, &eceM
	m.Method = method.String()
	if pr.CE && method == Probit {
		m.Method = "extended probit"
	}
	return pr, nil
}

// CSV returns the predictive as CSV: the sample, its input when there is
// one, the targets, and for regression the mean and standard deviation of
// each output; for classification the predictive and MAP probabilities
// and the latent mean and standard deviation of each output.
func (pr *Predictive) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	N, K := pr.Mean.Dims()
	_, xin := pr.X.Dims()
	_, yc := pr.Y.Dims()
	suffix := func(name string, k, of int) string {
		if of == 1 {
			return name
		}
		return fmt.Sprintf("%s_%d", name, k)
	}
	head := []string{"sample"}
	if xin == 1 {
		head = append(head, "x")
	}
	for k := range yc {
		head = append(head, suffix("target", k, yc))
	}
	for k := range K {
		if pr.Regression {
			head = append(head, suffix("mean", k, K), suffix("std", k, K))
		} else {
			head = append(head, suffix("prob", k, K), suffix("prob_map", k, K), suffix("latent_mean", k, K), suffix("latent_std", k, K))
		}
	}
	if err := w.Write(head); err != nil {
		return nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for i := range N {
		rec := []string{strconv.Itoa(i)}
		if xin == 1 {
			rec = append(rec, f(pr.X.At(i, 0)))
		}
		for k := range yc {
			rec = append(rec, f(pr.Y.At(i, k)))
		}
		for k := range K {
			if pr.Regression {
				rec = append(rec, f(pr.Mean.At(i, k)), f(pr.Std.At(i, k)))
			} else {
				rec = append(rec, f(pr.Prob.At(i, k)), f(pr.Plugin.At(i, k)), f(pr.Mean.At(i, k)), f(pr.Std.At(i, k)))
			}
		}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// Band returns the predictive mean and standard deviation of a one-input,
// one-output regression posterior at n points evenly spaced over [lo, hi].
func (p *Posterior) Band(ctx context.Context, lo, hi float64, n int) (xs, mean, sd []float64, err error) {
	X := mat.NewDense(n, 1, nil)
	for i := range n {
		X.Set(i, 0, lo+(hi-lo)*float64(i)/float64(n-1))
	}
	m := mat.NewDense(n, 1, nil)
	v := mat.NewDense(n, 1, nil)
	if err := p.PredictTo(ctx, m, v, X); err != nil {
		return nil, nil, nil, err
	}
	xs, mean, sd = X.RawMatrix().Data, m.RawMatrix().Data, v.RawMatrix().Data
	for i := range sd {
		sd[i] = math.Sqrt(sd[i])
	}
	return xs, mean, sd, nil
}

// EvidenceRow is one model of an evidence comparison: the posterior's
// summary with the live parameters and an error on a split (the mean loss
// for mse, the misclassification otherwise).
type EvidenceRow struct {
	Summary
	Live       int     `json:"live_params"`
	Error      float64 `json:"error"`
	ErrorName  string  `json:"error_measure"`
	Split      string  `json:"split"`
	BestByEvid bool    `json:"highest_evidence"`
}

// EvidenceRowOf returns the row of p with its error on (X, Y), the split
// named split.
func EvidenceRowOf(s Summary, p *Posterior, X, Y *mat.Dense, split string) EvidenceRow {
	r := EvidenceRow{Summary: s, Live: p.net.NumLive(), Split: split}
	met := p.net.Evaluate(X, Y)
	if p.net.Loss() == nn.MSE {
		r.Error, r.ErrorName = met.MeanLoss, "mean loss"
	} else {
		r.Error, r.ErrorName = 1-met.Accuracy, "misclassification"
	}
	return r
}

// MarkBest sets BestByEvid on the first row of highest log evidence.
func MarkBest(rows []EvidenceRow) {
	best := 0
	for i, r := range rows {
		if r.LogEvidence > rows[best].LogEvidence {
			best = i
		}
	}
	rows[best].BestByEvid = true
}

// EvidenceCSV returns the rows as CSV.
func EvidenceCSV(rows []EvidenceRow) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"model", "arch", "hidden_units", "live_params", "covered", "log_evidence", "alpha", "beta", "gamma", "train_mean_loss", "split", "error_measure", "error", "highest_evidence"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
	for _, r := range rows {
		beta := ""
		if r.Beta != nil {
			beta = f(*r.Beta)
		}
		_ = w.Write([]string{r.Model, r.Arch, strconv.Itoa(r.Hidden), strconv.Itoa(r.Live), strconv.Itoa(r.Covered),
			f(r.LogEvidence), strings.ReplaceAll(formatFloats(r.Alpha), " ", ";"), beta, f(r.Gamma), f(r.TrainLoss),
			r.Split, r.ErrorName, f(r.Error), strconv.FormatBool(r.BestByEvid)})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// UnmarshalText sets c to the curvature named by text, case-insensitively.
func (c *Curvature) UnmarshalText(text []byte) (err error) {
	*c, err = ParseCurvature(strings.ToLower(string(text)))
	return err
}

// UnmarshalText sets m to the method named by text, case-insensitively.
func (m *Method) UnmarshalText(text []byte) (err error) {
	*m, err = ParseMethod(strings.ToLower(string(text)))
	return err
}

// SettingError is an invalid setting: Field names it, Msg says why.
type SettingError struct{ Field, Msg string }

func (e *SettingError) Error() string { return "laplace: Settings." + e.Field + " " + e.Msg }

// SettingsField returns the name of the field at fault.
func (e *SettingError) SettingsField() string { return e.Field }

// Validate returns a *SettingError for the first invalid setting.
func (s *Settings) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"Alpha", s.Alpha}, {"Beta", s.Beta}} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			return &SettingError{f.name, fmt.Sprintf("%v: must be a positive number", f.v)}
		}
	}
	if s.Curvature < GaussNewton || s.Curvature > Diagonal {
		return &SettingError{"Curvature", fmt.Sprintf("%d: unknown", s.Curvature)}
	}
	return nil
}

// Points returns the mean confidence and the observed frequency of every
// bin that holds a sample, the points of a reliability diagram.
func (b *Reliability) Points() (conf, freq []float64) {
	for j := range b.N {
		if b.N[j] > 0 {
			conf = append(conf, b.Conf[j]/b.N[j])
			freq = append(freq, b.Hit[j]/b.N[j])
		}
	}
	return conf, freq
}
