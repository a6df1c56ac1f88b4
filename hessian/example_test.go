package hessian_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// round rounds x to four decimals, without a negative zero.
func round(x float64) float64 {
	r := math.Round(x*1e4) / 1e4
	if r == 0 {
		return 0
	}
	return r
}

func Example() {
	net, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		log.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	X := mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1})
	Y := mat.NewDense(4, 1, []float64{0, 1, 1, 0})

	// The exact Hessian of E = Σₙ ℓₙ over all parameters.
	h := hessian.Exact{P: hessian.All(net, X, Y)}
	H, err := hessian.Dense(context.Background(), h, 0)
	if err != nil {
		log.Fatal(err)
	}
	s, err := hessian.Summarize(H)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("parameters:", s.Dim)
	fmt.Println("positive definite:", s.PositiveDefinite, "negative eigenvalues:", s.NegativeCount)
	fmt.Printf("trace: %.3f\n", s.Trace)
	fmt.Printf("eigenvalues in [%.3f, %.3f]\n", s.Min, s.Max)

	// The Hessian-vector product needs no dense matrix.
	v := make([]float64, h.Dim())
	for i := range v {
		v[i] = float64(i%3) - 1
	}
	hv := make([]float64, h.Dim())
	h.MulVecTo(hv, v)
	var want mat.VecDense
	want.MulVec(H, mat.NewVecDense(len(v), v))
	fmt.Println("Hv equals H·v:", mat.EqualApprox(mat.NewVecDense(len(hv), hv), &want, 1e-12))

	// Output:
	// parameters: 13
	// positive definite: false negative eigenvalues: 6
	// trace: 14.103
	// eigenvalues in [-2.075, 13.328]
	// Hv equals H·v: true
}

func ExampleDowndate() {
	H := mat.NewSymDense(3, []float64{
		4, 1, 0,
		1, 3, 1,
		0, 1, 2,
	})
	var hinv mat.SymDense
	if err := hessian.DampedInverse(&hinv, H, 0); err != nil {
		log.Fatal(err)
	}
	// Remove parameter 1: what remains is the inverse of H without row and
	// column 1, that is of diag(4, 2).
	if err := hessian.Downdate(&hinv, 1); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		fmt.Println(round(hinv.At(i, 0)), round(hinv.At(i, 1)), round(hinv.At(i, 2)))
	}
	// Parameter 1 cannot be removed twice.
	err := hessian.Downdate(&hinv, 1)
	fmt.Println(errors.Is(err, hessian.ErrNonPositivePivot))

	// Output:
	// 0.25 0 0
	// 0 0 0
	// 0 0 0.5
	// true
}

func ExampleDampedInverse() {
	H := mat.NewSymDense(2, []float64{
		2, 0,
		0, -1,
	})
	var inv mat.SymDense
	err := hessian.DampedInverse(&inv, H, 0)
	fmt.Println(err)
	var npd *hessian.NotPositiveDefiniteError
	if errors.As(err, &npd) {
		err = hessian.DampedInverse(&inv, H, npd.Suggest)
	}
	fmt.Println(err, round(inv.At(0, 0)), round(inv.At(1, 1)))

	// Output:
	// hessian: H + λI is not positive definite at λ = 0: the smallest eigenvalue of H is -1; retry with λ = 10
	// <nil> 0.0833 0.1111
}
