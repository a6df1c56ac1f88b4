package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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

func TestBlockOBSGradientEqualsOBS(t *testing.T) {
	// With the objective's gradient, one block of all parameters is OBS
	// with the gradient term (WoodTaylor), removal by removal.
	worst := 0.0
	for _, c := range obsCases(t) {
		n := c.p.Dim()
		rng := rand.New(rand.NewPCG(uint64(n), 5))
		g := make([]float64, n)
		for i := range g {
			g[i] = 0.1 * rng.NormFloat64()
		}
		env := &Env{Gradient: g}
		const lambda = 0.05
		obs, err := OBS{Curvature: GaussNewton, Damping: lambda}.Begin(context.Background(), c.p, env)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := BlockOBS{Curvature: GaussNewton, Block: n, Damping: lambda}.Begin(context.Background(), c.p, env)
		if err != nil {
			t.Fatal(err)
		}
		worst = math.Max(worst, compareScorers(t, c.name, blk, obs, weightsOf(c.p), n/2))
	}
	t.Logf("B = W with the gradient term against OBS: largest relative difference %.2g", worst)
}

func TestBlockOBSGradientSet(t *testing.T) {
	// A joint removal with the gradient term is the Newton step −C⁻¹g
	// followed by the classic joint removal, and predicts ½gᵀC⁻¹g less.
	ctx := context.Background()
	for _, c := range obsCases(t)[:6] {
		n := c.p.Dim()
		g := make([]float64, n)
		rng := rand.New(rand.NewPCG(uint64(n), 6))
		for i := range g {
			g[i] = 0.1 * rng.NormFloat64()
		}
		o := BlockOBS{Curvature: GaussNewton, Rows: true, Damping: 0.1}
		sg, err := o.Begin(ctx, c.p, &Env{Gradient: g})
		if err != nil {
			t.Fatal(err)
		}
		u, gu := slices.Clone(sg.(*blockScorer).u), sg.(*blockScorer).gu
		s0, err := o.Begin(ctx, c.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		S := []int{0, n / 2, n - 1}
		w := weightsOf(c.p)
		wg, w0 := slices.Clone(w), slices.Clone(w)
		for i := range w0 {
			w0[i] -= u[i]
		}
		pg, err := sg.(SetRemover).RemoveSet(ctx, S, wg)
		if err != nil {
			t.Fatal(err)
		}
		p0, err := s0.(SetRemover).RemoveSet(ctx, S, w0)
		if err != nil {
			t.Fatal(err)
		}
		if e := relDiff(wg, w0); e > equalityTol {
			t.Fatalf("%s: weights differ by %.3g", c.name, e)
		}
		if e := math.Abs(pg - (p0 - gu/2)); e > equalityTol*math.Max(1, math.Abs(pg)) {
			t.Fatalf("%s: predicted %v, want %v", c.name, pg, p0-gu/2)
		}
		if !(gu > 0) {
			t.Fatalf("%s: gᵀC⁻¹g = %v, want positive", c.name, gu)
		}
	}
}

func TestBlockOBSHard(t *testing.T) {
	// With Hard, the blocks are the curvature of the hard rows plus
	// (N − Hard)/(Samples − Hard) times that of the others drawn.
	ctx := context.Background()
	ran := 0
	for _, c := range obsCases(t) {
		N, _ := c.p.X.Dims()
		if N < 12 {
			continue // the cases of 8 rows; the others have 18 or 28
		}
		ran++
		const h, m = 4, 8
		o := BlockOBS{Curvature: GaussNewton, Rows: true, Samples: m, Hard: h, Src: rand.NewPCG(9, 9)}
		blocks := o.Blocks(c.p)
		got, err := o.build(ctx, c.p, blocks)
		if err != nil {
			t.Fatal(err)
		}
		hard, rest := hardRows(c.p, h, m, rand.NewPCG(9, 9))
		if len(hard) != h || len(rest) != m-h {
			t.Fatalf("%s: %d hard and %d other rows", c.name, len(hard), len(rest))
		}
		// The hard rows are those of largest loss.
		loss := func(r int) float64 {
			sub := rowsProblem(c.p, []int{r})
			return sub.Net.Objective(sub.X, sub.Y)
		}
		least := math.Inf(1)
		for _, r := range hard {
			least = math.Min(least, loss(r))
		}
		for r := 0; r < N; r++ {
			if !slices.Contains(hard, r) && loss(r) > least+1e-12 {
				t.Fatalf("%s: row %d has loss %v above the hard rows' least %v", c.name, r, loss(r), least)
			}
		}
		Hh, err := hessian.Dense(ctx, hessian.GaussNewton{P: rowsProblem(c.p, hard)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		Hr, err := hessian.Dense(ctx, hessian.GaussNewton{P: rowsProblem(c.p, rest)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		scale := float64(N-h) / float64(m-h)
		for bi, b := range blocks {
			var want, have []float64
			for a, q := range b {
				for a2, q2 := range b {
					want = append(want, Hh.At(q, q2)+scale*Hr.At(q, q2))
					have = append(have, got[bi].At(a, a2))
				}
			}
			if e := relDiff(have, want); e > 1e-12 {
				t.Fatalf("%s: block %d differs by %.3g", c.name, bi, e)
			}
		}
	}
	if ran < 3 {
		t.Fatalf("%d cases with enough rows", ran)
	}
	if err := (BlockOBS{Samples: 4, Hard: 5}).Validate(); err == nil {
		t.Fatal("Hard above Samples accepted")
	}
}

func TestBlockOBSRowsMergeLayers(t *testing.T) {
	// With Rows and Block, the units of a layer of at most Block live
	// parameters share one block; larger layers keep one block per unit.
	net := randomNet(t, []int{6, 4, 3, 2}, []nn.Activation{nn.ReLU, nn.Tanh, nn.Softmax}, nn.CE, 4)
	net.Prune(0)
	p := hessian.Live(net, mat.NewDense(1, 6, nil), mat.NewDense(1, 2, nil))
	rows := hessian.RowBlocks(p)
	got := BlockOBS{Rows: true, Block: 15}.Blocks(p)
	// Layer 0: 4 units of 7 parameters (27 live) stay apart; layer 1
	// (15) and layer 2 (8) become one block each.
	if len(rows) != 9 || len(got) != 6 {
		t.Fatalf("%d row blocks merged into %d, want 9 into 6", len(rows), len(got))
	}
	for i := 0; i < 4; i++ {
		if !slices.Equal(got[i], rows[i]) {
			t.Fatalf("block %d: %v, want the unit's %v", i, got[i], rows[i])
		}
	}
	if want := slices.Concat(rows[4:7]...); !slices.Equal(got[4], want) {
		t.Fatalf("layer 1: %v, want %v", got[4], want)
	}
	if want := slices.Concat(rows[7:]...); !slices.Equal(got[5], want) {
		t.Fatalf("layer 2: %v, want %v", got[5], want)
	}
	if n := len(BlockOBS{Rows: true, Block: 7}.Blocks(p)); n != 9 {
		t.Fatalf("Block below every layer: %d blocks, want the 9 rows", n)
	}
}

func TestBlockOBSDampingLoweredIsSaid(t *testing.T) {
	// A damping above the escalation's ceiling, 10‖C‖_F of the whole
	// block-diagonal matrix, is lowered to it in every block, and the issue
	// says so.
	p := obsCases(t)[2].p
	var issues []Issue
	if _, err := (BlockOBS{Curvature: GaussNewton, Rows: true, Damping: 1e6}).Begin(context.Background(), p, &Env{Report: func(is Issue) { issues = append(issues, is) }}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, is := range issues {
		if is.Kind == IssueDamping && strings.Contains(is.Message, "lowered from 1e+06") && is.Lambda < 1e6 {
			found = true
		}
		if strings.Contains(is.Message, "raised") {
			t.Errorf("issue %q: nothing was raised", is.Message)
		}
	}
	if !found {
		t.Fatalf("no lowered-damping issue in %v", issues)
	}
}

func TestBlockOBSTinyBlockKeepsDamping(t *testing.T) {
	// A unit whose outgoing weights are nearly zero has a nearly zero
	// Gauss–Newton block; it keeps the damping of the others (the ranking
	// across blocks compares them), instead of one capped by its own norm.
	net := randomNet(t, []int{4, 3, 2}, []nn.Activation{nn.Tanh, nn.Softmax}, nn.CE, 7)
	theta := slices.Clone(net.RawParams())
	theta[15], theta[18] = 1e-9, -1e-9 // W1[0][0] and W1[1][0]: out of hidden unit 0
	net.SetParams(theta)
	rng := rand.New(rand.NewPCG(7, 1))
	X := mat.NewDense(20, 4, nil)
	Y := mat.NewDense(20, 1, nil)
	for i := 0; i < 20; i++ {
		for j := 0; j < 4; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		Y.Set(i, 0, float64(rng.IntN(2)))
	}
	p := hessian.Live(net, X, Y)
	var issues []Issue
	const lambda = 1
	sc, err := BlockOBS{Curvature: GaussNewton, Rows: true, Damping: lambda}.Begin(context.Background(), p, &Env{Report: func(is Issue) { issues = append(issues, is) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(issues) != 0 {
		t.Fatalf("issues %v", issues)
	}
	bs := sc.(*blockScorer)
	for _, q := range bs.blocks[0] {
		if d := bs.diag(q); math.Abs(d-1/lambda) > 1e-6 {
			t.Fatalf("[C⁻¹]_qq of the tiny block at %d is %v, want about 1/λ = %v", q, d, 1/lambda)
		}
	}
}
