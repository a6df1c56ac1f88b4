package laplace

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// twoParam is a network with one input, one output and no hidden layer,
// so two parameters (w, b), with a non-linear output: a logistic regression
// (bce) or a tanh regression (mse).
type twoParam struct {
	name  string
	act   nn.Activation
	loss  nn.Loss
	beta  float64 // noise precision (mse)
	draw  func(rng *rand.Rand, x float64) float64
	sumNE func(w, b float64, X, Y []float64) float64 // E(w, b)
}

var twoParams = []twoParam{
	{
		name: "bce", act: nn.Sigmoid, loss: nn.BCE,
		draw: func(rng *rand.Rand, x float64) float64 {
			if rng.Float64() < sigmoid(1.5*x-0.5) {
				return 1
			}
			return 0
		},
		sumNE: func(w, b float64, X, Y []float64) float64 {
			var e float64
			for i, x := range X {
				a := w*x + b
				e += math.Max(a, 0) + math.Log1p(math.Exp(-math.Abs(a))) - Y[i]*a
			}
			return e
		},
	},
	{
		name: "mse tanh", act: nn.Tanh, loss: nn.MSE, beta: 1 / 0.3 / 0.3,
		draw: func(rng *rand.Rand, x float64) float64 { return math.Tanh(1.2*x+0.3) + 0.3*rng.NormFloat64() },
		sumNE: func(w, b float64, X, Y []float64) float64 {
			var e float64
			for i, x := range X {
				d := math.Tanh(w*x+b) - Y[i]
				e += 0.5 * d * d
			}
			return e
		},
	},
}

// numericLogEvidence integrates exp(−S(θ)) over a grid of ±R posterior
// standard deviations along the eigenvectors of A around θ_MAP, with
// S = βE + ½α‖θ‖², and returns ln p(D|α,β).
func numericLogEvidence(c twoParam, X, Y []float64, alpha, beta float64, theta []float64, A *mat.SymDense) float64 {
	var eig mat.EigenSym
	eig.Factorize(A, true)
	lam := eig.Values(nil)
	var V mat.Dense
	eig.VectorsTo(&V)
	S := func(w, b float64) float64 {
		return beta*c.sumNE(w, b, X, Y) + 0.5*alpha*(w*w+b*b)
	}
	S0 := S(theta[0], theta[1])
	const R, n = 10.0, 201
	h := 2 * R / (n - 1)
	s0, s1 := 1/math.Sqrt(lam[0]), 1/math.Sqrt(lam[1])
	var sum float64
	for i := range n {
		u := -R + h*float64(i)
		for j := range n {
			v := -R + h*float64(j)
			w := theta[0] + V.At(0, 0)*s0*u + V.At(0, 1)*s1*v
			b := theta[1] + V.At(1, 0)*s0*u + V.At(1, 1)*s1*v
			wt := 1.0
			if i == 0 || i == n-1 {
				wt *= 0.5
			}
			if j == 0 || j == n-1 {
				wt *= 0.5
			}
			sum += wt * math.Exp(S0-S(w, b))
		}
	}
	logZ := -S0 + math.Log(sum*h*h*s0*s1) + math.Log(alpha/(2*math.Pi))
	if c.loss == nn.MSE {
		N := float64(len(X))
		logZ += N / 2 * math.Log(beta/(2*math.Pi))
	}
	return logZ
}

// TestTwoParameterEvidence compares the Laplace evidence of a two-parameter
// network with a numerical integral of its posterior: the gap must shrink
// as the number of samples grows and be small once the posterior is near
// Gaussian.
func TestTwoParameterEvidence(t *testing.T) {
	ctx := context.Background()
	const alpha = 1.0
	sizes := []int{10, 40, 160, 640}
	for _, c := range twoParams {
		// The data sets are nested: each is the first N samples of one draw.
		rng := rand.New(rand.NewPCG(1, 3))
		allX := make([]float64, sizes[len(sizes)-1])
		allY := make([]float64, len(allX))
		for i := range allX {
			allX[i] = rng.NormFloat64()
			allY[i] = c.draw(rng, allX[i])
		}
		var gaps []float64
		for _, N := range sizes {
			Xs := append([]float64(nil), allX[:N]...)
			Ys := append([]float64(nil), allY[:N]...)
			X := mat.NewDense(N, 1, Xs)
			Y := mat.NewDense(N, 1, Ys)
			net, err := nn.New([]int{1, 1}, []nn.Activation{c.act}, c.loss)
			if err != nil {
				t.Fatal(err)
			}
			beta := c.beta
			if _, err := MAP(ctx, net, X, Y, []float64{alpha}, beta, nil); err != nil {
				t.Fatal(err)
			}
			p, err := Fit(ctx, net, X, Y, &Settings{Curvature: Exact, Alpha: alpha, Beta: beta})
			if err != nil {
				t.Fatal(err)
			}
			if beta == 0 {
				beta = 1
			}
			lap := p.Evidence().LogEvidence
			A := mat.NewSymDense(2, nil)
			p.chol.ToSym(A)
			num := numericLogEvidence(c, Xs, Ys, alpha, beta, net.RawParams(), A)
			gap := math.Abs(lap - num)
			t.Logf("%s N=%d: Laplace %.6f numerical %.6f gap %.2e", c.name, N, lap, num, gap)
			gaps = append(gaps, gap)
		}
		for i := 1; i < len(gaps); i++ {
			if gaps[i] >= gaps[i-1] {
				t.Errorf("%s: gap %.3g at N=%d not below %.3g at N=%d", c.name, gaps[i], sizes[i], gaps[i-1], sizes[i-1])
			}
		}
		if g := gaps[len(gaps)-1]; g > 5e-3 {
			t.Errorf("%s: gap %.3g at N=%d, want below 5e-3", c.name, g, sizes[len(sizes)-1])
		}
	}
}

// TestProbitMonteCarlo checks the probit predictive of a bce network
// against Monte Carlo over the Gaussian of its linearised output
// pre-activation: they agree within three standard errors of the Monte
// Carlo mean; and the package's own Monte Carlo predictive agrees with the
// test's.
func TestProbitMonteCarlo(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	const N = 40
	X := mat.NewDense(N, 2, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		x0, x1 := rng.NormFloat64(), rng.NormFloat64()
		X.Set(i, 0, x0)
		X.Set(i, 1, x1)
		if rng.Float64() < sigmoid(2*x0*x1+x0) {
			Y.Set(i, 0, 1)
		}
	}
	net, _ := nn.New([]int{2, 4, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	net.Init(rand.NewPCG(1, 1))
	if _, err := MAP(ctx, net, X, Y, []float64{0.3}, 0, nil); err != nil {
		t.Fatal(err)
	}
	p, err := Fit(ctx, net, X, Y, &Settings{Alpha: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	const M = 20000
	Xt := mat.NewDense(30, 2, nil)
	for i := range 30 {
		Xt.Set(i, 0, 3*rng.NormFloat64())
		Xt.Set(i, 1, 3*rng.NormFloat64())
	}
	a := mat.NewDense(30, 1, nil)
	va := mat.NewDense(30, 1, nil)
	if err := p.LatentTo(ctx, a, va, Xt); err != nil {
		t.Fatal(err)
	}
	probit := mat.NewDense(30, 1, nil)
	if err := p.ProbTo(ctx, probit, Xt, nil); err != nil {
		t.Fatal(err)
	}
	mc := mat.NewDense(30, 1, nil)
	if err := p.ProbTo(ctx, mc, Xt, &PredictSettings{Method: MonteCarlo, Samples: M, Src: rand.NewPCG(8, 8)}); err != nil {
		t.Fatal(err)
	}
	mrng := rand.New(rand.NewPCG(9, 9))
	maxSD, maxProbitErr := 0.0, 0.0
	for i := range 30 {
		mu, sd := a.At(i, 0), math.Sqrt(va.At(i, 0))
		maxSD = math.Max(maxSD, sd)
		var s, s2 float64
		for range M {
			v := sigmoid(mu + sd*mrng.NormFloat64())
			s += v
			s2 += v * v
		}
		mean := s / M
		se := math.Sqrt((s2/M - mean*mean) / M)
		q := gaussSigmoid(mu, sd)
		if d := math.Abs(mean - q); d > 4*se+1e-12 {
			t.Errorf("x%d: Monte Carlo %.5f ± %.5f, quadrature %.5f", i, mean, se, q)
		}
		if d := math.Abs(mc.At(i, 0) - q); d > 4*se+1e-12 {
			t.Errorf("x%d: package Monte Carlo %.5f, quadrature %.5f ± %.5f", i, mc.At(i, 0), q, se)
		}
		// The probit approximation agrees with Monte Carlo within its
		// standard error where σₐ is small; beyond, its own error, below
		// 0.01, shows at M draws.
		d := math.Abs(probit.At(i, 0) - mean)
		maxProbitErr = math.Max(maxProbitErr, math.Abs(probit.At(i, 0)-q))
		if sd < 0.5 && d > 3*se+1e-12 {
			t.Errorf("x%d: probit %.5f, Monte Carlo %.5f ± %.5f (a %.3g, σₐ %.3g)", i, probit.At(i, 0), mean, se, mu, sd)
		}
		if math.Abs(probit.At(i, 0)-q) > 0.01 {
			t.Errorf("x%d: probit %.5f, quadrature %.5f (a %.3g, σₐ %.3g)", i, probit.At(i, 0), q, mu, sd)
		}
	}
	t.Logf("largest σₐ %.3g, largest probit error %.2e", maxSD, maxProbitErr)
	if maxSD < 1 {
		t.Errorf("largest σₐ %.3g: the test points do not exercise the probit correction", maxSD)
	}
}

// TestSoftmaxPredictive checks the ce predictives: probabilities sum to 1,
// and the extended probit and Monte Carlo agree within the known accuracy
// of the extended probit (a few hundredths).
func TestSoftmaxPredictive(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	const N = 60
	X := mat.NewDense(N, 2, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		c := i % 3
		X.Set(i, 0, float64(c-1)+0.8*rng.NormFloat64())
		X.Set(i, 1, float64(c%2)+0.8*rng.NormFloat64())
		Y.Set(i, 0, float64(c))
	}
	net, _ := nn.New([]int{2, 3, 3}, []nn.Activation{nn.Tanh, nn.Softmax}, nn.CE)
	net.Init(rand.NewPCG(2, 2))
	if _, err := MAP(ctx, net, X, Y, []float64{0.5}, 0, nil); err != nil {
		t.Fatal(err)
	}
	p, err := Fit(ctx, net, X, Y, &Settings{Alpha: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	pr := mat.NewDense(N, 3, nil)
	mc := mat.NewDense(N, 3, nil)
	if err := p.ProbTo(ctx, pr, X, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.ProbTo(ctx, mc, X, &PredictSettings{Method: MonteCarlo, Samples: 4000}); err != nil {
		t.Fatal(err)
	}
	for i := range N {
		var s1, s2 float64
		for k := range 3 {
			s1 += pr.At(i, k)
			s2 += mc.At(i, k)
			if d := math.Abs(pr.At(i, k) - mc.At(i, k)); d > 0.06 {
				t.Errorf("sample %d class %d: extended probit %.4f, Monte Carlo %.4f", i, k, pr.At(i, k), mc.At(i, k))
			}
		}
		if math.Abs(s1-1) > 1e-12 || math.Abs(s2-1) > 1e-12 {
			t.Errorf("sample %d: probabilities sum to %v and %v", i, s1, s2)
		}
	}
}

// gaussSigmoid returns ∫σ(a)N(a|μ,s²)da by the trapezoidal rule over
// μ ± 12s, accurate to far below the Monte Carlo errors above.
func gaussSigmoid(mu, s float64) float64 {
	const n = 4001
	h := 24.0 / (n - 1)
	var sum float64
	for i := range n {
		z := -12 + h*float64(i)
		w := math.Exp(-0.5*z*z) / math.Sqrt(2*math.Pi)
		if i == 0 || i == n-1 {
			w *= 0.5
		}
		sum += w * sigmoid(mu+s*z)
	}
	return sum * h
}
