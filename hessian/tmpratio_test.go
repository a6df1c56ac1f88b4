package hessian

import (
	"context"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

func TestTmpRatio(t *testing.T) {
	for _, sz := range [][]int{{50, 96, 1}, {36, 64, 40, 1}} {
		pr := benchProblem(&testing.B{}, sz)
		dst := mat.NewSymDense(pr.Dim(), nil)
		best := [2]time.Duration{time.Hour, time.Hour}
		for r := 0; r < 7; r++ {
			for c, d := range []Denser{Exact{P: pr}, GaussNewton{P: pr}} {
				t0 := time.Now()
				d.DenseTo(context.Background(), dst)
				best[c] = min(best[c], time.Since(t0))
			}
		}
		t.Logf("%v W=%d exact %v GN %v ratio %.2f", sz, pr.Dim(), best[0], best[1], float64(best[0])/float64(best[1]))
	}
}
