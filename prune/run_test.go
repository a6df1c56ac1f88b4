package prune_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// regressionMLP returns a 3-4-2 tanh/linear network trained by L-BFGS on
// noisy regression data, with validation and test splits.
func regressionMLP(t testing.TB, seed uint64) (*nn.Network, nn.Splits) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	split := func(N int) nn.Data {
		X := mat.NewDense(N, 3, nil)
		Y := mat.NewDense(N, 2, nil)
		for n := 0; n < N; n++ {
			for j := 0; j < 3; j++ {
				X.Set(n, j, rng.NormFloat64())
			}
			x := X.RawRowView(n)
			Y.Set(n, 0, math.Tanh(x[0]-0.5*x[1])+0.1*rng.NormFloat64())
			Y.Set(n, 1, 0.5*x[2]+0.3*x[0]*x[1]+0.1*rng.NormFloat64())
		}
		return nn.Data{X: X, Y: Y}
	}
	d := nn.Splits{Train: split(40), Valid: split(20), Test: split(20)}
	net, err := nn.New([]int{3, 4, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, 1))
	if _, err := nn.Train(context.Background(), net, d.Train, nn.Data{}, &nn.TrainSettings{
		Optimizer: nn.LBFGS, Epochs: 300, WeightDecay: 1e-3,
	}); err != nil {
		t.Fatal(err)
	}
	return net, d
}

// checkResult checks the invariants of every result: a finite network,
// pruned parameters zero, a history consistent with the mask, and the
// input network unchanged.
func checkResult(t *testing.T, in *nn.Network, before []float64, res *prune.Result) {
	t.Helper()
	if !slices.Equal(in.ParamsTo(nil), before) || in.HasMask() {
		t.Errorf("Run modified its input network")
	}
	net := res.Net
	if err := net.CheckFinite(); err != nil {
		t.Errorf("result network: %v", err)
	}
	removed := map[int]bool{}
	live := net.NumParams()
	for i, st := range res.History {
		if st.Step != i+1 {
			t.Errorf("step %d numbered %d", i+1, st.Step)
		}
		if st.Undone {
			if i != len(res.History)-1 {
				t.Errorf("undone step %d is not the last", st.Step)
			}
			continue
		}
		live--
		if st.Live != live {
			t.Errorf("step %d: live %d, want %d", st.Step, st.Live, live)
		}
		if st.Name != net.ParamAt(st.Index).String() {
			t.Errorf("step %d: name %s for index %d", st.Step, st.Name, st.Index)
		}
		removed[st.Index] = true
	}
	for q := 0; q < net.NumParams(); q++ {
		if net.IsLive(q) == removed[q] {
			t.Errorf("parameter %d: live %v but removed %v in the history", q, net.IsLive(q), removed[q])
		}
		if !net.IsLive(q) && net.RawParams()[q] != 0 {
			t.Errorf("pruned parameter %d is %g", q, net.RawParams()[q])
		}
	}
	if net.NumLive() != live {
		t.Errorf("%d live parameters, history says %d", net.NumLive(), live)
	}
	sum := 0
	for _, r := range res.Rounds {
		sum += r.Removed
	}
	if sum != net.NumParams()-live {
		t.Errorf("rounds removed %d, history %d", sum, net.NumParams()-live)
	}
}

func run(t *testing.T, net *nn.Network, d nn.Splits, s *prune.Settings) *prune.Result {
	t.Helper()
	before := net.ParamsTo(nil)
	res, err := prune.Run(context.Background(), net, d, s)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, net, before, res)
	return res
}

func TestRunDefaults(t *testing.T) {
	net, d := regressionMLP(t, 1)
	res := run(t, net, d, nil)
	W := net.NumParams() // 26
	want := W - int(math.Ceil(prune.DefaultSparsity*float64(W)))
	if res.Stopped != prune.StoppedTarget || res.Net.NumLive() != want {
		t.Errorf("stopped %q with %d live, want target with %d", res.Stopped, res.Net.NumLive(), want)
	}
	for _, r := range res.Rounds {
		if math.IsNaN(r.Damping) || r.Damping < prune.DefaultDamping {
			t.Errorf("round %d: damping %g", r.Round, r.Damping)
		}
		if r.Pruned.Valid.N != 20 || r.Pruned.Test.N != 20 || r.Retrain != nil || r.Retrained != r.Pruned {
			t.Errorf("round %d: metrics %+v", r.Round, r)
		}
	}
	// The first round removes DefaultFraction of the parameters, rounded up.
	if got := res.Rounds[0].Removed; got != int(math.Ceil(prune.DefaultFraction*float64(W))) {
		t.Errorf("first round removed %d", got)
	}
	for i, st := range res.History {
		prev := res.Start.Train.Loss
		if i > 0 {
			prev = res.History[i-1].Loss
		}
		if st.Real != st.Loss-prev || !(st.Predicted >= 0) || st.Predicted != st.Saliency || !math.IsNaN(st.Error) {
			t.Errorf("step %d: %+v", st.Step, st)
		}
	}
}

func TestRunTargetLive(t *testing.T) {
	net, d := regressionMLP(t, 2)
	for _, perLayer := range []bool{false, true} {
		res := run(t, net, d, &prune.Settings{TargetLive: 11, PerRound: 4, PerLayer: perLayer})
		if res.Stopped != prune.StoppedTarget || res.Net.NumLive() != 11 {
			t.Errorf("per layer %v: stopped %q with %d live, want 11", perLayer, res.Stopped, res.Net.NumLive())
		}
		for i, r := range res.Rounds {
			want := 4
			if i == len(res.Rounds)-1 {
				want = (net.NumParams()-11-1)%4 + 1
			}
			if r.Removed != want {
				t.Errorf("per layer %v round %d removed %d, want %d", perLayer, r.Round, r.Removed, want)
			}
		}
	}
}

func TestRunSparsityAndPerLayer(t *testing.T) {
	net, d := regressionMLP(t, 3)
	W := net.NumParams() // 26: layer 0 has 16, layer 1 has 10
	res := run(t, net, d, &prune.Settings{Sparsity: 0.3, Fraction: 0.5, PerLayer: true, Method: prune.OBD{}})
	if pruned := W - res.Net.NumLive(); res.Stopped != prune.StoppedTarget || pruned != int(math.Ceil(0.3*float64(W))) {
		t.Errorf("stopped %q with %d pruned, want %d", res.Stopped, pruned, int(math.Ceil(0.3*float64(W))))
	}
	// Exactly 0.3·10 = 3 of 10: no rounding up past a whole count.
	X := mat.NewDense(5, 3, []float64{1, 0, 2, 0, 1, 1, 1, 1, 0, 2, 0, 1, 0, 2, 1})
	Y := mat.NewDense(5, 2, []float64{1, 0, 0, 1, 1, 1, 2, 0, 0, 2})
	lin := leastSquares(t, X, Y)
	r2 := run(t, lin, nn.Splits{Train: nn.Data{X: X, Y: Y}}, &prune.Settings{Sparsity: 0.3, Method: prune.Magnitude{}})
	if got := lin.NumParams() - r2.Net.NumLive(); got != 3 {
		t.Errorf("sparsity 0.3 of 8 parameters pruned %d, want 3", got)
	}

	// Per layer: one round removing half of each layer.
	res = run(t, net, d, &prune.Settings{Fraction: 0.5, PerLayer: true, MaxRounds: 1, Method: prune.Magnitude{}})
	w0, b0 := res.Net.LayerLive(0)
	w1, b1 := res.Net.LayerLive(1)
	if w0+b0 != 8 || w1+b1 != 5 || res.Stopped != prune.StoppedRounds {
		t.Errorf("per layer: live %d and %d, want 8 and 5 (stopped %q)", w0+b0, w1+b1, res.Stopped)
	}
}

func TestRunProtectBiases(t *testing.T) {
	net, d := regressionMLP(t, 4)
	res := run(t, net, d, &prune.Settings{ProtectBiases: true, PerRound: 7, Method: prune.OBD{Curvature: prune.LevenbergMarquardt}, TargetLive: 1})
	if res.Stopped != prune.StoppedExhausted {
		t.Errorf("stopped %q, want exhausted", res.Stopped)
	}
	for l := 0; l < res.Net.NumLayers(); l++ {
		w, b := res.Net.LayerLive(l)
		if w != 0 || b != res.Net.Layer(l).Out {
			t.Errorf("layer %d: %d weights and %d biases live", l, w, b)
		}
	}
}

func TestRunErrorRise(t *testing.T) {
	net, d := regressionMLP(t, 5)
	start := net.Evaluate(d.Train.X, d.Train.Y).MeanLoss
	const rise = 0.05
	res := run(t, net, d, &prune.Settings{ErrorRise: rise, PerRound: 3})
	if res.Stopped != prune.StoppedErrorRise {
		t.Fatalf("stopped %q, want error-rise", res.Stopped)
	}
	last := res.History[len(res.History)-1]
	if !last.Undone || !(last.Error-start > rise) {
		t.Errorf("last step %+v: want an undone step with error above %g", last, start+rise)
	}
	for _, st := range res.History[:len(res.History)-1] {
		if st.Undone || st.Error-start > rise {
			t.Errorf("step %d: error %g, start %g", st.Step, st.Error, start)
		}
	}
	if got := res.Net.Evaluate(d.Train.X, d.Train.Y).MeanLoss; got-start > rise || got != res.History[len(res.History)-2].Loss/40 {
		t.Errorf("result mean loss %g, start %g", got, start)
	}

	// The misclassification rate on XOR with a zero threshold: stop at the
	// first removal that misclassifies a pattern.
	x, ok := fitXOR(t, 3, nn.Sigmoid, 1e-3)
	if !ok {
		t.Fatal("XOR did not fit")
	}
	res = run(t, x, nn.Splits{Train: xorData(), Valid: xorData()}, &prune.Settings{
		ErrorRise: prune.NoRise, ErrorMeasure: prune.Misclassification, ErrorSplit: prune.ValidSplit, PerRound: 1,
	})
	if res.Stopped != prune.StoppedErrorRise || !xorHolds(res.Net) || res.Net.NumLive() != x.NumParams()-1 {
		t.Errorf("XOR: stopped %q with %d live, XOR holds %v", res.Stopped, res.Net.NumLive(), xorHolds(res.Net))
	}
}

func TestRunErrorRiseAfterRetrain(t *testing.T) {
	// Retraining that raises the error above the threshold is undone.
	net, d := regressionMLP(t, 6)
	res := run(t, net, d, &prune.Settings{
		ErrorRise: 0.05, PerRound: 1, MaxRounds: 3,
		Retrain: &nn.TrainSettings{Optimizer: nn.SGD, LearningRate: 5, Epochs: 1, Momentum: nn.NoMomentum},
	})
	if res.Stopped != prune.StoppedErrorRise {
		t.Fatalf("stopped %q", res.Stopped)
	}
	r := res.Rounds[len(res.Rounds)-1]
	if r.Retrain == nil || r.Retrained != r.Pruned {
		t.Errorf("last round: retrain %v, retrained %+v, pruned %+v", r.Retrain, r.Retrained, r.Pruned)
	}
	if got := res.Net.Evaluate(d.Train.X, d.Train.Y); got != r.Pruned.Train {
		t.Errorf("result %+v, want the network before retraining %+v", got, r.Pruned.Train)
	}
}

func TestRunBudget(t *testing.T) {
	net, X, Y := quadratic(t, 7)
	d := nn.Splits{Train: nn.Data{X: X, Y: Y}}
	E := net.Objective(X, Y)
	budget := 0.02 * E
	res := run(t, net, d, &prune.Settings{Budget: budget, Method: undamped})
	if res.Stopped != prune.StoppedBudget {
		t.Fatalf("stopped %q, want budget", res.Stopped)
	}
	var sum float64
	for _, st := range res.History {
		sum += st.Predicted
		if !closeDelta(st.Predicted, st.Real, st.Loss) {
			t.Errorf("step %d: predicted %.15g, real %.15g", st.Step, st.Predicted, st.Real)
		}
	}
	if sum > budget {
		t.Errorf("predicted ΔE %g above the budget %g", sum, budget)
	}
	// The next removal, the least OBS saliency on the result, would exceed.
	s, err := prune.Scores(context.Background(), res.Net, X, Y, &prune.Settings{Method: undamped})
	if err != nil {
		t.Fatal(err)
	}
	next := math.Inf(1)
	for _, v := range s {
		if !math.IsNaN(v) {
			next = math.Min(next, v)
		}
	}
	if !(sum+next > budget) {
		t.Errorf("stopped at %g with the next saliency %g within the budget %g", sum, next, budget)
	}
	if got := res.Net.Objective(X, Y) - E; !closeDelta(sum, got, E) {
		t.Errorf("total predicted ΔE %.15g, real %.15g", sum, got)
	}

	// A round budget: every round within it; pruning ends when a round can
	// remove nothing.
	res = run(t, net, d, &prune.Settings{RoundBudget: 0.01 * E, Method: undamped})
	for _, r := range res.Rounds {
		if r.Predicted > 0.01*E {
			t.Errorf("round %d: predicted %g above the round budget", r.Round, r.Predicted)
		}
	}
	if res.Stopped != prune.StoppedRoundBudget || res.Rounds[len(res.Rounds)-1].Removed != 0 {
		t.Errorf("stopped %q", res.Stopped)
	}
}

func TestRunRetrainKeepsMaskAndSaves(t *testing.T) {
	net, d := regressionMLP(t, 8)
	res := run(t, net, d, &prune.Settings{
		Fraction: 0.2, TargetLive: 12, Method: prune.OBS{Curvature: prune.GaussNewton},
		Retrain: &nn.TrainSettings{Epochs: 30, BatchSize: 8},
	})
	for _, r := range res.Rounds {
		if r.Retrain == nil || r.Retrain.Epochs != 30 {
			t.Errorf("round %d: retraining %+v", r.Round, r.Retrain)
		}
		if r.Retrained.Train.Loss >= r.Pruned.Train.Loss {
			t.Errorf("round %d: retraining did not lower the loss: %g → %g", r.Round, r.Pruned.Train.Loss, r.Retrained.Train.Loss)
		}
	}
	path := filepath.Join(t.TempDir(), "pruned.json")
	if err := modelio.Save(path, res.Net); err != nil {
		t.Fatal(err)
	}
	back, err := modelio.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Mask(), res.Net.Mask()) || !slices.Equal(back.ParamsTo(nil), res.Net.ParamsTo(nil)) {
		t.Errorf("reloaded network differs")
	}
	for _, sp := range []nn.Data{d.Train, d.Valid, d.Test} {
		if a, b := res.Net.Evaluate(sp.X, sp.Y), back.Evaluate(sp.X, sp.Y); a != b {
			t.Errorf("reloaded network evaluates %+v, want %+v", b, a)
		}
	}
}

type countRecorder map[prune.EventKind]int

func (c countRecorder) Record(e prune.Event) { c[e.Kind]++ }

func TestRunRecorderAndHook(t *testing.T) {
	net, d := regressionMLP(t, 9)
	rec := countRecorder{}
	calls := 0
	res := run(t, net, d, &prune.Settings{PerRound: 5, TargetLive: 10, Recorder: rec,
		OnState: func(st *prune.State) error {
			if st.Rounds == calls {
				return nil // the state once more, a rule holding before a round
			}
			calls++
			if r := st.RoundList[len(st.RoundList)-1]; r.Round != calls || st.Net.NumLive() != r.Live {
				t.Errorf("hook: round %d, live %d vs %d", r.Round, st.Net.NumLive(), r.Live)
			}
			return nil
		}})
	n := len(res.Rounds)
	if rec[prune.EventRoundStart] != n || rec[prune.EventRoundEnd] != n || rec[prune.EventRemoval] != len(res.History) ||
		rec[prune.EventDone] != 1 || rec[prune.EventRetrain] != 0 || calls != n {
		t.Errorf("events %v and %d hook calls for %d rounds, %d removals", rec, calls, n, len(res.History))
	}

	stop := errors.New("disk full")
	res, err := prune.Run(context.Background(), net, d, &prune.Settings{PerRound: 5, OnState: func(*prune.State) error { return stop }})
	if !errors.Is(err, stop) || res == nil || res.Stopped != prune.StoppedFailed || len(res.Rounds) != 1 {
		t.Errorf("hook error: %v, %+v", err, res)
	}
}

func TestRunCanceled(t *testing.T) {
	net, d := regressionMLP(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	rec := recorderFunc(func(e prune.Event) {
		if e.Kind == prune.EventRemoval && e.Step.Step == 3 {
			cancel()
		}
	})
	res, err := prune.Run(ctx, net, d, &prune.Settings{PerRound: 10, Recorder: rec})
	if !errors.Is(err, context.Canceled) || res.Stopped != prune.StoppedCanceled || len(res.History) != 3 || res.Net.NumLive() != net.NumParams()-3 {
		t.Errorf("canceled: %v, stopped %q, %d steps", err, res.Stopped, len(res.History))
	}
}

type recorderFunc func(prune.Event)

func (f recorderFunc) Record(e prune.Event) { f(e) }

func TestRunHealth(t *testing.T) {
	// An untrained network: its exact Hessian is indefinite.
	net, err := nn.New([]int{3, 4, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(11, 1))
	_, d := regressionMLP(t, 11)
	H, err := hessian.Dense(context.Background(), hessian.Exact{P: hessian.All(net, d.Train.X, d.Train.Y)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := hessian.Eigenvalues(H)
	if err != nil {
		t.Fatal(err)
	}
	if ev[0] >= 0 {
		t.Fatalf("smallest eigenvalue %g: want an indefinite Hessian for this test", ev[0])
	}
	res := run(t, net, d, &prune.Settings{Method: prune.OBS{}, PerRound: 2, MaxRounds: 1})
	kinds := map[string]int{}
	for _, is := range res.Health.Issues {
		kinds[is.Kind]++
		if is.Round != 1 {
			t.Errorf("issue %+v not in round 1", is)
		}
	}
	if kinds[prune.IssueIndefinite] == 0 || kinds[prune.IssueDamping] != 1 {
		t.Errorf("issues %+v", res.Health.Issues)
	}
	if lam := res.Rounds[0].Damping; !(lam >= -ev[0]) {
		t.Errorf("damping %g, smallest eigenvalue %g", lam, ev[0])
	}

	// Without escalation the indefinite Hessian is an error.
	res, err = prune.Run(context.Background(), net, d, &prune.Settings{Method: prune.OBS{FixedDamping: true}})
	var npd *hessian.NotPositiveDefiniteError
	if !errors.As(err, &npd) || res.Stopped != prune.StoppedFailed || res.Net.NumLive() != net.NumParams() {
		t.Errorf("fixed damping: %v", err)
	}

	// OBD on the exact diagonal reports negative entries.
	res = run(t, net, d, &prune.Settings{Method: prune.OBD{}, PerRound: 2, MaxRounds: 1})
	if len(res.Health.Issues) == 0 || res.Health.Issues[0].Kind != prune.IssueNegativeDiagonal {
		negative := false
		g := make([]float64, net.NumParams())
		if err := (hessian.Exact{P: hessian.All(net, d.Train.X, d.Train.Y)}).DiagTo(context.Background(), g); err != nil {
			t.Fatal(err)
		}
		for _, v := range g {
			negative = negative || v < 0
		}
		if negative {
			t.Errorf("OBD issues %+v", res.Health.Issues)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	net, d := regressionMLP(t, 12)
	ctx := context.Background()
	bad := net.Clone()
	bad.RawParams()[3] = math.NaN()
	if res, err := prune.Run(ctx, bad, d, nil); err == nil || res != nil {
		t.Errorf("NaN parameter: %v", err)
	}
	for _, s := range []*prune.Settings{
		{Fraction: 1.5},
		{Sparsity: 1},
		{ErrorRise: -2},
		{Budget: 1, Method: prune.Magnitude{}},
		{Method: prune.OBS{Curvature: prune.BeckerLeCun}},
		{Method: prune.OBD{Curvature: prune.Recursive}},
		{PerLayer: true, RoundBudget: 1},
		{ErrorRise: 1, ErrorSplit: prune.ValidSplit}, // no validation data below
		{Retrain: &nn.TrainSettings{Epochs: -1}},
	} {
		dd := d
		dd.Valid = nn.Data{}
		if res, err := prune.Run(ctx, net, dd, s); err == nil || res != nil {
			t.Errorf("settings %+v: no error", s)
		}
	}
	if _, err := prune.Run(ctx, net, nn.Splits{Train: nn.Data{X: d.Train.X}}, nil); err == nil {
		t.Errorf("no targets: no error")
	}
	small := prune.OBS{}
	_, err := prune.Run(ctx, net, d, &prune.Settings{Method: small, MaxBytes: 1000})
	var me *hessian.MemoryError
	if !errors.As(err, &me) {
		t.Errorf("memory limit: %v", err)
	}
}

func TestRunRebuild(t *testing.T) {
	// On a quadratic loss a rebuilt inverse equals the downdated one, so
	// RebuildEvery changes nothing but the count of rebuilds.
	net, X, Y := quadratic(t, 13)
	d := nn.Splits{Train: nn.Data{X: X, Y: Y}}
	a := run(t, net, d, &prune.Settings{PerRound: 6, MaxRounds: 1, Method: undamped})
	b := run(t, net, d, &prune.Settings{PerRound: 6, MaxRounds: 1, Method: undamped, RebuildEvery: 2})
	if b.Rounds[0].Rebuilds != 2 || a.Rounds[0].Rebuilds != 0 {
		t.Errorf("rebuilds %d and %d", a.Rounds[0].Rebuilds, b.Rounds[0].Rebuilds)
	}
	for i := range a.History {
		sa, sb := a.History[i], b.History[i]
		if sa.Index != sb.Index || math.Abs(sa.Predicted-sb.Predicted) > 1e-9*sa.Predicted {
			t.Errorf("step %d: %s %g vs %s %g", i+1, sa.Name, sa.Predicted, sb.Name, sb.Predicted)
		}
	}
}
