package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// randomNet returns a network with the given sizes and activations, random
// weights and biases.
func randomNet(t testing.TB, sizes []int, acts []nn.Activation, loss nn.Loss, seed uint64) *nn.Network {
	t.Helper()
	net, err := nn.New(sizes, acts, loss)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, seed+1))
	rng := rand.New(rand.NewPCG(seed+2, seed+3))
	for l := 0; l < net.NumLayers(); l++ {
		for j := range net.Bias(l) {
			net.Bias(l)[j] = 0.3 * rng.NormFloat64()
		}
	}
	return net
}

// correlatedInputs returns n×c inputs with correlated columns and some
// columns that are zero on every sample.
func correlatedInputs(n, c, dead int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, seed+7))
	k := max(2, c/3)
	F := mat.NewDense(k, c, nil)
	for i := 0; i < k; i++ {
		for j := 0; j < c; j++ {
			F.Set(i, j, rng.NormFloat64())
		}
	}
	Z := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			Z.Set(i, j, rng.NormFloat64())
		}
	}
	X := mat.NewDense(n, c, nil)
	X.Mul(Z, F)
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			X.Set(i, j, X.At(i, j)+0.3*rng.NormFloat64()+0.5)
			if j < dead {
				X.Set(i, j, 0)
			}
		}
	}
	return X
}

func prunableCount(net *nn.Network, l int, biases bool) int {
	ly := net.Layer(l)
	if biases {
		return ly.Out * (ly.In + 1)
	}
	return ly.Out * ly.In
}

func prunedIn(net *nn.Network, l int, biases bool) int {
	ly := net.Layer(l)
	c := 0
	for j := 0; j < ly.Out; j++ {
		for i := 0; i < ly.In; i++ {
			if !net.IsLive(net.WeightIndex(l, j, i)) {
				c++
			}
		}
		if biases && !net.IsLive(net.BiasIndex(l, j)) {
			c++
		}
	}
	return c
}

// checkPrunedZero fails when a pruned parameter is not exactly zero.
func checkPrunedZero(t *testing.T, net *nn.Network) {
	t.Helper()
	theta := net.RawParams()
	for q, v := range theta {
		if !net.IsLive(q) && v != 0 {
			t.Fatalf("pruned parameter %v is %v", net.ParamAt(q), v)
		}
	}
}

// TestLayerwiseEqualsGlobalOBS checks that layer-wise OBS on a linear layer
// trained to its own outputs is global OBS with the exact Hessian of E.
func TestLayerwiseEqualsGlobalOBS(t *testing.T) {
	const in, out, n = 7, 4, 30
	net := randomNet(t, []int{in, out}, []nn.Activation{nn.Linear}, nn.MSE, 3)
	X := correlatedInputs(n, in, 1, 5)
	Y := net.Forward(X) // E = 0 and ∇E = 0: a minimum
	const sparsity = 0.6

	pruned, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: sparsity, Method: LayerwiseOBC})
	if err != nil {
		t.Fatal(err)
	}

	// Global OBS on the exact Hessian of E over all parameters, removing
	// from each row as many weights as Layerwise does.
	pr := hessian.All(net, X, Y)
	H, err := hessian.Dense(context.Background(), hessian.Exact{P: pr}, 0)
	if err != nil {
		t.Fatal(err)
	}
	W := net.NumParams()
	var tr float64
	for i := 0; i < W; i++ {
		tr += H.At(i, i)
	}
	lambda := DefaultLayerwiseDamping * tr / float64(W)
	if math.Abs(lambda-rep.Layers[0].Lambda) > 1e-12*lambda {
		t.Fatalf("damping %v, want %v", rep.Layers[0].Lambda, lambda)
	}
	hinv := mat.NewSymDense(W, nil)
	if err := hessian.DampedInverse(hinv, H, lambda); err != nil {
		t.Fatal(err)
	}
	theta := net.ParamsTo(nil)
	T := int(math.Floor(sparsity*float64(in*out) + 0.5))
	left := make([]int, out)
	for j := range left {
		left[j] = (j+1)*T/out - j*T/out
	}
	removed := make([]bool, W)
	var salSum float64
	for {
		best, bs := -1, math.Inf(1)
		for j := 0; j < out; j++ {
			if left[j] == 0 {
				continue
			}
			for i := 0; i < in; i++ {
				q := net.WeightIndex(0, j, i)
				if removed[q] {
					continue
				}
				if s := theta[q] * theta[q] / (2 * hinv.At(q, q)); s < bs {
					best, bs = q, s
				}
			}
		}
		if best < 0 {
			break
		}
		f := theta[best] / hinv.At(best, best)
		for i := 0; i < W; i++ {
			if !removed[i] {
				theta[i] -= f * hinv.At(i, best)
			}
		}
		theta[best] = 0
		removed[best] = true
		salSum += bs
		left[net.ParamAt(best).Row]--
		if err := hessian.Downdate(hinv, best); err != nil {
			t.Fatal(err)
		}
	}

	got := pruned.RawParams()
	for q := range theta {
		if removed[q] != !pruned.IsLive(q) {
			t.Fatalf("parameter %v: removed %v by global OBS, live %v layer-wise", net.ParamAt(q), removed[q], pruned.IsLive(q))
		}
		if math.Abs(got[q]-theta[q]) > 1e-9*(1+math.Abs(theta[q])) {
			t.Errorf("parameter %v: layer-wise %v, global OBS %v", net.ParamAt(q), got[q], theta[q])
		}
	}
	// ε = δwᵀH_lδw is twice the increase of E = ½Σ‖ŷ−y‖².
	lr := rep.Layers[0]
	if math.Abs(lr.Predicted/2-salSum) > 1e-9*salSum {
		t.Errorf("predicted ε/2 = %v, global OBS saliency sum %v", lr.Predicted/2, salSum)
	}
	if E := pruned.Objective(X, Y); math.Abs(lr.Actual/2-E) > 1e-9*E {
		t.Errorf("actual ε/2 = %v, E after pruning %v", lr.Actual/2, E)
	}
	if d := lr.Actual + lr.DampingTerm; math.Abs(lr.Predicted-d) > 1e-9*d {
		t.Errorf("predicted %v, damped error %v", lr.Predicted, d)
	}
}

// sparseGPTReference prunes one row by the definition of SparseGPT: columns
// in order, each removed entry by OBS on the inverse Hessian of the
// unvisited entries, the removals of each block chosen at its start among
// the unvisited columns by w_c²/[H_{c:,c:}⁻¹]_cc.
func sparseGPTReference(t *testing.T, h *mat.SymDense, lambda float64, w []float64, cand []bool, k, B int) ([]float64, float64) {
	t.Helper()
	d := len(w)
	w = slices.Clone(w)
	hinv := mat.NewSymDense(d, nil)
	if err := hessian.DampedInverse(hinv, h, lambda); err != nil {
		t.Fatal(err)
	}
	// diag[c] = [H_F⁻¹]_cc with F = {c, …, d−1}.
	diag := make([]float64, d)
	for c := 0; c < d; c++ {
		keep := make([]int, d-c)
		for i := range keep {
			keep[i] = c + i
		}
		var sub mat.SymDense
		hessian.Reduce(&sub, h, keep)
		inv := mat.NewSymDense(d-c, nil)
		if err := hessian.DampedInverse(inv, &sub, lambda); err != nil {
			t.Fatal(err)
		}
		diag[c] = inv.At(0, 0)
	}
	prune := make([]bool, d)
	var pred float64
	for i := 0; i < d; i++ {
		if i%B == 0 && k > 0 {
			var idx []int
			for c := i; c < d; c++ {
				if cand[c] {
					idx = append(idx, c)
				}
			}
			slices.SortStableFunc(idx, func(a, b int) int {
				sa, sb := w[a]*w[a]/diag[a], w[b]*w[b]/diag[b]
				switch {
				case sa < sb:
					return -1
				case sa > sb:
					return 1
				}
				return 0
			})
			for _, c := range idx[:min(k, len(idx))] {
				if c < i+B {
					prune[c] = true
					k--
				}
			}
		}
		if prune[i] {
			p := hinv.At(i, i)
			if math.Abs(p-diag[i]) > 1e-9*diag[i] {
				t.Fatalf("column %d: downdated [H⁻¹]_ii = %v, direct %v", i, p, diag[i])
			}
			f := w[i] / p
			pred += w[i] * f
			for c := i; c < d; c++ {
				w[c] -= f * hinv.At(c, i)
			}
			w[i] = 0
		}
		if err := hessian.Downdate(hinv, i); err != nil {
			t.Fatal(err)
		}
	}
	return w, pred
}

func TestLayerwiseSparseGPTReference(t *testing.T) {
	const in, out, n = 11, 3, 40
	net := randomNet(t, []int{in, out}, []nn.Activation{nn.Tanh}, nn.MSE, 11)
	X := correlatedInputs(n, in, 2, 13)
	for _, B := range []int{3, 5, 64} {
		pruned, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{
			Sparsity: 0.7, Method: LayerwiseSparseGPT, BlockSize: B})
		if err != nil {
			t.Fatal(err)
		}
		d := in + 1
		hl, _ := layerHessian(context.Background(), X, d)
		h := mat.NewSymDense(d, hl)
		lambda := rep.Layers[0].Lambda
		T := int(math.Floor(0.7*float64(in*out) + 0.5))
		var predSum float64
		for j := 0; j < out; j++ {
			w := append(slices.Clone(net.Weights(0).RawRowView(j)), net.Bias(0)[j])
			cand := make([]bool, d)
			for i := 0; i < in; i++ {
				cand[i] = true
			}
			k := (j+1)*T/out - j*T/out
			want, pred := sparseGPTReference(t, h, lambda, w, cand, k, B)
			predSum += pred
			got := append(slices.Clone(pruned.Weights(0).RawRowView(j)), pruned.Bias(0)[j])
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
					t.Errorf("B=%d row %d entry %d: %v, reference %v", B, j, i, got[i], want[i])
				}
			}
		}
		lr := rep.Layers[0]
		if math.Abs(lr.Predicted-predSum) > 1e-9*predSum {
			t.Errorf("B=%d: predicted %v, reference %v", B, lr.Predicted, predSum)
		}
		if dmp := lr.Actual + lr.DampingTerm; math.Abs(lr.Predicted-dmp) > 1e-9*dmp {
			t.Errorf("B=%d: predicted %v, damped error %v", B, lr.Predicted, dmp)
		}
	}
}

var allLayerwiseMethods = []LayerwiseMethod{LayerwiseAuto, LayerwiseOBC, LayerwiseSparseGPT, LayerwiseMagnitude, LayerwiseOBD}

func TestLayerwiseTargets(t *testing.T) {
	net := randomNet(t, []int{12, 9, 5, 3}, []nn.Activation{nn.Tanh, nn.ReLU, nn.Softmax}, nn.CE, 21)
	X := correlatedInputs(50, 12, 2, 23)
	before := net.ParamsTo(nil)
	for _, m := range allLayerwiseMethods {
		for _, biases := range []bool{false, true} {
			for _, perLayer := range []bool{false, true} {
				for _, sp := range []float64{0, 0.3, 0.77, 1} {
					s := &LayerwiseSettings{Sparsity: sp, Method: m, PruneBiases: biases, PerLayer: perLayer, BlockSize: 4}
					pruned, rep, err := Layerwise(context.Background(), net, X, s)
					if err != nil {
						t.Fatalf("%v biases=%v perLayer=%v sparsity=%v: %v", m, biases, perLayer, sp, err)
					}
					checkPrunedZero(t, pruned)
					for l := 0; l < net.NumLayers(); l++ {
						want := int(math.Floor(sp*float64(prunableCount(net, l, biases)) + 0.5))
						if got := prunedIn(pruned, l, biases); got != want {
							t.Errorf("%v biases=%v perLayer=%v sparsity=%v layer %d: %d pruned, want %d", m, biases, perLayer, sp, l, got, want)
						}
						if !biases {
							if _, b := pruned.LayerLive(l); b != net.Layer(l).Out {
								t.Errorf("%v: layer %d lost biases", m, l)
							}
						}
						lr := rep.Layers[l]
						wl, bl := pruned.LayerLive(l)
						if lr.WeightsAfter != wl || lr.BiasesAfter != bl {
							t.Errorf("%v: report %d/%d live, network %d/%d", m, lr.WeightsAfter, lr.BiasesAfter, wl, bl)
						}
						if lr.Method == LayerwiseAuto {
							t.Errorf("auto not resolved")
						}
					}
					if sp == 0 && !slices.Equal(pruned.RawParams(), before) {
						t.Errorf("%v: sparsity 0 changed the network", m)
					}
				}
			}
		}
	}
	if !slices.Equal(net.ParamsTo(nil), before) || net.HasMask() {
		t.Fatal("Layerwise modified its input")
	}
}

// TestLayerwiseMasked prunes a network that has pruned parameters already.
func TestLayerwiseMasked(t *testing.T) {
	net := randomNet(t, []int{10, 8, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 31)
	rng := rand.New(rand.NewPCG(1, 2))
	for q := 0; q < net.NumParams(); q++ {
		if rng.Float64() < 0.2 {
			net.Prune(q)
		}
	}
	mask := net.Mask()
	X := correlatedInputs(40, 10, 1, 33)
	for _, m := range allLayerwiseMethods {
		pruned, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5, Method: m, BlockSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		checkPrunedZero(t, pruned)
		for q, live := range mask {
			if !live && pruned.IsLive(q) {
				t.Fatalf("%v revived %v", m, net.ParamAt(q))
			}
		}
		for l, lr := range rep.Layers {
			if got, want := prunedIn(pruned, l, false), int(math.Floor(0.5*float64(prunableCount(net, l, false))+0.5)); got < want {
				t.Errorf("%v layer %d: %d pruned, want at least %d", m, l, got, want)
			}
			if m == LayerwiseOBC || m == LayerwiseSparseGPT {
				if dmp := lr.Actual + lr.DampingTerm; math.Abs(lr.Predicted-dmp) > 1e-8*dmp {
					t.Errorf("%v layer %d: predicted %v, damped error %v", m, l, lr.Predicted, dmp)
				}
			}
		}
	}
}

func TestLayerwiseDeterministic(t *testing.T) {
	net := randomNet(t, []int{30, 70, 5}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 41)
	X := correlatedInputs(200, 30, 3, 43)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, m := range []LayerwiseMethod{LayerwiseOBC, LayerwiseSparseGPT} {
		var ref, refPred []float64
		for _, procs := range []int{1, 2, 4} {
			for _, workers := range []int{0, 1, 3} {
				runtime.GOMAXPROCS(procs)
				pruned, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{
					Sparsity: 0.8, Method: m, Workers: workers, BlockSize: 16})
				if err != nil {
					t.Fatal(err)
				}
				got := pruned.ParamsTo(nil)
				var pred []float64
				for _, l := range rep.Layers {
					pred = append(pred, l.Predicted)
				}
				if ref == nil {
					ref, refPred = got, pred
				} else if !slices.Equal(got, ref) {
					t.Fatalf("%v: GOMAXPROCS=%d Workers=%d changes the result", m, procs, workers)
				} else if !slices.Equal(pred, refPred) {
					t.Fatalf("%v: GOMAXPROCS=%d Workers=%d changes the predicted errors: %v, want %v", m, procs, workers, pred, refPred)
				}
			}
		}
	}
}

func TestLayerwiseBeatsMagnitude(t *testing.T) {
	net := randomNet(t, []int{40, 20}, []nn.Activation{nn.Linear}, nn.MSE, 51)
	X := correlatedInputs(300, 40, 4, 53)
	errOf := func(m LayerwiseMethod, sp float64) float64 {
		_, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: sp, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Layers[0].Actual
	}
	for _, sp := range []float64{0.3, 0.6, 0.9} {
		mag := errOf(LayerwiseMagnitude, sp)
		obd := errOf(LayerwiseOBD, sp)
		obc := errOf(LayerwiseOBC, sp)
		gpt := errOf(LayerwiseSparseGPT, sp)
		t.Logf("sparsity %.1f: magnitude %.4g, OBD %.4g, OBC %.4g, SparseGPT %.4g", sp, mag, obd, obc, gpt)
		if !(obc <= mag && gpt <= mag && obc <= obd) {
			t.Errorf("sparsity %v: OBC %v, SparseGPT %v, not below magnitude %v / OBD %v", sp, obc, gpt, mag, obd)
		}
	}
}

func TestLayerwiseDenseInputs(t *testing.T) {
	net := randomNet(t, []int{8, 6, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 61)
	X := correlatedInputs(40, 8, 0, 63)
	seq, rs, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	den, rd, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5, DenseInputs: true})
	if err != nil {
		t.Fatal(err)
	}
	// The first layer sees X either way; the second does not.
	if rs.Layers[0].Actual != rd.Layers[0].Actual {
		t.Error("first layer differs")
	}
	if slices.Equal(seq.RawParams(), den.RawParams()) {
		t.Error("DenseInputs made no difference")
	}
	// With the dense inputs, the second layer's error is measured on the
	// dense network's hidden outputs.
	h, _ := layerOutput(context.Background(), net.Layer(0), net.RawParams()[:net.Offset(1)], X)
	dw := make([]float64, 0)
	for j := 0; j < 2; j++ {
		for i := 0; i < 6; i++ {
			dw = append(dw, den.Weights(1).At(j, i)-net.Weights(1).At(j, i))
		}
		dw = append(dw, den.Bias(1)[j]-net.Bias(1)[j])
	}
	var want float64
	rows, _ := h.Dims()
	for j := 0; j < 2; j++ {
		for n := 0; n < rows; n++ {
			v := dw[j*7+6]
			for i := 0; i < 6; i++ {
				v += dw[j*7+i] * h.At(n, i)
			}
			want += v * v
		}
	}
	if got := rd.Layers[1].Actual; math.Abs(got-want) > 1e-9*want {
		t.Errorf("second layer error %v, want %v", got, want)
	}
}

func TestLayerwiseCancel(t *testing.T) {
	net := randomNet(t, []int{8, 6, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 71)
	X := correlatedInputs(20, 8, 0, 73)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Layerwise(ctx, net, X, &LayerwiseSettings{Sparsity: 0.5}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if _, _, err := Layerwise(context.Background(), net, mat.NewDense(3, 7, nil), nil); err == nil {
		t.Fatal("no error for inputs of the wrong width")
	}
	var calls, last int
	_, _, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5,
		Progress: func(l, done, total int) {
			calls++
			if done > total || total != net.Layer(l).Out {
				t.Errorf("progress %d/%d on layer %d", done, total, l)
			}
			last = done
		}})
	if err != nil || calls == 0 || last != 2 {
		t.Fatalf("progress: %d calls, last %d, err %v", calls, last, err)
	}
}

// TestLayerwiseMNIST prunes a small network trained on a subset of MNIST.
func TestLayerwiseMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	sp, err := datasets.Load("mnist", &datasets.Options{N: 2000, TestN: 1000})
	if err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	net, err := nn.New([]int{784, 64, 10}, []nn.Activation{nn.ReLU, nn.Softmax}, nn.CE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 1))
	if _, err := nn.Train(context.Background(), net, sp.Train, nn.Data{},
		&nn.TrainSettings{Epochs: 3, LearningRate: 0.003}); err != nil {
		t.Fatal(err)
	}
	dense := net.Evaluate(sp.Test.X, sp.Test.Y).Accuracy
	calib := sp.Train.Subset(seq(500)).X
	acc := map[LayerwiseMethod]float64{}
	for _, m := range []LayerwiseMethod{LayerwiseMagnitude, LayerwiseAuto} {
		t0 := time.Now()
		pruned, rep, err := Layerwise(context.Background(), net, calib, &LayerwiseSettings{Sparsity: 0.9, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		acc[m] = pruned.Evaluate(sp.Test.X, sp.Test.Y).Accuracy
		t.Logf("%v: test accuracy %.3f (dense %.3f), %v, layer errors %.4g %.4g", m, acc[m], dense,
			time.Since(t0).Round(time.Millisecond), rep.Layers[0].Actual, rep.Layers[1].Actual)
	}
	if acc[LayerwiseAuto] < acc[LayerwiseMagnitude] || acc[LayerwiseAuto] < dense-0.1 {
		t.Errorf("layer-wise OBS accuracy %.3f, magnitude %.3f, dense %.3f", acc[LayerwiseAuto], acc[LayerwiseMagnitude], dense)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func ExampleLayerwise() {
	net, _ := nn.New([]int{6, 5, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(1, 2))
	X := correlatedInputs(100, 6, 0, 3) // calibration inputs, one sample per row

	pruned, rep, err := Layerwise(context.Background(), net, X, &LayerwiseSettings{Sparsity: 0.5})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, lr := range rep.Layers {
		fmt.Printf("layer %d (%v): %d → %d weights, predicted error = actual + damping term: %v\n",
			lr.Layer, lr.Method, lr.WeightsBefore, lr.WeightsAfter,
			math.Abs(lr.Predicted-(lr.Actual+lr.DampingTerm)) <= 1e-9*lr.Predicted)
	}
	fmt.Println(pruned.NumLive(), "of", pruned.NumParams(), "parameters live")
	// Output:
	// layer 0 (obc): 30 → 15 weights, predicted error = actual + damping term: true
	// layer 1 (obc): 10 → 5 weights, predicted error = actual + damping term: true
	// 27 of 47 parameters live
}
