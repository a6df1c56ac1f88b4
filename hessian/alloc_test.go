package hessian

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/nn"
)

// TestProductsAllocateNothing checks that the Hessian- and Gauss–Newton–
// vector products reuse their workspace: after the first product, none
// allocates, with one chunk of samples and with several blocks run by
// workers, and over the live parameters of a pruned network.
func TestProductsAllocateNothing(t *testing.T) {
	for _, N := range []int{40, 600, 2300} {
		pr := randomProblem(t, nn.Tanh, 2, nn.CE, N, 7)
		live := Live(pr.Net, pr.X, pr.Y)
		live.Params = live.Params[1:]
		for _, c := range []Curvature{Exact{P: pr}, GaussNewton{P: pr}, Exact{P: live}} {
			v := make([]float64, c.Dim())
			for i := range v {
				v[i] = math.Sin(float64(i))
			}
			dst := make([]float64, c.Dim())
			c.MulVecTo(dst, v)
			want := append([]float64(nil), dst...)
			a := testing.AllocsPerRun(10, func() { c.MulVecTo(dst, v) })
			switch {
			case N >= 64 && blasimpl.Core() == "":
				// gonum's pure-Go Dgemm starts goroutines for outputs of
				// 4 or more 64×64 blocks, and a chunk has 256 rows: its
				// allocations are the BLAS's, not the product's.
				t.Logf("N = %d, %T: %v allocations per product, inside the pure-Go BLAS's parallel Dgemm", N, c, a)
			case a != 0:
				t.Errorf("N = %d, %T: %v allocations per product", N, c, a)
			}
			for i := range dst {
				if dst[i] != want[i] {
					t.Fatalf("N = %d, %T: repeated product differs at %d: %v, first %v", N, c, i, dst[i], want[i])
				}
			}
		}
	}
}

// TestLanczosAllocatesNothingPerStep checks that a Lanczos run's
// allocations do not grow with its number of steps: everything is
// allocated up front.
func TestLanczosAllocatesNothingPerStep(t *testing.T) {
	// N < 64 keeps the products within one serial Dgemm block of the
	// pure-Go BLAS, which allocates nothing either.
	rp := randomProblem(t, nn.Tanh, 2, nn.MSE, 60, 3)
	net, err := nn.New([]int{3, 12, 9, 2}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(3, 3))
	pr := All(net, rp.X, rp.Y)
	c := Exact{P: pr}
	allocs := func(steps int) float64 {
		return testing.AllocsPerRun(3, func() {
			_, err := Lanczos(ctx, c, 2, &LanczosSettings{MaxIter: steps, Tol: 1e-300, Src: rand.NewPCG(1, 1)})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if pr.Dim() < 100 {
		t.Fatalf("W = %d, too small for the test", pr.Dim())
	}
	short, long := allocs(12), allocs(100)
	// 88 more steps: one allocation per step would add 88; allow a stray
	// runtime allocation.
	if long-short > 2 {
		t.Errorf("Lanczos allocates %v times for 12 steps and %v for 100", short, long)
	}
}

// TestBeckerLeCunOperator checks that BeckerLeCun.MulVecTo is diag(h)·v,
// computes h once (no allocation on later products), follows a change of
// the parameters, and works with Lanczos as a diagonal operator.
func TestBeckerLeCunOperator(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 2, nn.MSE, 30, 9)
	for _, lm := range []bool{false, true} {
		d := BeckerLeCun{P: pr, LM: lm}
		h := make([]float64, d.Dim())
		if err := d.DiagTo(ctx, h); err != nil {
			t.Fatal(err)
		}
		v := make([]float64, d.Dim())
		for i := range v {
			v[i] = float64(i%5) - 2
		}
		dst := make([]float64, d.Dim())
		d.MulVecTo(dst, v)
		for i := range dst {
			if dst[i] != h[i]*v[i] {
				t.Fatalf("LM %v: (diag(h) v)[%d] = %v, want %v", lm, i, dst[i], h[i]*v[i])
			}
		}
		if a := testing.AllocsPerRun(10, func() { d.MulVecTo(dst, v) }); a != 0 {
			t.Errorf("LM %v: %v allocations per product: the diagonal is recomputed", lm, a)
		}
		res, err := Lanczos(ctx, d, 1, &LanczosSettings{MaxIter: d.Dim()})
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := slices.Min(h), slices.Max(h)
		if math.Abs(res.Largest[0]-hi) > 1e-9*math.Abs(hi) || math.Abs(res.Smallest[0]-lo) > 1e-9*(math.Abs(hi)+math.Abs(lo)) {
			t.Errorf("LM %v: Lanczos gives [%v, %v], diagonal spans [%v, %v]", lm, res.Smallest[0], res.Largest[0], lo, hi)
		}
	}
	// A changed parameter gives the new diagonal.
	d := BeckerLeCun{P: pr}
	one := make([]float64, d.Dim())
	for i := range one {
		one[i] = 1
	}
	before := make([]float64, d.Dim())
	d.MulVecTo(before, one)
	pr.Net.RawParams()[0] += 0.5
	after := make([]float64, d.Dim())
	d.MulVecTo(after, one)
	want := make([]float64, d.Dim())
	if err := d.DiagTo(ctx, want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, want) || slices.Equal(after, before) {
		t.Errorf("after a parameter change MulVecTo does not give the new diagonal")
	}
}

// TestConcurrentProducts checks that concurrent products on one problem,
// each with a workspace of its own, give the serial result bit for bit.
func TestConcurrentProducts(t *testing.T) {
	pr := randomProblem(t, nn.Sigmoid, 2, nn.BCE, 700, 4)
	W := pr.Dim()
	v := make([]float64, W)
	for i := range v {
		v[i] = math.Cos(float64(3 * i))
	}
	want := make([]float64, W)
	Exact{P: pr}.MulVecTo(want, v)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float64, W)
			for r := 0; r < 5; r++ {
				Exact{P: pr}.MulVecTo(got, v)
				if !slices.Equal(got, want) {
					errs <- "concurrent product differs from the serial one"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
