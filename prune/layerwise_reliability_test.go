package prune

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// TestLayerwiseHugeWeights is the repro of weights ≥ 1.4e154, whose squares
// are +Inf: OBC ranked every entry as +Inf and indexed position −1. Every
// method now prunes such a network, or fails with an error when the
// layer's outputs overflow.
func TestLayerwiseHugeWeights(t *testing.T) {
	for _, act := range []nn.Activation{nn.Tanh, nn.Linear} {
		for _, m := range []LayerwiseMethod{LayerwiseOBC, LayerwiseSparseGPT, LayerwiseMagnitude, LayerwiseOBD} {
			net := randomNet(t, []int{8, 6, 2}, []nn.Activation{act, nn.Linear}, nn.MSE, 91)
			theta := net.RawParams()
			for q := range theta {
				theta[q] *= 1.5e154
			}
			X := correlatedInputs(30, 8, 0, 93)
			out, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5, Method: m, BlockSize: 3})
			switch {
			case act == nn.Linear && m != LayerwiseMagnitude:
				// The second layer's inputs are about 1e155; their
				// squares overflow the layer Hessian or its diagonal.
				if err == nil || !strings.Contains(err.Error(), "layer 1") {
					t.Errorf("%v, %v: error %v, want an overflow of layer 1", act, m, err)
				}
			case err != nil:
				t.Errorf("%v, %v: %v", act, m, err)
			default:
				if err := out.CheckFinite(); err != nil {
					t.Errorf("%v, %v: %v", act, m, err)
				}
				if got := out.NumParams() - out.NumLive(); got == 0 {
					t.Errorf("%v, %v: nothing pruned", act, m)
				}
				if len(rep.Layers) != 2 {
					t.Errorf("%v, %v: %d layer reports", act, m, len(rep.Layers))
				}
			}
		}
	}
}

// TestLayerwiseBadInput covers the settings and inputs that used to panic
// or to run on numbers that are not finite.
func TestLayerwiseBadInput(t *testing.T) {
	net := randomNet(t, []int{8, 6, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 71)
	X := correlatedInputs(20, 8, 0, 73)
	ctx := context.Background()
	for _, s := range []LayerwiseSettings{
		{Sparsity: -0.1}, {Sparsity: 1.5}, {Sparsity: math.NaN()},
		{LayerSparsity: []float64{0.5}}, {LayerSparsity: []float64{0.5, math.Inf(1)}},
		{Method: LayerwiseMethod(17)}, {Method: -1},
		{Damping: -1}, {Damping: math.Inf(1)}, {Damping: math.NaN()},
		{BlockSize: -3}, {Workers: -1},
	} {
		if err := s.Validate(net.NumLayers()); err == nil {
			t.Errorf("Validate(%+v) = nil", s)
		}
		if _, _, err := Layerwise(ctx, net, X, &s); err == nil {
			t.Errorf("Layerwise with %+v: no error", s)
		}
	}
	if _, _, err := Layerwise(ctx, net, &mat.Dense{}, nil); err == nil {
		t.Error("no error for an empty input matrix")
	}
	Xbad := mat.DenseCopyOf(X)
	Xbad.Set(3, 2, math.NaN())
	if _, _, err := Layerwise(ctx, net, Xbad, &LayerwiseSettings{Sparsity: 0.5}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN input: error %v", err)
	}
	for _, m := range []LayerwiseMethod{LayerwiseOBC, LayerwiseSparseGPT, LayerwiseOBD} {
		if _, _, err := Layerwise(ctx, net, X, &LayerwiseSettings{Sparsity: 0.5, Damping: 1e308, Method: m}); err == nil || !strings.Contains(err.Error(), "lower the damping") {
			t.Errorf("%v, damping 1e308: error %v", m, err)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(-1)} {
		bad := net.Clone()
		bad.RawParams()[4] = v
		if _, _, err := Layerwise(ctx, bad, X, &LayerwiseSettings{Sparsity: 0.5}); err == nil {
			t.Errorf("weight %v: no error", v)
		}
	}
}

// TestLayerwiseMagnitudeNoCurvature is the repro of --layerwise --method
// magnitude refused on a wide layer for a layer Hessian it never uses:
// magnitude and OBD hold no (In+1)×(In+1) matrix, so a limit of 1 MiB that
// OBC cannot meet does not stop them, and their reconstruction error,
// measured without H_l, matches Σ_j δw_jᵀ H_l δw_j.
func TestLayerwiseMagnitudeNoCurvature(t *testing.T) {
	const in = 3000
	net := randomNet(t, []int{in, 3, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 5)
	X := correlatedInputs(40, in, 10, 7)
	if b, l := LayerwiseMemory(net, &LayerwiseSettings{Method: LayerwiseMagnitude}, 2); b != 0 || l != -1 {
		t.Errorf("LayerwiseMemory(magnitude) = %d, %d; want 0, -1", b, l)
	}
	if b, l := LayerwiseMemory(net, nil, 2); b != 5*hessian.DenseBytes(in+1) || l != 0 {
		t.Errorf("LayerwiseMemory(auto) = %d, %d; want %d, 0", b, l, 5*hessian.DenseBytes(in+1))
	}
	ctx := context.Background()
	_, _, err := Layerwise(ctx, net, X, &LayerwiseSettings{Sparsity: 0.5, Method: LayerwiseOBC, MaxBytes: 1 << 20})
	var me *hessian.MemoryError
	if !errors.As(err, &me) {
		t.Fatalf("OBC under 1 MiB: error %v, want a *hessian.MemoryError", err)
	}
	// The library's advice names its own settings, not a command-line flag.
	if msg := err.Error(); strings.Contains(msg, "--") || !strings.Contains(msg, "MaxBytes") || !strings.Contains(msg, "LayerwiseMagnitude") {
		t.Errorf("OBC under 1 MiB: error %q, want advice naming LayerwiseMagnitude and MaxBytes and no flag", msg)
	}
	for _, m := range []LayerwiseMethod{LayerwiseMagnitude, LayerwiseOBD} {
		out, rep, err := Layerwise(ctx, net, X, &LayerwiseSettings{Sparsity: 0.5, Method: m, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("%v under 1 MiB: %v", m, err)
		}
		if m == LayerwiseMagnitude && rep.Layers[0].Lambda != 0 {
			t.Errorf("magnitude: λ = %v, want 0 (no curvature)", rep.Layers[0].Lambda)
		}
		// Σ_j δw_jᵀ H_l δw_j with H_l formed explicitly.
		d := in + 1
		h, err := layerHessian(ctx, X, d)
		if err != nil {
			t.Fatal(err)
		}
		ly := net.Layer(0)
		dw := make([]float64, ly.Out*d)
		for j := 0; j < ly.Out; j++ {
			for i := 0; i < ly.In; i++ {
				dw[j*d+i] = out.Weights(0).At(j, i) - net.Weights(0).At(j, i)
			}
			dw[j*d+ly.In] = out.Bias(0)[j] - net.Bias(0)[j]
		}
		want := quadSum(dw, h, ly.Out, d)
		if got := rep.Layers[0].Actual; !(want > 0) || math.Abs(got-want) > 1e-9*want {
			t.Errorf("%v: reconstruction error %v, want %v", m, got, want)
		}
	}
}

// TestLayerwiseCancelPrompt is the repro of Ctrl-C answered minutes late:
// the context is cancelled as the first row of the first layer of a
// LeNet-300-100 is done, and Layerwise must return with context.Canceled
// having finished at most one row per worker in flight, well within a
// second.
func TestLayerwiseCancelPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("LeNet-300-100 layer-wise run skipped in -short mode")
	}
	net := randomNet(t, []int{784, 300, 100, 10}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Linear}, nn.MSE, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	X := mat.NewDense(1500, 784, nil)
	for i := range X.RawMatrix().Data {
		X.RawMatrix().Data[i] = rng.Float64()
	}
	workers := runtime.GOMAXPROCS(0)
	for _, m := range []LayerwiseMethod{LayerwiseOBC, LayerwiseSparseGPT} {
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu       sync.Mutex
			at       time.Time
			after    int
			canceled bool
		)
		s := &LayerwiseSettings{Sparsity: 0.9, Method: m, Progress: func(l, done, total int) {
			mu.Lock()
			defer mu.Unlock()
			if canceled {
				after++
				return
			}
			canceled = true
			at = time.Now()
			cancel()
		}}
		_, _, err := Layerwise(ctx, net, X, s)
		took := time.Since(at)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v: error %v, want context.Canceled", m, err)
		}
		if after > workers {
			t.Errorf("%v: %d tasks finished after the cancellation, want at most %d (one per worker)", m, after, workers)
		}
		// A generous bound for a loaded machine; a row of OBC or a block of
		// SparseGPT here takes milliseconds.
		if took > 2*time.Second {
			t.Errorf("%v: returned %v after the cancellation", m, took)
		}
		t.Logf("%v: returned %v after the cancellation, %d tasks finished after it", m, took, after)
	}
}

func TestDirectErrorMatchesQuadSum(t *testing.T) {
	X := correlatedInputs(2500, 7, 1, 11) // more than one sample block
	d, rows := 8, 3
	rng := rand.New(rand.NewPCG(4, 5))
	dw := make([]float64, rows*d)
	for i := range dw {
		dw[i] = rng.NormFloat64()
	}
	h, _ := layerHessian(context.Background(), X, d)
	want := quadSum(dw, h, rows, d)
	got, err := directError(context.Background(), X, dw, rows, d)
	if err != nil || math.Abs(got-want) > 1e-10*want {
		t.Errorf("directError = %v, %v; want %v", got, err, want)
	}
	hd := layerHessianDiag(X, d)
	for i := range hd {
		if math.Abs(hd[i]-h[i*d+i]) > 1e-10*h[i*d+i] {
			t.Errorf("diag %d: %v, want %v", i, hd[i], h[i*d+i])
		}
	}
}
