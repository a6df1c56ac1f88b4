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

// leastSquares returns a linear network (no hidden layer, MSE) fitted to X, Y
// by least squares, so that E is exactly quadratic in θ and ∇E = 0.
func leastSquares(t testing.TB, X, Y *mat.Dense) *nn.Network {
	t.Helper()
	N, in := X.Dims()
	_, out := Y.Dims()
	net, err := nn.New([]int{in, out}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	A := mat.NewDense(N, in+1, nil)
	for i := 0; i < N; i++ {
		for j := 0; j < in; j++ {
			A.Set(i, j, X.At(i, j))
		}
		A.Set(i, in, 1)
	}
	var beta mat.Dense
	if err := beta.Solve(A, Y); err != nil {
		t.Fatal(err)
	}
	W := net.Weights(0)
	for k := 0; k < out; k++ {
		for j := 0; j < in; j++ {
			W.Set(k, j, beta.At(j, k))
		}
		net.Bias(0)[k] = beta.At(in, k)
	}
	return net
}

// randomRegression returns N samples of in inputs and out targets, a noisy
// linear function of the inputs.
func randomRegression(N, in, out int, seed uint64) (X, Y *mat.Dense) {
	rng := rand.New(rand.NewPCG(seed, 7))
	X = mat.NewDense(N, in, nil)
	Y = mat.NewDense(N, out, nil)
	A := make([]float64, in*out)
	for i := range A {
		A[i] = rng.NormFloat64()
	}
	for n := 0; n < N; n++ {
		for j := 0; j < in; j++ {
			X.Set(n, j, rng.NormFloat64()+0.3)
		}
		for k := 0; k < out; k++ {
			v := 0.5*float64(k) + 0.5*rng.NormFloat64()
			for j := 0; j < in; j++ {
				v += A[k*in+j] * X.At(n, j)
			}
			Y.Set(n, k, v)
		}
	}
	return X, Y
}

// quadratic returns a fitted linear network on random data.
func quadratic(t testing.TB, seed uint64) (*nn.Network, *mat.Dense, *mat.Dense) {
	X, Y := randomRegression(60, 4, 2, seed)
	net := leastSquares(t, X, Y)
	g := make([]float64, net.NumParams())
	E := net.Gradient(g, X, Y)
	if n := floats.Norm(g, math.Inf(1)); n > 1e-9*E {
		t.Fatalf("not at a minimum: |∇E|∞ = %g, E = %g", n, E)
	}
	return net, X, Y
}

var undamped = prune.OBS{Damping: prune.NoDamping, FixedDamping: true}

// exactInverse returns H⁻¹ of the exact Hessian over the live parameters.
func exactInverse(t testing.TB, net *nn.Network, X, Y *mat.Dense) *mat.SymDense {
	t.Helper()
	hinv, _, err := undamped.Inverse(context.Background(), hessian.Live(net, X, Y), nil)
	if err != nil {
		t.Fatal(err)
	}
	return hinv
}

// closeDelta reports whether a predicted ΔE matches the real one to a
// relative 1e-9, allowing for the rounding of E itself.
func closeDelta(pred, real, E float64) bool {
	return math.Abs(pred-real) <= 1e-9*math.Abs(real)+1e-13*E
}

func TestOBSPredictsQuadraticSingle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		net, X, Y := quadratic(t, seed)
		hinv := exactInverse(t, net, X, Y)
		E := net.Objective(X, Y)
		w := net.ParamsTo(nil)
		W := len(w)
		for q := 0; q < W; q++ {
			L, delta := obsUpdate(hinv, w, q)
			c := net.Clone()
			theta := c.RawParams()
			floats.Add(theta, delta)
			real := c.Objective(X, Y) - E
			if !closeDelta(L, real, E) {
				t.Errorf("seed %d q %d: predicted ΔE %.15g, real %.15g", seed, q, L, real)
			}
		}
		// OBSStep picks the least saliency and returns its update.
		q, L, delta := prune.OBSStep(hinv, w, nil)
		for j := 0; j < W; j++ {
			Lj, _ := obsUpdate(hinv, w, j)
			if Lj < L {
				t.Errorf("seed %d: OBSStep picked %d with L = %g, but L_%d = %g", seed, q, L, j, Lj)
			}
		}
		wantL, want := obsUpdate(hinv, w, q)
		if L != wantL || maxAbsDiff(delta, want) != 0 {
			t.Errorf("seed %d: OBSStep returned L = %g, δ = %v; want %g, %v", seed, L, delta, wantL, want)
		}
	}
}

func TestOBSPredictsQuadraticSequence(t *testing.T) {
	for _, seed := range []uint64{4, 5} {
		net, X, Y := quadratic(t, seed)
		hinv := exactInverse(t, net, X, Y)
		W := net.NumParams()
		live := make([]bool, W)
		for i := range live {
			live[i] = true
		}
		w := net.ParamsTo(nil)
		E := net.Objective(X, Y)
		for k := 0; k < W-1; k++ {
			q, L, delta := prune.OBSStep(hinv, w, live)
			if q < 0 {
				t.Fatalf("seed %d step %d: no parameter picked", seed, k)
			}
			floats.Add(w, delta)
			live[q] = false
			if w[q] != 0 {
				t.Fatalf("seed %d step %d: w_q = %g after the update", seed, k, w[q])
			}
			if err := hessian.Downdate(hinv, q); err != nil {
				t.Fatal(err)
			}
			net.SetParams(w)
			net.Prune(q)
			E1 := net.Objective(X, Y)
			if !closeDelta(L, E1-E, E) {
				t.Errorf("seed %d step %d (%v): predicted ΔE %.15g, real %.15g", seed, k, net.ParamAt(q), L, E1-E)
			}
			// The update leaves the network at the constrained minimum.
			g := make([]float64, W)
			net.Gradient(g, X, Y)
			if n := floats.Norm(g, math.Inf(1)); n > 1e-8*E1 {
				t.Errorf("seed %d step %d: |∇E|∞ over the live parameters = %g", seed, k, n)
			}
			E = E1
		}
	}
}

func TestOBSSetQuadratic(t *testing.T) {
	net, X, Y := quadratic(t, 6)
	hinv := exactInverse(t, net, X, Y)
	w := net.ParamsTo(nil)
	E := net.Objective(X, Y)
	for _, S := range [][]int{{0}, {1, 4}, {0, 3, 7}, {2, 5, 8, 9}, {9, 0, 6}} {
		delta, L, err := prune.OBSSet(hinv, w, S)
		if err != nil {
			t.Fatal(err)
		}
		c := net.Clone()
		theta := c.RawParams()
		floats.Add(theta, delta)
		for _, q := range S {
			if theta[q] != 0 {
				t.Errorf("S=%v: parameter %d is %g after the update", S, q, theta[q])
			}
		}
		real := c.Objective(X, Y) - E
		if !closeDelta(L, real, E) {
			t.Errorf("S=%v: saliency %.15g, real ΔE %.15g", S, L, real)
		}
		// Removing the set together equals removing it one by one.
		h := mat.NewSymDense(hinv.SymmetricDim(), nil)
		h.CopySym(hinv)
		ws := append([]float64(nil), w...)
		var sum float64
		for _, q := range S {
			l, d := obsUpdate(h, ws, q)
			floats.Add(ws, d)
			sum += l
			if err := hessian.Downdate(h, q); err != nil {
				t.Fatal(err)
			}
		}
		if math.Abs(sum-L) > 1e-9*L {
			t.Errorf("S=%v: set saliency %.15g, sequential %.15g", S, L, sum)
		}
		if d := maxAbsDiff(ws, theta); d > 1e-9*floats.Norm(w, math.Inf(1)) {
			t.Errorf("S=%v: set and sequential updates differ by %g", S, d)
		}
	}
	// DowndateSet equals the inverse over the remaining parameters.
	S := []int{1, 4, 6}
	h := mat.NewSymDense(hinv.SymmetricDim(), nil)
	h.CopySym(hinv)
	if err := prune.DowndateSet(h, S); err != nil {
		t.Fatal(err)
	}
	c := net.Clone()
	for _, q := range S {
		c.Prune(q)
	}
	want := exactInverse(t, c, X, Y)
	keep := c.LiveIndices()
	var got mat.SymDense
	hessian.Reduce(&got, h, keep)
	if !mat.EqualApprox(&got, want, 1e-9*mat.Norm(want, math.Inf(1))) {
		t.Errorf("DowndateSet differs from the inverse over the remaining parameters")
	}
}

// obsUpdate returns the OBS saliency and update of removing q, from the
// formulas: L = w_q²/(2[H⁻¹]_qq), δ = −(w_q/[H⁻¹]_qq) H⁻¹e_q with δ_q = −w_q.
func obsUpdate(hinv mat.Symmetric, w []float64, q int) (float64, []float64) {
	d := hinv.At(q, q)
	delta := make([]float64, len(w))
	for j := range delta {
		delta[j] = -w[q] / d * hinv.At(j, q)
	}
	delta[q] = -w[q]
	return w[q] * w[q] / (2 * d), delta
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// hadamard8 is the 8×8 Sylvester–Hadamard matrix; its columns 1… are
// orthogonal, zero-mean ±1 vectors.
func hadamard8() *mat.Dense {
	h := mat.NewDense(8, 8, nil)
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			// (−1)^popcount(i AND j)
			v := 1.0
			for b := i & j; b != 0; b &= b - 1 {
				v = -v
			}
			h.Set(i, j, v)
		}
	}
	return h
}

func TestOBDEqualsOBSWhenDiagonal(t *testing.T) {
	Hd := hadamard8()
	// Inputs: columns 1, 2 and 5, scaled differently so h_qq differ.
	X := mat.NewDense(8, 3, nil)
	for i := 0; i < 8; i++ {
		X.Set(i, 0, Hd.At(i, 1))
		X.Set(i, 1, 2*Hd.At(i, 2))
		X.Set(i, 2, 0.5*Hd.At(i, 5))
	}
	rng := rand.New(rand.NewPCG(3, 3))
	Y := mat.NewDense(8, 2, nil)
	for i := 0; i < 8; i++ {
		for k := 0; k < 2; k++ {
			Y.Set(i, k, rng.NormFloat64())
		}
	}
	net := leastSquares(t, X, Y)

	// The exact Hessian is diagonal.
	H, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.All(net, X, Y)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	W := net.NumParams()
	for i := 0; i < W; i++ {
		for j := 0; j < W; j++ {
			if i != j && H.At(i, j) != 0 {
				t.Fatalf("H[%d][%d] = %g, want a diagonal Hessian", i, j, H.At(i, j))
			}
		}
	}
	ctx := context.Background()
	obd, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: prune.OBD{}})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: undamped})
	if err != nil {
		t.Fatal(err)
	}
	w := net.ParamsTo(nil)
	for q := range obd {
		want := 0.5 * H.At(q, q) * w[q] * w[q]
		if math.Abs(obd[q]-want) > 1e-14*want {
			t.Errorf("OBD saliency of %v = %g, want ½h_qq w_q² = %g", net.ParamAt(q), obd[q], want)
		}
		if math.Abs(obd[q]-obs[q]) > 1e-12*obd[q] {
			t.Errorf("%v: OBD %.15g, OBS %.15g", net.ParamAt(q), obd[q], obs[q])
		}
	}
	// With diagonal H, OBD's removal of q moves nothing else, as OBS's.
	hinv := exactInverse(t, net, X, Y)
	_, _, delta := prune.OBSStep(hinv, w, nil)
	nonzero := 0
	for _, d := range delta {
		if d != 0 {
			nonzero++
		}
	}
	if nonzero != 1 {
		t.Errorf("OBS update on a diagonal Hessian moves %d parameters, want 1", nonzero)
	}
}
