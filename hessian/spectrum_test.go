package hessian

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// symCurvature is a dense symmetric matrix as a Curvature.
type symCurvature struct{ a *mat.SymDense }

func (s symCurvature) Dim() int { return s.a.SymmetricDim() }
func (s symCurvature) MulVecTo(dst, v []float64) {
	n := s.Dim()
	mat.NewVecDense(n, dst).MulVec(s.a, mat.NewVecDense(n, v))
}

// sizedProblem returns a network of the given sizes with random data and
// parameters away from a minimum.
func sizedProblem(t testing.TB, sizes []int, acts []nn.Activation, loss nn.Loss, N int, seed uint64) *Problem {
	t.Helper()
	net, err := nn.New(sizes, acts, loss)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, 3))
	rng := rand.New(rand.NewPCG(seed, 13))
	for q, th := 0, net.RawParams(); q < len(th); q++ {
		th[q] += 0.3 * rng.NormFloat64()
	}
	in, out := sizes[0], sizes[len(sizes)-1]
	X := mat.NewDense(N, in, nil)
	Y := mat.NewDense(N, loss.TargetCols(out), nil)
	for i := 0; i < N; i++ {
		for j := 0; j < in; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		for k := 0; k < loss.TargetCols(out); k++ {
			switch loss {
			case nn.CE:
				Y.Set(i, k, float64(rng.IntN(out)))
			case nn.BCE:
				Y.Set(i, k, float64(rng.IntN(2)))
			default:
				Y.Set(i, k, rng.NormFloat64())
			}
		}
	}
	return All(net, X, Y)
}

func TestEigenvalues(t *testing.T) {
	want := []float64{-1, 0, 2, 3, 3}
	got, err := Eigenvalues(rotated([]float64{3, -1, 2, 0, 3}, 9))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-14 {
			t.Errorf("eigenvalues %v, want %v", got, want)
			break
		}
	}
	diag := mat.NewSymDense(3, []float64{5, 0, 0, 0, -2, 0, 0, 0, 1})
	if got, _ := Eigenvalues(diag); !slices.Equal(got, []float64{-2, 1, 5}) {
		t.Errorf("diagonal: eigenvalues %v", got)
	}
	diag.SetSym(0, 0, math.Inf(1))
	if _, err := Eigenvalues(diag); err != ErrNotFinite {
		t.Errorf("infinite entry: error %v", err)
	}
}

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name         string
		a            mat.Symmetric
		pd           bool
		neg, zero    int
		min, max, tr float64
		cond         float64
		condAtLeast  float64
	}{
		{name: "pd", a: rotated([]float64{1, 4, 2, 0.5}, 1), pd: true, min: 0.5, max: 4, tr: 7.5, cond: 8},
		{name: "indefinite", a: rotated([]float64{1, -3, 2, 0.5, -0.25}, 2), neg: 2, min: -3, max: 2, tr: 0.25, cond: 12},
		{name: "singular", a: rotated([]float64{1, 0, 2, 0, 3}, 3), zero: 2, min: 0, max: 3, tr: 6, condAtLeast: 1e13},
		{name: "exactly singular", a: mat.NewSymDense(2, []float64{1, 0, 0, 0}), zero: 1, min: 0, max: 1, tr: 1, cond: math.Inf(1)},
	} {
		s, err := Summarize(c.a)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dim != c.a.SymmetricDim() || s.PositiveDefinite != c.pd || s.NegativeCount != c.neg || s.ZeroCount != c.zero {
			t.Errorf("%s: summary %+v", c.name, s)
		}
		if math.Abs(s.Min-c.min) > 1e-14 || math.Abs(s.Max-c.max) > 1e-14 || math.Abs(s.Trace-c.tr) > 1e-14 {
			t.Errorf("%s: min %v, max %v, trace %v; want %v, %v, %v", c.name, s.Min, s.Max, s.Trace, c.min, c.max, c.tr)
		}
		switch {
		case c.condAtLeast > 0:
			if !(s.Condition >= c.condAtLeast) {
				t.Errorf("%s: condition %v, want ≥ %v", c.name, s.Condition, c.condAtLeast)
			}
		case math.IsInf(c.cond, 1):
			if !math.IsInf(s.Condition, 1) {
				t.Errorf("%s: condition %v, want +Inf", c.name, s.Condition)
			}
		default:
			if math.Abs(s.Condition-c.cond) > 1e-13*c.cond {
				t.Errorf("%s: condition %v, want %v", c.name, s.Condition, c.cond)
			}
		}
	}
}

func TestLanczos(t *testing.T) {
	sizes := []int{4, 8, 6, 3}
	acts := []nn.Activation{nn.Tanh, nn.Sigmoid, nn.Softmax}
	pr := sizedProblem(t, sizes, acts, nn.CE, 40, 1)
	H, err := Dense(ctx, Exact{pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := Eigenvalues(H)
	if err != nil {
		t.Fatal(err)
	}
	W := pr.Dim()
	rho := math.Max(-vals[0], vals[W-1])
	const k = 3
	for _, c := range []struct {
		name string
		c    Curvature
	}{{"exact", Exact{pr}}, {"matrix-free", mulOnly{Exact{pr}}}} {
		res, err := Lanczos(ctx, c.c, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i := 0; i < k; i++ {
			worst = math.Max(worst, math.Abs(res.Largest[i]-vals[W-1-i]))
			worst = math.Max(worst, math.Abs(res.Smallest[i]-vals[i]))
		}
		t.Logf("%s: W=%d, %d iterations, converged %v, largest %.6g, smallest %.6g, max error / ρ = %.3g",
			c.name, W, res.Iterations, res.Converged, res.Largest, res.Smallest, worst/rho)
		if worst > 1e-8*rho || !res.Converged {
			t.Errorf("%s: Ritz values differ from EigenSym by %.3g (ρ = %.3g); converged %v", c.name, worst, rho, res.Converged)
		}
	}
	// A short run: every Ritz value is within its residual of an eigenvalue.
	res, err := Lanczos(ctx, Exact{pr}, k, &LanczosSettings{MaxIter: 30, Src: rand.NewPCG(7, 7)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Iterations != 30 {
		t.Errorf("short run: %d iterations", res.Iterations)
	}
	near := func(theta float64) float64 {
		d := math.Inf(1)
		for _, v := range vals {
			d = math.Min(d, math.Abs(v-theta))
		}
		return d
	}
	for i := 0; i < k; i++ {
		for _, p := range [][2]float64{{res.Largest[i], res.LargestResiduals[i]}, {res.Smallest[i], res.SmallestResiduals[i]}} {
			if d := near(p[0]); d > p[1]+1e-12*rho {
				t.Errorf("short run: Ritz value %v is %.3g from the spectrum, residual %.3g", p[0], d, p[1])
			}
		}
	}
	// The largest eigenvalue converges first.
	if math.Abs(res.Largest[0]-vals[W-1]) > 1e-8*rho {
		t.Errorf("short run: largest Ritz value %v, eigenvalue %v", res.Largest[0], vals[W-1])
	}
}

// A rank-deficient Gauss–Newton matrix has a zero eigenvalue of high
// multiplicity: the restarts after breakdown find all its copies.
func TestLanczosRankDeficient(t *testing.T) {
	pr := sizedProblem(t, []int{4, 8, 6, 3}, []nn.Activation{nn.ReLU, nn.Tanh, nn.Softmax}, nn.CE, 20, 2)
	G, _ := Dense(ctx, GaussNewton{pr}, 0)
	vals, _ := Eigenvalues(G)
	W := len(vals)
	res, err := Lanczos(ctx, mulOnly{GaussNewton{pr}}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if math.Abs(res.Smallest[i]-vals[i]) > 1e-8*vals[W-1] || math.Abs(res.Largest[i]-vals[W-1-i]) > 1e-8*vals[W-1] {
			t.Fatalf("Ritz values %v, %v; eigenvalues %v, %v", res.Smallest, res.Largest, vals[:3], vals[W-3:])
		}
	}
}

func TestLanczosSmallAndRepeated(t *testing.T) {
	// k beyond Dim is clamped, and the whole spectrum comes back with its
	// multiplicities from restarts after breakdown.
	spec := []float64{0, 0, 0, 1, 2, 2, 5}
	A := rotated(spec, 5)
	res, err := Lanczos(ctx, symCurvature{A}, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Smallest) != len(spec) || len(res.Largest) != len(spec) || !res.Converged {
		t.Fatalf("k > Dim: %+v", res)
	}
	for i, v := range spec {
		if math.Abs(res.Smallest[i]-v) > 1e-12 || math.Abs(res.Largest[len(spec)-1-i]-v) > 1e-12 {
			t.Fatalf("spectrum %v / %v, want %v", res.Smallest, res.Largest, spec)
		}
	}
	// The zero matrix and a 1×1 matrix.
	res, err = Lanczos(ctx, symCurvature{mat.NewSymDense(4, nil)}, 2, nil)
	if err != nil || res.Largest[0] != 0 || res.Smallest[1] != 0 || !res.Converged {
		t.Errorf("zero matrix: %+v, %v", res, err)
	}
	res, err = Lanczos(ctx, symCurvature{mat.NewSymDense(1, []float64{-3})}, 1, nil)
	if err != nil || math.Abs(res.Largest[0]+3) > 1e-15 || res.Iterations != 1 {
		t.Errorf("1×1 matrix: %+v, %v", res, err)
	}
	// Cancellation and the memory limit.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Lanczos(cctx, symCurvature{A}, 1, nil); err == nil {
		t.Error("cancelled context: no error")
	}
	if _, err := Lanczos(ctx, symCurvature{A}, 1, &LanczosSettings{MaxBytes: 8}); err == nil {
		t.Error("8-byte limit: no error")
	}
}

func TestTrace(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 2, nn.BCE, 15, 3)
	H, _ := Dense(ctx, Exact{pr}, 0)
	var want float64
	for i := 0; i < pr.Dim(); i++ {
		want += H.At(i, i)
	}
	for _, c := range []Curvature{Exact{pr}, mulOnly{Exact{pr}}, Hutchinson{C: Exact{pr}, Probes: 1}} {
		got, err := Trace(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-12*math.Abs(want)*float64(pr.Dim()) {
			t.Errorf("%T: trace %v, want %v", c, got, want)
		}
	}
}
