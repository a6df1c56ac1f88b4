package nn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// Optimizer selects the training method of Train.
type Optimizer int

// The optimizers. Adam and SGD take minibatch steps; LBFGS minimises the
// full-batch objective with gonum's optimize.LBFGS.
const (
	Adam Optimizer = iota
	SGD
	LBFGS
)

var optimizerNames = [...]string{Adam: "adam", SGD: "sgd", LBFGS: "lbfgs"}

// String returns the name used on the command line: adam, sgd or lbfgs.
func (o Optimizer) String() string {
	if o < 0 || int(o) >= len(optimizerNames) {
		return fmt.Sprintf("Optimizer(%d)", int(o))
	}
	return optimizerNames[o]
}

// ParseOptimizer returns the optimizer with the given name: adam, sgd or
// lbfgs.
func ParseOptimizer(s string) (Optimizer, error) {
	for i, name := range optimizerNames {
		if name == s {
			return Optimizer(i), nil
		}
	}
	return 0, fmt.Errorf("unknown optimizer %q (want adam, sgd or lbfgs)", s)
}

// Defaults of TrainSettings.
const (
	DefaultEpochs      = 500  // Adam and SGD
	DefaultLBFGSEpochs = 1000 // L-BFGS major iterations
	DefaultBatchSize   = 32
	DefaultAdamRate    = 0.01
	DefaultSGDRate     = 0.1
	DefaultMomentum    = 0.9
	DefaultBeta1       = 0.9
	DefaultBeta2       = 0.999
	DefaultEpsilon     = 1e-8
	DefaultStepGamma   = 0.5

	// DefaultSeed seeds the PCG source used for shuffling when
	// TrainSettings.Src is nil: rand.NewPCG(DefaultSeed, DefaultSeed).
	DefaultSeed = 1

	// LBFGSGradientThreshold ends an L-BFGS run as converged when the
	// largest absolute entry of the gradient of the objective falls below it.
	LBFGSGradientThreshold = 1e-8
)

// NoMomentum as TrainSettings.Momentum selects SGD without momentum, since
// a zero Momentum selects the default.
const NoMomentum = -1.0

// TrainSettings holds the settings of Train. A nil *TrainSettings, and any
// zero field, selects the documented default.
//
// All trainers minimise the same objective, the mean training loss plus an
// L2 penalty on the live parameters,
//
//	J(θ) = E(θ)/N + ½ λ ‖θ‖²,   E = Σₙ ℓₙ over the N training samples,
//
// so a learning rate and a weight decay λ mean the same whatever the batch
// size or optimizer. A minibatch step on the batch B uses the estimate
// g = (1/|B|) Σ_{n∈B} ∇ℓₙ + λ θ of ∇J. SGD steps v ← μ v + g, θ ← θ − η v;
// Adam takes its usual bias-corrected step with the penalty in g (L2
// regularisation, not decoupled weight decay); L-BFGS minimises J over the
// full batch.
type TrainSettings struct {
	// Optimizer is the training method; the zero value is Adam.
	Optimizer Optimizer

	// Epochs is the number of passes over the training data of Adam and
	// SGD, default DefaultEpochs, and the maximum number of major
	// iterations of L-BFGS, default DefaultLBFGSEpochs.
	Epochs int

	// BatchSize is the number of samples per minibatch step, default
	// DefaultBatchSize; a value of at least N gives full-batch steps. The
	// samples are reshuffled every epoch and the last batch of an epoch
	// holds the remaining N mod BatchSize samples, if any. L-BFGS always
	// uses the full batch and ignores it.
	BatchSize int

	// LearningRate is the base step size η₀ applied to the gradient of the
	// mean loss (see above), default DefaultAdamRate for Adam and
	// DefaultSGDRate for SGD. L-BFGS ignores it.
	LearningRate float64

	// Momentum is the momentum μ of SGD, in [0, 1), default
	// DefaultMomentum; NoMomentum selects plain gradient descent.
	Momentum float64

	// Beta1, Beta2 and Epsilon are the parameters of Adam, defaults
	// DefaultBeta1, DefaultBeta2 and DefaultEpsilon. Beta1 and Beta2 must
	// be in [0, 1).
	Beta1, Beta2, Epsilon float64

	// WeightDecay is the L2 coefficient λ of the objective J above,
	// default 0 (no penalty). It applies to all live parameters, biases
	// included; pruned parameters are zero and not penalised.
	WeightDecay float64

	// Schedule is the learning-rate schedule of Adam and SGD, default
	// ConstantLR. StepLR multiplies the rate by StepGamma, default
	// DefaultStepGamma, every StepEvery epochs, default max(1, Epochs/4).
	Schedule  Schedule
	StepEvery int
	StepGamma float64

	// Patience turns on early stopping when positive: training stops when
	// the validation mean loss has not improved on its best value for
	// Patience epochs (L-BFGS: major iterations), and Train leaves the
	// network with the parameters of the best validation loss, those at the
	// start included, however training ends. It needs validation data.
	Patience int

	// Tolerance, when positive, stops training after the first epoch
	// (L-BFGS: major iteration) whose training mean loss E/N is below it.
	Tolerance float64

	// Src is the source of randomness for shuffling. If nil, a PCG source
	// seeded with DefaultSeed is used, so runs are reproducible. Train
	// draws from Src, changing its state.
	Src rand.Source

	// Recorder, if not nil, receives the Progress of every epoch (L-BFGS:
	// major iteration).
	Recorder Recorder
}

// Progress describes the state of training at the end of an epoch, or an
// L-BFGS major iteration.
type Progress struct {
	// Epoch is the number of completed epochs (1-based) out of Epochs.
	Epoch, Epochs int

	// TrainLoss and ValidLoss are the mean losses E/N over the training and
	// validation data, without the weight-decay penalty. ValidLoss and
	// ValidAccuracy are NaN without validation data.
	TrainLoss, ValidLoss float64

	// TrainAccuracy and ValidAccuracy are the fractions of samples
	// classified correctly (see Network.Evaluate).
	TrainAccuracy, ValidAccuracy float64

	// LearningRate is the rate used during the epoch; zero for L-BFGS.
	LearningRate float64

	// Best reports whether ValidLoss is the lowest so far, the loss at the
	// start included; it is false without validation data.
	Best bool
}

// Recorder receives training progress.
type Recorder interface {
	Record(p Progress)
}

// Values of TrainResult.Stopped.
const (
	StoppedEpochs    = "epochs"         // Epochs were completed
	StoppedEarly     = "early-stopping" // Patience ran out
	StoppedTolerance = "tolerance"      // the training mean loss fell below Tolerance
	StoppedConverged = "converged"      // L-BFGS converged or could make no further progress
	StoppedCanceled  = "canceled"       // the context was done
	StoppedDiverged  = "diverged"       // the loss became NaN or infinite
)

// TrainResult summarises a training run.
type TrainResult struct {
	// Epochs is the number of completed epochs, or L-BFGS major iterations.
	Epochs int

	// Stopped tells why training ended; see the Stopped constants.
	Stopped string

	// Train and Valid are the metrics of the returned network; Valid is
	// the zero Metrics without validation data.
	Train, Valid Metrics

	// BestEpoch is the epoch of the lowest validation mean loss, 0 for the
	// starting parameters; without validation data it equals Epochs.
	BestEpoch int
}

// ErrDiverged is wrapped by the error Train returns when the loss becomes
// NaN or infinite.
var ErrDiverged = errors.New("training diverged")

// Validate returns an error describing the first invalid setting in s. A nil
// s is valid.
func (s *TrainSettings) Validate() error {
	if s == nil {
		return nil
	}
	switch {
	case s.Optimizer < Adam || s.Optimizer > LBFGS:
		return settingsError("Optimizer", "%v is unknown", s.Optimizer)
	case s.Epochs < 0:
		return settingsError("Epochs", "%d is negative", s.Epochs)
	case s.BatchSize < 0:
		return settingsError("BatchSize", "%d is negative", s.BatchSize)
	case !(s.LearningRate >= 0) || math.IsInf(s.LearningRate, 1):
		return settingsError("LearningRate", "%v is not a non-negative number", s.LearningRate)
	case s.Momentum != NoMomentum && !(s.Momentum >= 0 && s.Momentum < 1):
		return settingsError("Momentum", "%v is not in [0, 1)", s.Momentum)
	case !(s.Beta1 >= 0 && s.Beta1 < 1):
		return settingsError("Beta1", "%v is not in [0, 1)", s.Beta1)
	case !(s.Beta2 >= 0 && s.Beta2 < 1):
		return settingsError("Beta2", "%v is not in [0, 1)", s.Beta2)
	case !(s.Epsilon >= 0) || math.IsInf(s.Epsilon, 1):
		return settingsError("Epsilon", "%v is not a non-negative number", s.Epsilon)
	case !(s.WeightDecay >= 0) || math.IsInf(s.WeightDecay, 1):
		return settingsError("WeightDecay", "%v is not a non-negative number", s.WeightDecay)
	case s.Schedule < ConstantLR || s.Schedule > CosineLR:
		return settingsError("Schedule", "%v is unknown", s.Schedule)
	case s.StepEvery < 0:
		return settingsError("StepEvery", "%d is negative", s.StepEvery)
	case !(s.StepGamma >= 0) || math.IsInf(s.StepGamma, 1):
		return settingsError("StepGamma", "%v is not a non-negative number", s.StepGamma)
	case s.Patience < 0:
		return settingsError("Patience", "%d is negative", s.Patience)
	case !(s.Tolerance >= 0) || math.IsInf(s.Tolerance, 1):
		return settingsError("Tolerance", "%v is not a non-negative number", s.Tolerance)
	}
	return nil
}

// withDefaults returns a copy of s with the defaults filled in.
func (s *TrainSettings) withDefaults() TrainSettings {
	var c TrainSettings
	if s != nil {
		c = *s
	}
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
		if c.Optimizer == LBFGS {
			c.Epochs = DefaultLBFGSEpochs
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.LearningRate == 0 {
		c.LearningRate = DefaultAdamRate
		if c.Optimizer == SGD {
			c.LearningRate = DefaultSGDRate
		}
	}
	switch c.Momentum {
	case 0:
		c.Momentum = DefaultMomentum
	case NoMomentum:
		c.Momentum = 0
	}
	if c.Beta1 == 0 {
		c.Beta1 = DefaultBeta1
	}
	if c.Beta2 == 0 {
		c.Beta2 = DefaultBeta2
	}
	if c.Epsilon == 0 {
		c.Epsilon = DefaultEpsilon
	}
	if c.StepEvery == 0 {
		c.StepEvery = max(1, c.Epochs/4)
	}
	if c.StepGamma == 0 {
		c.StepGamma = DefaultStepGamma
	}
	if c.Src == nil {
		c.Src = rand.NewPCG(DefaultSeed, DefaultSeed)
	}
	return c
}

// Train trains n on the training data with the settings s (nil for the
// defaults; see TrainSettings) and returns a summary of the run. A nil
// valid.X means there is no validation data. Pruned parameters stay zero and
// the mask is unchanged.
//
// Train returns an error, with n unchanged, when s is invalid, when Patience
// is set without validation data, or when the data do not fit n (see
// Network.Check). When the loss becomes NaN or infinite it returns an error
// wrapping ErrDiverged, n holding the parameters of the last completed epoch
// (under early stopping the best-validation ones). It checks ctx before every
// minibatch step or L-BFGS evaluation; when ctx is done it returns the
// partial result, Stopped "canceled" and ctx.Err(), n holding the
// parameters reached so far (under early stopping the best-validation ones).
func Train(ctx context.Context, n *Network, train, valid Data, s *TrainSettings) (TrainResult, error) {
	if err := s.Validate(); err != nil {
		return TrainResult{}, fmt.Errorf("training settings: %w", err)
	}
	if err := checkTrainData(n, train); err != nil {
		return TrainResult{}, fmt.Errorf("training data: %w", err)
	}
	hasValid := valid.X != nil
	if hasValid {
		if err := checkTrainData(n, valid); err != nil {
			return TrainResult{}, fmt.Errorf("validation data: %w", err)
		}
	}
	cfg := s.withDefaults()
	if cfg.Patience > 0 && !hasValid {
		return TrainResult{}, errors.New("training settings: early stopping (patience) needs validation data")
	}
	if err := ctx.Err(); err != nil {
		r := TrainResult{Stopped: StoppedCanceled, Train: n.Evaluate(train.X, train.Y)}
		if hasValid {
			r.Valid = n.Evaluate(valid.X, valid.Y)
		}
		return r, err
	}

	t := &trainer{ctx: ctx, n: n, train: train, valid: valid, hasValid: hasValid, cfg: cfg}
	if err := t.start(); err != nil {
		return TrainResult{}, err
	}
	var err error
	if cfg.Optimizer == LBFGS {
		err = t.runLBFGS()
	} else {
		err = t.runMinibatch()
	}
	return t.finish(err)
}

func checkTrainData(n *Network, d Data) error {
	switch {
	case d.X == nil:
		return errors.New("no inputs")
	case d.Y == nil:
		return errors.New("no targets")
	}
	return n.Check(d.X, d.Y)
}

// trainer holds the state shared by the training methods.
type trainer struct {
	ctx      context.Context
	n        *Network
	train    Data
	valid    Data
	hasValid bool
	cfg      TrainSettings

	dead []int // indices of pruned parameters

	epoch     int     // completed epochs
	stopped   string  // why training ended
	bestLoss  float64 // lowest validation mean loss
	bestEpoch int
	best      []float64 // parameters at bestEpoch, under early stopping
	good      []float64 // parameters at the end of the last completed epoch
}

// start records the pruned parameters, the starting parameters and their
// validation loss.
func (t *trainer) start() error {
	for q := range t.n.NumParams() {
		if !t.n.IsLive(q) {
			t.dead = append(t.dead, q)
		}
	}
	t.n.ApplyMask()
	if err := t.n.CheckFinite(); err != nil {
		return fmt.Errorf("initial parameters: %w", err)
	}
	t.good = t.n.ParamsTo(nil)
	t.bestLoss = math.Inf(1)
	if t.hasValid {
		// A loss that is not finite is beaten by any finite one.
		if v := t.n.Evaluate(t.valid.X, t.valid.Y).MeanLoss; v < t.bestLoss {
			t.bestLoss = v
		}
		if t.cfg.Patience > 0 {
			t.best = t.n.ParamsTo(nil)
		}
	}
	return nil
}

// endEpoch evaluates the network after epoch t.epoch+1 at learning rate lr,
// reports progress and decides whether to stop. It returns an error wrapping
// ErrDiverged if the training loss is not finite.
func (t *trainer) endEpoch(lr float64) (stop bool, err error) {
	e := t.epoch + 1
	tm := t.n.Evaluate(t.train.X, t.train.Y)
	if math.IsNaN(tm.Loss) || math.IsInf(tm.Loss, 0) {
		return true, t.diverged(e, tm.Loss)
	}
	t.epoch = e
	t.n.ParamsTo(t.good)
	p := Progress{
		Epoch: e, Epochs: t.cfg.Epochs,
		TrainLoss: tm.MeanLoss, TrainAccuracy: tm.Accuracy,
		ValidLoss: math.NaN(), ValidAccuracy: math.NaN(),
		LearningRate: lr,
	}
	if t.hasValid {
		vm := t.n.Evaluate(t.valid.X, t.valid.Y)
		p.ValidLoss, p.ValidAccuracy = vm.MeanLoss, vm.Accuracy
		if vm.MeanLoss < t.bestLoss {
			p.Best = true
			t.bestLoss, t.bestEpoch = vm.MeanLoss, e
			if t.best != nil {
				t.n.ParamsTo(t.best)
			}
		}
	}
	if t.cfg.Recorder != nil {
		t.cfg.Recorder.Record(p)
	}
	switch {
	case t.cfg.Tolerance > 0 && tm.MeanLoss < t.cfg.Tolerance:
		t.stopped = StoppedTolerance
		return true, nil
	case t.cfg.Patience > 0 && e-t.bestEpoch >= t.cfg.Patience:
		t.stopped = StoppedEarly
		return true, nil
	case e >= t.cfg.Epochs:
		t.stopped = StoppedEpochs
		return true, nil
	}
	return false, nil
}

func (t *trainer) diverged(epoch int, loss float64) error {
	t.stopped = StoppedDiverged
	t.n.SetParams(t.good)
	return fmt.Errorf("%w at epoch %d: loss is %v; lower the learning rate", ErrDiverged, epoch, loss)
}

// finish restores the best parameters under early stopping and fills in the
// result.
func (t *trainer) finish(err error) (TrainResult, error) {
	if t.best != nil {
		t.n.SetParams(t.best)
	}
	if !t.hasValid {
		t.bestEpoch = t.epoch
	}
	r := TrainResult{
		Epochs:    t.epoch,
		Stopped:   t.stopped,
		Train:     t.n.Evaluate(t.train.X, t.train.Y),
		BestEpoch: t.bestEpoch,
	}
	if t.hasValid {
		r.Valid = t.n.Evaluate(t.valid.X, t.valid.Y)
	}
	return r, err
}

// runMinibatch trains with Adam or SGD.
func (t *trainer) runMinibatch() error {
	n, cfg := t.n, &t.cfg
	X, Y := t.train.X, t.train.Y
	N, _ := X.Dims()
	B := min(cfg.BatchSize, N)
	W := n.NumParams()
	theta := n.RawParams()

	var (
		rng    *rand.Rand
		perm   []int
		xb, yb *mat.Dense
	)
	if B < N {
		rng = rand.New(cfg.Src)
		perm = make([]int, N)
		for i := range perm {
			perm[i] = i
		}
		_, xc := X.Dims()
		_, yc := Y.Dims()
		xb = mat.NewDense(B, xc, nil)
		yb = mat.NewDense(B, yc, nil)
	}
	bg := batchGrad{n: n, dead: t.dead}
	g := make([]float64, W)
	m := make([]float64, W) // SGD velocity, Adam first moment
	var v []float64         // Adam second moment
	if cfg.Optimizer == Adam {
		v = make([]float64, W)
	}
	lambda := cfg.WeightDecay
	step := 0
	for {
		if err := t.ctx.Err(); err != nil {
			t.stopped = StoppedCanceled
			return err
		}
		e := t.epoch + 1
		lr := cfg.Schedule.rate(cfg.LearningRate, e, cfg.Epochs, cfg.StepEvery, cfg.StepGamma)
		if perm != nil {
			rng.Shuffle(N, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		}
		for lo := 0; lo < N; lo += B {
			if err := t.ctx.Err(); err != nil {
				t.stopped = StoppedCanceled
				return err
			}
			hi := min(lo+B, N)
			bx, by := X, Y
			if perm != nil {
				bx, by = gatherRows(xb, yb, X, Y, perm[lo:hi])
			}
			E := bg.gradient(g, bx, by)
			if math.IsNaN(E) || math.IsInf(E, 0) {
				return t.diverged(e, E)
			}
			inv := 1 / float64(hi-lo)
			step++
			switch cfg.Optimizer {
			case SGD:
				mu := cfg.Momentum
				for q, th := range theta {
					d := g[q]*inv + lambda*th
					m[q] = mu*m[q] + d
					theta[q] = th - lr*m[q]
				}
			case Adam:
				b1, b2 := cfg.Beta1, cfg.Beta2
				c1 := 1 - math.Pow(b1, float64(step))
				c2 := 1 - math.Pow(b2, float64(step))
				a := lr / c1
				eps := cfg.Epsilon
				for q, th := range theta {
					d := g[q]*inv + lambda*th
					m[q] = b1*m[q] + (1-b1)*d
					v[q] = b2*v[q] + (1-b2)*d*d
					theta[q] = th - a*m[q]/(math.Sqrt(v[q]/c2)+eps)
				}
			}
			for _, q := range t.dead {
				theta[q] = 0
			}
		}
		stop, err := t.endEpoch(lr)
		if stop || err != nil {
			return err
		}
	}
}

// gatherRows copies the rows idx of X and Y to the first len(idx) rows of xb
// and yb and returns views of those rows.
func gatherRows(xb, yb, X, Y *mat.Dense, idx []int) (*mat.Dense, *mat.Dense) {
	for i, j := range idx {
		copy(xb.RawRowView(i), X.RawRowView(j))
		copy(yb.RawRowView(i), Y.RawRowView(j))
	}
	r := len(idx)
	if br, _ := xb.Dims(); r == br {
		return xb, yb
	}
	return rowsOf(xb, 0, r), rowsOf(yb, 0, r)
}

// batchGrad computes minibatch gradients without allocating: batches of at
// most parallel.ChunkRows rows use work space kept per row count (an epoch has at most
// two batch sizes); larger ones go through Network.Gradient.
type batchGrad struct {
	n    *Network
	dead []int
	rows [2]int
	work [2]*gradWork
}

// gradient writes the gradient of E = Σₙ ℓₙ over the rows of X and Y to dst
// and returns E, as Network.Gradient does.
func (b *batchGrad) gradient(dst []float64, X, Y *mat.Dense) float64 {
	r, _ := X.Dims()
	if r > parallel.ChunkRows {
		return b.n.Gradient(dst, X, Y)
	}
	var w *gradWork
	for i := range b.work {
		if b.work[i] == nil {
			b.rows[i], b.work[i] = r, b.n.newGradWork(r)
		}
		if b.rows[i] == r {
			w = b.work[i]
			break
		}
	}
	if w == nil {
		w = b.n.newGradWork(r)
	}
	clear(dst)
	E := b.n.accumGradient(dst, w, X, Y)
	for _, q := range b.dead {
		dst[q] = 0
	}
	return E
}

// Statuses that end an L-BFGS run from within the monitor.
var (
	lbfgsCanceled  = optimize.NewStatus("Canceled", true, nil)
	lbfgsEarly     = optimize.NewStatus("EarlyStopping", false, nil)
	lbfgsTolerance = optimize.NewStatus("Tolerance", false, nil)
	lbfgsDiverged  = optimize.NewStatus("Diverged", true, nil)
)

// runLBFGS minimises J(θ) = E/N + ½λ‖θ‖² over the live parameters with
// optimize.LBFGS.
func (t *trainer) runLBFGS() error {
	n, cfg := t.n, &t.cfg
	X, Y := t.train.X, t.train.Y
	N, _ := X.Dims()
	invN := 1 / float64(N)
	lambda := cfg.WeightDecay
	live := n.LiveIndices()
	theta := n.RawParams()
	if len(live) == 0 {
		// Nothing to optimise.
		_, err := t.endEpoch(0)
		if err == nil {
			t.stopped = StoppedConverged
		}
		return err
	}

	x0 := make([]float64, len(live))
	for i, q := range live {
		x0[i] = theta[q]
	}
	scatter := func(x []float64) {
		for i, q := range live {
			theta[q] = x[i]
		}
	}

	// Func and Grad are asked for at the same point in turn; one gradient
	// pass serves both.
	var (
		full   = make([]float64, n.NumParams())
		cacheX = make([]float64, len(live))
		cacheG = make([]float64, len(live))
		cacheF float64
		cached bool
	)
	eval := func(x []float64) {
		if cached && sameVector(x, cacheX) {
			return
		}
		scatter(x)
		E := n.Gradient(full, X, Y)
		var ss float64
		for i, q := range live {
			ss += x[i] * x[i]
			cacheG[i] = full[q]*invN + lambda*x[i]
		}
		cacheF = E*invN + 0.5*lambda*ss
		copy(cacheX, x)
		cached = true
	}
	prob := optimize.Problem{
		Func: func(x []float64) float64 {
			eval(x)
			return cacheF
		},
		Grad: func(g, x []float64) {
			eval(x)
			copy(g, cacheG)
		},
		Status: func() (optimize.Status, error) {
			if t.ctx.Err() != nil {
				return lbfgsCanceled, nil
			}
			return optimize.NotTerminated, nil
		},
	}
	mon := &lbfgsMonitor{t: t, scatter: scatter, last: append([]float64(nil), x0...)}
	settings := &optimize.Settings{
		Converger: mon,
		// Convergence on the gradient is decided by the monitor, so that
		// every major iteration is reported.
		GradientThreshold: math.NaN(),
	}
	res, err := optimize.Minimize(prob, x0, settings, &optimize.LBFGS{})

	scatter(mon.last)
	switch {
	case mon.err != nil:
		return mon.err
	case res == nil:
		return fmt.Errorf("L-BFGS: %w", err)
	}
	switch res.Status {
	case lbfgsCanceled:
		t.stopped = StoppedCanceled
		return t.ctx.Err()
	case lbfgsEarly:
		t.stopped = StoppedEarly
	case lbfgsTolerance:
		t.stopped = StoppedTolerance
	case optimize.IterationLimit:
		t.stopped = StoppedEpochs
	case optimize.Failure:
		var ef optimize.ErrFunc
		if errors.As(err, &ef) {
			return t.diverged(t.epoch+1, float64(ef))
		}
		var eg optimize.ErrGrad
		if errors.As(err, &eg) {
			return t.diverged(t.epoch+1, eg.Grad)
		}
		if errors.Is(err, optimize.ErrNoProgress) || errors.Is(err, optimize.ErrLinesearcherFailure) ||
			errors.Is(err, optimize.ErrNonDescentDirection) || errors.Is(err, optimize.ErrLinesearcherBound) {
			// The line search can make no further progress.
			t.stopped = StoppedConverged
			return nil
		}
		return fmt.Errorf("L-BFGS at iteration %d: %w", t.epoch, err)
	default:
		if err != nil {
			return fmt.Errorf("L-BFGS at iteration %d: %w", t.epoch, err)
		}
		t.stopped = StoppedConverged
	}
	return nil
}

func sameVector(a, b []float64) bool {
	for i, v := range a {
		if v != b[i] {
			return false
		}
	}
	return true
}

// lbfgsMonitor is the optimize.Converger of an L-BFGS run. At every major
// iteration it keeps the location, reports progress and decides on
// cancellation, divergence, early stopping, the tolerance, the gradient
// threshold, function convergence and the iteration limit.
type lbfgsMonitor struct {
	t       *trainer
	scatter func(x []float64)
	last    []float64 // location of the last reported major iteration
	iter    int       // major iterations seen, the starting location included
	fc      optimize.FunctionConverge
	err     error
}

func (m *lbfgsMonitor) Init(dim int) {
	m.iter = 0
	m.fc = optimize.FunctionConverge{Absolute: 1e-10, Iterations: 100}
	m.fc.Init(dim)
}

func (m *lbfgsMonitor) Converged(loc *optimize.Location) optimize.Status {
	t := m.t
	if m.err != nil {
		return lbfgsDiverged
	}
	if t.ctx.Err() != nil {
		return lbfgsCanceled
	}
	first := m.iter == 0
	m.iter++
	if math.IsNaN(loc.F) || math.IsInf(loc.F, 0) {
		m.err = t.diverged(t.epoch+1, loc.F)
		return lbfgsDiverged
	}
	if first {
		// The starting location; it was evaluated by start.
		m.fc.Converged(loc)
		return optimize.NotTerminated
	}
	m.scatter(loc.X)
	stop, err := t.endEpoch(0)
	if err != nil {
		m.err = err
		return lbfgsDiverged
	}
	copy(m.last, loc.X)
	if stop {
		switch t.stopped {
		case StoppedTolerance:
			return lbfgsTolerance
		case StoppedEarly:
			return lbfgsEarly
		}
		// Checked last, below.
	}
	if loc.Gradient != nil && floats.Norm(loc.Gradient, math.Inf(1)) < LBFGSGradientThreshold {
		return optimize.GradientThreshold
	}
	if s := m.fc.Converged(loc); s != optimize.NotTerminated {
		return s
	}
	if t.epoch >= t.cfg.Epochs {
		return optimize.IterationLimit
	}
	return optimize.NotTerminated
}

// fieldError is an invalid field of TrainSettings; SettingsField names it.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return "nn: TrainSettings." + e.field + " " + e.msg }

// SettingsField returns the name of the invalid field.
func (e *fieldError) SettingsField() string { return e.field }

func settingsError(field, format string, args ...any) error {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}
