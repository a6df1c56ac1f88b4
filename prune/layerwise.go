package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// LayerwiseMethod selects how Layerwise removes the weights of a layer:
// LayerwiseOBC by exact greedy OBS per row (Optimal Brain Compression),
// LayerwiseSparseGPT by OBS over the columns in order with the Cholesky
// factor of H⁻¹, LayerwiseMagnitude by least |w| and LayerwiseOBD by least
// w_q² [H_l]_qq. LayerwiseAuto is LayerwiseOBC for a layer with
// Out·(In+1)³ ≤ 2·10¹¹, such as the first layer of LeNet-300-100, and
// LayerwiseSparseGPT otherwise.
type LayerwiseMethod int

// The methods of Layerwise.
const (
	LayerwiseAuto LayerwiseMethod = iota
	LayerwiseOBC
	LayerwiseSparseGPT
	LayerwiseMagnitude
	LayerwiseOBD
)

var layerwiseMethodNames = [...]string{
	LayerwiseAuto:      "auto",
	LayerwiseOBC:       "obc",
	LayerwiseSparseGPT: "sparsegpt",
	LayerwiseMagnitude: "magnitude",
	LayerwiseOBD:       "obd",
}

// String returns auto, obc, sparsegpt, magnitude or obd.
func (m LayerwiseMethod) String() string {
	if m < 0 || int(m) >= len(layerwiseMethodNames) {
		return fmt.Sprintf("LayerwiseMethod(%d)", int(m))
	}
	return layerwiseMethodNames[m]
}

const (
	// sparseGPTBlock is the default LayerwiseSettings.BlockSize.
	sparseGPTBlock = 128

	// obcMaxWork is the largest Out·(In+1)³ for which LayerwiseAuto uses
	// LayerwiseOBC. Removing k weights from a row of d = In+1 entries by
	// OBC costs about (d³ − (d−k)³)/3 flops, at most d³/3, while
	// SparseGPT costs about 4d³/3 + 2·Out·d² flops per layer whatever the
	// sparsity, and is less accurate. The bound admits layers up to about
	// 7·10¹⁰ flops of OBC, such as the 785-column first layer of an MNIST
	// 784-300-100-10 network: about 7 s of CPU time with the pure-Go BLAS,
	// shared by the workers.
	obcMaxWork = 2e11

	// sparseGPTBatch is the number of rows a worker of SparseGPT processes
	// together. It is fixed, so that results do not depend on Workers.
	sparseGPTBatch = 32
)

// LayerwiseSettings holds the settings of Layerwise; a nil
// *LayerwiseSettings, and any zero field, selects the default.
//
// Sparsity is the fraction in [0, 1] of each layer's prunable parameters
// (the weights, and the biases with PruneBiases; OBC and SparseGPT update
// biases either way) pruned in the result; LayerSparsity, when not nil,
// gives one per layer. Damping is the relative damping ρ: H_l + λI with
// λ = ρ·mean(diag H_l), default DefaultLayerwiseDamping (inputs zero on
// every sample, such as MNIST's border pixels, make H_l singular).
// PerLayer ranks a layer's removals over the layer instead of sharing them
// evenly among its rows; DenseInputs feeds every layer the inputs of the
// dense network. BlockSize is the columns per block of SparseGPT (default
// 128); Workers the goroutines over rows (default GOMAXPROCS; no effect on
// the result); MaxBytes limits a layer's dense matrices as LayerwiseMemory
// counts them (see hessian.CheckMemory). Progress, when not nil, is called
// serially with the rows done of the total of a layer. For LayerwiseRun
// only: OnState receives its State (one source, retrain.Src) after the
// pruning when it retrains and at the end, and ends it by an error; Resume
// continues from such a State without pruning again (the report is empty).
type LayerwiseSettings struct {
	Sparsity                           float64
	LayerSparsity                      []float64
	Method                             LayerwiseMethod
	Damping                            float64
	PruneBiases, PerLayer, DenseInputs bool
	BlockSize, Workers                 int
	MaxBytes                           int64
	Progress                           func(layer, done, total int)
	Resume                             *State
	OnState                            func(*State, LayerwiseReport) error
}

// LayerwiseReport describes a run of Layerwise: its layers in order and
// its wall time.
type LayerwiseReport struct {
	Layers []LayerwiseLayer
	Time   time.Duration
}

// LayerwiseLayer describes the pruning of one layer by Layerwise: the
// method used (never LayerwiseAuto), the target sparsity, the live weights
// and biases before and after, the damping λ (zero for magnitude) and the
// time. Predicted is the sum of the removals' saliencies (w_q²/[H⁻¹]_qq for
// OBC and SparseGPT, equal to Actual + DampingTerm up to rounding; w_q²
// [H_l]_qq for OBD; NaN for magnitude), Actual the error ε of Layerwise on
// the calibration inputs and DampingTerm λ Σ_j ‖δw_j‖².
type LayerwiseLayer struct {
	Layer                                                  int
	Method                                                 LayerwiseMethod
	Sparsity                                               float64
	WeightsBefore, WeightsAfter, BiasesBefore, BiasesAfter int
	Lambda, Predicted, Actual, DampingTerm                 float64
	Time                                                   time.Duration
}

// Layerwise prunes a copy of net layer by layer on the calibration inputs X
// (one sample per row) and returns it, its mask set and the remaining weights
// updated, with a report. Row j of layer l, w_j = (W_l[j], b_l[j]) with
// inputs z̃ = (z, 1), is pruned to minimise
//
//	ε_j = ‖(w_j − w_j⁰) Z̃ᵀ‖² = δw_jᵀ H_l δw_j,    H_l = Σₙ z̃ₙ z̃ₙᵀ,
//
// by OBS on H_l + λI (ε_q = w_q²/[H⁻¹]_qq; for a linear layer and the squared
// error this is OBS on E). Layer l ends with round(s_l·P_l) of its P_l
// prunable parameters pruned, or more if net had more pruned. Row j gets
// ⌊(j+1)T/Out⌋ − ⌊jT/Out⌋ of the T removals of the layer, or with PerLayer
// its entries among the T least saliencies. The inputs of layer l come from
// the network pruned so far, so that it compensates for earlier errors.
//
// It returns an error for invalid settings or inputs, values that are not
// finite, a layer above MaxBytes (a *hessian.MemoryError), a done ctx, and a
// damped H_l that is not positive definite or an update that overflows (a
// larger Damping remedies these).
//
// References:
//
//	X. Dong, S. Chen and S. J. Pan, Learning to prune deep neural networks
//	  via layer-wise optimal brain surgeon, NIPS 30, 2017.
//	E. Frantar, S. P. Singh and D. Alistarh, Optimal Brain Compression: a
//	  framework for accurate post-training quantization and pruning,
//	  NeurIPS 35, 2022.
//	E. Frantar and D. Alistarh, SparseGPT: massive language models can be
//	  accurately pruned in one-shot, ICML 2023.
func Layerwise(ctx context.Context, net *nn.Network, X *mat.Dense, s *LayerwiseSettings) (*nn.Network, LayerwiseReport, error) {
	// Costs: OBC removes the entry of least ε_q one at a time, about
	// (d³ − (d−k)³)/3 flops for k removals from a row of d = In+1 entries.
	// SparseGPT visits the columns in order with H⁻¹ = UᵀU: removing entry
	// i costs w_i²/U_ii² and moves the later entries of its row by
	// −(w_i/U_ii) U[i, i+1:]; at the start of each block of BlockSize
	// columns a row chooses its remaining removals among its unvisited
	// columns of least w_c²/U_cc²; about 4d³/3 + 2·Out·d² flops per layer.
	// Magnitude and OBD form no H_l (OBD uses its diagonal) and move no
	// other weight; they cost about a forward pass. ctx is checked between
	// blocks of samples and columns and between removals.
	start := time.Now()
	var rep LayerwiseReport
	set, err := s.withDefaults(net.NumLayers())
	if err != nil {
		return nil, rep, err
	}
	if err := net.Check(X, nil); err != nil {
		return nil, rep, err
	}
	if n, _ := X.Dims(); n == 0 {
		return nil, rep, errors.New("layer-wise pruning: no calibration samples")
	}
	if err := net.CheckFinite(); err != nil {
		return nil, rep, fmt.Errorf("layer-wise pruning: %w", err)
	}
	out := net.Clone()
	mask := out.Mask()
	theta := out.RawParams()
	in, denseIn := X, X
	L := net.NumLayers()
	for l := 0; l < L; l++ {
		if err := ctx.Err(); err != nil {
			return nil, rep, err
		}
		t0 := time.Now()
		lr, err := set.pruneLayer(ctx, out, mask, l, in)
		if err != nil {
			return nil, rep, fmt.Errorf("layer %d: %w", l, err)
		}
		lr.Time = time.Since(t0)
		rep.Layers = append(rep.Layers, lr)
		if l == L-1 {
			break
		}
		if set.DenseInputs {
			denseIn, err = layerOutput(ctx, net.Layer(l), net.RawParams()[net.Offset(l):net.Offset(l+1)], denseIn)
			in = denseIn
		} else {
			// The pruned parameters are zero in theta already.
			in, err = layerOutput(ctx, out.Layer(l), theta[out.Offset(l):out.Offset(l+1)], in)
		}
		if err != nil {
			return nil, rep, fmt.Errorf("layer %d: %w", l+1, err)
		}
	}
	out.SetMask(mask)
	rep.Time = time.Since(start)
	return out, rep, nil
}

// layerwiseSettings is LayerwiseSettings with the defaults filled in.
type layerwiseSettings struct {
	LayerwiseSettings
	sparsity []float64
	workers  int
}

// Validate returns an error for the first invalid setting of s for a
// network of the given number of layers. A nil s is valid.
func (s *LayerwiseSettings) Validate(layers int) error {
	if s == nil {
		return nil
	}
	if s.LayerSparsity != nil && len(s.LayerSparsity) != layers {
		return fieldErrorf("LayerwiseSettings", "LayerSparsity", "has %d entries for %d layers", len(s.LayerSparsity), layers)
	}
	for l, v := range s.LayerSparsity {
		if !(v >= 0 && v <= 1) {
			return fieldErrorf("LayerwiseSettings", "LayerSparsity", "%v of layer %d is not in [0, 1]", v, l)
		}
	}
	if s.LayerSparsity == nil && !(s.Sparsity >= 0 && s.Sparsity <= 1) {
		return fieldErrorf("LayerwiseSettings", "Sparsity", "%v is not in [0, 1]", s.Sparsity)
	}
	if s.Method < LayerwiseAuto || s.Method > LayerwiseOBD {
		return fieldErrorf("LayerwiseSettings", "Method", "%v is unknown", s.Method)
	}
	if s.Damping != 0 && (!(s.Damping > 0) || math.IsInf(s.Damping, 1)) {
		return fieldErrorf("LayerwiseSettings", "Damping", "%v is not a positive finite number", s.Damping)
	}
	if s.BlockSize < 0 {
		return fieldErrorf("LayerwiseSettings", "BlockSize", "%d is negative", s.BlockSize)
	}
	if s.Workers < 0 {
		return fieldErrorf("LayerwiseSettings", "Workers", "%d is negative", s.Workers)
	}
	if st := s.Resume; st != nil && (st.Net == nil || st.Net.NumLayers() != layers || st.Rounds != 1 || len(st.RoundList) != 1) {
		return fieldErrorf("LayerwiseSettings", "Resume", "is not a state of a layer-wise run of this network")
	}
	return nil
}

func (s *LayerwiseSettings) withDefaults(layers int) (*layerwiseSettings, error) {
	if err := s.Validate(layers); err != nil {
		return nil, err
	}
	var set layerwiseSettings
	if s != nil {
		set.LayerwiseSettings = *s
	}
	if set.LayerSparsity != nil {
		set.sparsity = append([]float64(nil), set.LayerSparsity...)
	} else {
		set.sparsity = make([]float64, layers)
		for l := range set.sparsity {
			set.sparsity[l] = set.Sparsity
		}
	}
	if set.Damping == 0 {
		set.Damping = DefaultLayerwiseDamping
	}
	if set.BlockSize == 0 {
		set.BlockSize = sparseGPTBlock
	}
	set.workers = set.Workers
	if set.workers == 0 {
		set.workers = runtime.GOMAXPROCS(0)
	}
	return &set, nil
}

// layerMethod returns the method s uses on a layer of rows×d entries.
func (s *LayerwiseSettings) layerMethod(rows, d int) LayerwiseMethod {
	var m LayerwiseMethod
	if s != nil {
		m = s.Method
	}
	if m != LayerwiseAuto {
		return m
	}
	if float64(rows)*math.Pow(float64(d), 3) <= obcMaxWork {
		return LayerwiseOBC
	}
	return LayerwiseSparseGPT
}

// LayerwiseMemory returns the bytes of the dense matrices Layerwise holds at
// once with s and workers goroutines (0: GOMAXPROCS) on its largest layer,
// and that layer; 0 and −1 when no layer needs any (magnitude and OBD).
func LayerwiseMemory(net *nn.Network, s *LayerwiseSettings, workers int) (bytes int64, layer int) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	layer = -1
	for l, ly := range net.Layers() {
		d := ly.In + 1
		switch s.layerMethod(ly.Out, d) {
		case LayerwiseMagnitude, LayerwiseOBD:
			continue
		}
		if b := layerDenseBytes(d, workers); b > bytes {
			bytes, layer = b, l
		}
	}
	return bytes, layer
}

// layerDenseBytes returns the bytes of the dense matrices of the OBS
// methods on a layer of d columns with the given workers.
func layerDenseBytes(d, workers int) int64 {
	b := hessian.DenseBytes(d)
	if b > math.MaxInt64/int64(3+workers) {
		return math.MaxInt64
	}
	return int64(3+workers) * b
}

// layerProblem is the pruning problem of one layer.
type layerProblem struct {
	l          int
	rows, d    int       // Out and In+1
	w          []float64 // rows×d: row j is (W[j], b[j]), updated in place
	live, cand []bool    // rows×d: live entries, and the live prunable ones
	k          []int     // removals per row besides the entries pruned already
	h          []float64 // d×d, H_l, both triangles; nil for magnitude and OBD
	hd         []float64 // the diagonal of H_l; nil for magnitude
	lambda     float64
}

// pruneLayer prunes layer l of net in place, given its inputs, and updates
// mask and the parameters of net (pruned entries are set to zero).
func (s *layerwiseSettings) pruneLayer(ctx context.Context, net *nn.Network, mask []bool, l int, in *mat.Dense) (LayerwiseLayer, error) {
	ly := net.Layer(l)
	rows, d := ly.Out, ly.In+1
	lr := LayerwiseLayer{Layer: l, Sparsity: s.sparsity[l]}
	lr.WeightsBefore, lr.BiasesBefore = net.LayerLive(l)
	method := s.layerMethod(rows, d)
	lr.Method = method
	obs := method == LayerwiseOBC || method == LayerwiseSparseGPT
	if obs && s.MaxBytes >= 0 {
		limit := s.MaxBytes
		if limit == 0 {
			limit = hessian.DefaultMemoryLimit()
		}
		if b := layerDenseBytes(d, s.workers); b > limit {
			return lr, &hessian.MemoryError{What: fmt.Sprintf("layer-wise %v: the layer Hessian, its inverse and a copy per worker (%d workers)", method, s.workers),
				Dim: d, Bytes: b, Limit: limit,
				Alternatives: "use LayerwiseMagnitude or LayerwiseOBD, which hold no layer Hessian, fewer Workers, or raise MaxBytes"}
		}
	}
	if err := checkFiniteInputs(in); err != nil {
		return lr, err
	}
	p := &layerProblem{l: l, rows: rows, d: d}
	p.w = make([]float64, rows*d)
	p.live = make([]bool, rows*d)
	p.cand = make([]bool, rows*d)
	W := net.Weights(l).RawMatrix()
	b := net.Bias(l)
	pre := make([]int, rows)
	for j := 0; j < rows; j++ {
		copy(p.w[j*d:j*d+ly.In], W.Data[j*W.Stride:j*W.Stride+ly.In])
		p.w[j*d+ly.In] = b[j]
		for i := 0; i < d; i++ {
			q := net.BiasIndex(l, j)
			if i < ly.In {
				q = net.WeightIndex(l, j, i)
			}
			p.live[j*d+i] = mask[q]
			prunable := i < ly.In || s.PruneBiases
			p.cand[j*d+i] = mask[q] && prunable
			if !mask[q] && prunable {
				pre[j]++
			}
		}
	}
	w0 := append([]float64(nil), p.w...)

	var err error
	switch {
	case obs:
		if p.h, err = layerHessian(ctx, in, d); err != nil {
			return lr, err
		}
		p.hd = make([]float64, d)
		for i := range p.hd {
			p.hd[i] = p.h[i*d+i]
		}
	case method == LayerwiseOBD:
		p.hd = layerHessianDiag(in, d)
	}
	if p.hd != nil {
		var tr float64
		for _, v := range p.hd {
			tr += v
		}
		if math.IsInf(tr, 0) || math.IsNaN(tr) {
			return lr, errors.New("the layer Hessian Σₙ z̃ₙz̃ₙᵀ overflows: the layer's inputs are too large")
		}
		p.lambda = s.Damping * tr / float64(d)
		if math.IsInf(p.lambda, 0) {
			return lr, fmt.Errorf("the damping λ = ρ·mean(diag H_l) overflows with ρ = %g and mean(diag H_l) = %g; lower the damping", s.Damping, tr/float64(d))
		}
	}
	lr.Lambda = p.lambda

	// The damped inverse, for the OBS methods.
	var hinv *mat.SymDense
	if obs {
		hinv = mat.NewSymDense(d, nil)
		err := hessian.DampedInverse(hinv, mat.NewSymDense(d, p.h), p.lambda)
		var cond mat.Condition
		if err != nil && !errors.As(err, &cond) {
			return lr, fmt.Errorf("damped layer Hessian (λ = %g): %w", p.lambda, err)
		}
		if err := ctx.Err(); err != nil {
			return lr, err
		}
	}

	// The removals per row.
	prunable := ly.In
	if s.PruneBiases {
		prunable++
	}
	T := int(math.Floor(s.sparsity[l]*float64(rows*prunable) + 0.5))
	p.k = make([]int, rows)
	if !s.PerLayer {
		for j := range p.k {
			t := (j+1)*T/rows - j*T/rows
			p.k[j] = max(0, t-pre[j])
		}
	} else {
		var hd []float64
		if hinv != nil {
			hd = symDiag(hinv)
		}
		p.allocate(method, T, pre, hd)
	}
	for j := range p.k {
		c := 0
		for _, v := range p.cand[j*d : (j+1)*d] {
			if v {
				c++
			}
		}
		p.k[j] = min(p.k[j], c)
	}

	switch method {
	case LayerwiseOBC:
		lr.Predicted, err = s.obc(ctx, p, hinv)
	case LayerwiseSparseGPT:
		lr.Predicted, err = s.sparseGPT(ctx, p, hinv)
	default:
		lr.Predicted = p.selectRows(method)
		if s.Progress != nil {
			s.Progress(l, rows, rows)
		}
	}
	if err != nil {
		return lr, err
	}

	for e, v := range p.w {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return lr, fmt.Errorf("the update of row %d overflows (entry %d is %v); raise the damping", e/d, e%d, v)
		}
	}

	// Write back, and measure the reconstruction error.
	for j := 0; j < rows; j++ {
		for i := 0; i < d; i++ {
			q := net.BiasIndex(l, j)
			if i < ly.In {
				q = net.WeightIndex(l, j, i)
			}
			if !p.live[j*d+i] {
				mask[q] = false
				p.w[j*d+i] = 0
			}
		}
		copy(W.Data[j*W.Stride:j*W.Stride+ly.In], p.w[j*d:j*d+ly.In])
		b[j] = p.w[j*d+ly.In]
	}
	dw := w0
	floats.SubTo(dw, p.w, w0)
	if obs {
		lr.Actual = quadSum(dw, p.h, rows, d)
	} else if lr.Actual, err = directError(ctx, in, dw, rows, d); err != nil {
		return lr, err
	}
	lr.DampingTerm = p.lambda * floats.Dot(dw, dw)
	for e, v := range p.live {
		switch {
		case v && e%d < ly.In:
			lr.WeightsAfter++
		case v:
			lr.BiasesAfter++
		}
	}
	return lr, nil
}

// sampleBlock is the number of samples of the blocks over which the
// layer-wise passes over the calibration inputs check the context.
const sampleBlock = 1024

// layerHessian returns H = Σₙ z̃ₙz̃ₙᵀ, d×d with both triangles, for the rows
// z of in extended by 1. It sums over blocks of sampleBlock samples in
// order and checks ctx between them.
func layerHessian(ctx context.Context, in *mat.Dense, d int) ([]float64, error) {
	n, c := in.Dims()
	h := make([]float64, d*d)
	Z := in.RawMatrix()
	for r0 := 0; r0 < n; r0 += sampleBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r1 := min(r0+sampleBlock, n)
		Zb := blas64.General{Rows: r1 - r0, Cols: c, Stride: Z.Stride, Data: Z.Data[r0*Z.Stride:]}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, Zb, Zb, 1, blas64.General{Rows: c, Cols: c, Stride: d, Data: h})
	}
	sum := h[c*d : c*d+c] // row c is the bias row
	for r := 0; r < n; r++ {
		floats.Add(sum, Z.Data[r*Z.Stride:r*Z.Stride+c])
	}
	for i := 0; i < c; i++ {
		h[i*d+c] = sum[i]
	}
	h[c*d+c] = float64(n)
	return h, nil
}

// layerHessianDiag returns the diagonal of H = Σₙ z̃ₙz̃ₙᵀ for the rows z of
// in extended by 1.
func layerHessianDiag(in *mat.Dense, d int) []float64 {
	n, c := in.Dims()
	hd := make([]float64, d)
	Z := in.RawMatrix()
	for r := 0; r < n; r++ {
		for i, v := range Z.Data[r*Z.Stride : r*Z.Stride+c] {
			hd[i] += v * v
		}
	}
	hd[c] = float64(n)
	return hd
}

// checkFiniteInputs returns an error naming the first input of a layer
// that is not finite.
func checkFiniteInputs(in *mat.Dense) error {
	n, c := in.Dims()
	Z := in.RawMatrix()
	for r := 0; r < n; r++ {
		for i, v := range Z.Data[r*Z.Stride : r*Z.Stride+c] {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return fmt.Errorf("input %d of calibration sample %d is %v (the earlier layers overflow)", i, r, v)
			}
		}
	}
	return nil
}

// directError returns ‖Z̃ δWᵀ‖² = Σ_j δw_jᵀ H_l δw_j for the rows×d changes
// dw and the layer inputs in, by blocks of samples, without H_l.
func directError(ctx context.Context, in *mat.Dense, dw []float64, rows, d int) (float64, error) {
	n, c := in.Dims()
	Z := in.RawMatrix()
	dW := blas64.General{Rows: rows, Cols: c, Stride: d, Data: dw}
	t := make([]float64, min(sampleBlock, n)*rows)
	var sum float64
	for r0 := 0; r0 < n; r0 += sampleBlock {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		r1 := min(r0+sampleBlock, n)
		T := blas64.General{Rows: r1 - r0, Cols: rows, Stride: rows, Data: t}
		blas64.Gemm(blas.NoTrans, blas.Trans, 1,
			blas64.General{Rows: r1 - r0, Cols: c, Stride: Z.Stride, Data: Z.Data[r0*Z.Stride:]}, dW, 0, T)
		for r := 0; r < r1-r0; r++ {
			for j, v := range t[r*rows : (r+1)*rows] {
				v += dw[j*d+c]
				sum += v * v
			}
		}
	}
	return sum, nil
}

// quadSum returns Σ_j δw_jᵀ H δw_j over the rows of dw (rows×d).
func quadSum(dw, h []float64, rows, d int) float64 {
	t := make([]float64, rows*d)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: rows, Cols: d, Stride: d, Data: dw},
		blas64.General{Rows: d, Cols: d, Stride: d, Data: h},
		0, blas64.General{Rows: rows, Cols: d, Stride: d, Data: t})
	return floats.Dot(t, dw)
}

// symDiag returns the diagonal of a.
func symDiag(a *mat.SymDense) []float64 {
	n := a.SymmetricDim()
	d := make([]float64, n)
	for i := range d {
		d[i] = a.At(i, i)
	}
	return d
}

// score returns the saliency the method ranks entry i of a row by, with
// weight w, H_ii = hii and [H⁻¹]_ii = hinvii, or a monotone function of it
// that does not overflow for finite w: |w|·√H_ii for OBD and |w|/√[H⁻¹]_ii
// for the OBS methods, whose squares are the saliencies.
func score(method LayerwiseMethod, w, hii, hinvii float64) float64 {
	switch method {
	case LayerwiseMagnitude:
		return math.Abs(w)
	case LayerwiseOBD:
		return math.Abs(w) * math.Sqrt(hii)
	}
	return math.Abs(w) / math.Sqrt(hinvii)
}

// allocate sets the removals per row for a layer-wide allocation: T
// parameters pruned in all, the entries pruned already counted.
func (p *layerProblem) allocate(method LayerwiseMethod, T int, pre []int, hinvDiag []float64) {
	type entry struct {
		s   float64
		idx int
	}
	var all []entry
	d := p.d
	for e, c := range p.cand {
		if !c {
			continue
		}
		i := e % d
		var hii, hinvii float64
		if p.hd != nil {
			hii = p.hd[i]
		}
		if hinvDiag != nil {
			hinvii = hinvDiag[i]
		}
		all = append(all, entry{score(method, p.w[e], hii, hinvii), e})
	}
	extra := T
	for _, v := range pre {
		extra -= v
	}
	extra = min(max(extra, 0), len(all))
	slices.SortFunc(all, func(a, b entry) int {
		if c := cmp.Compare(a.s, b.s); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	for _, e := range all[:extra] {
		p.k[e.idx/d]++
	}
}

// selectRows removes, in every row, the k entries of smallest saliency by
// magnitude or OBD, and returns the sum of the OBD saliencies (NaN for
// magnitude).
func (p *layerProblem) selectRows(method LayerwiseMethod) float64 {
	d := p.d
	type entry struct {
		s float64
		i int
	}
	buf := make([]entry, 0, d)
	var pred float64
	for j := 0; j < p.rows; j++ {
		buf = buf[:0]
		for i := 0; i < d; i++ {
			if p.cand[j*d+i] {
				var hii float64
				if p.hd != nil {
					hii = p.hd[i]
				}
				buf = append(buf, entry{score(method, p.w[j*d+i], hii, 0), i})
			}
		}
		slices.SortFunc(buf, func(a, b entry) int {
			if c := cmp.Compare(a.s, b.s); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		for _, e := range buf[:p.k[j]] {
			if method == LayerwiseOBD {
				v := p.w[j*d+e.i]
				pred += v * v * p.hd[e.i]
			}
			p.live[j*d+e.i] = false
			p.cand[j*d+e.i] = false
			p.w[j*d+e.i] = 0
		}
	}
	if method == LayerwiseMagnitude {
		return math.NaN()
	}
	return pred
}

// forRows runs fn over the tasks 0…n−1 on the workers and reports
// progress in rows, task t covering taskRows(t) of the layer's rows. Each
// worker gets its own state from newState. fn returns the predicted error
// of its task. The result is the sum of the task results in task order, so
// that it does not depend on the number of workers; the error is that of
// the lowest failing task.
func forRows[S any](ctx context.Context, s *layerwiseSettings, l, rows, n int, taskRows func(t int) int,
	newState func() S, fn func(state S, t int) (float64, error)) (float64, error) {
	done := 0
	res, err := parallel.Run(ctx, n, s.workers, newState, fn, func(t int) {
		done += taskRows(t)
		if s.Progress != nil {
			s.Progress(l, done, rows)
		}
	})
	if err != nil {
		return 0, err
	}
	return parallel.Sum(res), nil
}

// obcWork is the state of one OBC worker.
type obcWork struct {
	m    []float64 // the row's H⁻¹, upper triangle, over the entries kept in it
	c    []float64 // a column of m
	w    []float64 // the entries kept in m
	idx  []int     // their columns
	cand []bool    // whether they can be removed
	act  []bool    // whether they remain
	keep []int     // positions kept by a compaction
}

// obc prunes the rows of p by greedy OBS with downdates.
func (s *layerwiseSettings) obc(ctx context.Context, p *layerProblem, hinv *mat.SymDense) (float64, error) {
	d := p.d
	H := hinv.RawSymmetric()
	return forRows(ctx, s, p.l, p.rows, p.rows, func(int) int { return 1 },
		func() *obcWork {
			return &obcWork{m: make([]float64, d*d), c: make([]float64, d), w: make([]float64, d),
				idx: make([]int, d), cand: make([]bool, d), act: make([]bool, d), keep: make([]int, 0, d)}
		},
		func(wk *obcWork, j int) (float64, error) {
			pred, err := obcRow(ctx, wk, H, p.w[j*d:(j+1)*d], p.live[j*d:(j+1)*d], p.cand[j*d:(j+1)*d], p.k[j])
			if err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return 0, err
				}
				return 0, fmt.Errorf("row %d: %w", j, err)
			}
			return pred, nil
		})
}

// obcRow removes from the row w first the entries that are not live and
// then, one at a time, the k removable entries of smallest w_q²/[H⁻¹]_qq,
// each with the OBS update of the remaining entries and the downdate of
// H⁻¹. It updates w, live and cand, and returns the sum of the saliencies.
// It checks ctx between removals and leaves w, live and cand unchanged
// when it is done.
//
// The matrix is downdated in place, a removed entry's row and column
// becoming zero, and compacted to the remaining entries whenever an eighth
// of those it holds are gone, so that a removal costs about m²/2
// multiply-adds over the m entries left.
func obcRow(ctx context.Context, wk *obcWork, H blas64.Symmetric, w []float64, live, cand []bool, k int) (float64, error) {
	d := len(w)
	if k == 0 {
		// Entries pruned already are zero and move nothing.
		return 0, nil
	}
	M := wk.m
	for i := 0; i < d; i++ {
		copy(M[i*d+i:i*d+d], H.Data[i*H.Stride+i:i*H.Stride+d])
	}
	copy(wk.w, w)
	for i := range wk.idx {
		wk.idx[i] = i
		wk.act[i] = true
	}
	copy(wk.cand, cand)
	m, left := d, d // the size of M and the entries that remain in it

	// compact drops the removed entries from M.
	compact := func() {
		keep := wk.keep[:0]
		for i := 0; i < m; i++ {
			if wk.act[i] {
				keep = append(keep, i)
			}
		}
		n := len(keep)
		// Row a of the result starts at or before row keep[a] of the
		// source and the entries are moved in increasing order, so no
		// entry is overwritten before it is read.
		for a, i := range keep {
			src := M[i*m : (i+1)*m]
			dst := M[a*n : (a+1)*n]
			for b := a; b < n; b++ {
				dst[b] = src[keep[b]]
			}
			wk.w[a] = wk.w[i]
			wk.idx[a] = wk.idx[i]
			wk.cand[a] = wk.cand[i]
			wk.act[a] = true
		}
		m = n
	}
	// remove removes position p of M; with update, it also applies the OBS
	// update of the remaining entries.
	remove := func(p int, update bool) error {
		piv := M[p*m+p]
		if !(piv > 0) || math.IsInf(piv, 1) {
			return &hessian.PivotError{Index: wk.idx[p], Pivot: piv}
		}
		c := wk.c[:m]
		for i := 0; i < p; i++ {
			c[i] = M[i*m+p]
		}
		copy(c[p:], M[p*m+p:p*m+m])
		if update && wk.w[p] != 0 {
			floats.AddScaled(wk.w[:m], -wk.w[p]/piv, c)
		}
		for i := 0; i < m; i++ {
			if wk.act[i] && i != p && c[i] != 0 {
				floats.AddScaled(M[i*m+i:i*m+m], -c[i]/piv, c[i:m])
			}
		}
		for i := 0; i < p; i++ {
			M[i*m+p] = 0
		}
		clear(M[p*m+p : p*m+m])
		wk.w[p] = 0
		wk.act[p] = false
		wk.cand[p] = false
		left--
		if 8*left < 7*m {
			compact()
		}
		return nil
	}
	for p := m - 1; p >= 0; p-- {
		if !live[wk.idx[p]] {
			if err := remove(p, false); err != nil {
				return 0, err
			}
		}
	}
	var pred float64
	cols := make([]int, 0, k)
	for ; k > 0; k-- {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		// Rank by |w_p|/√piv, whose square is the saliency, so that
		// weights up to the largest float64 compare without overflow.
		best, bs := -1, 0.0
		for p := 0; p < m; p++ {
			if !wk.cand[p] {
				continue
			}
			piv := M[p*m+p]
			if !(piv > 0) || math.IsInf(piv, 1) {
				return 0, &hessian.PivotError{Index: wk.idx[p], Pivot: piv}
			}
			sc := math.Abs(wk.w[p]) / math.Sqrt(piv)
			if math.IsNaN(sc) {
				return 0, fmt.Errorf("entry %d: saliency is NaN (weight %v, pivot %v)", wk.idx[p], wk.w[p], piv)
			}
			if best < 0 || sc < bs {
				best, bs = p, sc
			}
		}
		if best < 0 {
			break // no candidate is left
		}
		cols = append(cols, wk.idx[best])
		if err := remove(best, true); err != nil {
			return 0, err
		}
		pred += bs * bs
	}
	for _, col := range cols {
		live[col] = false
		cand[col] = false
	}
	clear(w)
	for p := 0; p < m; p++ {
		if wk.act[p] {
			w[wk.idx[p]] = wk.w[p]
		}
	}
	return pred, nil
}

// sparseGPTWork is the state of one SparseGPT worker.
type sparseGPTWork struct {
	e      []float64 // batch×block: the scaled errors of the block
	prune  []bool    // batch×block: the entries removed in the block
	scores []scored
}

type scored struct {
	s float64
	i int
}

// sparseGPT prunes the rows of p by SparseGPT.
func (s *layerwiseSettings) sparseGPT(ctx context.Context, p *layerProblem, hinv *mat.SymDense) (float64, error) {
	d := p.d
	// H⁻¹ = UᵀU.
	u := mat.NewSymDense(d, nil)
	u.CopySym(hinv)
	U, ok := lapack64.Potrf(u.RawSymmetric())
	if !ok {
		return 0, fmt.Errorf("Cholesky factorization of H⁻¹ failed (λ = %g); raise the damping", p.lambda)
	}
	u2 := make([]float64, d)
	for i := range u2 {
		v := U.Data[i*U.Stride+i]
		u2[i] = v * v
	}
	B := min(s.BlockSize, d)
	batches := parallel.Split(p.rows, sparseGPTBatch)
	return forRows(ctx, s, p.l, p.rows, len(batches),
		func(t int) int { return batches[t].Len() },
		func() *sparseGPTWork {
			return &sparseGPTWork{e: make([]float64, sparseGPTBatch*B), prune: make([]bool, sparseGPTBatch*B),
				scores: make([]scored, 0, d)}
		},
		func(wk *sparseGPTWork, t int) (float64, error) {
			return sparseGPTRows(ctx, wk, p, U, u2, B, batches[t].Lo, batches[t].Hi)
		})
}

// sparseGPTRows prunes rows r0…r1−1 of p with the Cholesky factor U of H⁻¹
// and blocks of B columns, and returns the sum of the saliencies. It checks
// ctx between blocks; the rows are then left part-way, and the caller
// discards them.
func sparseGPTRows(ctx context.Context, wk *sparseGPTWork, p *layerProblem, U blas64.Triangular, u2 []float64, B, r0, r1 int) (float64, error) {
	d := p.d
	nr := r1 - r0
	rem := make([]int, nr)
	copy(rem, p.k[r0:r1])
	var pred float64
	for i1 := 0; i1 < d; i1 += B {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		i2 := min(i1+B, d)
		bw := i2 - i1
		// Choose the removals of the block.
		for r := 0; r < nr; r++ {
			j := r0 + r
			w := p.w[j*d : (j+1)*d]
			live := p.live[j*d : (j+1)*d]
			cand := p.cand[j*d : (j+1)*d]
			pr := wk.prune[r*B : r*B+bw]
			for i := i1; i < i2; i++ {
				pr[i-i1] = !live[i]
			}
			if rem[r] == 0 {
				continue
			}
			sc := wk.scores[:0]
			for i := i1; i < d; i++ {
				if cand[i] {
					sc = append(sc, scored{math.Abs(w[i]) / math.Sqrt(u2[i]), i})
				}
			}
			if rem[r] < len(sc) {
				slices.SortFunc(sc, func(a, b scored) int {
					if c := cmp.Compare(a.s, b.s); c != 0 {
						return c
					}
					return cmp.Compare(a.i, b.i)
				})
				sc = sc[:rem[r]]
			}
			for _, e := range sc {
				if e.i < i2 {
					pr[e.i-i1] = true
					rem[r]--
					live[e.i] = false
					cand[e.i] = false
				}
			}
			wk.scores = sc[:0]
		}
		// Remove them column by column within the block.
		for r := 0; r < nr; r++ {
			j := r0 + r
			w := p.w[j*d : (j+1)*d]
			e := wk.e[r*B : r*B+bw]
			pr := wk.prune[r*B : r*B+bw]
			for i := i1; i < i2; i++ {
				e[i-i1] = 0
				if !pr[i-i1] || w[i] == 0 {
					continue
				}
				uii := U.Data[i*U.Stride+i]
				err := w[i] / uii
				pred += err * err
				e[i-i1] = err
				floats.AddScaled(w[i+1:i2], -err, U.Data[i*U.Stride+i+1:i*U.Stride+i2])
				w[i] = 0
			}
		}
		// Update the later columns: W[:, i2:] −= E U[i1:i2, i2:].
		if i2 < d {
			blas64.Gemm(blas.NoTrans, blas.NoTrans, -1,
				blas64.General{Rows: nr, Cols: bw, Stride: B, Data: wk.e},
				blas64.General{Rows: bw, Cols: d - i2, Stride: U.Stride, Data: U.Data[i1*U.Stride+i2:]},
				1, blas64.General{Rows: nr, Cols: d - i2, Stride: d, Data: p.w[r0*d+i2:]})
		}
	}
	return pred, nil
}

// layerOutput returns f(in·Wᵀ + b) for a layer ly whose parameters are
// theta (W row-major, then b), by blocks of samples, checking ctx between
// them. The activation must be element-wise.
func layerOutput(ctx context.Context, ly nn.Layer, theta []float64, in *mat.Dense) (*mat.Dense, error) {
	n, _ := in.Dims()
	out := mat.NewDense(n, ly.Out, nil)
	W := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: theta[:ly.Out*ly.In]}
	I, O := in.RawMatrix(), out.RawMatrix()
	b := theta[ly.Out*ly.In:]
	for r0 := 0; r0 < n; r0 += sampleBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r1 := min(r0+sampleBlock, n)
		blas64.Gemm(blas.NoTrans, blas.Trans, 1,
			blas64.General{Rows: r1 - r0, Cols: ly.In, Stride: I.Stride, Data: I.Data[r0*I.Stride:]}, W, 0,
			blas64.General{Rows: r1 - r0, Cols: ly.Out, Stride: O.Stride, Data: O.Data[r0*O.Stride:]})
		for r := r0; r < r1; r++ {
			row := O.Data[r*O.Stride : r*O.Stride+ly.Out]
			for j, a := range row {
				row[j] = ly.Act.Eval(a + b[j])
			}
		}
	}
	return out, nil
}
