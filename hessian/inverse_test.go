package hessian

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// randomSPD returns B Bᵀ + shift·I for a random n×n B.
func randomSPD(n int, shift float64, seed uint64) *mat.SymDense {
	rng := rand.New(rand.NewPCG(seed, 21))
	B := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			B.Set(i, j, rng.NormFloat64())
		}
	}
	A := mat.NewSymDense(n, nil)
	A.SymOuterK(1, B)
	for i := 0; i < n; i++ {
		A.SetSym(i, i, A.At(i, i)+shift)
	}
	return A
}

// rotated returns Q diag(vals) Qᵀ for a random orthogonal Q.
func rotated(vals []float64, seed uint64) *mat.SymDense {
	n := len(vals)
	rng := rand.New(rand.NewPCG(seed, 22))
	M := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			M.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(M)
	var Q mat.Dense
	qr.QTo(&Q)
	var QD mat.Dense
	QD.Mul(&Q, mat.NewDiagDense(n, vals))
	var A mat.Dense
	A.Mul(&QD, Q.T())
	S := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			S.SetSym(i, j, 0.5*(A.At(i, j)+A.At(j, i)))
		}
	}
	return S
}

// inverseResidual returns max |(A + λI) B − I|.
func inverseResidual(A mat.Symmetric, lambda float64, B mat.Symmetric) float64 {
	n := A.SymmetricDim()
	D := mat.NewSymDense(n, nil)
	D.CopySym(A)
	for i := 0; i < n; i++ {
		D.SetSym(i, i, D.At(i, i)+lambda)
	}
	var P mat.Dense
	P.Mul(D, B)
	var r float64
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			r = math.Max(r, math.Abs(P.At(i, j)-want))
		}
	}
	return r
}

func eigenRange(t *testing.T, A mat.Symmetric) (lmin, lmax float64) {
	t.Helper()
	var eig mat.EigenSym
	if !eig.Factorize(A, false) {
		t.Fatal("EigenSym failed")
	}
	v := eig.RawValues()
	return v[0], v[len(v)-1]
}

func TestDampedInverseSPD(t *testing.T) {
	for _, n := range []int{1, 5, 40} {
		for _, lambda := range []float64{0, 0.5} {
			A := randomSPD(n, 0.1, uint64(n))
			orig := mat.NewSymDense(n, nil)
			orig.CopySym(A)
			var inv mat.SymDense
			if err := DampedInverse(&inv, A, lambda); err != nil {
				t.Fatalf("n=%d λ=%v: %v", n, lambda, err)
			}
			lmin, lmax := eigenRange(t, A)
			cond := (lmax + lambda) / (lmin + lambda)
			if r := inverseResidual(A, lambda, &inv); r > 1e-15*cond*float64(n) {
				t.Errorf("n=%d λ=%v: |(A+λI)A⁻¹ − I| = %.3g, condition %.3g", n, lambda, r, cond)
			}
			if !mat.Equal(A, orig) {
				t.Fatal("DampedInverse modified its input")
			}
			// In place.
			if err := DampedInverse(A, A, lambda); err != nil {
				t.Fatal(err)
			}
			if !mat.EqualApprox(A, &inv, 1e-14*cond) {
				t.Errorf("n=%d: in-place inverse differs", n)
			}
		}
	}
}

func TestDampedInverseExactHessian(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 2, nn.MSE, 20, 4)
	H, err := Dense(ctx, Exact{pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	lmin, lmax := eigenRange(t, H)
	rho := math.Max(-lmin, lmax)
	lambda := math.Max(0, -lmin) + 1e-3*rho
	var inv mat.SymDense
	if err := DampedInverse(&inv, H, lambda); err != nil {
		t.Fatal(err)
	}
	cond := (lmax + lambda) / (lmin + lambda)
	r := inverseResidual(H, lambda, &inv)
	t.Logf("W=%d, λ=%.3g, condition %.3g, |(H+λI)inv − I| = %.3g", pr.Dim(), lambda, cond, r)
	if r > 1e-15*cond*float64(pr.Dim()) {
		t.Errorf("|(H+λI)inv − I| = %.3g, condition %.3g", r, cond)
	}
}

func TestDampedInverseIndefinite(t *testing.T) {
	check := func(name string, H *mat.SymDense, lambda float64) {
		t.Helper()
		lmin, _ := eigenRange(t, H)
		if lmin+lambda > 0 {
			t.Fatalf("%s: want an H + λI that is not positive definite, smallest eigenvalue %v", name, lmin+lambda)
		}
		var inv mat.SymDense
		err := DampedInverse(&inv, H, lambda)
		var npd *NotPositiveDefiniteError
		if !errors.As(err, &npd) {
			t.Fatalf("%s: error %v, want *NotPositiveDefiniteError", name, err)
		}
		t.Logf("%s: %v", name, err)
		if npd.Lambda != lambda || math.Abs(npd.MinEigenvalue-lmin) > 1e-14*math.Abs(lmin) {
			t.Errorf("%s: error has λ=%v, λmin=%v; want %v, %v", name, npd.Lambda, npd.MinEigenvalue, lambda, lmin)
		}
		if !(npd.Suggest > -lmin) {
			t.Errorf("%s: suggested damping %v does not exceed −λmin = %v", name, npd.Suggest, -lmin)
		}
		if err := DampedInverse(&inv, H, npd.Suggest); err != nil {
			t.Fatalf("%s: retry with the suggested damping %v: %v", name, npd.Suggest, err)
		}
		if r := inverseResidual(H, npd.Suggest, &inv); r > 1e-12 {
			t.Errorf("%s: residual %.3g after retry", name, r)
		}
	}
	check("rotated", rotated([]float64{3, -2, 1, 0.5, 4}, 1), 0)
	check("rotated, damped", rotated([]float64{3, -2, 1, 0.5, 4}, 1), 1.5)
	check("zero", mat.NewSymDense(3, nil), 0)
	// An exact Hessian away from a minimum.
	for seed := uint64(1); seed < 20; seed++ {
		pr := randomProblem(t, nn.Tanh, 2, nn.CE, 12, seed)
		H, _ := Dense(ctx, Exact{pr}, 0)
		if lmin, _ := eigenRange(t, H); lmin < 0 {
			check("exact Hessian", H, 0)
			return
		}
	}
	t.Error("no indefinite exact Hessian found")
}

func TestDampedInverseNearSingular(t *testing.T) {
	H := rotated([]float64{1, 2, 1e-15}, 3)
	var inv mat.SymDense
	err := DampedInverse(&inv, H, 0)
	var npd *NotPositiveDefiniteError
	var cond mat.Condition
	switch {
	case errors.As(err, &cond):
		if cond < MaxCondition {
			t.Errorf("condition %v below MaxCondition", float64(cond))
		}
	case errors.As(err, &npd):
		// Rounding may also push the tiny eigenvalue below zero.
	default:
		t.Errorf("near-singular H: error %v", err)
	}
	// A well-conditioned damping succeeds.
	if err := DampedInverse(&inv, H, 1e-6); err != nil {
		t.Errorf("damped near-singular H: %v", err)
	}
	H.SetSym(0, 1, math.NaN())
	if err := DampedInverse(&inv, H, 1); err != ErrNotFinite {
		t.Errorf("NaN entry: error %v, want ErrNotFinite", err)
	}
}

func TestDampedInverseEscalating(t *testing.T) {
	H := rotated([]float64{3, -0.02, 1, 0.5, 4, 1e-3}, 7)
	var tried []float64
	e := &Escalation{Start: 1e-6, Log: func(l float64, err error) {
		var npd *NotPositiveDefiniteError
		if !errors.As(err, &npd) {
			t.Errorf("logged error %v at λ=%v", err, l)
		}
		tried = append(tried, l)
	}}
	var inv mat.SymDense
	lambda, err := DampedInverseEscalating(&inv, H, e)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2}
	if len(tried) != len(want) {
		t.Fatalf("tried %v, want %v", tried, want)
	}
	for i := range want {
		if math.Abs(tried[i]-want[i]) > 1e-12*want[i] {
			t.Errorf("attempt %d at λ=%v, want %v", i, tried[i], want[i])
		}
	}
	if math.Abs(lambda-0.1) > 1e-12 {
		t.Errorf("succeeded at λ=%v, want 0.1", lambda)
	}
	if r := inverseResidual(H, lambda, &inv); r > 1e-12 {
		t.Errorf("residual %.3g", r)
	}
	// Defaults: undamped first, then from 1e-8·‖H‖_F.
	tried = tried[:0]
	e = &Escalation{Log: func(l float64, _ error) { tried = append(tried, l) }}
	if _, err := DampedInverseEscalating(&inv, H, e); err != nil {
		t.Fatal(err)
	}
	if len(tried) == 0 || tried[0] != 0 {
		t.Errorf("default schedule tried %v, want 0 first", tried)
	}
	if _, err := DampedInverseEscalating(&mat.SymDense{}, randomSPD(4, 1, 1), nil); err != nil {
		t.Errorf("nil schedule on an SPD matrix: %v", err)
	}
	// A Max that is too small fails with the last error wrapped.
	lambda, err = DampedInverseEscalating(&inv, H, &Escalation{Start: 1e-4, Max: 5e-3})
	var npd *NotPositiveDefiniteError
	if !errors.As(err, &npd) || lambda != 5e-3 {
		t.Errorf("capped schedule: λ=%v, error %v", lambda, err)
	}
	// The default Max always succeeds.
	neg := rotated([]float64{-1, -1, -1}, 2)
	if lambda, err := DampedInverseEscalating(&mat.SymDense{}, neg, nil); err != nil || lambda <= 1 {
		t.Errorf("negative definite H: λ=%v, %v", lambda, err)
	}
}

// recursiveReference returns (NαI + G)⁻¹ from the dense Gauss–Newton
// matrix and a Cholesky inverse, with its condition number.
func recursiveReference(t *testing.T, pr *Problem, alpha float64) (*mat.SymDense, float64) {
	t.Helper()
	G, err := Dense(ctx, GaussNewton{pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	N, _ := pr.X.Dims()
	lambda := float64(N) * alpha
	var inv mat.SymDense
	if err := DampedInverse(&inv, G, lambda); err != nil {
		t.Fatal(err)
	}
	lmin, lmax := eigenRange(t, G)
	return &inv, (lmax + lambda) / (lmin + lambda)
}

func TestRecursiveInverse(t *testing.T) {
	for i, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
		pr := randomProblem(t, nn.Tanh, 2, loss, 300, uint64(i+30))
		for _, alpha := range []float64{0, 1e-2} {
			a := alpha
			if a == 0 {
				a = 1e-4
			}
			want, cond := recursiveReference(t, pr, a)
			for _, block := range []int{1, 64, 7, 1000, 0} {
				var got mat.SymDense
				r := RecursiveInverse{P: pr, Alpha: alpha, Block: block}
				if err := r.InverseTo(ctx, &got); err != nil {
					t.Fatal(err)
				}
				d, s := maxAbsDiff(&got, want)
				t.Logf("%v W=%d α=%g block %d: condition %.3g, relative difference %.3g", loss, pr.Dim(), a, block, cond, d/s)
				if d > 1e-8*s {
					t.Errorf("%v α=%g block %d: recursive inverse differs from (NαI + G)⁻¹ by %.3g (scale %.3g)",
						loss, a, block, d, s)
				}
			}
		}
	}
	// Over the live parameters, into a preallocated destination.
	pr := randomProblem(t, nn.Sigmoid, 1, nn.CE, 90, 8)
	pr.Net.Prune(2)
	pr.Net.Prune(5)
	live := Live(pr.Net, pr.X, pr.Y)
	want, _ := recursiveReference(t, live, 1e-3)
	got := mat.NewSymDense(live.Dim(), nil)
	if err := (RecursiveInverse{P: live, Alpha: 1e-3, Block: 16}).InverseTo(ctx, got); err != nil {
		t.Fatal(err)
	}
	if d, s := maxAbsDiff(got, want); d > 1e-8*s {
		t.Errorf("live parameters: differs by %.3g (scale %.3g)", d, s)
	}
	// Memory guard.
	var me *MemoryError
	if err := (RecursiveInverse{P: live, MaxBytes: 100}).InverseTo(ctx, &mat.SymDense{}); !errors.As(err, &me) {
		t.Errorf("100-byte limit: error %v", err)
	}
}

// TestRecursiveInverseSummedLoss checks the units of RecursiveInverse on a
// one-layer linear network with MSE, where the Gauss–Newton matrix is the
// exact Hessian H of the summed loss: the result R satisfies
// R(NαI + H) = I to 1e-12 for α = 10⁻², and for Hassibi and Stork's
// smallest α = 10⁻⁸, R·H = I to 1e-6 (the damping contributes about
// Nα/λmin(H), the recursion's rounding about ε/(Nα)·‖H‖). A result in the
// units of the mean loss would be off by the factor N = 40.
func TestRecursiveInverseSummedLoss(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 0, nn.MSE, 40, 3)
	if pr.Net.Layers()[0].Act != nn.Linear {
		t.Fatal("the test needs a linear network")
	}
	H, err := Dense(ctx, Exact{pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	N, _ := pr.X.Dims()
	for _, tc := range []struct {
		alpha, damping, tol float64
	}{
		{1e-2, 1, 1e-12}, // R·(NαI + H) = I
		{1e-8, 1, 1e-9},
		{1e-8, 0, 1e-6}, // R·H = I
	} {
		var R mat.SymDense
		if err := (RecursiveInverse{P: pr, Alpha: tc.alpha}).InverseTo(ctx, &R); err != nil {
			t.Fatal(err)
		}
		worst := inverseResidual(H, tc.damping*float64(N)*tc.alpha, &R)
		t.Logf("α=%g, damping %g·Nα: |R·(H + damping) − I| = %.3g", tc.alpha, tc.damping, worst)
		if worst > tc.tol {
			t.Errorf("α=%g, damping %g·Nα: |R·(H + damping) − I| = %.3g, want ≤ %g", tc.alpha, tc.damping, worst, tc.tol)
		}
	}
}

func TestDowndate(t *testing.T) {
	for _, H := range []*mat.SymDense{
		randomSPD(12, 0.01, 5),
		rotated([]float64{1, 2, 3, 1e-3, 5, 6, 7, 8}, 4),
	} {
		n := H.SymmetricDim()
		hinv := mat.NewSymDense(n, nil)
		if err := DampedInverse(hinv, H, 0); err != nil {
			t.Fatal(err)
		}
		keep := make([]int, n)
		for i := range keep {
			keep[i] = i
		}
		for _, q := range []int{3, 7, 0} {
			if err := Downdate(hinv, q); err != nil {
				t.Fatal(err)
			}
			for i, k := range keep {
				if k == q {
					keep = append(keep[:i], keep[i+1:]...)
					break
				}
			}
			var R, want, got mat.SymDense
			Reduce(&R, H, keep)
			if err := DampedInverse(&want, &R, 0); err != nil {
				t.Fatal(err)
			}
			Reduce(&got, hinv, keep)
			lmin, lmax := eigenRange(t, &R)
			d, s := maxAbsDiff(&got, &want)
			t.Logf("n=%d, removed %d: condition %.3g, relative difference %.3g", n, q, lmax/lmin, d/s)
			if d > 1e-13*(lmax/lmin)*s {
				t.Errorf("after removing %d: downdated inverse differs from the inverse of the reduced matrix by %.3g (scale %.3g)", q, d, s)
			}
			for i := 0; i < n; i++ {
				if hinv.At(q, i) != 0 || hinv.At(i, q) != 0 {
					t.Fatalf("row %d not zeroed: [%d][%d] = %v", q, q, i, hinv.At(q, i))
				}
			}
		}
		// Removing a parameter twice hits a zero pivot.
		err := Downdate(hinv, 7)
		var pe *PivotError
		if !errors.Is(err, ErrNonPositivePivot) || !errors.As(err, &pe) || pe.Index != 7 || pe.Pivot != 0 {
			t.Errorf("second removal of 7: %v", err)
		}
	}
}

func TestDowndateNonPositivePivot(t *testing.T) {
	a := mat.NewSymDense(3, []float64{
		2, 0.5, 0,
		0.5, -1, 0.2,
		0, 0.2, 1,
	})
	orig := mat.DenseCopyOf(a)
	err := Downdate(a, 1)
	var pe *PivotError
	if !errors.As(err, &pe) || pe.Index != 1 || pe.Pivot != -1 || !errors.Is(err, ErrNonPositivePivot) {
		t.Fatalf("error %v, want a PivotError for index 1 and pivot −1", err)
	}
	if !mat.Equal(a, orig) {
		t.Error("failed Downdate modified its matrix")
	}
	a.SetSym(2, 2, math.NaN())
	if err := Downdate(a, 2); !errors.Is(err, ErrNonPositivePivot) {
		t.Errorf("NaN pivot: %v", err)
	}
	if err := Downdate(a, 0); err != nil {
		t.Errorf("positive pivot: %v", err)
	}
}

func TestReduce(t *testing.T) {
	a := mat.NewSymDense(4, []float64{
		1, 2, 3, 4,
		2, 5, 6, 7,
		3, 6, 8, 9,
		4, 7, 9, 10,
	})
	var r mat.SymDense
	Reduce(&r, a, []int{3, 1})
	want := mat.NewSymDense(2, []float64{10, 7, 7, 5})
	if !mat.Equal(&r, want) {
		t.Errorf("Reduce = %v, want %v", mat.Formatted(&r), mat.Formatted(want))
	}
}

// Removing weights from the recursive inverse gives the recursive inverse
// over the remaining weights.
func TestDowndateRecursiveInverse(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 1, nn.MSE, 40, 12)
	var hinv mat.SymDense
	if err := (RecursiveInverse{P: pr, Alpha: 1e-3}).InverseTo(ctx, &hinv); err != nil {
		t.Fatal(err)
	}
	removed := []int{5, 0, pr.Dim() - 1}
	for _, q := range removed {
		if err := Downdate(&hinv, q); err != nil {
			t.Fatal(err)
		}
	}
	var keep []int
	for q := 0; q < pr.Dim(); q++ {
		if q != 5 && q != 0 && q != pr.Dim()-1 {
			keep = append(keep, q)
		}
	}
	var want, got mat.SymDense
	if err := (RecursiveInverse{P: &Problem{Net: pr.Net, Data: pr.Data, Params: keep}, Alpha: 1e-3}).InverseTo(ctx, &want); err != nil {
		t.Fatal(err)
	}
	Reduce(&got, &hinv, keep)
	if d, s := maxAbsDiff(&got, &want); d > 1e-10*s {
		t.Errorf("downdated recursive inverse differs from the reduced one by %.3g (scale %.3g)", d, s)
	}
}

func TestDampedInverseEscalatingAliased(t *testing.T) {
	H := mat.NewSymDense(2, []float64{1, 0, 0, 1e-16})
	sep := mat.NewSymDense(2, nil)
	l1, err1 := DampedInverseEscalating(sep, H, nil)
	alias := mat.NewSymDense(2, []float64{1, 0, 0, 1e-16})
	l2, err2 := DampedInverseEscalating(alias, alias, nil)
	if err1 != nil || err2 != nil {
		t.Fatalf("errors: %v, %v", err1, err2)
	}
	if l1 != l2 {
		t.Errorf("damping %v with dst aliasing H, %v without", l2, l1)
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			if alias.At(i, j) != sep.At(i, j) {
				t.Fatalf("aliased result differs at (%d,%d): %v vs %v", i, j, alias.At(i, j), sep.At(i, j))
			}
		}
	}
}
