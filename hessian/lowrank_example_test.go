package hessian_test

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
)

// The Woodbury form of C = λI + GᵀG for two gradient rows over four
// parameters: the diagonal of C⁻¹, then one OBS removal, which moves the
// other weights and keeps the form at rank 2.
func ExampleLowRank() {
	G := mat.NewDense(2, 4, []float64{
		1, 2, 0, 1,
		0, 1, 1, 0,
	})
	lr, err := hessian.NewLowRank(context.Background(), G, 0.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	d := make([]float64, 4)
	lr.InverseDiagTo(d)
	fmt.Printf("diag C⁻¹ = %.4f\n", d)
	w := []float64{0.3, -1, 0.8, 0.05}
	pred, err := lr.Remove(3, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("removing w[3]: predicted ΔE %.6f, w = %.4f, rank %d\n", pred, w, lr.Rank())
	// Output:
	// diag C⁻¹ = [1.5918 0.6122 0.9388 1.5918]
	// removing w[3]: predicted ΔE 0.000785, w = [0.3128 -0.9846 0.7897 0.0000], rank 2
}
