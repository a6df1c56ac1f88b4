package repro

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// Streams of the PCG sources derived from a seed, kept apart so that no
// two uses of a seed share random numbers.
const (
	streamInit    = 1000 // + restart: initial parameters
	streamFolds   = 2000 // cross-validation folds
	streamProbes  = 3000 // Hutchinson probes
	streamShuffle = 4000 // minibatch order
)

// fitSpec describes a network and its full-batch L-BFGS training on
// J = E/N + ½λ‖θ‖².
type fitSpec struct {
	sizes    []int
	acts     []nn.Activation
	loss     nn.Loss
	decay    float64 // λ
	iters    int     // largest number of L-BFGS iterations
	restarts int     // initialisations tried; the one of least J is kept
}

// objective returns J = E/N + ½λ‖θ‖² of net on d.
func objective(net *nn.Network, d nn.Data, decay float64) float64 {
	th := net.RawParams()
	return net.Evaluate(d.X, d.Y).MeanLoss + 0.5*decay*floats.Dot(th, th)
}

// fit trains spec.restarts networks, initialised from the streams
// streamInit+r of seed, and returns the one of least objective J (the
// first on ties).
func fit(ctx context.Context, spec fitSpec, train nn.Data, seed uint64) (*nn.Network, error) {
	var best *nn.Network
	bestJ := math.Inf(1)
	for r := 0; r < max(1, spec.restarts); r++ {
		net, err := nn.New(spec.sizes, spec.acts, spec.loss)
		if err != nil {
			return nil, err
		}
		net.Init(rand.NewPCG(seed, streamInit+uint64(r)))
		if _, err := nn.Train(ctx, net, train, nn.Data{}, &nn.TrainSettings{
			Optimizer: nn.LBFGS, Epochs: spec.iters, WeightDecay: spec.decay,
		}); err != nil {
			return nil, err
		}
		if j := objective(net, train, spec.decay); j < bestJ {
			best, bestJ = net, j
		}
	}
	return best, nil
}

// misclassified returns the number of samples of d that net misclassifies.
func misclassified(net *nn.Network, d nn.Data) int {
	m := net.Evaluate(d.X, d.Y)
	return m.N - int(math.Round(m.Accuracy*float64(m.N)))
}

// subset returns the rows idx of d.
func subset(d nn.Data, idx []int) nn.Data {
	_, xc := d.X.Dims()
	_, yc := d.Y.Dims()
	x := mat.NewDense(len(idx), xc, nil)
	y := mat.NewDense(len(idx), yc, nil)
	for i, j := range idx {
		copy(x.RawRowView(i), d.X.RawRowView(j))
		copy(y.RawRowView(i), d.Y.RawRowView(j))
	}
	return nn.Data{X: x, Y: y}
}

// parallel calls fn(i) for i in [0, n) on up to GOMAXPROCS goroutines and
// returns the first error by index. Each call must write only its own
// results, so that they do not depend on the schedule.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = fn(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
