package hessian

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// lowRankTol is the relative error allowed against the dense inverse.
const lowRankTol = 1e-10

// denseDampedInverse returns (λI + s·C)⁻¹ of the dense curvature c.
func denseDampedInverse(t *testing.T, c Curvature, s, lambda float64) (*mat.SymDense, *mat.SymDense) {
	t.Helper()
	C, err := Dense(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := C.SymmetricDim()
	A := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			v := s * C.At(i, j)
			if i == j {
				v += lambda
			}
			A.SetSym(i, j, v)
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(A) {
		t.Fatal("dense damped matrix not positive definite")
	}
	inv := mat.NewSymDense(n, nil)
	if err := ch.InverseTo(inv); err != nil {
		t.Fatal(err)
	}
	return A, inv
}

// relErr returns max|a−b| / max|b| over vectors.
func relErr(a, b []float64) float64 {
	var d, s float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(b[i]))
	}
	e := d
	if s != 0 {
		e = d / s
	}
	worstRelErr = math.Max(worstRelErr, e)
	return e
}

// worstRelErr is the largest error relErr has returned, logged by the
// equality tests.
var worstRelErr float64

type lowRankKind struct {
	name  string
	build func(p *Problem, s *LowRankSettings) (*LowRank, error)
	dense func(p *Problem) Curvature
	batch int
}

var lowRankKinds = []lowRankKind{
	{"fisher", func(p *Problem, s *LowRankSettings) (*LowRank, error) { return LowRankFisher(ctx, p, s) },
		func(p *Problem) Curvature { return Fisher{p} }, 1},
	{"gn", func(p *Problem, s *LowRankSettings) (*LowRank, error) { return LowRankGaussNewton(ctx, p, s) },
		func(p *Problem) Curvature { return GaussNewton{p} }, 1},
}

// lowRankCases returns the problems of the equality tests: every loss and
// hidden activation, with fewer samples than parameters (a true low-rank
// matrix) and with more, and one with pruned parameters.
func lowRankCases(t *testing.T) []*Problem {
	var ps []*Problem
	seed := uint64(1)
	for _, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
		for _, act := range []nn.Activation{nn.Tanh, nn.Sigmoid, nn.ReLU, nn.Linear} {
			N := 6
			if seed%2 == 0 {
				N = 40
			}
			ps = append(ps, randomProblem(t, act, 1+int(seed%2), loss, N, seed))
			seed++
		}
	}
	pr := randomProblem(t, nn.Tanh, 2, nn.CE, 9, 99)
	pr.Net.Prune(2)
	pr.Net.Prune(7)
	ps = append(ps, Live(pr.Net, pr.X, pr.Y))
	return ps
}

func TestLowRankMatchesDense(t *testing.T) {
	worstRelErr = 0
	defer func() { t.Logf("largest relative error against the dense inverse: %.2g", worstRelErr) }()
	for pi, pr := range lowRankCases(t) {
		for _, k := range lowRankKinds {
			name := fmt.Sprintf("%d/%s/%v/%v", pi, k.name, pr.Net.Loss(), pr.Net.Layer(0).Act)
			const lambda, scale = 0.05, 1.7
			lr, err := k.build(pr, &LowRankSettings{Damping: lambda, Scale: scale})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			A, inv := denseDampedInverse(t, k.dense(pr), scale, lambda)
			n := pr.Dim()
			// Diagonal of the inverse.
			d := make([]float64, n)
			lr.InverseDiagTo(d)
			want := make([]float64, n)
			for i := range want {
				want[i] = inv.At(i, i)
			}
			if e := relErr(d, want); e > lowRankTol {
				t.Errorf("%s: diagonal of the inverse: relative error %.3g", name, e)
			}
			// Columns, products with C and C⁻¹.
			col := make([]float64, n)
			for _, q := range []int{0, n / 2, n - 1} {
				lr.InverseColumnTo(col, q)
				if e := relErr(col, mat.Col(nil, q, inv)); e > lowRankTol {
					t.Errorf("%s: column %d of the inverse: relative error %.3g", name, q, e)
				}
			}
			rng := rand.New(rand.NewPCG(uint64(pi), 5))
			v := make([]float64, n)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			got := make([]float64, n)
			lr.MulVecTo(got, v)
			var wv mat.VecDense
			wv.MulVec(A, mat.NewVecDense(n, v))
			if e := relErr(got, wv.RawVector().Data); e > lowRankTol {
				t.Errorf("%s: C v: relative error %.3g", name, e)
			}
			lr.InverseMulVecTo(got, v)
			wv.MulVec(inv, mat.NewVecDense(n, v))
			if e := relErr(got, wv.RawVector().Data); e > lowRankTol {
				t.Errorf("%s: C⁻¹ v: relative error %.3g", name, e)
			}
		}
	}
}

// obsRemoveDense is the dense OBS removal of q: the update of w and the
// downdate of hinv.
func obsRemoveDense(t *testing.T, hinv *mat.SymDense, w []float64, q int) float64 {
	t.Helper()
	d := hinv.At(q, q)
	pred := w[q] * w[q] / (2 * d)
	f := -w[q] / d
	for j := range w {
		if hinv.At(j, j) != 0 || j == q {
			w[j] += f * hinv.At(j, q)
		}
	}
	w[q] = 0
	if err := Downdate(hinv, q); err != nil {
		t.Fatal(err)
	}
	return pred
}

func TestLowRankRemoveMatchesDowndate(t *testing.T) {
	worstRelErr = 0
	defer func() { t.Logf("largest relative error against the dense inverse: %.2g", worstRelErr) }()
	for pi, pr := range lowRankCases(t) {
		for _, k := range lowRankKinds {
			name := fmt.Sprintf("%d/%s", pi, k.name)
			const lambda = 0.1
			lr, err := k.build(pr, &LowRankSettings{Damping: lambda})
			if err != nil {
				t.Fatal(err)
			}
			_, inv := denseDampedInverse(t, k.dense(pr), 1, lambda)
			n := pr.Dim()
			rng := rand.New(rand.NewPCG(uint64(pi), 9))
			w := make([]float64, n)
			for i := range w {
				w[i] = rng.NormFloat64()
			}
			wd := slices.Clone(w)
			order := rng.Perm(n)[:n/2]
			for _, q := range order {
				pl, err := lr.Remove(q, w)
				if err != nil {
					t.Fatalf("%s: remove %d: %v", name, q, err)
				}
				pd := obsRemoveDense(t, inv, wd, q)
				if e := math.Abs(pl-pd) / math.Abs(pd); e > lowRankTol {
					t.Errorf("%s: removal of %d: predicted ΔE %v, dense %v", name, q, pl, pd)
				}
			}
			if e := relErr(w, wd); e > lowRankTol {
				t.Errorf("%s: weights after %d removals: relative error %.3g", name, len(order), e)
			}
			for _, q := range order {
				if w[q] != 0 {
					t.Errorf("%s: removed %d is %v", name, q, w[q])
				}
			}
			d := make([]float64, n)
			lr.InverseDiagTo(d)
			want := make([]float64, n)
			for i := range want {
				want[i] = inv.At(i, i)
			}
			if e := relErr(d, want); e > lowRankTol {
				t.Errorf("%s: diagonal after removals: relative error %.3g", name, e)
			}
			col := make([]float64, n)
			for q := 0; q < n; q++ {
				if lr.Removed(q) {
					continue
				}
				lr.InverseColumnTo(col, q)
				if e := relErr(col, mat.Col(nil, q, inv)); e > lowRankTol {
					t.Errorf("%s: column %d after removals: relative error %.3g", name, q, e)
				}
				break
			}
			// The restricted C: products agree with the dense matrix
			// restricted to the live positions.
			if _, err := lr.Remove(order[0], w); err == nil {
				t.Errorf("%s: removing %d twice: no error", name, order[0])
			}
		}
	}
}

// denseSetUpdate is OBSSet's formula on a dense inverse.
func denseSetUpdate(t *testing.T, hinv *mat.SymDense, w []float64, S []int) ([]float64, float64) {
	t.Helper()
	k := len(S)
	M := mat.NewSymDense(k, nil)
	ws := mat.NewVecDense(k, nil)
	for a, qa := range S {
		ws.SetVec(a, w[qa])
		for b := a; b < k; b++ {
			M.SetSym(a, b, hinv.At(qa, S[b]))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(M) {
		t.Fatal("[H⁻¹]_SS not positive definite")
	}
	var z mat.VecDense
	if err := ch.SolveVecTo(&z, ws); err != nil {
		t.Fatal(err)
	}
	n := len(w)
	delta := make([]float64, n)
	for a, qa := range S {
		for j := 0; j < n; j++ {
			delta[j] -= hinv.At(j, qa) * z.AtVec(a)
		}
	}
	for _, q := range S {
		delta[q] = -w[q]
	}
	return delta, 0.5 * mat.Dot(ws, &z)
}

func TestLowRankSetMatchesDense(t *testing.T) {
	defer func(c int) { setChunk = c }(setChunk)
	setChunk = 3
	worstRelErr = 0
	defer func() { t.Logf("largest relative error against the dense inverse: %.2g", worstRelErr) }()
	for pi, pr := range lowRankCases(t) {
		k := lowRankKinds[pi%2]
		name := fmt.Sprintf("%d/%s", pi, k.name)
		const lambda = 0.1
		n := pr.Dim()
		rng := rand.New(rand.NewPCG(uint64(pi), 13))
		w := make([]float64, n)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		lr0, err := k.build(pr, &LowRankSettings{Damping: lambda})
		if err != nil {
			t.Fatal(err)
		}
		m := lr0.Rank()
		// Sets below m/4 (rank-one downdates), between m/4 and m (k×k
		// solve, blocked downdate) and above m (m×m solve).
		for _, size := range []int{1, max(1, m/4), min(n-2, m), min(n-2, m+3)} {
			lr, _ := k.build(pr, &LowRankSettings{Damping: lambda})
			_, inv := denseDampedInverse(t, k.dense(pr), 1, lambda)
			first := rng.Perm(n)[:2]
			wl, wd := slices.Clone(w), slices.Clone(w)
			for _, q := range first {
				if _, err := lr.Remove(q, wl); err != nil {
					t.Fatal(err)
				}
				obsRemoveDense(t, inv, wd, q)
			}
			var S []int
			for _, q := range rng.Perm(n) {
				if !slices.Contains(first, q) && len(S) < size {
					S = append(S, q)
				}
			}
			dl, sl, err := lr.SetUpdate(wl, S)
			if err != nil {
				t.Fatalf("%s: set of %d: %v", name, size, err)
			}
			dd, sd := denseSetUpdate(t, inv, wd, S)
			if e := relErr(dl, dd); e > lowRankTol {
				t.Errorf("%s: set of %d (m = %d): update relative error %.3g", name, size, m, e)
			}
			if e := math.Abs(sl-sd) / sd; e > lowRankTol {
				t.Errorf("%s: set of %d: saliency %v, dense %v", name, size, sl, sd)
			}
			pred, err := lr.RemoveSet(ctx, S, wl)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(pred-sl) > lowRankTol*sl {
				t.Errorf("%s: RemoveSet predicted %v, SetUpdate %v", name, pred, sl)
			}
			for _, q := range S {
				if err := Downdate(inv, q); err != nil {
					t.Fatal(err)
				}
			}
			d := make([]float64, n)
			lr.InverseDiagTo(d)
			want := make([]float64, n)
			for i := range want {
				want[i] = inv.At(i, i)
			}
			if e := relErr(d, want); e > lowRankTol {
				t.Errorf("%s: set of %d: diagonal after the downdate: relative error %.3g", name, size, e)
			}
			col := make([]float64, n)
			for q := 0; q < n; q++ {
				if !lr.Removed(q) {
					lr.InverseColumnTo(col, q)
					if e := relErr(col, mat.Col(nil, q, inv)); e > lowRankTol {
						t.Errorf("%s: set of %d: column %d after the downdate: relative error %.3g", name, size, q, e)
					}
				}
			}
			for _, q := range S {
				if wl[q] != 0 {
					t.Errorf("%s: removed %d is %v", name, q, wl[q])
				}
			}
		}
	}
}

func TestLowRankBatchRows(t *testing.T) {
	// Per-batch gradients: G's rows are sums of per-sample gradients;
	// compare with a low-rank form built from those sums directly.
	pr := randomProblem(t, nn.Tanh, 2, nn.BCE, 11, 4)
	lr, err := LowRankFisher(ctx, pr, &LowRankSettings{Damping: 0.2, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Rank() != 3 {
		t.Fatalf("rank %d, want 3", lr.Rank())
	}
	n := pr.Dim()
	G := mat.NewDense(3, n, nil)
	g := make([]float64, n)
	for b := 0; b < 3; b++ {
		lo, hi := 4*b, min(4*b+4, 11)
		pr.Net.Gradient(g, pr.X.Slice(lo, hi, 0, 3).(*mat.Dense), pr.Y.Slice(lo, hi, 0, 2).(*mat.Dense))
		G.SetRow(b, g)
	}
	ref, err := NewLowRank(ctx, G, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := make([]float64, n), make([]float64, n)
	lr.InverseDiagTo(a)
	ref.InverseDiagTo(b)
	if e := relErr(a, b); e > lowRankTol {
		t.Errorf("batch rows: diagonal relative error %.3g", e)
	}
}

func TestLowRankDeterministic(t *testing.T) {
	// Enough rows and columns that the matrix products split over
	// goroutines.
	rng := rand.New(rand.NewPCG(1, 2))
	m, n := 300, 700
	G := mat.NewDense(m, n, nil)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			G.Set(i, j, rng.NormFloat64())
		}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	run := func(procs int) ([]float64, []float64) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		lr, err := NewLowRank(ctx, G, 1)
		if err != nil {
			t.Fatal(err)
		}
		wc := slices.Clone(w)
		S := make([]int, 0, 200)
		for q := 0; q < 400; q += 2 {
			S = append(S, q)
		}
		if _, err := lr.RemoveSet(ctx, S, wc); err != nil {
			t.Fatal(err)
		}
		if _, err := lr.Remove(1, wc); err != nil {
			t.Fatal(err)
		}
		d := make([]float64, n)
		lr.InverseDiagTo(d)
		return d, wc
	}
	d1, w1 := run(1)
	d2, w2 := run(2)
	d4, w4 := run(4)
	if !slices.Equal(d1, d2) || !slices.Equal(d1, d4) || !slices.Equal(w1, w2) || !slices.Equal(w1, w4) {
		t.Error("results differ between GOMAXPROCS 1, 2 and 4")
	}
}

func TestLowRankErrors(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 1, nn.MSE, 5, 3)
	if _, err := LowRankFisher(ctx, pr, &LowRankSettings{}); err == nil {
		t.Error("zero damping: no error")
	}
	if _, err := LowRankFisher(ctx, pr, &LowRankSettings{Damping: 1, Scale: -1}); err == nil {
		t.Error("negative scale: no error")
	}
	if _, err := LowRankFisher(ctx, pr, &LowRankSettings{Damping: 1, Batch: -2}); err == nil {
		t.Error("negative batch: no error")
	}
	_, err := LowRankFisher(ctx, pr, &LowRankSettings{Damping: 1, MaxBytes: 100})
	var me *LowRankMemoryError
	if !errors.As(err, &me) || me.Bytes != LowRankBytes(pr.Dim(), 5) {
		t.Errorf("memory limit: got %v", err)
	}
	nan := mat.NewDense(2, 3, []float64{1, 2, math.NaN(), 0, 1, 0})
	if _, err := NewLowRank(ctx, nan, 1); !errors.Is(err, ErrNotFinite) {
		t.Errorf("NaN row: got %v", err)
	}
}
