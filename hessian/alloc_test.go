package hessian

import (
	"math"
	"math/rand/v2"
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
