package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// LayerwiseMethod selects how Layerwise removes the weights of a layer.
type LayerwiseMethod int

// The methods of Layerwise.
const (
	// LayerwiseAuto uses LayerwiseOBC for a layer with Out·(In+1)³ at most
	// OBCMaxWork and LayerwiseSparseGPT otherwise.
	LayerwiseAuto LayerwiseMethod = iota

	// LayerwiseOBC is exact greedy Optimal Brain Surgeon per row on the
	// layer Hessian (Optimal Brain Compression): one removal at a time,
	// each followed by the update of the row's remaining weights and a
	// rank-one downdate of the row's copy of H⁻¹.
	LayerwiseOBC

	// LayerwiseSparseGPT processes the columns in a fixed order with the
	// Cholesky factor of H⁻¹, choosing the removed weights adaptively per
	// block of columns (SparseGPT).
	LayerwiseSparseGPT

	// LayerwiseMagnitude removes the weights of smallest |w| and moves no
	// other weight.
	LayerwiseMagnitude

	// LayerwiseOBD removes the weights of smallest w_q² [H_l]_qq, Optimal
	// Brain Damage on the layer's reconstruction error, and moves no other
	// weight.
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

// ParseLayerwiseMethod returns the method with the given name (see String).
func ParseLayerwiseMethod(s string) (LayerwiseMethod, error) {
	for i, name := range layerwiseMethodNames {
		if name == s {
			return LayerwiseMethod(i), nil
		}
	}
	return 0, fmt.Errorf("unknown layer-wise method %q (want auto, obc, sparsegpt, magnitude or obd)", s)
}

// Defaults of LayerwiseSettings, and the threshold of LayerwiseAuto.
const (
	// DefaultLayerwiseDamping is the default relative damping: the layer
	// Hessian is damped by λ = DefaultLayerwiseDamping · mean(diag H_l),
	// as in Optimal Brain Compression and SparseGPT.
	DefaultLayerwiseDamping = 0.01

	// DefaultSparseGPTBlock is the default number of columns per block of
	// LayerwiseSparseGPT.
	DefaultSparseGPTBlock = 128

	// OBCMaxWork is the largest Out·(In+1)³ for which LayerwiseAuto uses
	// LayerwiseOBC. Removing k weights from a row of d = In+1 entries by
	// OBC costs about (d³ − (d−k)³)/3 flops, at most d³/3, while
	// SparseGPT costs about 4d³/3 + 2·Out·d² flops per layer whatever the
	// sparsity, and is less accurate. The bound admits layers up to about
	// 7·10¹⁰ flops of OBC, such as the 785-column first layer of an MNIST
	// 784-300-100-10 network: about 7 s of CPU time with the pure-Go BLAS,
	// shared by the workers.
	OBCMaxWork = 2e11

	// sparseGPTBatch is the number of rows a worker of SparseGPT processes
	// together. It is fixed, so that results do not depend on Workers.
	sparseGPTBatch = 32
)

// LayerwiseSettings holds the settings of Layerwise. A nil
// *LayerwiseSettings, and any zero field, selects the documented default.
type LayerwiseSettings struct {
	// Sparsity is the fraction of each layer's prunable parameters that
	// are pruned in the result, in [0, 1]. The prunable parameters are
	// the weights, and the biases too when PruneBiases is set. The
	// default is 0: nothing is removed.
	Sparsity float64

	// LayerSparsity, when not nil, holds one sparsity per layer and
	// replaces Sparsity.
	LayerSparsity []float64

	// Method is the removal method, default LayerwiseAuto.
	Method LayerwiseMethod

	// Damping is the relative damping ρ of the layer Hessian: the methods
	// use H_l + λI with λ = ρ · mean(diag H_l). The default is
	// DefaultLayerwiseDamping. Inputs that are zero on every sample, such
	// as the border pixels of MNIST, make H_l singular without damping.
	Damping float64

	// PruneBiases makes the biases prunable. By default they are kept;
	// they are updated by the compensation of OBC and SparseGPT either way.
	PruneBiases bool

	// PerLayer allocates the removals of a layer across its rows by
	// ranking the method's saliencies over the whole layer. By default
	// every row of a layer gets the same share of the layer's removals (to
	// within one). See Layerwise.
	PerLayer bool

	// DenseInputs computes the inputs of every layer with the dense
	// (unpruned) earlier layers. By default the inputs of layer l are
	// those of the network whose layers 0…l−1 have already been pruned.
	DenseInputs bool

	// BlockSize is the number of columns per block of LayerwiseSparseGPT,
	// default DefaultSparseGPTBlock.
	BlockSize int

	// Workers is the number of goroutines over rows; zero means
	// GOMAXPROCS. The result does not depend on it.
	Workers int

	// Progress, when not nil, is called as the rows of layer layer are
	// done, with done of total rows finished. Calls are serialised and
	// done increases within a layer.
	Progress func(layer, done, total int)
}

// LayerwiseReport describes a run of Layerwise.
type LayerwiseReport struct {
	// Layers holds one entry per layer, in order.
	Layers []LayerwiseLayer

	// Time is the wall time of the whole run.
	Time time.Duration
}

// LayerwiseLayer describes the pruning of one layer by Layerwise.
//
// The reconstruction errors are in the units of
//
//	ε = Σ_j ‖(w_j − w_j⁰) Z̃ᵀ‖² = Σ_j δw_jᵀ H_l δw_j,
//
// summed over the rows j of the layer, with w_j = (W_l[j], b_l[j]) and Z̃
// the layer's inputs extended by 1.
type LayerwiseLayer struct {
	Layer  int
	Method LayerwiseMethod // the method used, never LayerwiseAuto

	// Sparsity is the target sparsity of the layer.
	Sparsity float64

	// WeightsBefore, WeightsAfter, BiasesBefore and BiasesAfter count the
	// live weights and biases of the layer before and after.
	WeightsBefore, WeightsAfter int
	BiasesBefore, BiasesAfter   int

	// Lambda is the damping λ added to the diagonal of H_l.
	Lambda float64

	// Predicted is the sum of the saliencies of the removed parameters:
	// Σ w_q²/[H⁻¹]_qq over the successive removals for OBC and SparseGPT,
	// Σ w_q² [H_l]_qq for OBD, and NaN for magnitude pruning. For OBC and
	// SparseGPT it equals the damped error Actual + DampingTerm, up to
	// rounding, since each removal is exact on the damped quadratic.
	Predicted float64

	// Actual is the reconstruction error ε on the calibration inputs.
	Actual float64

	// DampingTerm is λ Σ_j ‖w_j − w_j⁰‖².
	DampingTerm float64

	// Time is the wall time spent on the layer.
	Time time.Duration
}

// Layerwise prunes the network layer by layer on the calibration inputs X
// (one sample per row) and returns a new pruned network, with its mask set
// and the remaining weights updated, and a report. The network net is not
// modified.
//
// For layer l with inputs z (the outputs of layer l−1 on X, or X for the
// first layer) extended by a constant 1 for the bias, z̃ = (z, 1), every
// row j of (W_l, b_l) is pruned to minimise the reconstruction error
//
//	ε_j = ‖(w_j − w_j⁰) Z̃ᵀ‖² = δw_jᵀ H_l δw_j,    H_l = Σₙ z̃ₙ z̃ₙᵀ,
//
// where the rows of Z̃ are the extended inputs of the N samples and w_j⁰ the
// row before pruning. The Hessian H_l of size (In+1)×(In+1) is shared by
// the rows of the layer. The Hessian of the squared error ½ε_j is H_l too
// and the objective of Optimal Brain Compression uses 2H_l; such constant
// factors scale every saliency alike and leave the choices and updates
// unchanged. The methods use the damped H = H_l + λI, with λ set by
// Damping.
//
// The OBS saliency of removing entry q from the row, and the update of the
// row's remaining entries, are
//
//	ε_q = w_q² / [H⁻¹]_qq,    δw = −(w_q / [H⁻¹]_qq) H⁻¹ e_q,
//
// after which H⁻¹ is downdated to the inverse over the remaining entries,
//
//	H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq.
//
// For a linear layer trained with the squared error, the Hessian of E
// with respect to the layer's parameters is I_Out ⊗ H_l, block diagonal
// over the rows, so this is Optimal Brain Surgeon on E restricted to the
// layer.
//
// LayerwiseOBC removes the entry of smallest ε_q one at a time, with one
// Cholesky inverse of H per layer and a copy of it per worker, downdated
// and shrunk as entries go; a row of d = In+1 entries costs about
// (d³ − (d−k)³)/3 flops for k removals. LayerwiseSparseGPT visits the
// columns in order 0…d−1 (the bias last) using the upper Cholesky factor
// H⁻¹ = UᵀU: at column i, a removed entry costs ε = w_i²/U_ii² and moves the
// later entries of its row by −(w_i/U_ii) U[i, i+1:], and a kept entry is
// frozen. This is exact OBS on the remaining entries of the row, whose
// inverse Hessian's first row is U_ii U[i, i:]. The removed entries are
// chosen per block of BlockSize columns: at the start of a block each row
// assigns its remaining removals to its unvisited columns of smallest
// w_c²/U_cc², and those in the block are removed; the updates inside a
// block are rank-one and the update of the later columns one matrix
// product. The cost is about 4d³/3 + 2·Out·d² flops per layer.
// LayerwiseMagnitude and LayerwiseOBD remove the entries of smallest |w_q|
// and w_q² [H_l]_qq and change nothing else. LayerwiseAuto chooses OBC for
// a layer with Out·d³ ≤ OBCMaxWork and SparseGPT otherwise.
//
// Layer l keeps round(s_l · P_l) parameters pruned, or more when the input
// network has more pruned already, where s_l is its sparsity and P_l its
// number of prunable parameters. Parameters pruned in net stay pruned and
// are removed from every row's problem first; in SparseGPT a pruned entry
// that an earlier column has moved is set back to zero with its update
// when its column is reached. By default the removals are shared evenly
// among the rows, row j getting ⌊(j+1)T/Out⌋ − ⌊jT/Out⌋ of the layer's T
// (the per-row uniform sparsity of Optimal Brain Compression). With
// PerLayer the count of each row is its number of entries among the T
// lowest saliencies of the whole layer before pruning: |w|, w²[H_l]_qq and
// w²/[H⁻¹]_qq for magnitude, OBD and the OBS methods. For magnitude and
// OBD this is pruning by a threshold over the layer.
//
// The layers are pruned in order, and the inputs of layer l are computed
// by the network whose layers before l have already been pruned, so that
// each layer compensates for the errors of the earlier ones, as Optimal
// Brain Compression and SparseGPT do; the target of each row is then its
// dense output on those inputs. DenseInputs uses the dense network's
// inputs instead.
//
// Layerwise panics on invalid settings. It returns an error when X does not
// fit the network, when the context is done (checked per layer and per
// batch of rows), or on numerical failure: a damped H_l that is not
// positive definite, or a pivot that rounding has made non-positive in
// OBC. Raising Damping is the remedy for both. A damped H_l whose condition
// number exceeds hessian.MaxCondition is used as it is.
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
	start := time.Now()
	set := s.withDefaults(net.NumLayers())
	var rep LayerwiseReport
	if err := net.Check(X, nil); err != nil {
		return nil, rep, err
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
			denseIn = layerOutput(net.Layer(l), net.RawParams()[net.Offset(l):net.Offset(l+1)], denseIn)
			in = denseIn
		} else {
			// The pruned parameters are zero in theta already.
			in = layerOutput(out.Layer(l), theta[out.Offset(l):out.Offset(l+1)], in)
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

func (s *LayerwiseSettings) withDefaults(layers int) *layerwiseSettings {
	var set layerwiseSettings
	if s != nil {
		set.LayerwiseSettings = *s
	}
	if set.LayerSparsity != nil {
		if len(set.LayerSparsity) != layers {
			panic(fmt.Sprintf("prune: %d layer sparsities for %d layers", len(set.LayerSparsity), layers))
		}
		set.sparsity = append([]float64(nil), set.LayerSparsity...)
	} else {
		set.sparsity = make([]float64, layers)
		for l := range set.sparsity {
			set.sparsity[l] = set.Sparsity
		}
	}
	for l, v := range set.sparsity {
		if !(v >= 0 && v <= 1) {
			panic(fmt.Sprintf("prune: sparsity %v of layer %d is not in [0, 1]", v, l))
		}
	}
	if set.Method < LayerwiseAuto || set.Method > LayerwiseOBD {
		panic(fmt.Sprintf("prune: unknown layer-wise method %v", set.Method))
	}
	switch {
	case set.Damping == 0:
		set.Damping = DefaultLayerwiseDamping
	case !(set.Damping > 0) || math.IsInf(set.Damping, 1):
		panic(fmt.Sprintf("prune: damping %v is negative or not finite", set.Damping))
	}
	switch {
	case set.BlockSize == 0:
		set.BlockSize = DefaultSparseGPTBlock
	case set.BlockSize < 0:
		panic(fmt.Sprintf("prune: block size %d is negative", set.BlockSize))
	}
	set.workers = set.Workers
	switch {
	case set.workers == 0:
		set.workers = runtime.GOMAXPROCS(0)
	case set.workers < 0:
		panic(fmt.Sprintf("prune: %d workers", set.workers))
	}
	return &set
}

// layerProblem is the pruning problem of one layer.
type layerProblem struct {
	l          int
	rows, d    int       // Out and In+1
	w          []float64 // rows×d: row j is (W[j], b[j]), updated in place
	live, cand []bool    // rows×d: live entries, and the live prunable ones
	k          []int     // removals per row besides the entries pruned already
	h          []float64 // d×d, H_l, both triangles
	lambda     float64
}

// pruneLayer prunes layer l of net in place, given its inputs, and updates
// mask and the parameters of net (pruned entries are set to zero).
func (s *layerwiseSettings) pruneLayer(ctx context.Context, net *nn.Network, mask []bool, l int, in *mat.Dense) (LayerwiseLayer, error) {
	ly := net.Layer(l)
	rows, d := ly.Out, ly.In+1
	lr := LayerwiseLayer{Layer: l, Sparsity: s.sparsity[l]}
	lr.WeightsBefore, lr.BiasesBefore = net.LayerLive(l)
	if err := hessian.CheckMemory("layer Hessian", d, 0); err != nil {
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

	p.h = layerHessian(in, d)
	var tr float64
	for i := 0; i < d; i++ {
		tr += p.h[i*d+i]
	}
	p.lambda = s.Damping * tr / float64(d)
	lr.Lambda = p.lambda

	method := s.Method
	if method == LayerwiseAuto {
		if float64(rows)*math.Pow(float64(d), 3) <= OBCMaxWork {
			method = LayerwiseOBC
		} else {
			method = LayerwiseSparseGPT
		}
	}
	lr.Method = method

	// The damped inverse, for the OBS methods.
	var hinv *mat.SymDense
	if method == LayerwiseOBC || method == LayerwiseSparseGPT {
		hinv = mat.NewSymDense(d, nil)
		err := hessian.DampedInverse(hinv, mat.NewSymDense(d, p.h), p.lambda)
		var cond mat.Condition
		if err != nil && !errors.As(err, &cond) {
			return lr, fmt.Errorf("damped layer Hessian (λ = %g): %w", p.lambda, err)
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

	var err error
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
	lr.Actual = quadSum(dw, p.h, rows, d)
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

// layerHessian returns H = Σₙ z̃ₙz̃ₙᵀ, d×d with both triangles, for the rows
// z of in extended by 1.
func layerHessian(in *mat.Dense, d int) []float64 {
	n, c := in.Dims()
	h := make([]float64, d*d)
	Z := in.RawMatrix()
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, Z, Z, 0, blas64.General{Rows: c, Cols: c, Stride: d, Data: h})
	sum := h[c*d : c*d+c] // row c is the bias row
	for r := 0; r < n; r++ {
		floats.Add(sum, Z.Data[r*Z.Stride:r*Z.Stride+c])
	}
	for i := 0; i < c; i++ {
		h[i*d+c] = sum[i]
	}
	h[c*d+c] = float64(n)
	return h
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
// weight w, H_ii = hii and [H⁻¹]_ii = hinvii.
func score(method LayerwiseMethod, w, hii, hinvii float64) float64 {
	switch method {
	case LayerwiseMagnitude:
		return math.Abs(w)
	case LayerwiseOBD:
		return w * w * hii
	}
	return w * w / hinvii
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
		var hinvii float64
		if hinvDiag != nil {
			hinvii = hinvDiag[i]
		}
		all = append(all, entry{score(method, p.w[e], p.h[i*d+i], hinvii), e})
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
				buf = append(buf, entry{score(method, p.w[j*d+i], p.h[i*d+i], 0), i})
			}
		}
		slices.SortFunc(buf, func(a, b entry) int {
			if c := cmp.Compare(a.s, b.s); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		for _, e := range buf[:p.k[j]] {
			v := p.w[j*d+e.i]
			pred += v * v * p.h[e.i*d+e.i]
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

// forRows runs fn over the tasks 0…n−1 on the workers and reports progress
// in rows, task t covering rows rowsOf(t). Each worker gets its own state
// from newState. fn returns the predicted error of its task. The result is
// the sum of the task results in task order, so that it does not depend on
// the number of workers; the error is that of the lowest failing task.
func (s *layerwiseSettings) forRows(ctx context.Context, l, rows, n int, taskRows func(t int) int,
	newState func() any, fn func(state any, t int) (float64, error)) (float64, error) {
	res := make([]float64, n)
	errs := make([]error, n)
	var (
		mu   sync.Mutex
		done int
		next int
		wg   sync.WaitGroup
	)
	workers := min(s.workers, n)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := newState()
			for {
				mu.Lock()
				t := next
				next++
				mu.Unlock()
				if t >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[t] = err
					return
				}
				res[t], errs[t] = fn(state, t)
				if errs[t] != nil {
					return
				}
				mu.Lock()
				done += taskRows(t)
				if s.Progress != nil {
					s.Progress(l, done, rows)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var sum float64
	for t := range res {
		if errs[t] != nil {
			return 0, errs[t]
		}
		sum += res[t]
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return sum, nil
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
	return s.forRows(ctx, p.l, p.rows, p.rows, func(int) int { return 1 },
		func() any {
			return &obcWork{m: make([]float64, d*d), c: make([]float64, d), w: make([]float64, d),
				idx: make([]int, d), cand: make([]bool, d), act: make([]bool, d), keep: make([]int, 0, d)}
		},
		func(state any, j int) (float64, error) {
			pred, err := obcRow(state.(*obcWork), H, p.w[j*d:(j+1)*d], p.live[j*d:(j+1)*d], p.cand[j*d:(j+1)*d], p.k[j])
			if err != nil {
				return 0, fmt.Errorf("row %d: %w", j, err)
			}
			return pred, nil
		})
}

// obcRow removes from the row w first the entries that are not live and
// then, one at a time, the k removable entries of smallest w_q²/[H⁻¹]_qq,
// each with the OBS update of the remaining entries and the downdate of
// H⁻¹. It updates w, live and cand, and returns the sum of the saliencies.
//
// The matrix is downdated in place, a removed entry's row and column
// becoming zero, and compacted to the remaining entries whenever an eighth
// of those it holds are gone, so that a removal costs about m²/2
// multiply-adds over the m entries left.
func obcRow(wk *obcWork, H blas64.Symmetric, w []float64, live, cand []bool, k int) (float64, error) {
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
	for ; k > 0; k-- {
		best, bs := -1, math.Inf(1)
		for p := 0; p < m; p++ {
			if !wk.cand[p] {
				continue
			}
			piv := M[p*m+p]
			if !(piv > 0) || math.IsInf(piv, 1) {
				return 0, &hessian.PivotError{Index: wk.idx[p], Pivot: piv}
			}
			if sc := wk.w[p] * wk.w[p] / piv; sc < bs {
				best, bs = p, sc
			}
		}
		col := wk.idx[best]
		if err := remove(best, true); err != nil {
			return 0, err
		}
		pred += bs
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
	nb := (p.rows + sparseGPTBatch - 1) / sparseGPTBatch
	return s.forRows(ctx, p.l, p.rows, nb,
		func(t int) int { return min(sparseGPTBatch, p.rows-t*sparseGPTBatch) },
		func() any {
			return &sparseGPTWork{e: make([]float64, sparseGPTBatch*B), prune: make([]bool, sparseGPTBatch*B),
				scores: make([]scored, 0, d)}
		},
		func(state any, t int) (float64, error) {
			r0 := t * sparseGPTBatch
			r1 := min(r0+sparseGPTBatch, p.rows)
			return sparseGPTRows(state.(*sparseGPTWork), p, U, u2, B, r0, r1), nil
		})
}

// sparseGPTRows prunes rows r0…r1−1 of p with the Cholesky factor U of H⁻¹
// and blocks of B columns, and returns the sum of the saliencies.
func sparseGPTRows(wk *sparseGPTWork, p *layerProblem, U blas64.Triangular, u2 []float64, B, r0, r1 int) float64 {
	d := p.d
	nr := r1 - r0
	rem := make([]int, nr)
	copy(rem, p.k[r0:r1])
	var pred float64
	for i1 := 0; i1 < d; i1 += B {
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
					sc = append(sc, scored{w[i] * w[i] / u2[i], i})
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
	return pred
}

// layerOutput returns f(in·Wᵀ + b) for a layer ly whose parameters are
// theta (W row-major, then b). The activation must be element-wise.
func layerOutput(ly nn.Layer, theta []float64, in *mat.Dense) *mat.Dense {
	n, _ := in.Dims()
	out := mat.NewDense(n, ly.Out, nil)
	W := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: theta[:ly.Out*ly.In]}
	O := out.RawMatrix()
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, in.RawMatrix(), W, 0, O)
	b := theta[ly.Out*ly.In:]
	for r := 0; r < n; r++ {
		row := O.Data[r*O.Stride : r*O.Stride+ly.Out]
		for j, a := range row {
			row[j] = ly.Act.Eval(a + b[j])
		}
	}
	return out
}
