package hessian

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
)

// naiveBL is the Becker–LeCun recursion written out sample by sample with
// scalar loops, an independent reference for the blocked build:
//
//	g_L[k] = ∂²ℓ/∂a_L[k]² (the diagonal; LM: without the MSE residual term)
//	g_l[j] = f′(a_l[j])² Σ_k W_{l+1}[k][j]² g_{l+1}[k] (+ f″(a_l[j]) ∂ℓ/∂z_l[j] unless LM)
//	h[W_l[j][i]] = Σₙ g_l[j] z_{l−1}[i]²,  h[b_l[j]] = Σₙ g_l[j]
func naiveBL(pr *Problem, lm bool) []float64 {
	net := pr.Net
	L := net.NumLayers()
	h := make([]float64, net.NumParams())
	N, _ := pr.X.Dims()
	for n := 0; n < N; n++ {
		x := pr.X.RawRowView(n)
		y := pr.Y.RawRowView(n)
		zs := [][]float64{x}
		var as [][]float64
		for l := 0; l < L; l++ {
			ly := net.Layer(l)
			W, b := net.Weights(l), net.Bias(l)
			a := make([]float64, ly.Out)
			for j := range a {
				a[j] = b[j]
				for i := 0; i < ly.In; i++ {
					a[j] += W.At(j, i) * zs[l][i]
				}
			}
			z := make([]float64, ly.Out)
			if ly.Act == nn.Softmax {
				m := math.Inf(-1)
				for _, v := range a {
					m = math.Max(m, v)
				}
				s := 0.0
				for j, v := range a {
					z[j] = math.Exp(v - m)
					s += z[j]
				}
				for j := range z {
					z[j] /= s
				}
			} else {
				for j, v := range a {
					z[j] = ly.Act.Eval(v)
				}
			}
			as, zs = append(as, a), append(zs, z)
		}
		out := net.Layer(L - 1)
		a, z := as[L-1], zs[L]
		g := make([]float64, out.Out)
		delta := make([]float64, out.Out) // ∂ℓ/∂a_L
		for k := range g {
			switch net.Loss() {
			case nn.MSE:
				d1 := out.Act.Deriv(a[k], z[k])
				g[k] = d1 * d1
				if !lm {
					g[k] += (z[k] - y[k]) * out.Act.Deriv2(a[k], z[k])
				}
				delta[k] = (z[k] - y[k]) * d1
			case nn.BCE:
				g[k] = z[k] * (1 - z[k])
				delta[k] = z[k] - y[k]
			case nn.CE:
				g[k] = z[k] * (1 - z[k])
				delta[k] = z[k]
				if k == int(y[0]) {
					delta[k]--
				}
			}
		}
		for l := L - 1; l >= 0; l-- {
			ly := net.Layer(l)
			o := net.Offset(l)
			for j := 0; j < ly.Out; j++ {
				for i := 0; i < ly.In; i++ {
					h[o+j*ly.In+i] += g[j] * zs[l][i] * zs[l][i]
				}
				h[o+ly.Out*ly.In+j] += g[j]
			}
			if l == 0 {
				break
			}
			prev := net.Layer(l - 1)
			W := net.Weights(l)
			gp := make([]float64, prev.Out)
			dp := make([]float64, prev.Out)
			for i := range gp {
				var s, e float64
				for k := 0; k < ly.Out; k++ {
					s += W.At(k, i) * W.At(k, i) * g[k]
					e += W.At(k, i) * delta[k]
				}
				ap, zp := as[l-1][i], zs[l][i]
				d1 := prev.Act.Deriv(ap, zp)
				gp[i] = d1 * d1 * s
				if !lm {
					gp[i] += prev.Act.Deriv2(ap, zp) * e
				}
				dp[i] = d1 * e
			}
			g, delta = gp, dp
		}
	}
	return h
}

// TestBeckerLeCunMatchesReference checks the blocked build against the
// scalar recursion on random networks of every activation × loss, full and
// LM form, all parameters and the live ones of a pruned network, over
// several chunks and sample blocks, to 1e-12 relative to the largest entry.
// A pruned parameter's entry (in the problem over all parameters) is that
// of a parameter whose value is zero.
func TestBeckerLeCunMatchesReference(t *testing.T) {
	for i, c := range allCases() {
		t.Run(c.String(), func(t *testing.T) {
			N := 2*parallel.ChunkRows + 37 // three chunks, three blocks
			pr := randomProblem(t, c.act, c.depth, c.loss, N, uint64(i+31))
			// A third of the parameters pruned at random, and every weight
			// of input 1, which the forward pass of the live problem then
			// skips.
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			for q := 0; q < pr.Net.NumParams(); q++ {
				p := pr.Net.ParamAt(q)
				if rng.IntN(3) == 0 || (p.Layer == 0 && !p.Bias && p.Col == 1) {
					pr.Net.Prune(q)
				}
			}
			for _, lm := range []bool{false, true} {
				want := naiveBL(pr, lm)
				scale := 0.0
				for _, v := range want {
					scale = math.Max(scale, math.Abs(v))
				}
				for _, p := range []*Problem{All(pr.Net, pr.X, pr.Y), Live(pr.Net, pr.X, pr.Y)} {
					if skip := newBLPlan(p, parallel.ChunkRows, false).in != nil; skip != (p.Params != nil) {
						t.Fatalf("%d of %d covered: inputs skipped %v", p.Dim(), pr.Net.NumParams(), skip)
					}
					got := make([]float64, p.Dim())
					if err := (BeckerLeCun{P: p, LM: lm}).DiagTo(ctx, got); err != nil {
						t.Fatal(err)
					}
					for k, v := range got {
						q := k
						if p.Params != nil {
							q = p.Params[k]
						}
						if math.Abs(v-want[q]) > 1e-12*scale {
							t.Fatalf("LM %v, %d of %d covered: h[%v] = %v, reference %v", lm, p.Dim(), pr.Net.NumParams(), pr.Net.ParamAt(q), v, want[q])
						}
					}
				}
			}
		})
	}
}

// TestBeckerLeCunLMIsGaussNewtonWhereExact checks the LM form against the
// Gauss–Newton diagonal where no off-diagonal term is dropped: the output
// layer of any network, and every parameter of a chain of width-1 layers
// with one output. The full form is checked there against central second
// differences of E (gonum/diff/fd, step 1e-3: truncation ~1e-7 f⁗, rounding
// ~1e-16·E/1e-6), to 1e-5 relative.
func TestBeckerLeCunLMIsGaussNewtonWhereExact(t *testing.T) {
	for i, c := range allCases() {
		pr := randomProblem(t, c.act, c.depth, c.loss, 40, uint64(i+3))
		lm := make([]float64, pr.Dim())
		gn := make([]float64, pr.Dim())
		if err := (BeckerLeCun{P: pr, LM: true}).DiagTo(ctx, lm); err != nil {
			t.Fatal(err)
		}
		if err := (GaussNewton{P: pr}).DiagTo(ctx, gn); err != nil {
			t.Fatal(err)
		}
		for q := pr.Net.Offset(pr.Net.NumLayers() - 1); q < pr.Dim(); q++ {
			if math.Abs(lm[q]-gn[q]) > 1e-12*(1+math.Abs(gn[q])) {
				t.Fatalf("%v: output layer LM[%v] = %v, Gauss–Newton %v", c, pr.Net.ParamAt(q), lm[q], gn[q])
			}
		}
	}
	for _, act := range []nn.Activation{nn.Tanh, nn.Sigmoid, nn.ReLU, nn.Linear} {
		for _, loss := range []nn.Loss{nn.MSE, nn.BCE} {
			outAct := nn.Sigmoid
			if loss == nn.MSE {
				outAct = nn.Tanh
			}
			net, err := nn.New([]int{3, 1, 1, 1}, []nn.Activation{act, act, outAct}, loss)
			if err != nil {
				t.Fatal(err)
			}
			net.Init(rand.NewPCG(4, 4))
			rng := rand.New(rand.NewPCG(5, 5))
			X, Y := mat.NewDense(30, 3, nil), mat.NewDense(30, 1, nil)
			for n := 0; n < 30; n++ {
				for i := 0; i < 3; i++ {
					X.Set(n, i, rng.NormFloat64())
				}
				Y.Set(n, 0, rng.Float64())
			}
			pr := All(net, X, Y)
			lm, full, gn := make([]float64, pr.Dim()), make([]float64, pr.Dim()), make([]float64, pr.Dim())
			BeckerLeCun{P: pr, LM: true}.DiagTo(ctx, lm)
			BeckerLeCun{P: pr}.DiagTo(ctx, full)
			GaussNewton{P: pr}.DiagTo(ctx, gn)
			theta := net.RawParams()
			for q := range lm {
				if math.Abs(lm[q]-gn[q]) > 1e-12*(1+math.Abs(gn[q])) {
					t.Errorf("%v/%v width-1 chain: LM[%d] = %v, Gauss–Newton %v", loss, act, q, lm[q], gn[q])
				}
				if act == nn.ReLU {
					continue // E is not twice differentiable at the kinks
				}
				c := net.Clone()
				th := c.RawParams()
				d := fd.Derivative(func(x float64) float64 {
					th[q] = x
					return c.Objective(X, Y)
				}, theta[q], &fd.Settings{Formula: fd.Central2nd, Step: 1e-3})
				if math.Abs(full[q]-d) > 1e-5*(1+math.Abs(d)) {
					t.Errorf("%v/%v width-1 chain: Becker–LeCun[%d] = %v, finite differences %v", loss, act, q, full[q], d)
				}
			}
		}
	}
}

// TestBeckerLeCunSameBits checks that the build gives the same bits on one
// goroutine and on several, and for GOMAXPROCS 1 and 2.
func TestBeckerLeCunSameBits(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 2, nn.CE, 9*parallel.ChunkRows+11, 9)
	W := pr.Net.NumParams()
	var ref []float64
	for _, workers := range []int{1, 2, 5} {
		got := make([]float64, W)
		if err := blDiag(ctx, pr, blLM, got, workers); err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = got
			continue
		}
		for q := range got {
			if math.Float64bits(got[q]) != math.Float64bits(ref[q]) {
				t.Fatalf("%d workers: h[%d] = %v, one worker %v", workers, q, got[q], ref[q])
			}
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		got := make([]float64, W)
		if err := (BeckerLeCun{P: pr, LM: true}).DiagTo(ctx, got); err != nil {
			t.Fatal(err)
		}
		for q := range got {
			if math.Float64bits(got[q]) != math.Float64bits(ref[q]) {
				t.Fatalf("GOMAXPROCS %d: h[%d] = %v, one worker %v", procs, q, got[q], ref[q])
			}
		}
	}
}

// TestGaussNewtonDiagMatchesReference checks the blocked Gauss–Newton
// diagonal against the diagonal of the dense Gauss–Newton matrix on
// random networks of every activation × loss, all parameters and the live
// ones of a pruned network, to 1e-12 relative to the largest entry, and
// where gnIsExact holds against the exact diagonal of H (its
// sample-by-sample build), and Exact.DiagTo against that too.
func TestGaussNewtonDiagMatchesReference(t *testing.T) {
	for i, c := range allCases() {
		t.Run(c.String(), func(t *testing.T) {
			pr := randomProblem(t, c.act, c.depth, c.loss, parallel.ChunkRows+19, uint64(i+71))
			G, err := Dense(ctx, GaussNewton{P: pr}, 0)
			if err != nil {
				t.Fatal(err)
			}
			W := pr.Net.NumParams()
			scale := 0.0
			for q := range W {
				scale = math.Max(scale, math.Abs(G.At(q, q)))
			}
			rng := rand.New(rand.NewPCG(uint64(i), 6))
			for q := range W {
				p := pr.Net.ParamAt(q)
				if rng.IntN(3) == 0 || (p.Layer == 0 && !p.Bias && p.Col == 2) {
					pr.Net.Prune(q) // the pruned parameters are zero in G's network too
				}
			}
			G, _ = Dense(ctx, GaussNewton{P: All(pr.Net, pr.X, pr.Y)}, 0)
			for _, p := range []*Problem{All(pr.Net, pr.X, pr.Y), Live(pr.Net, pr.X, pr.Y)} {
				full := make([]float64, W)
				if err := blDiag(ctx, p, blGN, full, 0); err != nil {
					t.Fatal(err)
				}
				for k := range p.Dim() {
					q := k
					if p.Params != nil {
						q = p.Params[k]
					}
					if math.Abs(full[q]-G.At(q, q)) > 1e-12*scale {
						t.Fatalf("%d of %d covered: G[%v] = %v, dense %v", p.Dim(), W, pr.Net.ParamAt(q), full[q], G.At(q, q))
					}
				}
			}
			if want := c.act == nn.ReLU || c.act == nn.Linear; gnIsExact(pr.Net) != (want && (c.loss != nn.MSE || pr.Net.Layer(c.depth).Act == nn.Linear)) {
				t.Fatalf("%v: gnIsExact = %v", c, gnIsExact(pr.Net))
			}
			if gnIsExact(pr.Net) {
				h, gn, ex := make([]float64, W), make([]float64, W), make([]float64, W)
				if err := diagFromG(ctx, pr, h, false); err != nil {
					t.Fatal(err)
				}
				Exact{P: pr}.DiagTo(ctx, ex)
				GaussNewton{P: pr}.DiagTo(ctx, gn)
				for q := range W {
					if math.Abs(gn[q]-h[q]) > 1e-12*scale || math.Abs(ex[q]-h[q]) > 1e-12*scale {
						t.Fatalf("%v: Gauss–Newton[%v] = %v, Exact.DiagTo %v, exact diagonal %v", c, pr.Net.ParamAt(q), gn[q], ex[q], h[q])
					}
				}
			}
		})
	}
}

// TestBlockedDiagonalsCancel checks that a canceled context ends the
// builds with its error.
func TestBlockedDiagonalsCancel(t *testing.T) {
	pr := randomProblem(t, nn.Tanh, 1, nn.CE, 3*parallel.ChunkRows, 2)
	c, cancel := context.WithCancel(ctx)
	cancel()
	dst := make([]float64, pr.Dim())
	for name, err := range map[string]error{
		"diag-lm": BeckerLeCun{P: pr, LM: true}.DiagTo(c, dst),
		"diag-bl": BeckerLeCun{P: pr}.DiagTo(c, dst),
		"gn":      GaussNewton{P: pr}.DiagTo(c, dst),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", name, err)
		}
	}
}

// TestBeckerLeCunDiagMetrics checks DiagMetricsTo on random networks of
// every loss, dense and with an input pruned away: the metrics have the
// bits of Evaluate, the diagonal those of DiagTo where DiagTo uses the
// whole network (else within 1e-12 of the largest entry), the same bits for
// GOMAXPROCS 1 and 2, and the next DiagTo returns the kept diagonal until a
// parameter changes.
func TestBeckerLeCunDiagMetrics(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
		for _, pruned := range []bool{false, true} {
			pr := randomProblem(t, nn.Tanh, 2, loss, 5*blChunk+3*parallel.ChunkRows+7, 4)
			if pruned {
				for q := range pr.Net.NumParams() {
					if p := pr.Net.ParamAt(q); p.Layer == 0 && !p.Bias && p.Col == 1 {
						pr.Net.Prune(q)
					}
				}
				pr = Live(pr.Net, pr.X, pr.Y)
			}
			for _, lm := range []bool{false, true} {
				want := make([]float64, pr.Dim())
				if err := (BeckerLeCun{P: pr, LM: lm}).DiagTo(ctx, want); err != nil {
					t.Fatal(err)
				}
				scale := 0.0
				for _, v := range want {
					scale = math.Max(scale, math.Abs(v))
				}
				wantM := pr.Net.Evaluate(pr.X, pr.Y)
				var ref []float64
				for _, procs := range []int{1, 2} {
					runtime.GOMAXPROCS(procs)
					p := &Problem{Net: pr.Net, Data: pr.Data, Params: pr.Params}
					got := make([]float64, p.Dim())
					m, err := (BeckerLeCun{P: p, LM: lm}).DiagMetricsTo(ctx, got)
					if err != nil {
						t.Fatal(err)
					}
					if m != wantM {
						t.Fatalf("%v, pruned %v, LM %v, GOMAXPROCS %d: metrics %+v, Evaluate %+v", loss, pruned, lm, procs, m, wantM)
					}
					for k, v := range got {
						if (!pruned && math.Float64bits(v) != math.Float64bits(want[k])) || math.Abs(v-want[k]) > 1e-12*scale {
							t.Fatalf("%v, pruned %v, LM %v: h[%d] = %v, DiagTo %v", loss, pruned, lm, k, v, want[k])
						}
						if ref != nil && math.Float64bits(v) != math.Float64bits(ref[k]) {
							t.Fatalf("%v, pruned %v, LM %v: h[%d] = %v with GOMAXPROCS 2, %v with 1", loss, pruned, lm, k, v, ref[k])
						}
					}
					ref = got
					kept := make([]float64, p.Dim())
					if err := (BeckerLeCun{P: p, LM: lm}).DiagTo(ctx, kept); err != nil {
						t.Fatal(err)
					}
					for k := range kept {
						if math.Float64bits(kept[k]) != math.Float64bits(got[k]) {
							t.Fatalf("%v, pruned %v, LM %v: DiagTo after DiagMetricsTo h[%d] = %v, kept %v", loss, pruned, lm, k, kept[k], got[k])
						}
					}
				}
				th := pr.Net.RawParams()
				old := th[len(th)-1]
				th[len(th)-1] += 0.5
				p := &Problem{Net: pr.Net, Data: pr.Data, Params: pr.Params}
				got := make([]float64, p.Dim())
				if _, err := (BeckerLeCun{P: p, LM: lm}).DiagMetricsTo(ctx, got); err != nil {
					t.Fatal(err)
				}
				moved := make([]float64, p.Dim())
				th[len(th)-1] = old
				if err := (BeckerLeCun{P: p, LM: lm}).DiagTo(ctx, moved); err != nil {
					t.Fatal(err)
				}
				for k := range moved {
					if math.Abs(moved[k]-want[k]) > 1e-12*scale {
						t.Fatalf("%v, pruned %v, LM %v: after a parameter changed back h[%d] = %v, want %v (the kept diagonal %v)", loss, pruned, lm, k, moved[k], want[k], got[k])
					}
				}
			}
		}
	}
}
