package prune_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// TestRunSharedForwardPass checks that OBD on the Becker–LeCun diagonals,
// whose end-of-round training metrics come from the next round's build,
// prunes the same parameters and reports the same numbers, bit for bit,
// as the same diagonal through a Builder (a separate evaluation), for
// GOMAXPROCS 1 and 2, on a network with more rows than a build's chunk.
func TestRunSharedForwardPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	N := 2600
	X := mat.NewDense(N, 6, nil)
	Y := mat.NewDense(N, 1, nil)
	for n := range N {
		x := X.RawRowView(n)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		Y.Set(n, 0, float64(rng.IntN(3)))
		if x[0]+x[1] > 0.5 {
			Y.Set(n, 0, 0)
		}
	}
	d := nn.Splits{Train: nn.Data{X: X, Y: Y}, Test: nn.Data{X: X.Slice(0, 300, 0, 6).(*mat.Dense), Y: Y.Slice(0, 300, 0, 1).(*mat.Dense)}}
	net, err := nn.New([]int{6, 8, 3}, []nn.Activation{nn.ReLU, nn.Softmax}, nn.CE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(5, 1))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, lm := range []bool{true, false} {
		c := prune.BeckerLeCun
		if lm {
			c = prune.LevenbergMarquardt
		}
		var want string
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			for _, m := range []prune.Saliency{
				prune.OBD{Builder: func(p *hessian.Problem) hessian.Curvature { return hessian.BeckerLeCun{P: p, LM: lm} }},
				prune.OBD{Curvature: c},
			} {
				res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: m, Sparsity: 0.8, AuditRows: 500})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Rounds) < 5 {
					t.Fatalf("%d rounds", len(res.Rounds))
				}
				got := fmt.Sprintf("%v\n%+v\n%+v\n%+v\n%v", res.Net.RawParams(), res.Start, res.Final, res.Rounds, res.History)
				if want == "" {
					want = got
				} else if got != want {
					t.Fatalf("LM %v, GOMAXPROCS %d, %T %+v: the result differs from that with a Builder and GOMAXPROCS 1", lm, procs, m, m)
				}
			}
		}
	}
}
