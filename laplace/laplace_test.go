package laplace

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// close reports whether a and b agree to tol relative to max(1, |b|).
func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// linearProblem returns N samples of t = Φw + N(0, σ²) with d inputs and
// the design matrix Φ of the inputs and a column of ones, in the toolkit's
// parameter order (W, then b).
func linearProblem(N, d int, sigma float64, seed uint64) (X, Y, Phi *mat.Dense) {
	rng := rand.New(rand.NewPCG(seed, 11))
	X = mat.NewDense(N, d, nil)
	Y = mat.NewDense(N, 1, nil)
	Phi = mat.NewDense(N, d+1, nil)
	for i := range N {
		t := -0.4
		for j := range d {
			x := 2*rng.Float64() - 1
			X.Set(i, j, x)
			Phi.Set(i, j, x)
			t += float64(j+1) * 0.7 * x
		}
		Phi.Set(i, d, 1)
		Y.Set(i, 0, t+sigma*rng.NormFloat64())
	}
	return X, Y, Phi
}

// blr holds Bishop §3.5's closed forms for given α and β.
type blr struct {
	A, S     *mat.Dense // A = αI + βΦᵀΦ, S = A⁻¹
	m        *mat.VecDense
	evidence float64
	gamma    float64
	res2     float64 // ‖t − Φm‖²
}

func bayesLinear(Phi, Y *mat.Dense, alpha, beta float64) blr {
	N, M := Phi.Dims()
	var PtP mat.Dense
	PtP.Mul(Phi.T(), Phi)
	A := mat.NewDense(M, M, nil)
	A.Scale(beta, &PtP)
	for i := range M {
		A.Set(i, i, A.At(i, i)+alpha)
	}
	var S mat.Dense
	if err := S.Inverse(A); err != nil {
		panic(err)
	}
	var Pt mat.VecDense
	Pt.MulVec(Phi.T(), Y.ColView(0))
	var m mat.VecDense
	m.MulVec(&S, &Pt)
	m.ScaleVec(beta, &m)
	var r mat.VecDense
	r.MulVec(Phi, &m)
	r.SubVec(Y.ColView(0), &r)
	res2 := mat.Dot(&r, &r)
	E := beta/2*res2 + alpha/2*mat.Dot(&m, &m)
	var lu mat.LU
	lu.Factorize(A)
	logDet, _ := lu.LogDet()
	ev := float64(M)/2*math.Log(alpha) + float64(N)/2*math.Log(beta) - E - logDet/2 - float64(N)/2*math.Log(2*math.Pi)
	var eig mat.EigenSym
	sym := mat.NewSymDense(M, nil)
	for i := range M {
		for j := i; j < M; j++ {
			sym.SetSym(i, j, beta*PtP.At(i, j))
		}
	}
	eig.Factorize(sym, false)
	var gamma float64
	for _, l := range eig.Values(nil) {
		gamma += l / (l + alpha)
	}
	return blr{A: A, S: &S, m: &m, evidence: ev, gamma: gamma, res2: res2}
}

func linearNet(t *testing.T, d int) *nn.Network {
	net, err := nn.New([]int{d, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(5, 5))
	return net
}

// TestBayesianLinearRegression checks the Laplace approximation of a
// network without hidden layers, a linear output and mse against Bishop
// §3.5's closed forms: the MAP m_N, the predictive variance
// 1/β + φᵀS_Nφ, the evidence (3.86) and γ (3.91), for every curvature.
func TestBayesianLinearRegression(t *testing.T) {
	ctx := context.Background()
	X, Y, Phi := linearProblem(40, 3, 0.2, 1)
	const alpha, beta = 0.7, 20.0
	want := bayesLinear(Phi, Y, alpha, beta)

	net := linearNet(t, 3)
	if _, err := MAP(ctx, net, X, Y, []float64{alpha}, beta, nil); err != nil {
		t.Fatal(err)
	}
	for q, th := range net.RawParams() {
		if !close(th, want.m.AtVec(q), 1e-10) {
			t.Errorf("θ[%d] = %.15g, m_N = %.15g", q, th, want.m.AtVec(q))
		}
	}
	Xt, _, Phit := linearProblem(7, 3, 0.2, 2)
	for _, c := range []Curvature{Exact, GaussNewton} {
		p, err := Fit(ctx, net, X, Y, &Settings{Curvature: c, Alpha: alpha, Beta: beta})
		if err != nil {
			t.Fatal(err)
		}
		ev := p.Evidence()
		if !close(ev.LogEvidence, want.evidence, 1e-10) {
			t.Errorf("%v: log evidence %.15g, closed form %.15g", c, ev.LogEvidence, want.evidence)
		}
		if !close(ev.Gamma, want.gamma, 1e-10) {
			t.Errorf("%v: γ %.15g, closed form %.15g", c, ev.Gamma, want.gamma)
		}
		if g := floats.Sum(p.LayerGamma()); !close(g, want.gamma, 1e-10) {
			t.Errorf("%v: γ by the trace %.15g, closed form %.15g", c, g, want.gamma)
		}
		mean := mat.NewDense(7, 1, nil)
		variance := mat.NewDense(7, 1, nil)
		if err := p.PredictTo(ctx, mean, variance, Xt); err != nil {
			t.Fatal(err)
		}
		for i := range 7 {
			phi := Phit.RowView(i)
			wantMean := mat.Dot(phi, want.m)
			var sphi mat.VecDense
			sphi.MulVec(want.S, phi)
			wantVar := 1/beta + mat.Dot(phi, &sphi)
			if !close(mean.At(i, 0), wantMean, 1e-10) || !close(variance.At(i, 0), wantVar, 1e-10) {
				t.Errorf("%v: x%d: mean %.15g variance %.15g, closed form %.15g %.15g", c, i, mean.At(i, 0), variance.At(i, 0), wantMean, wantVar)
			}
		}
	}
}

// TestBayesianLinearReestimation checks the re-estimated α and β against
// the fixed point of Bishop's (3.92) and (3.95) iterated on the closed
// forms: with retraining, m_N follows α and β; without, m and the
// eigenvalues stay those of the starting α and β.
func TestBayesianLinearReestimation(t *testing.T) {
	ctx := context.Background()
	X, Y, Phi := linearProblem(60, 2, 0.3, 3)
	N, _ := Phi.Dims()
	const alpha0, beta0 = 1.0, 1.0

	// With retraining.
	a, b := alpha0, beta0
	for range 10000 {
		s := bayesLinear(Phi, Y, a, b)
		na := s.gamma / mat.Dot(s.m, s.m)
		nb := (float64(N) - s.gamma) / s.res2
		done := math.Abs(na-a) <= 1e-15*a && math.Abs(nb-b) <= 1e-15*b
		a, b = na, nb
		if done {
			break
		}
	}
	wantEv := bayesLinear(Phi, Y, a, b).evidence

	net := linearNet(t, 2)
	if _, err := MAP(ctx, net, X, Y, []float64{alpha0}, beta0, nil); err != nil {
		t.Fatal(err)
	}
	p, steps, err := Optimize(ctx, net, X, Y, &Settings{Alpha: alpha0, Beta: beta0}, &OptimizeSettings{Retrain: true, Tolerance: 1e-13, Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !close(p.Alpha(), a, 1e-10) || !close(p.Beta(), b, 1e-10) {
		t.Errorf("retrained: α %.15g β %.15g after %d steps, closed form α %.15g β %.15g", p.Alpha(), p.Beta(), len(steps), a, b)
	}
	if ev := p.Evidence().LogEvidence; !close(ev, wantEv, 1e-10) {
		t.Errorf("retrained: log evidence %.15g, closed form %.15g", ev, wantEv)
	}
	// The evidence at the optimum is not below that of the start.
	if p.Evidence().LogEvidence < steps[0].LogEvidence {
		t.Errorf("evidence fell from %v to %v", steps[0].LogEvidence, p.Evidence().LogEvidence)
	}

	// Without retraining: θ = m_N(α₀, β₀) fixed.
	s0 := bayesLinear(Phi, Y, alpha0, beta0)
	var PtP mat.Dense
	PtP.Mul(Phi.T(), Phi)
	var eig mat.EigenSym
	eig.Factorize(mat.NewSymDense(3, PtP.RawMatrix().Data), false)
	lams := eig.Values(nil)
	a, b = alpha0, beta0
	for range 10000 {
		var g float64
		for _, l := range lams {
			g += b * l / (b*l + a)
		}
		na := g / mat.Dot(s0.m, s0.m)
		nb := (float64(N) - g) / s0.res2
		done := math.Abs(na-a) <= 1e-15*a && math.Abs(nb-b) <= 1e-15*b
		a, b = na, nb
		if done {
			break
		}
	}
	p, _, err = Optimize(ctx, net, X, Y, &Settings{Alpha: alpha0, Beta: beta0}, &OptimizeSettings{Tolerance: 1e-13, Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !close(p.Alpha(), a, 1e-10) || !close(p.Beta(), b, 1e-10) {
		t.Errorf("fixed θ: α %.15g β %.15g, closed form α %.15g β %.15g", p.Alpha(), p.Beta(), a, b)
	}
}

// TestLayerAlpha checks that one α per layer, all equal, gives the
// isotropic posterior, and that γ by the trace equals γ by the
// eigenvalues on a network with a hidden layer.
func TestLayerAlpha(t *testing.T) {
	ctx := context.Background()
	X, Y, _ := linearProblem(30, 2, 0.1, 4)
	net, _ := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(1, 2))
	if _, err := MAP(ctx, net, X, Y, []float64{0.5}, 50, nil); err != nil {
		t.Fatal(err)
	}
	iso, err := Fit(ctx, net, X, Y, &Settings{Alpha: 0.5, Beta: 50})
	if err != nil {
		t.Fatal(err)
	}
	per, err := Fit(ctx, net, X, Y, &Settings{LayerAlpha: []float64{0.5, 0.5}, Beta: 50})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := iso.Evidence().LogEvidence, per.Evidence().LogEvidence; !close(a, b, 1e-12) {
		t.Errorf("isotropic evidence %v, per layer %v", a, b)
	}
	if a, b := iso.Gamma(), floats.Sum(iso.LayerGamma()); !close(a, b, 1e-10) {
		t.Errorf("γ by eigenvalues %v, by the trace %v", a, b)
	}
	if g := iso.GradNorm(); g > 1e-6 {
		t.Errorf("gradient of S at the MAP %v", g)
	}
	// Per-layer re-estimation differs from the isotropic one.
	la, _, err := per.Reestimate()
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != 2 || la[0] == la[1] {
		t.Errorf("per-layer re-estimate %v", la)
	}
	if _, err := Fit(ctx, net, X, Y, &Settings{LayerAlpha: []float64{1}}); err == nil {
		t.Error("one α for two layers accepted")
	}
}

// TestDiagonal checks the diagonal posterior against the formulas on the
// diagonal of the Gauss–Newton matrix, which for a linear network is
// β Σₙ φₙ².
func TestDiagonal(t *testing.T) {
	ctx := context.Background()
	X, Y, Phi := linearProblem(25, 2, 0.2, 5)
	net := linearNet(t, 2)
	const alpha, beta = 2.0, 10.0
	if _, err := MAP(ctx, net, X, Y, []float64{alpha}, beta, nil); err != nil {
		t.Fatal(err)
	}
	p, err := Fit(ctx, net, X, Y, &Settings{Curvature: Diagonal, Alpha: alpha, Beta: beta})
	if err != nil {
		t.Fatal(err)
	}
	N, M := Phi.Dims()
	var logDet, gamma float64
	for j := range M {
		var h float64
		for i := range N {
			h += Phi.At(i, j) * Phi.At(i, j)
		}
		a := beta*h + alpha
		logDet += math.Log(a)
		gamma += beta * h / a
	}
	if !close(p.LogDetA(), logDet, 1e-12) || !close(p.Gamma(), gamma, 1e-12) {
		t.Errorf("ln|A| %v γ %v, want %v %v", p.LogDetA(), p.Gamma(), logDet, gamma)
	}
}

// TestErrors checks the errors for settings that do not fit.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	X, Y, _ := linearProblem(10, 1, 0.1, 6)
	net := linearNet(t, 1)
	if _, err := Fit(ctx, net, X, Y, &Settings{Alpha: -1}); err == nil {
		t.Error("negative α accepted")
	}
	if _, err := Fit(ctx, net, X, Y, &Settings{Beta: math.NaN()}); err == nil {
		t.Error("NaN β accepted")
	}
	cls, _ := nn.New([]int{1, 1}, []nn.Activation{nn.Sigmoid}, nn.BCE)
	Yb := mat.NewDense(10, 1, nil)
	if _, err := Fit(ctx, cls, X, Yb, &Settings{Beta: 2}); err == nil {
		t.Error("β accepted for bce")
	}
	p, err := Fit(ctx, cls, X, Yb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PredictTo(ctx, nil, nil, X); err != ErrNotRegression {
		t.Errorf("PredictTo on bce: %v", err)
	}
}

// TestOptimizePerLayer checks MacKay's per-layer re-estimation with
// retraining on a tanh network: it converges, ends at a MAP, at a fixed
// point of the re-estimation, with an evidence not below the start's.
func TestOptimizePerLayer(t *testing.T) {
	ctx := context.Background()
	X, Y, _ := linearProblem(40, 2, 0.1, 7)
	net, _ := nn.New([]int{2, 4, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(3, 1))
	if _, err := MAP(ctx, net, X, Y, []float64{1}, 100, nil); err != nil {
		t.Fatal(err)
	}
	p, steps, err := Optimize(ctx, net, X, Y, &Settings{LayerAlpha: []float64{1, 1}, Beta: 100}, &OptimizeSettings{Retrain: true, Tolerance: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	a := p.LayerAlpha()
	if a[0] == a[1] || !math.IsNaN(p.Alpha()) {
		t.Errorf("per-layer α %v, isotropic %v", a, p.Alpha())
	}
	na, nb, err := p.Reestimate()
	if err != nil {
		t.Fatal(err)
	}
	for l := range a {
		if !close(na[l], a[l], 1e-6) {
			t.Errorf("layer %d: α %v re-estimates to %v", l, a[l], na[l])
		}
	}
	if !close(nb, p.Beta(), 1e-6) {
		t.Errorf("β %v re-estimates to %v", p.Beta(), nb)
	}
	if p.GradNorm() > 1e-5 {
		t.Errorf("|∇S| %v at the end", p.GradNorm())
	}
	if p.Evidence().LogEvidence < steps[0].LogEvidence {
		t.Errorf("evidence fell from %v to %v", steps[0].LogEvidence, p.Evidence().LogEvidence)
	}
}
