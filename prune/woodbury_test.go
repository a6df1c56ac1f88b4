package prune

import (
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

func TestWoodburyOBSEqualsOBS(t *testing.T) {
	ctx := context.Background()
	worst := 0.0
	for _, c := range obsCases(t) {
		for _, gn := range []bool{false, true} {
			curv := Fisher
			if gn {
				curv = GaussNewton
			}
			name := c.name + "/" + curv.String()
			n := c.p.Dim()
			const lambda = 0.05
			obs, err := OBS{Curvature: curv, Damping: lambda, FixedDamping: true}.Begin(ctx, c.p, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wb, err := WoodburyOBS{GaussNewton: gn, Damping: lambda}.Begin(ctx, c.p, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			worst = math.Max(worst, compareScorers(t, name, wb, obs, weightsOf(c.p), n-2))
		}
	}
	t.Logf("Woodbury against dense OBS: largest relative difference %.2g", worst)
}

func TestRemoveManyJointEqualsOBSSet(t *testing.T) {
	ctx := context.Background()
	for _, c := range obsCases(t) {
		const lambda = 0.05
		n := c.p.Dim()
		w := weightsOf(c.p)
		k := n / 2
		hinv, _, err := OBS{Curvature: Fisher, Damping: lambda, FixedDamping: true}.Inverse(ctx, c.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		wb, _ := WoodburyOBS{Damping: lambda}.Begin(ctx, c.p, nil)
		ww := slices.Clone(w)
		removed, pred, err := RemoveMany(ctx, wb, ww, nil, k, 1)
		if err != nil {
			t.Fatal(err)
		}
		// The set is the k of least w²/(2[H⁻¹]_qq).
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sal := func(q int) float64 { return w[q] * w[q] / (2 * hinv.At(q, q)) }
		slices.SortStableFunc(order, func(a, b int) int {
			switch sa, sb := sal(a), sal(b); {
			case sa < sb:
				return -1
			case sa > sb:
				return 1
			}
			return 0
		})
		if !slices.Equal(removed, order[:k]) {
			t.Fatalf("%s: removed %v, want %v", c.name, removed, order[:k])
		}
		delta, L, err := OBSSet(hinv, w, removed)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(w)
		for j := range want {
			want[j] += delta[j]
		}
		if e := relDiff(ww, want); e > equalityTol {
			t.Errorf("%s: joint removal differs from OBSSet by %.3g", c.name, e)
		}
		if math.Abs(pred-L) > equalityTol*L {
			t.Errorf("%s: predicted %v, OBSSet %v", c.name, pred, L)
		}
		// Dense OBS (sequential removals of the same set) gives the same.
		obs, _ := OBS{Curvature: Fisher, Damping: lambda, FixedDamping: true}.Begin(ctx, c.p, nil)
		wo := slices.Clone(w)
		r2, p2, err := RemoveMany(ctx, obs, wo, nil, k, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r2, removed) || relDiff(wo, want) > equalityTol || math.Abs(p2-L) > equalityTol*L {
			t.Errorf("%s: dense OBS set removal differs", c.name)
		}
		// Greedy in steps: Woodbury and dense OBS agree.
		wb2, _ := WoodburyOBS{Damping: lambda}.Begin(ctx, c.p, nil)
		obs2, _ := OBS{Curvature: Fisher, Damping: lambda, FixedDamping: true}.Begin(ctx, c.p, nil)
		w1, w2 := slices.Clone(w), slices.Clone(w)
		ra, pa, err := RemoveMany(ctx, wb2, w1, nil, k, 3)
		if err != nil {
			t.Fatal(err)
		}
		rb, pb, err := RemoveMany(ctx, obs2, w2, nil, k, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ra, rb) || relDiff(w1, w2) > equalityTol || math.Abs(pa-pb) > equalityTol*pb {
			t.Errorf("%s: removals in 3 steps differ: %v %v, predicted %v %v", c.name, ra, rb, pa, pb)
		}
		for _, q := range ra {
			if w1[q] != 0 {
				t.Errorf("%s: removed %d is %v", c.name, q, w1[q])
			}
		}
	}
}

func TestWoodburyOBSSubsample(t *testing.T) {
	ctx := context.Background()
	c := obsCases(t)[2]
	N, _ := c.p.X.Dims()
	o := WoodburyOBS{Samples: N / 2, Damping: 0.1}
	lr, err := o.LowRank(ctx, c.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Rank() != N/2 {
		t.Fatalf("rank %d, want %d", lr.Rank(), N/2)
	}
	sub := subsample(c.p, N/2, nil)
	ref, err := hessian.LowRankFisher(ctx, sub, &hessian.LowRankSettings{Damping: 0.1, Scale: float64(N) / float64(N/2)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := make([]float64, c.p.Dim()), make([]float64, c.p.Dim())
	lr.InverseDiagTo(a)
	ref.InverseDiagTo(b)
	if !slices.Equal(a, b) {
		t.Error("subsampled Woodbury OBS differs from the low-rank Fisher of the subsample")
	}
	// Relative damping: λ is the fraction of the mean diagonal.
	lr2, err := WoodburyOBS{RelativeDamping: 0.5}.LowRank(ctx, c.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := hessian.Diag(ctx, hessian.Fisher{P: c.p})
	if err != nil {
		t.Fatal(err)
	}
	mean := 0.0
	for _, x := range d {
		mean += x / float64(len(d))
	}
	if math.Abs(lr2.Damping()-0.5*mean) > 1e-12*mean {
		t.Errorf("relative damping: λ = %v, want %v", lr2.Damping(), 0.5*mean)
	}
}

func TestWoodburyOBSSettings(t *testing.T) {
	ctx := context.Background()
	c := obsCases(t)[0]
	for _, o := range []WoodburyOBS{{Samples: -1}, {Batch: -1}, {GaussNewton: true, Batch: 4}, {Damping: -1}, {RelativeDamping: math.NaN()}} {
		if _, err := o.Begin(ctx, c.p, nil); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	o := WoodburyOBS{}
	_, err := o.Begin(ctx, c.p, &Env{MaxBytes: o.MemoryBytes(c.p) - 1})
	var me *hessian.LowRankMemoryError
	if !errors.As(err, &me) || me.Bytes != o.MemoryBytes(c.p) {
		t.Errorf("memory limit below MemoryBytes: got %v", err)
	}
	if _, err := o.Begin(ctx, c.p, &Env{MaxBytes: o.MemoryBytes(c.p)}); err != nil {
		t.Errorf("memory limit at MemoryBytes: %v", err)
	}
}

func TestOneShot(t *testing.T) {
	ctx := context.Background()
	c := obsCases(t)[4]
	net := c.p.Net
	before := net.ParamsTo(nil)
	n := c.p.Dim()
	k := n / 2
	sal := WoodburyOBS{Damping: 0.05}
	out, rounds, err := OneShot(ctx, net, c.p.X, c.p.Y, sal, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(net.ParamsTo(nil), before) {
		t.Fatal("OneShot modified its network")
	}
	sc, _ := sal.Begin(ctx, c.p, nil)
	w := weightsOf(c.p)
	removed, pred, err := RemoveMany(ctx, sc, w, nil, k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 1 || rounds[0].Removed != k || rounds[0].Predicted != pred || rounds[0].Damping != 0.05 || rounds[0].Planned != sal.MemoryBytes(c.p) {
		t.Errorf("rounds %+v, want one of %d removals predicting %v", rounds, k, pred)
	}
	for i, q := range c.p.Params {
		if out.RawParams()[q] != w[i] {
			t.Fatalf("parameter %d: %v, RemoveMany gives %v", q, out.RawParams()[q], w[i])
		}
	}
	for _, i := range removed {
		if out.IsLive(c.p.Params[i]) {
			t.Errorf("removed %d is live", c.p.Params[i])
		}
	}
	// Three rounds: the real ΔE add up to the total; only the allowed
	// parameters are removed.
	allowed := c.p.Params[:n-2]
	out3, r3, err := OneShot(ctx, net, c.p.X, c.p.Y, sal, k, &OneShotSettings{Rounds: 3, Params: allowed})
	if err != nil {
		t.Fatal(err)
	}
	sum, cnt := 0.0, 0
	for _, r := range r3 {
		sum += r.Real
		cnt += r.Removed
	}
	total := out3.Objective(c.p.X, c.p.Y) - net.Objective(c.p.X, c.p.Y)
	if len(r3) != 3 || cnt != k || math.Abs(sum-total) > 1e-9*math.Abs(total) {
		t.Errorf("3 rounds: %+v, total real ΔE %v", r3, total)
	}
	for _, q := range c.p.Params[n-2:] {
		if !out3.IsLive(q) {
			t.Errorf("parameter %d outside Params removed", q)
		}
	}
	// Geometric rounds: each removes the same fraction of what is left.
	_, rg, err := OneShot(ctx, net, c.p.X, c.p.Y, sal, k, &OneShotSettings{Rounds: 3, Geometric: true})
	if err != nil {
		t.Fatal(err)
	}
	cnt = 0
	for i, r := range rg {
		want := int(math.Round(float64(n)*(1-math.Pow(float64(n-k)/float64(n), float64(i+1)/3)))) - cnt
		if i == 2 {
			want = k - cnt
		}
		if r.Removed != want {
			t.Errorf("geometric round %d removed %d, want %d", i+1, r.Removed, want)
		}
		cnt += r.Removed
	}
	if cnt != k || rg[0].Removed <= rg[2].Removed {
		t.Errorf("geometric rounds %+v: %d removed in all, want %d, the first round the largest", rg, cnt, k)
	}
	if _, _, err := OneShot(ctx, net, c.p.X, c.p.Y, sal, n+1, nil); err == nil {
		t.Error("more removals than parameters: no error")
	}
}

func TestSampledLabelsFisherIsGaussNewton(t *testing.T) {
	// E[g̃g̃ᵀ] over targets drawn from the network is the Gauss–Newton
	// matrix: compare the traces over many samples, for every loss.
	ctx := context.Background()
	for _, c := range []struct {
		loss nn.Loss
		out  nn.Activation
	}{{nn.CE, nn.Softmax}, {nn.BCE, nn.Sigmoid}, {nn.MSE, nn.Tanh}} {
		net, err := nn.New([]int{3, 4, 2}, []nn.Activation{nn.Tanh, c.out}, c.loss)
		if err != nil {
			t.Fatal(err)
		}
		net.Init(rand.NewPCG(3, 4))
		rng := rand.New(rand.NewPCG(5, 6))
		N := 20000
		X := mat.NewDense(N, 3, nil)
		Y := mat.NewDense(N, c.loss.TargetCols(2), nil)
		for i := 0; i < N; i++ {
			for j := 0; j < 3; j++ {
				X.Set(i, j, rng.NormFloat64())
			}
		}
		p := hessian.All(net, X, Y)
		gn, err := hessian.Trace(ctx, hessian.GaussNewton{P: p})
		if err != nil {
			t.Fatal(err)
		}
		f, err := hessian.Trace(ctx, hessian.Fisher{P: sampledLabels(p, rng)})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(f-gn) > 0.03*gn {
			t.Errorf("%v: trace of the sampled-label Fisher %v, Gauss–Newton %v", c.loss, f, gn)
		}
	}
	if err := (WoodburyOBS{SampledLabels: true, GaussNewton: true}).Validate(); err == nil {
		t.Error("sampled labels with Gauss–Newton rows: no error")
	}
}

func TestWoodburyHardSamples(t *testing.T) {
	// Hard = Samples: F = λI + Σ over the rows of largest loss, weight 1.
	// Hard = Samples/2: those rows with weight 1, the others (N−h)/(m−h).
	ctx := context.Background()
	c := obsCases(t)[4]
	p := c.p
	N, _ := p.X.Dims()
	net := p.Net
	loss := make([]float64, N)
	tr := net.NewTrace(N)
	net.ForwardTrace(tr, p.X)
	for i := range loss {
		loss[i] = net.SampleLoss(tr, p.Y, i)
	}
	order := make([]int, N)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(loss[b], loss[a]) })
	k := N / 2
	for _, h := range []int{k, k / 2} {
		lambda := 0.3
		o := WoodburyOBS{Samples: k, Hard: h, Damping: lambda, Src: rand.NewPCG(1, 2)}
		lr, err := o.LowRank(ctx, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub, scale := hardSubsample(p, h, k, rand.NewPCG(1, 2))
		for _, r := range order[:h] {
			found := false
			for i := 0; i < k; i++ {
				if slices.Equal(sub.X.RawRowView(i), p.X.RawRowView(r)) {
					found = true
					if want := float64(k) / float64(N); scale[i] != want {
						t.Errorf("hard row %d: scale %v, want %v", r, scale[i], want)
					}
				}
			}
			if !found {
				t.Fatalf("h = %d: row %d of the %d largest losses not taken", h, r, h)
			}
		}
		// The reference: λI + Σᵢ wᵢ gᵢgᵢᵀ from the dense Fisher of each row.
		n := p.Dim()
		ref := mat.NewSymDense(n, nil)
		for i := 0; i < k; i++ {
			_, xc := sub.X.Dims()
			_, yc := sub.Y.Dims()
			row := &hessian.Problem{Net: net, Data: nn.Data{X: mat.NewDense(1, xc, slices.Clone(sub.X.RawRowView(i))), Y: mat.NewDense(1, yc, slices.Clone(sub.Y.RawRowView(i)))}, Params: p.Params}
			f, err := hessian.Dense(ctx, hessian.Fisher{P: row}, -1)
			if err != nil {
				t.Fatal(err)
			}
			ref.AddSym(ref, scaledSym(f, scale[i]*float64(N)/float64(k)))
		}
		v := make([]float64, n)
		for j := range v {
			v[j] = math.Sin(float64(j) + 1)
		}
		got := make([]float64, n)
		lr.MulVecTo(got, v)
		want := mat.NewVecDense(n, nil)
		want.MulVec(ref, mat.NewVecDense(n, slices.Clone(v)))
		for j := range got {
			w := want.AtVec(j) + lambda*v[j]
			if math.Abs(got[j]-w) > 1e-9*(1+math.Abs(w)) {
				t.Fatalf("h = %d: (Fv)_%d = %v, want %v", h, j, got[j], w)
			}
		}
	}
	if err := (WoodburyOBS{Samples: 10, Hard: 11}).Validate(); err == nil {
		t.Error("more hard samples than samples: no error")
	}
}

func scaledSym(a *mat.SymDense, s float64) *mat.SymDense {
	var out mat.SymDense
	out.ScaleSym(s, a)
	return &out
}
