package curvreport_test

import (
	"context"
	"fmt"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/curvreport"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// The Gauss–Newton matrix of a linear unit on three samples, with all its
// eigenvalues, and its damped inverse.
func Example() {
	net, err := nn.New([]int{1, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		panic(err)
	}
	X := mat.NewDense(3, 1, []float64{-1, 0, 1})
	Y := mat.NewDense(3, 1, []float64{0, 1, 2})
	res, err := curvreport.Compute(context.Background(), hessian.All(net, X, Y),
		&curvreport.Settings{Kind: "gn", FullSpectrum: true, Inverse: true, Damping: 1})
	if err != nil {
		panic(err)
	}
	s := res.Summary
	fmt.Printf("%s, W = %d: trace %g, eigenvalues %g to %g, positive definite %v\n", s.Curvature, s.W, s.Trace, *s.Min, *s.Max, *s.PositiveDefinite)
	fmt.Printf("diagonal of (G + I)⁻¹: %.4g %.4g\n", res.Matrix.At(0, 0), res.Matrix.At(1, 1))
	// Output:
	// Gauss–Newton matrix G, W = 2: trace 5, eigenvalues 2 to 3, positive definite true
	// diagonal of (G + I)⁻¹: 0.3333 0.25
}
