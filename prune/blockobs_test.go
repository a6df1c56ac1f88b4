package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// equalityTol is the relative error allowed between two computations of
// the same OBS quantities.
const equalityTol = 1e-10

// obsCase is a random problem of the equality tests.
type obsCase struct {
	name string
	p    *hessian.Problem
}

// obsCases returns random networks of every loss and several hidden
// activations with random data, one with pruned parameters.
func obsCases(t *testing.T) []obsCase {
	var cs []obsCase
	seed := uint64(3)
	for _, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
		for _, act := range []nn.Activation{nn.Tanh, nn.Sigmoid, nn.ReLU} {
			out := []nn.Activation{nn.Linear, nn.Sigmoid, nn.Softmax}[loss]
			net := randomNet(t, []int{4, 3, 2}, []nn.Activation{act, out}, loss, seed)
			rng := rand.New(rand.NewPCG(seed, 1))
			N := 8 + int(seed%3)*10
			X := mat.NewDense(N, 4, nil)
			Y := mat.NewDense(N, loss.TargetCols(2), nil)
			for i := 0; i < N; i++ {
				for j := 0; j < 4; j++ {
					X.Set(i, j, rng.NormFloat64())
				}
				for k := 0; k < loss.TargetCols(2); k++ {
					switch loss {
					case nn.MSE:
						Y.Set(i, k, rng.NormFloat64())
					case nn.BCE:
						Y.Set(i, k, float64(rng.IntN(2)))
					case nn.CE:
						Y.Set(i, k, float64(rng.IntN(2)))
					}
				}
			}
			if seed%4 == 0 {
				net.Prune(1)
				net.Prune(6)
			}
			cs = append(cs, obsCase{fmt.Sprintf("%v/%v/%d", loss, act, seed), hessian.Live(net, X, Y)})
			seed++
		}
	}
	return cs
}

func relDiff(a, b []float64) float64 {
	var d, s float64
	for i := range a {
		if math.IsNaN(a[i]) && math.IsNaN(b[i]) {
			continue
		}
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(b[i]))
	}
	if s == 0 {
		return d
	}
	return d / s
}

// compareScorers scores with both scorers, then removes the same
// positions from both, greedily by a's saliency, k times, comparing the
// saliencies, predictions and weights after every step. It returns the
// largest relative difference.
func compareScorers(t *testing.T, name string, a, b Scorer, w []float64, k int) float64 {
	t.Helper()
	n := len(w)
	wa, wb := slices.Clone(w), slices.Clone(w)
	sa, pa := make([]float64, n), make([]float64, n)
	sb, pb := make([]float64, n), make([]float64, n)
	removed := make([]bool, n)
	worst := 0.0
	for step := 0; step <= k; step++ {
		if err := a.Score(sa, pa, wa); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := b.Score(sb, pb, wb); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var la, lb, ppa, ppb []float64
		for i := range sa {
			if !removed[i] {
				la, lb = append(la, sa[i]), append(lb, sb[i])
				ppa, ppb = append(ppa, pa[i]), append(ppb, pb[i])
			}
		}
		for _, e := range []float64{relDiff(la, lb), relDiff(ppa, ppb), relDiff(wa, wb)} {
			worst = math.Max(worst, e)
			if e > equalityTol {
				t.Fatalf("%s: step %d: relative difference %.3g", name, step, e)
			}
		}
		if step == k {
			break
		}
		q := -1
		for i := range sa {
			if !removed[i] && (q < 0 || sa[i] < sa[q]) {
				q = i
			}
		}
		if err := a.Remove(q, wa); err != nil {
			t.Fatal(err)
		}
		if err := b.Remove(q, wb); err != nil {
			t.Fatal(err)
		}
		removed[q] = true
	}
	return worst
}

func weightsOf(p *hessian.Problem) []float64 {
	w := make([]float64, p.Dim())
	for i, q := range p.Params {
		w[i] = p.Net.RawParams()[q]
	}
	return w
}

func TestBlockOBSWholeEqualsOBS(t *testing.T) {
	worst := 0.0
	for _, c := range obsCases(t) {
		for _, curv := range []Curvature{Exact, GaussNewton, Fisher} {
			name := c.name + "/" + curv.String()
			n := c.p.Dim()
			const lambda = 0.05
			obs, err := OBS{Curvature: curv, Damping: lambda}.Begin(context.Background(), c.p, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			blk, err := BlockOBS{Curvature: curv, Block: n, Damping: lambda}.Begin(context.Background(), c.p, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if obs.(*obsScorer).Damping() != blk.(*blockScorer).Damping() {
				t.Fatalf("%s: damping %v and %v", name, obs.(*obsScorer).Damping(), blk.(*blockScorer).Damping())
			}
			worst = math.Max(worst, compareScorers(t, name, blk, obs, weightsOf(c.p), n/2))
		}
	}
	t.Logf("B = W against global OBS: largest relative difference %.2g", worst)
}

func TestBlockOBSSingleEqualsOBD(t *testing.T) {
	worst := 0.0
	for _, c := range obsCases(t) {
		for _, curv := range []Curvature{GaussNewton, Fisher, Exact} {
			name := c.name + "/" + curv.String()
			n := c.p.Dim()
			obd, err := OBD{Curvature: curv}.Begin(context.Background(), c.p, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := obd.(obdScorer)
			if curv == Exact && slices.Min(d.d) <= 0 {
				continue // a 1×1 block with h ≤ 0 has no inverse at λ = 0
			}
			blk, err := BlockOBS{Curvature: curv, Block: 1, Damping: NoDamping, FixedDamping: true}.Begin(context.Background(), c.p, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			worst = math.Max(worst, compareScorers(t, name, blk, obd, weightsOf(c.p), n/2))
		}
	}
	t.Logf("B = 1 against OBD: largest relative difference %.2g", worst)
}

func TestBlockOBSRows(t *testing.T) {
	// One block per unit equals global OBS on the block-diagonal matrix
	// with the cross-unit entries set to zero.
	for _, c := range obsCases(t)[:4] {
		const lambda = 0.1
		blocks := hessian.RowBlocks(c.p)
		H, err := hessian.Dense(context.Background(), hessian.GaussNewton{P: c.p}, 0)
		if err != nil {
			t.Fatal(err)
		}
		blockOf := map[int]int{}
		for bi, b := range blocks {
			for _, q := range b {
				blockOf[q] = bi
			}
		}
		n := c.p.Dim()
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				if blockOf[i] != blockOf[j] {
					H.SetSym(i, j, 0)
				}
			}
		}
		hinv := mat.NewSymDense(n, nil)
		if err := hessian.DampedInverse(hinv, H, lambda); err != nil {
			t.Fatal(err)
		}
		ref := &obsScorer{p: c.p, hinv: hinv, removed: make([]bool, n), col: make([]float64, n)}
		blk, err := BlockOBS{Curvature: GaussNewton, Rows: true, Damping: lambda}.Begin(context.Background(), c.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		compareScorers(t, c.name, blk, ref, weightsOf(c.p), n/2)
	}
}

func TestBlockOBSSetEqualsOBSSet(t *testing.T) {
	// A joint removal on block B = W is prune.OBSSet on the dense
	// inverse; on smaller blocks it equals sequential removals.
	ctx := context.Background()
	for _, c := range obsCases(t) {
		const lambda = 0.05
		n := c.p.Dim()
		w := weightsOf(c.p)
		S := rand.New(rand.NewPCG(1, uint64(n))).Perm(n)[:n/3]
		hinv, _, err := OBS{Curvature: Fisher, Damping: lambda, FixedDamping: true}.Inverse(ctx, c.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		delta, sal, err := OBSSet(hinv, w, S)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := BlockOBS{Curvature: Fisher, Block: n, Damping: lambda, FixedDamping: true}.Begin(ctx, c.p, nil)
		wb := slices.Clone(w)
		pred, err := blk.(SetRemover).RemoveSet(ctx, S, wb)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(w)
		for j := range want {
			want[j] += delta[j]
		}
		if e := relDiff(wb, want); e > equalityTol {
			t.Errorf("%s: B = W set update: relative difference %.3g", c.name, e)
		}
		if math.Abs(pred-sal) > equalityTol*sal {
			t.Errorf("%s: B = W set prediction %v, OBSSet %v", c.name, pred, sal)
		}
		for _, B := range []int{1, 3, n} {
			b1, _ := BlockOBS{Curvature: Fisher, Block: B, Damping: lambda}.Begin(ctx, c.p, nil)
			b2, _ := BlockOBS{Curvature: Fisher, Block: B, Damping: lambda}.Begin(ctx, c.p, nil)
			w1, w2 := slices.Clone(w), slices.Clone(w)
			p1, err := b1.(SetRemover).RemoveSet(ctx, S, w1)
			if err != nil {
				t.Fatal(err)
			}
			var p2 float64
			sal2, pr2 := make([]float64, n), make([]float64, n)
			for _, q := range S {
				b2.Score(sal2, pr2, w2)
				p2 += pr2[q]
				if err := b2.Remove(q, w2); err != nil {
					t.Fatal(err)
				}
			}
			if e := relDiff(w1, w2); e > equalityTol {
				t.Errorf("%s: B = %d: joint and sequential removals differ by %.3g", c.name, B, e)
			}
			if math.Abs(p1-p2) > equalityTol*p2 {
				t.Errorf("%s: B = %d: joint prediction %v, sequential %v", c.name, B, p1, p2)
			}
			// The downdated inverses agree: the next scores are equal.
			s1, q1 := make([]float64, n), make([]float64, n)
			b1.Score(s1, q1, w1)
			b2.Score(sal2, pr2, w2)
			for i := range s1 {
				if !slices.Contains(S, i) && math.Abs(s1[i]-sal2[i]) > equalityTol*math.Abs(sal2[i]) {
					t.Errorf("%s: B = %d: score %d after the set: %v joint, %v sequential", c.name, B, i, s1[i], sal2[i])
				}
			}
		}
	}
}

func TestBlockOBSSettings(t *testing.T) {
	c := obsCases(t)[0]
	ctx := context.Background()
	for _, o := range []BlockOBS{
		{Curvature: Hutchinson},
		{Block: -1},
		{Block: 4, Rows: true},
		{Damping: -2},
		{Samples: -1},
	} {
		if _, err := o.Begin(ctx, c.p, nil); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	o := BlockOBS{Curvature: Fisher, Block: 5}
	_, err := o.Begin(ctx, c.p, &Env{MaxBytes: o.MemoryBytes(c.p) - 1})
	var me *hessian.MemoryError
	if !errors.As(err, &me) {
		t.Errorf("memory limit below MemoryBytes: got %v", err)
	}
	if _, err := o.Begin(ctx, c.p, &Env{MaxBytes: o.MemoryBytes(c.p)}); err != nil {
		t.Errorf("memory limit at MemoryBytes: %v", err)
	}
}
