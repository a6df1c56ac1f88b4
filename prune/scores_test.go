package prune_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// maskedMLP returns a 3-4-2 tanh/linear network with a few parameters
// pruned, and its training data.
func maskedMLP(t testing.TB) (*nn.Network, *mat.Dense, *mat.Dense) {
	t.Helper()
	net, d := regressionMLP(t, 21)
	for _, q := range []int{1, 7, 17, 25} {
		net.Prune(q)
	}
	return net, d.Train.X, d.Train.Y
}

// denseInverse returns ((C + λI)⁻¹ over the live parameters, by mat.
func denseInverse(t testing.TB, c hessian.Curvature, lambda float64) *mat.SymDense {
	t.Helper()
	H, err := hessian.Dense(context.Background(), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := H.SymmetricDim()
	for i := 0; i < n; i++ {
		H.SetSym(i, i, H.At(i, i)+lambda)
	}
	var chol mat.Cholesky
	if !chol.Factorize(H) {
		t.Fatal("C + λI is not positive definite")
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		t.Fatal(err)
	}
	return &inv
}

func TestScores(t *testing.T) {
	net, X, Y := maskedMLP(t)
	ctx := context.Background()
	live := net.LiveIndices()
	pr := hessian.Live(net, X, Y)
	w := net.ParamsTo(nil)

	exactDiag := make([]float64, len(live))
	if err := (hessian.Exact{P: pr}).DiagTo(ctx, exactDiag); err != nil {
		t.Fatal(err)
	}
	lmDiag := make([]float64, len(live))
	if err := (hessian.BeckerLeCun{P: pr, LM: true}).DiagTo(ctx, lmDiag); err != nil {
		t.Fatal(err)
	}
	gnInv := denseInverse(t, hessian.GaussNewton{P: pr}, 0.01)
	fisherInv := denseInverse(t, hessian.Fisher{P: pr}, 0.5)

	for _, tc := range []struct {
		method prune.Saliency
		want   func(i, q int) float64
	}{
		{prune.Magnitude{}, func(i, q int) float64 { return math.Abs(w[q]) }},
		{prune.OBD{}, func(i, q int) float64 { return 0.5 * exactDiag[i] * w[q] * w[q] }},
		{prune.OBD{Curvature: prune.LevenbergMarquardt}, func(i, q int) float64 { return 0.5 * lmDiag[i] * w[q] * w[q] }},
		{prune.OBS{Curvature: prune.GaussNewton, Damping: 0.01}, func(i, q int) float64 { return w[q] * w[q] / (2 * gnInv.At(i, i)) }},
		{prune.OBS{Curvature: prune.Fisher, Damping: 0.5}, func(i, q int) float64 { return w[q] * w[q] / (2 * fisherInv.At(i, i)) }},
	} {
		s, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: tc.method, Objective: prune.LossObjective})
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != net.NumParams() {
			t.Fatalf("%v: %d scores", tc.method, len(s))
		}
		for q, v := range s {
			if !net.IsLive(q) && !math.IsNaN(v) {
				t.Errorf("%v: pruned %v scored %g, want NaN", tc.method, net.ParamAt(q), v)
			}
		}
		for i, q := range live {
			if want := tc.want(i, q); math.Abs(s[q]-want) > 1e-10*math.Abs(want) {
				t.Errorf("%v: %v scored %.15g, want %.15g", tc.method, net.ParamAt(q), s[q], want)
			}
		}
	}
}

func TestRecursiveInverseScale(t *testing.T) {
	// For a linear network with MSE, G = H; the recursive inverse rescaled
	// to the summed loss is (PαI + G)⁻¹, the damped inverse at λ = Pα.
	net, X, Y := quadratic(t, 22)
	P, _ := X.Dims()
	const alpha = 1e-3
	ctx := context.Background()
	rec, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: prune.OBS{Curvature: prune.Recursive, Alpha: alpha}})
	if err != nil {
		t.Fatal(err)
	}
	damped, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: prune.OBS{Curvature: prune.GaussNewton, Damping: float64(P) * alpha, FixedDamping: true}})
	if err != nil {
		t.Fatal(err)
	}
	for q := range rec {
		if math.Abs(rec[q]-damped[q]) > 1e-9*damped[q] {
			t.Errorf("%v: recursive %.15g, damped %.15g", net.ParamAt(q), rec[q], damped[q])
		}
	}
	res, err := prune.Run(ctx, net, nn.Splits{Train: nn.Data{X: X, Y: Y}}, &prune.Settings{
		Method: prune.OBS{Curvature: prune.Recursive, Alpha: alpha}, MaxRounds: 1, PerRound: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if lam := res.Rounds[0].Damping; math.Abs(lam-float64(P)*alpha) > 1e-15 {
		t.Errorf("recursive damping %g, want Pα = %g", lam, float64(P)*alpha)
	}
}

// TestDowndateEqualsRebuild checks that OBS removals with rank-one downdates
// equal removals with the inverse rebuilt from scratch over the live
// parameters at every step.
func TestDowndateEqualsRebuild(t *testing.T) {
	net, d := regressionMLP(t, 23)
	pr := hessian.All(net, d.Train.X, d.Train.Y)
	H, err := hessian.Dense(context.Background(), hessian.GaussNewton{P: pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	W := H.SymmetricDim()
	for i := 0; i < W; i++ {
		H.SetSym(i, i, H.At(i, i)+1e-3)
	}
	hinv := mat.NewSymDense(W, nil)
	if err := hessian.DampedInverse(hinv, H, 0); err != nil {
		t.Fatal(err)
	}
	w := net.ParamsTo(nil)
	live := make([]bool, W)
	for i := range live {
		live[i] = true
	}
	for k := 0; k < W-2; k++ {
		q, L, delta := prune.OBSStep(hinv, w, live)

		// From scratch: the inverse of H over the live parameters.
		var keep []int
		for i, l := range live {
			if l {
				keep = append(keep, i)
			}
		}
		var Hl mat.SymDense
		hessian.Reduce(&Hl, H, keep)
		var inv mat.SymDense
		if err := hessian.DampedInverse(&inv, &Hl, 0); err != nil {
			t.Fatal(err)
		}
		var down mat.SymDense
		hessian.Reduce(&down, hinv, keep)
		if d := maxAbsDiffSym(&down, &inv); d > 1e-8*mat.Norm(&inv, math.Inf(1)) {
			t.Errorf("step %d: downdated inverse differs from the rebuilt one by %g", k, d)
		}
		wl := make([]float64, len(keep))
		for a, i := range keep {
			wl[a] = w[i]
		}
		a, Lr, dr := prune.OBSStep(&inv, wl, nil)
		if keep[a] != q || math.Abs(L-Lr) > 1e-8*Lr {
			t.Fatalf("step %d: downdate removes %d (L = %g), rebuild %d (L = %g)", k, q, L, keep[a], Lr)
		}
		for b, i := range keep {
			if math.Abs(delta[i]-dr[b]) > 1e-8*floats.Norm(dr, math.Inf(1)) {
				t.Errorf("step %d: update of %d is %g, rebuilt %g", k, i, delta[i], dr[b])
			}
		}
		floats.Add(w, delta)
		live[q] = false
		if err := hessian.Downdate(hinv, q); err != nil {
			t.Fatal(err)
		}
	}
}

func maxAbsDiffSym(a, b mat.Symmetric) float64 {
	var m float64
	n := a.SymmetricDim()
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			m = math.Max(m, math.Abs(a.At(i, j)-b.At(i, j)))
		}
	}
	return m
}

func TestOBSStepEdges(t *testing.T) {
	hinv := mat.NewSymDense(3, []float64{2, 0.5, 0, 0.5, 1, 0, 0, 0, -1})
	w := []float64{1, 2, 0.1}
	// Entry 2 has a negative pivot and is skipped.
	q, L, delta := prune.OBSStep(hinv, w, nil)
	if q != 0 || L != 0.25 || delta[0] != -1 || delta[1] != -0.25 || delta[2] != 0 {
		t.Errorf("OBSStep = %d, %g, %v", q, L, delta)
	}
	q, L, delta = prune.OBSStep(hinv, w, []bool{false, false, true})
	if q != -1 || !math.IsNaN(L) || delta != nil {
		t.Errorf("no live parameter with a positive pivot: %d, %g, %v", q, L, delta)
	}
	if _, _, err := prune.OBSSet(hinv, w, []int{1, 2}); err == nil {
		t.Errorf("OBSSet on an indefinite block: no error")
	}
	if d, L, err := prune.OBSSet(hinv, w, nil); err != nil || L != 0 || floats.Norm(d, 1) != 0 {
		t.Errorf("OBSSet of nothing: %v %g %v", d, L, err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("OBSSet with a repeated index did not panic")
		}
	}()
	prune.OBSSet(hinv, w, []int{0, 0})
}

func TestOBDCurvatures(t *testing.T) {
	net, X, Y := maskedMLP(t)
	ctx := context.Background()
	for _, c := range []prune.Curvature{prune.Exact, prune.GaussNewton, prune.Fisher, prune.BeckerLeCun, prune.LevenbergMarquardt, prune.Hutchinson} {
		s, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: prune.OBD{Curvature: c, Probes: 20, Src: rand.NewPCG(1, 2)}})
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		n := 0
		for q, v := range s {
			if net.IsLive(q) == math.IsNaN(v) {
				t.Errorf("%v: %v scored %g", c, net.ParamAt(q), v)
			}
			if !math.IsNaN(v) {
				n++
			}
		}
		if n != net.NumLive() {
			t.Errorf("%v: %d scores", c, n)
		}
		if name := c.String(); name == "" {
			t.Errorf("no name for %d", c)
		} else if back, err := prune.ParseCurvature(name); err != nil || back != c {
			t.Errorf("ParseCurvature(%q) = %v, %v", name, back, err)
		}
	}
}
