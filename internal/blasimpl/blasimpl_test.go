package blasimpl

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestName(t *testing.T) {
	n := Name()
	if n == "" {
		t.Fatal("empty name")
	}
	if c := Core(); c != "" && !strings.Contains(n, c) {
		t.Errorf("Name %q does not name the core %q", n, c)
	}
	t.Logf("BLAS: %s", n)
}

func TestCoreWarning(t *testing.T) {
	for _, c := range []struct {
		core         string
		avx2, avx512 bool
		want         string
	}{
		{"Prescott", true, false, "Haswell"},
		{"Prescott", true, true, "SkylakeX"},
		{"Core2", true, false, "OPENBLAS_CORETYPE"},
		{"generic", false, true, "AVX-512"},
		{"Prescott", false, false, ""},
		{"Haswell", true, false, ""},
		{"SkylakeX", true, true, ""},
		{"Zen", true, false, ""},
	} {
		got := coreWarning(c.core, c.avx2, c.avx512)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("coreWarning(%q, %v, %v) = %q, want one containing %q", c.core, c.avx2, c.avx512, got, c.want)
		}
		if got != "" && !strings.Contains(got, "OPENBLAS_CORETYPE") {
			t.Errorf("warning %q does not name OPENBLAS_CORETYPE", got)
		}
	}
}

// TestLAPACK checks the Cholesky factorization, inverse and eigenvalues of
// the build's LAPACK (OpenBLAS's with -tags openblas) on a matrix with
// known eigenvalues.
func TestLAPACK(t *testing.T) {
	const n = 70
	rng := rand.New(rand.NewPCG(1, 1))
	// A = Q diag(1..n) Qᵀ with a random orthogonal Q.
	g := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	d := mat.NewDiagDense(n, nil)
	for i := 0; i < n; i++ {
		d.SetDiag(i, float64(i+1))
	}
	var qd, a mat.Dense
	qd.Mul(&q, d)
	a.Mul(&qd, q.T())
	A := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			A.SetSym(i, j, 0.5*(a.At(i, j)+a.At(j, i)))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(A, false) {
		t.Fatal("eigenvalues failed")
	}
	for i, v := range eig.Values(nil) {
		if math.Abs(v-float64(i+1)) > 1e-10*n {
			t.Errorf("eigenvalue %d = %v, want %d", i, v, i+1)
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(A) {
		t.Fatal("Cholesky failed")
	}
	// The 1-norm condition estimate (dpocon) of a matrix with 2-norm
	// condition n lies within a factor n of it.
	if c := ch.Cond(); !(c >= n/2.0 && c <= n*n) {
		t.Errorf("condition estimate %v, want about %d", c, n)
	}
	var inv mat.SymDense
	if err := ch.InverseTo(&inv); err != nil {
		t.Fatal(err)
	}
	var prod mat.Dense
	prod.Mul(A, &inv)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(prod.At(i, j)-want) > 1e-11*n {
				t.Fatalf("(A A⁻¹)[%d][%d] = %v", i, j, prod.At(i, j))
			}
		}
	}
	// Not positive definite.
	A.SetSym(0, 0, -5)
	if ch.Factorize(A) {
		t.Error("Cholesky of an indefinite matrix succeeded")
	}
}
