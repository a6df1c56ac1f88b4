package nn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

var optimizers = []Optimizer{Adam, SGD, LBFGS}

// xorData returns the four XOR samples.
func xorData() Data {
	return Data{
		X: mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1}),
		Y: mat.NewDense(4, 1, []float64{0, 1, 1, 0}),
	}
}

// xorNet returns a 2-2-1 tanh-sigmoid MSE network initialised with seed.
func xorNet(t testing.TB, seed uint64) *Network {
	n, err := New([]int{2, 2, 1}, []Activation{Tanh, Sigmoid}, MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(seed, 1))
	return n
}

// linearData returns N samples of y = 2 x₁ − x₂ + 0.5 + noise with standard
// normal inputs and noise of standard deviation sd.
func linearData(N int, sd float64, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 2))
	X := mat.NewDense(N, 2, nil)
	Y := mat.NewDense(N, 1, nil)
	for i := range N {
		x1, x2 := rng.NormFloat64(), rng.NormFloat64()
		X.Set(i, 0, x1)
		X.Set(i, 1, x2)
		Y.Set(i, 0, 2*x1-x2+0.5+sd*rng.NormFloat64())
	}
	return Data{X: X, Y: Y}
}

// linearNet returns a 2-1 linear MSE network initialised with seed.
func linearNet(t testing.TB, seed uint64) *Network {
	n, err := New([]int{2, 1}, []Activation{Linear}, MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(seed, 1))
	return n
}

// ridge returns the minimiser (w₁, w₂, b) of E/N + ½λ‖θ‖² for a 2-1 linear
// MSE network, the solution of (AᵀA/N + λI) θ = Aᵀy/N with A = [X 1].
func ridge(t testing.TB, d Data, lambda float64) []float64 {
	N, _ := d.X.Dims()
	A := mat.NewDense(N, 3, nil)
	for i := range N {
		A.Set(i, 0, d.X.At(i, 0))
		A.Set(i, 1, d.X.At(i, 1))
		A.Set(i, 2, 1)
	}
	var M mat.Dense
	M.Mul(A.T(), A)
	M.Scale(1/float64(N), &M)
	for i := range 3 {
		M.Set(i, i, M.At(i, i)+lambda)
	}
	var r mat.Dense
	r.Mul(A.T(), d.Y)
	r.Scale(1/float64(N), &r)
	var th mat.Dense
	if err := th.Solve(&M, &r); err != nil {
		t.Fatal(err)
	}
	return mat.Col(nil, 0, &th)
}

// recorder keeps the progress reports and a copy of the parameters of n at
// each of them, and calls fn, if not nil, after each.
type recorder struct {
	n      *Network
	ps     []Progress
	params [][]float64
	fn     func(p Progress)
}

func (r *recorder) Record(p Progress) {
	r.ps = append(r.ps, p)
	if r.n != nil {
		r.params = append(r.params, r.n.ParamsTo(nil))
	}
	if r.fn != nil {
		r.fn(p)
	}
}

func TestTrainXOR(t *testing.T) {
	for _, opt := range optimizers {
		t.Run(opt.String(), func(t *testing.T) {
			d := xorData()
			n := xorNet(t, 3)
			before := n.Evaluate(d.X, d.Y).MeanLoss
			s := &TrainSettings{Optimizer: opt, Epochs: 2000}
			if opt == LBFGS {
				s.Epochs = 0
			}
			r, err := Train(context.Background(), n, d, Data{}, s)
			if err != nil {
				t.Fatal(err)
			}
			after := n.Evaluate(d.X, d.Y)
			if r.Train != after {
				t.Errorf("result metrics %+v, want %+v", r.Train, after)
			}
			if after.MeanLoss > before/10 {
				t.Errorf("mean loss %v → %v, want a tenfold decrease", before, after.MeanLoss)
			}
			if after.Accuracy != 1 {
				t.Errorf("accuracy %v, want 1", after.Accuracy)
			}
			if r.Epochs < 1 || r.Epochs > 2000 || r.BestEpoch != r.Epochs {
				t.Errorf("epochs %d, best epoch %d", r.Epochs, r.BestEpoch)
			}
			t.Logf("%s: loss %.3g → %.3g in %d epochs, %s", opt, before, after.MeanLoss, r.Epochs, r.Stopped)
		})
	}
}

func TestTrainLinearRegression(t *testing.T) {
	d := linearData(200, 0.1, 1)
	for _, tc := range []struct {
		opt    Optimizer
		lambda float64
		tol    float64
	}{
		{Adam, 0, 0.02},
		{SGD, 0, 0.02},
		{LBFGS, 0, 1e-6},
		{Adam, 0.1, 0.02},
		{SGD, 0.1, 0.02},
		{LBFGS, 0.1, 1e-6},
	} {
		n := linearNet(t, 1)
		s := &TrainSettings{Optimizer: tc.opt, WeightDecay: tc.lambda, Epochs: 200, Schedule: CosineLR}
		if tc.opt == LBFGS {
			s.Epochs = 0
		}
		r, err := Train(context.Background(), n, d, Data{}, s)
		if err != nil {
			t.Fatal(err)
		}
		want := ridge(t, d, tc.lambda)
		got := n.RawParams()
		if !floats.EqualApprox(got, want, tc.tol) {
			t.Errorf("%s, λ=%v: parameters %v, want the minimiser of E/N + ½λ‖θ‖², %v (%d epochs, %s)",
				tc.opt, tc.lambda, got, want, r.Epochs, r.Stopped)
		}
	}
}

func TestTrainMaskHolds(t *testing.T) {
	for _, opt := range optimizers {
		t.Run(opt.String(), func(t *testing.T) {
			d := linearData(50, 0.5, 3)
			n, err := New([]int{2, 4, 1}, []Activation{Tanh, Linear}, MSE)
			if err != nil {
				t.Fatal(err)
			}
			n.Init(rand.NewPCG(5, 1))
			before := n.ParamsTo(nil)
			// Pruning W1[0][3] disconnects hidden unit 3: its incoming
			// parameters move only by weight decay, and its zero bias not
			// at all.
			pruned := []int{n.WeightIndex(0, 1, 0), n.BiasIndex(0, 2), n.WeightIndex(1, 0, 3), n.BiasIndex(1, 0)}
			still := n.BiasIndex(0, 3)
			for _, q := range pruned {
				n.Prune(q)
			}
			mask := n.Mask()
			s := &TrainSettings{Optimizer: opt, Epochs: 50, WeightDecay: 0.01, BatchSize: 8}
			if opt == LBFGS {
				s.Epochs = 100
			}
			if _, err := Train(context.Background(), n, d, Data{}, s); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(n.Mask(), mask) {
				t.Errorf("mask changed: %v, want %v", n.Mask(), mask)
			}
			for q, v := range n.RawParams() {
				switch {
				case !mask[q] && math.Float64bits(v) != 0:
					t.Errorf("pruned parameter %d (%v) is %v, want +0", q, n.ParamAt(q), v)
				case q == still && v != 0:
					t.Errorf("%v moved to %v", n.ParamAt(q), v)
				case mask[q] && q != still && v == before[q]:
					t.Errorf("live parameter %v did not move", n.ParamAt(q))
				}
			}
			for i := range 2 {
				q := n.WeightIndex(0, 3, i)
				if got := n.RawParams()[q]; !(math.Abs(got) < math.Abs(before[q])) {
					t.Errorf("%v of a disconnected unit went from %v to %v, want shrinking by weight decay", n.ParamAt(q), before[q], got)
				}
			}
		})
	}
}

func TestTrainEarlyStopping(t *testing.T) {
	// Training pulls w towards 2, while the validation loss is lowest at
	// w = 1: the validation loss falls and then rises.
	X := mat.NewDense(20, 1, nil)
	Ytr := mat.NewDense(20, 1, nil)
	Yva := mat.NewDense(20, 1, nil)
	for i := range 20 {
		x := float64(i)/10 - 1
		X.Set(i, 0, x)
		Ytr.Set(i, 0, 2*x)
		Yva.Set(i, 0, x)
	}
	train, valid := Data{X: X, Y: Ytr}, Data{X: X, Y: Yva}
	for _, opt := range optimizers {
		t.Run(opt.String(), func(t *testing.T) {
			n, err := New([]int{1, 1}, []Activation{Linear}, MSE)
			if err != nil {
				t.Fatal(err)
			}
			n.SetParams([]float64{0.2, 0})
			const patience = 5
			rec := &recorder{n: n}
			s := &TrainSettings{Optimizer: opt, Patience: patience, Epochs: 1000, LearningRate: 0.01, BatchSize: 20, Recorder: rec}
			if opt == LBFGS {
				s.Epochs = 0
			}
			start := n.ParamsTo(nil)
			startLoss := n.Evaluate(valid.X, valid.Y).MeanLoss
			r, err := Train(context.Background(), n, train, valid, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.ps) != r.Epochs {
				t.Fatalf("%d progress reports for %d epochs", len(rec.ps), r.Epochs)
			}
			// The best epoch is the one of the lowest recorded validation
			// loss, and the network holds its parameters.
			bestLoss, bestEpoch, want := startLoss, 0, start
			for i, p := range rec.ps {
				if p.Epoch != i+1 {
					t.Fatalf("report %d is for epoch %d", i, p.Epoch)
				}
				if p.Best != (p.ValidLoss < bestLoss) {
					t.Errorf("epoch %d: Best is %v with validation loss %v and best so far %v", p.Epoch, p.Best, p.ValidLoss, bestLoss)
				}
				if p.ValidLoss < bestLoss {
					bestLoss, bestEpoch, want = p.ValidLoss, p.Epoch, rec.params[i]
				}
			}
			if r.BestEpoch != bestEpoch {
				t.Errorf("best epoch %d, want %d", r.BestEpoch, bestEpoch)
			}
			if !slices.Equal(n.RawParams(), want) {
				t.Errorf("parameters %v, want those of epoch %d, %v", n.RawParams(), bestEpoch, want)
			}
			if r.Valid.MeanLoss != bestLoss {
				t.Errorf("validation loss %v, want the best %v", r.Valid.MeanLoss, bestLoss)
			}
			if r.Stopped == StoppedEarly && r.Epochs != bestEpoch+patience {
				t.Errorf("stopped early after %d epochs with the best at %d and patience %d", r.Epochs, bestEpoch, patience)
			}
			if opt == LBFGS {
				// L-BFGS may converge before the patience runs out.
				return
			}
			if bestEpoch == 0 || r.Stopped != StoppedEarly || r.Epochs != bestEpoch+patience {
				t.Errorf("stopped (%s) after %d epochs with the best at %d and patience %d", r.Stopped, r.Epochs, bestEpoch, patience)
			}
			if w := n.RawParams()[0]; !(w > 0.9 && w < 1.1) {
				t.Errorf("best weight %v, want about 1", w)
			}
		})
	}
}

func TestTrainWeightDecayShrinks(t *testing.T) {
	d := xorData()
	for _, opt := range optimizers {
		norm := func(lambda float64) float64 {
			n := xorNet(t, 3)
			s := &TrainSettings{Optimizer: opt, WeightDecay: lambda, Epochs: 1000}
			if _, err := Train(context.Background(), n, d, Data{}, s); err != nil {
				t.Fatal(err)
			}
			return floats.Norm(n.RawParams(), 2)
		}
		free, decayed := norm(0), norm(0.01)
		if !(decayed < 0.8*free) {
			t.Errorf("%s: ‖θ‖ = %v with weight decay, %v without; want clearly smaller", opt, decayed, free)
		}
	}
}

func TestTrainSchedules(t *testing.T) {
	const epochs, lr = 12, 0.02
	for _, tc := range []struct {
		s    TrainSettings
		want func(e int) float64
	}{
		{TrainSettings{Schedule: ConstantLR}, func(int) float64 { return lr }},
		// StepEvery defaults to Epochs/4 and StepGamma to ½.
		{TrainSettings{Schedule: StepLR}, func(e int) float64 { return lr * math.Pow(0.5, float64((e-1)/3)) }},
		{TrainSettings{Schedule: StepLR, StepEvery: 5, StepGamma: 0.1}, func(e int) float64 { return lr * math.Pow(0.1, float64((e-1)/5)) }},
		{TrainSettings{Schedule: CosineLR}, func(e int) float64 { return lr * (1 + math.Cos(math.Pi*float64(e-1)/epochs)) / 2 }},
	} {
		for _, opt := range []Optimizer{Adam, SGD} {
			rec := &recorder{}
			s := tc.s
			s.Optimizer, s.Epochs, s.LearningRate, s.Recorder = opt, epochs, lr, rec
			if _, err := Train(context.Background(), xorNet(t, 1), xorData(), Data{}, &s); err != nil {
				t.Fatal(err)
			}
			if len(rec.ps) != epochs {
				t.Fatalf("%d reports for %d epochs", len(rec.ps), epochs)
			}
			for _, p := range rec.ps {
				if want := tc.want(p.Epoch); math.Abs(p.LearningRate-want) > 1e-15 {
					t.Errorf("%s %s: epoch %d learning rate %v, want %v", opt, tc.s.Schedule, p.Epoch, p.LearningRate, want)
				}
				if p.Epochs != epochs || !math.IsNaN(p.ValidLoss) || !math.IsNaN(p.ValidAccuracy) || p.Best {
					t.Errorf("progress %+v", p)
				}
			}
		}
	}
	// Without a learning rate, the defaults are reported.
	for opt, want := range map[Optimizer]float64{Adam: DefaultAdamRate, SGD: DefaultSGDRate, LBFGS: 0} {
		rec := &recorder{}
		s := &TrainSettings{Optimizer: opt, Epochs: 2, Recorder: rec}
		if _, err := Train(context.Background(), xorNet(t, 1), xorData(), Data{}, s); err != nil {
			t.Fatal(err)
		}
		if len(rec.ps) == 0 || rec.ps[0].LearningRate != want {
			t.Errorf("%s: default learning rate reported as %+v, want %v", opt, rec.ps, want)
		}
	}
}

func TestTrainReproducible(t *testing.T) {
	d := linearData(100, 0.5, 4)
	for _, opt := range optimizers {
		run := func(seed uint64) []float64 {
			n, err := New([]int{2, 5, 1}, []Activation{Tanh, Linear}, MSE)
			if err != nil {
				t.Fatal(err)
			}
			n.Init(rand.NewPCG(1, 1))
			s := &TrainSettings{Optimizer: opt, Epochs: 20, BatchSize: 10, Src: rand.NewPCG(seed, 3)}
			if _, err := Train(context.Background(), n, d, Data{}, s); err != nil {
				t.Fatal(err)
			}
			return n.ParamsTo(nil)
		}
		a, b, c := run(1), run(1), run(2)
		if !slices.Equal(a, b) {
			t.Errorf("%s: two runs with the same seed differ", opt)
		}
		if opt != LBFGS && slices.Equal(a, c) {
			t.Errorf("%s: runs with different shuffling seeds agree", opt)
		}
	}
	// A nil Src is a fixed seed.
	run := func() []float64 {
		n := linearNet(t, 1)
		if _, err := Train(context.Background(), n, d, Data{}, &TrainSettings{Epochs: 3, BatchSize: 7}); err != nil {
			t.Fatal(err)
		}
		return n.ParamsTo(nil)
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Errorf("two runs with a nil Src differ: %v and %v", a, b)
	}
}

func TestTrainCanceled(t *testing.T) {
	d := linearData(100, 0.5, 5)
	for _, opt := range optimizers {
		t.Run(opt.String(), func(t *testing.T) {
			// Canceled before training: nothing changes.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			n := linearNet(t, 1)
			start := n.ParamsTo(nil)
			r, err := Train(ctx, n, d, Data{}, &TrainSettings{Optimizer: opt})
			if !errors.Is(err, context.Canceled) || r.Stopped != StoppedCanceled || r.Epochs != 0 {
				t.Errorf("canceled before: err %v, result %+v", err, r)
			}
			if !slices.Equal(n.RawParams(), start) {
				t.Errorf("parameters changed")
			}

			// Canceled during training, from the recorder after epoch 3.
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			n, err = New([]int{2, 20, 1}, []Activation{Tanh, Linear}, MSE)
			if err != nil {
				t.Fatal(err)
			}
			n.Init(rand.NewPCG(2, 2))
			rec := &recorder{n: n, fn: func(p Progress) {
				if p.Epoch == 3 {
					cancel()
				}
			}}
			s := &TrainSettings{Optimizer: opt, Epochs: 1e9, BatchSize: 1, Recorder: rec, Tolerance: 1e-300}
			began := time.Now()
			r, err = Train(ctx, n, d, Data{}, s)
			if el := time.Since(began); el > 5*time.Second {
				t.Errorf("cancellation took %v", el)
			}
			if !errors.Is(err, context.Canceled) || r.Stopped != StoppedCanceled {
				t.Fatalf("canceled during: err %v, result %+v", err, r)
			}
			if r.Epochs != 3 || len(rec.ps) != 3 {
				t.Errorf("%d epochs and %d reports, want 3", r.Epochs, len(rec.ps))
			}
			if opt == LBFGS && !slices.Equal(n.RawParams(), rec.params[2]) {
				t.Errorf("parameters are not those of the last major iteration")
			}
			if r.Train != n.Evaluate(d.X, d.Y) {
				t.Errorf("result metrics %+v do not describe the network", r.Train)
			}
		})
	}
}

// countingContext is a context whose Err reports cancellation from its
// limit-th call on.
type countingContext struct {
	context.Context
	calls, limit int
}

func (c *countingContext) Err() error {
	c.calls++
	if c.calls >= c.limit {
		return context.Canceled
	}
	return nil
}

func TestTrainCanceledWithinEpoch(t *testing.T) {
	d := linearData(100, 0.5, 5)
	for _, opt := range optimizers {
		n := linearNet(t, 1)
		start := n.ParamsTo(nil)
		ctx := &countingContext{Context: context.Background(), limit: 10}
		r, err := Train(ctx, n, d, Data{}, &TrainSettings{Optimizer: opt, BatchSize: 1})
		if !errors.Is(err, context.Canceled) || r.Stopped != StoppedCanceled {
			t.Fatalf("%s: err %v, result %+v", opt, err, r)
		}
		if opt != LBFGS {
			// Checked once before training, once per epoch and once per
			// step: canceled within the first epoch after 7 steps.
			if r.Epochs != 0 || ctx.calls != ctx.limit {
				t.Errorf("%s: %d epochs and %d checks after cancellation at check %d", opt, r.Epochs, ctx.calls, ctx.limit)
			}
			if slices.Equal(n.RawParams(), start) {
				t.Errorf("%s: no steps were taken", opt)
			}
		}
	}
}

func TestTrainDiverged(t *testing.T) {
	X := mat.NewDense(4, 1, []float64{100, -200, 300, -400})
	Y := mat.NewDense(4, 1, []float64{1, 2, 3, 4})
	n, err := New([]int{1, 1}, []Activation{Linear}, MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.SetParams([]float64{0.1, 0})
	rec := &recorder{n: n}
	r, err := Train(context.Background(), n, Data{X: X, Y: Y}, Data{}, &TrainSettings{Optimizer: SGD, LearningRate: 10, Recorder: rec})
	if !errors.Is(err, ErrDiverged) || r.Stopped != StoppedDiverged {
		t.Fatalf("err %v, result %+v; want divergence", err, r)
	}
	if want := "epoch " + strconv.Itoa(r.Epochs+1) + ":"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the epoch (%q)", err, want)
	}
	if err := n.CheckFinite(); err != nil {
		t.Error(err)
	}
	want := []float64{0.1, 0}
	if r.Epochs > 0 {
		want = rec.params[r.Epochs-1]
	}
	if !slices.Equal(n.RawParams(), want) {
		t.Errorf("parameters %v, want those of the last completed epoch %v", n.RawParams(), want)
	}
}

func TestTrainTolerance(t *testing.T) {
	for _, opt := range optimizers {
		n := xorNet(t, 3)
		rec := &recorder{}
		r, err := Train(context.Background(), n, xorData(), Data{}, &TrainSettings{Optimizer: opt, Epochs: 5000, Tolerance: 0.01, Recorder: rec})
		if err != nil {
			t.Fatal(err)
		}
		if r.Stopped != StoppedTolerance || r.Train.MeanLoss >= 0.01 || r.Epochs >= 5000 {
			t.Errorf("%s: stopped (%s) after %d epochs at mean loss %v", opt, r.Stopped, r.Epochs, r.Train.MeanLoss)
		}
		for _, p := range rec.ps[:len(rec.ps)-1] {
			if p.TrainLoss < 0.01 {
				t.Errorf("%s: epoch %d had mean loss %v below the tolerance but training went on", opt, p.Epoch, p.TrainLoss)
			}
		}
	}
}

func TestTrainErrors(t *testing.T) {
	d := xorData()
	bad := Data{X: mat.NewDense(4, 3, nil), Y: d.Y}
	nan := Data{X: d.X, Y: mat.NewDense(4, 1, []float64{0, math.NaN(), 1, 0})}
	for _, tc := range []struct {
		train, valid Data
		s            *TrainSettings
		want         string
	}{
		{bad, Data{}, nil, "training data: data has 3 input columns"},
		{Data{X: d.X}, Data{}, nil, "training data: no targets"},
		{nan, Data{}, nil, "training data: sample 1: target 0 is NaN"},
		{d, bad, nil, "validation data: data has 3 input columns"},
		{d, Data{}, &TrainSettings{Patience: 3}, "needs validation data"},
		{d, Data{}, &TrainSettings{LearningRate: -1}, "training settings: nn: TrainSettings.LearningRate -1"},
		{d, Data{}, &TrainSettings{Momentum: 1}, "TrainSettings.Momentum 1 is not in [0, 1)"},
		{d, Data{}, &TrainSettings{Momentum: -0.5}, "Momentum -0.5"},
		{d, Data{}, &TrainSettings{Beta2: 1}, "Beta2 1"},
		{d, Data{}, &TrainSettings{WeightDecay: math.NaN()}, "WeightDecay NaN"},
		{d, Data{}, &TrainSettings{Optimizer: 7}, "Optimizer Optimizer(7) is unknown"},
		{d, Data{}, &TrainSettings{Schedule: -1}, "Schedule Schedule(-1) is unknown"},
	} {
		n := xorNet(t, 1)
		start := n.ParamsTo(nil)
		_, err := Train(context.Background(), n, tc.train, tc.valid, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
		if !slices.Equal(n.RawParams(), start) {
			t.Errorf("parameters changed on error %v", err)
		}
		var fe interface{ SettingsField() string }
		if tc.s != nil && tc.s.Patience == 0 && (!errors.As(err, &fe) || !strings.Contains(tc.want, fe.SettingsField()+" ")) {
			t.Errorf("error %v does not name its field in SettingsField", err)
		}
	}
	if err := (&TrainSettings{Momentum: NoMomentum}).Validate(); err != nil {
		t.Errorf("NoMomentum: %v", err)
	}
}

func TestParseOptimizerSchedule(t *testing.T) {
	for _, o := range optimizers {
		got, err := ParseOptimizer(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOptimizer(%q) = %v, %v", o, got, err)
		}
	}
	for _, s := range []Schedule{ConstantLR, StepLR, CosineLR} {
		got, err := ParseSchedule(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSchedule(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseOptimizer("rmsprop"); err == nil {
		t.Error("ParseOptimizer accepted rmsprop")
	}
	if _, err := ParseSchedule("linear"); err == nil {
		t.Error("ParseSchedule accepted linear")
	}
	if Adam.String() != "adam" || SGD.String() != "sgd" || LBFGS.String() != "lbfgs" ||
		ConstantLR.String() != "constant" || StepLR.String() != "step" || CosineLR.String() != "cosine" {
		t.Error("wrong names")
	}
}

// monks1 returns MONK-1 drawn as datasets.Monks(1, seed) draws it: 124
// training examples chosen without replacement from the 432 of the domain,
// kept in domain order, and the whole domain as test set, coded one-hot in
// 17 inputs.
func monks1(seed uint64) (train, test Data) {
	values := [6]int{3, 3, 2, 3, 4, 2}
	var domain [][6]int
	var a [6]int
	var fill func(i int)
	fill = func(i int) {
		if i == len(a) {
			domain = append(domain, a)
			return
		}
		for v := 1; v <= values[i]; v++ {
			a[i] = v
			fill(i + 1)
		}
	}
	fill(0)
	code := func(idx []int) Data {
		X := mat.NewDense(len(idx), 17, nil)
		Y := mat.NewDense(len(idx), 1, nil)
		for r, j := range idx {
			e := domain[j]
			off := 0
			for k, v := range e {
				X.Set(r, off+v-1, 1)
				off += values[k]
			}
			if e[0] == e[1] || e[4] == 1 {
				Y.Set(r, 0, 1)
			}
		}
		return Data{X: X, Y: Y}
	}
	idx := rand.New(rand.NewPCG(seed, 0x6d6f6e6b730000+1)).Perm(len(domain))[:124]
	slices.Sort(idx)
	all := make([]int, len(domain))
	for i := range all {
		all[i] = i
	}
	return code(idx), code(all)
}

func TestTrainMonks1(t *testing.T) {
	// The command line seeds the data draw, the initialisation and the
	// shuffling with --seed, on these streams, and trains with the
	// default settings.
	const streamInit, streamShuffle = 0x696e6974, 0x73687566
	for seed := uint64(1); seed <= 5; seed++ {
		train, test := monks1(seed)
		if r, _ := train.X.Dims(); r != 124 {
			t.Fatalf("%d training examples", r)
		}
		pos := mat.Sum(test.Y)
		if pos != 216 {
			t.Fatalf("%v positive examples in the domain, want 216", pos)
		}
		n, err := New([]int{17, 3, 1}, []Activation{Tanh, Sigmoid}, MSE)
		if err != nil {
			t.Fatal(err)
		}
		n.Init(rand.NewPCG(seed, streamInit))
		r, err := Train(context.Background(), n, train, Data{}, &TrainSettings{Src: rand.NewPCG(seed, streamShuffle)})
		if err != nil {
			t.Fatal(err)
		}
		m := n.Evaluate(test.X, test.Y)
		if r.Train.Accuracy != 1 || m.Accuracy != 1 {
			t.Errorf("seed %d: accuracy %.4f on the training set, %.4f on the domain; want 1", seed, r.Train.Accuracy, m.Accuracy)
		}
		if r.Epochs != DefaultEpochs || r.Stopped != StoppedEpochs {
			t.Errorf("seed %d: stopped (%s) after %d epochs", seed, r.Stopped, r.Epochs)
		}
	}
}
