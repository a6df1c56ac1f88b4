package nn

import (
	_ "github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/parallel"

	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Trace holds the values of a forward pass over a batch: for each layer l,
// the pre-activations A[l] = Z[l−1]·W_lᵀ + b_l and the outputs Z[l] = f_l(A[l]),
// one row per sample. The input batch is X.
type Trace struct {
	X *mat.Dense
	A []*mat.Dense
	Z []*mat.Dense
}

// Check returns an error when X and Y do not fit the network: the number of
// rows, of input columns and of target columns, targets that are not finite,
// BCE targets outside [0,1], or CE targets that are not class indices in
// [0, outputs).
func (n *Network) Check(X, Y *mat.Dense) error {
	r, c := X.Dims()
	if r == 0 {
		return fmt.Errorf("data has no samples")
	}
	if c != n.Inputs() {
		return fmt.Errorf("data has %d input columns, network %s has %d inputs", c, n.Arch(), n.Inputs())
	}
	if Y == nil {
		return nil
	}
	yr, yc := Y.Dims()
	if yr != r {
		return fmt.Errorf("data has %d input rows but %d target rows", r, yr)
	}
	if want := n.loss.TargetCols(n.Outputs()); yc != want {
		if n.loss == CE {
			return fmt.Errorf("loss ce needs 1 target column holding the class index, data has %d", yc)
		}
		return fmt.Errorf("data has %d target columns, network %s has %d outputs", yc, n.Arch(), n.Outputs())
	}
	for i := 0; i < r; i++ {
		for j, v := range X.RawRowView(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("sample %d: input %d is %v", i, j, v)
			}
		}
		for k, v := range Y.RawRowView(i) {
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				return fmt.Errorf("sample %d: target %d is %v", i, k, v)
			case n.loss == BCE && (v < 0 || v > 1):
				return fmt.Errorf("sample %d: target %v outside [0,1], which loss bce needs", i, v)
			case n.loss == CE && (v != math.Trunc(v) || v < 0 || v >= float64(n.Outputs())):
				return fmt.Errorf("sample %d: target %v is not a class index in 0..%d, which loss ce needs", i, v, n.Outputs()-1)
			}
		}
	}
	return nil
}

// NewTrace returns a trace sized for batches of up to rows samples.
func (n *Network) NewTrace(rows int) *Trace {
	t := &Trace{A: make([]*mat.Dense, len(n.layers)), Z: make([]*mat.Dense, len(n.layers))}
	for l, ly := range n.layers {
		t.A[l] = mat.NewDense(rows, ly.Out, nil)
		t.Z[l] = mat.NewDense(rows, ly.Out, nil)
	}
	return t
}

// view returns the first rows rows of m, which must have at least that many.
func view(m *mat.Dense, rows int) *mat.Dense {
	_, c := m.Dims()
	return m.Slice(0, rows, 0, c).(*mat.Dense)
}

// ForwardTrace runs the forward pass over the rows of X and fills t, which
// must have room for them (see NewTrace). The trace's matrices are resliced
// to X's row count.
func (n *Network) ForwardTrace(t *Trace, X *mat.Dense) {
	rows, c := X.Dims()
	if c != n.Inputs() {
		panic(fmt.Sprintf("nn: input has %d columns, network has %d inputs", c, n.Inputs()))
	}
	t.X = X
	in := X
	for l, ly := range n.layers {
		A := t.A[l]
		if ar, _ := A.Dims(); ar != rows {
			A = view(A, rows)
			t.A[l] = A
		}
		Z := t.Z[l]
		if zr, _ := Z.Dims(); zr != rows {
			Z = view(Z, rows)
			t.Z[l] = Z
		}
		w := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: n.theta[n.offs[l] : n.offs[l]+ly.Out*ly.In]}
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, in.RawMatrix(), w, 0, A.RawMatrix())
		b := n.Bias(l)
		ar, zr := A.RawMatrix(), Z.RawMatrix()
		for i := 0; i < rows; i++ {
			arow := ar.Data[i*ar.Stride : i*ar.Stride+ly.Out]
			zrow := zr.Data[i*zr.Stride : i*zr.Stride+ly.Out]
			for j := range arow {
				arow[j] += b[j]
			}
			if ly.Act == Softmax {
				softmaxRow(zrow, arow)
				continue
			}
			for j, a := range arow {
				zrow[j] = ly.Act.Eval(a)
			}
		}
		in = Z
	}
}

// Output returns the network output of the last ForwardTrace.
func (t *Trace) Output() *mat.Dense { return t.Z[len(t.Z)-1] }

func rowsOf(m *mat.Dense, lo, hi int) *mat.Dense {
	_, c := m.Dims()
	return m.Slice(lo, hi, 0, c).(*mat.Dense)
}

// Forward returns the network's outputs for the rows of X in a new matrix.
func (n *Network) Forward(X *mat.Dense) *mat.Dense {
	rows, _ := X.Dims()
	out := mat.NewDense(rows, n.Outputs(), nil)
	blocks := parallel.Blocks(rows)
	parallel.ForBlocks(blocks, func(_ int, chunks [][2]int) {
		t := n.NewTrace(parallel.ChunkRows)
		for _, ch := range chunks {
			n.ForwardTrace(t, rowsOf(X, ch[0], ch[1]))
			rowsOf(out, ch[0], ch[1]).Copy(t.Output())
		}
	})
	return out
}

// Objective returns the training loss E = Σₙ ℓₙ over the rows of X and Y.
func (n *Network) Objective(X, Y *mat.Dense) float64 {
	return n.Evaluate(X, Y).Loss
}

// Metrics summarises a network on a dataset.
type Metrics struct {
	Loss     float64 `json:"loss"`      // E = Σₙ ℓₙ
	MeanLoss float64 `json:"mean_loss"` // E / N
	Accuracy float64 `json:"accuracy"`  // fraction of samples classified correctly
	N        int     `json:"n"`         // number of samples
}

// Evaluate returns the summed loss, mean loss and accuracy over the rows of
// X and Y. A sample is classified correctly when, for CE, the largest output
// is the target class; for one output, the output and the target fall on the
// same side of 0.5; for several outputs with MSE or BCE, the largest output
// and the largest target are in the same position.
func (n *Network) Evaluate(X, Y *mat.Dense) Metrics {
	m, _ := n.EvaluateContext(context.Background(), X, Y)
	return m
}

// EvaluateContext is Evaluate that checks ctx before every chunk of 256
// samples and returns ctx.Err(), with zero Metrics, when ctx is done before
// all samples are seen.
func (n *Network) EvaluateContext(ctx context.Context, X, Y *mat.Dense) (Metrics, error) {
	rows, _ := X.Dims()
	if yr, yc := Y.Dims(); yr != rows || yc != n.loss.TargetCols(n.Outputs()) {
		panic(fmt.Sprintf("nn: targets are %d×%d, want %d×%d", yr, yc, rows, n.loss.TargetCols(n.Outputs())))
	}
	loss := make([]float64, rows)
	ok := make([]bool, rows)
	parallel.ForBlocks(parallel.Blocks(rows), func(b int, chunks [][2]int) {
		t := n.NewTrace(parallel.ChunkRows)
		for _, ch := range chunks {
			if ctx.Err() != nil {
				return
			}
			n.ForwardTrace(t, rowsOf(X, ch[0], ch[1]))
			n.SampleMetricsTo(loss[ch[0]:ch[1]], ok[ch[0]:ch[1]], t, rowsOf(Y, ch[0], ch[1]))
		}
	})
	if err := ctx.Err(); err != nil {
		return Metrics{}, err
	}
	return SumMetrics(loss, ok), nil
}

// SampleMetricsTo writes the loss of each sample of the forward pass in t,
// whose targets are the rows of Y, to loss, and to ok whether it is
// classified correctly.
func (n *Network) SampleMetricsTo(loss []float64, ok []bool, t *Trace, Y *mat.Dense) {
	A, Z := t.A[len(t.A)-1], t.Output()
	for i := range loss {
		a, z, y := A.RawRowView(i), Z.RawRowView(i), Y.RawRowView(i)
		loss[i] = n.loss.sampleLoss(a, z, y)
		ok[i] = n.correct(z, y)
	}
}

// SumMetrics returns the Metrics of samples with the given losses and
// correctness, summed as Evaluate sums them (the same bits).
func SumMetrics(loss []float64, ok []bool) Metrics {
	m := Metrics{N: len(loss)}
	c := 0
	for _, chunks := range parallel.Blocks(len(loss)) {
		s := 0.0
		for _, ch := range chunks {
			for i := ch[0]; i < ch[1]; i++ {
				s += loss[i]
				if ok[i] {
					c++
				}
			}
		}
		m.Loss += s
	}
	if m.N > 0 {
		m.MeanLoss = m.Loss / float64(m.N)
		m.Accuracy = float64(c) / float64(m.N)
	}
	return m
}

func argmax(v []float64) int {
	k := 0
	for i, x := range v {
		if x > v[k] {
			k = i
		}
	}
	return k
}

func (n *Network) correct(z, y []float64) bool {
	switch {
	case n.loss == CE:
		return argmax(z) == int(y[0])
	case len(z) == 1:
		return (z[0] >= 0.5) == (y[0] >= 0.5)
	default:
		return argmax(z) == argmax(y)
	}
}

// Gradient computes the gradient of E = Σₙ ℓₙ over the rows of X and Y with
// respect to the flat parameter vector, writes it to dst (length NumParams)
// and returns E. Entries of pruned parameters are zero.
func (n *Network) Gradient(dst []float64, X, Y *mat.Dense) float64 {
	if len(dst) != len(n.theta) {
		panic("nn: gradient length mismatch")
	}
	rows, _ := X.Dims()
	if yr, yc := Y.Dims(); yr != rows || yc != n.loss.TargetCols(n.Outputs()) {
		panic(fmt.Sprintf("nn: targets are %d×%d, want %d×%d", yr, yc, rows, n.loss.TargetCols(n.Outputs())))
	}
	blocks := parallel.Blocks(rows)
	grads := make([][]float64, len(blocks))
	loss := make([]float64, len(blocks))
	grads[0] = dst
	clear(dst)
	parallel.ForBlocks(blocks, func(b int, chunks [][2]int) {
		g := grads[b]
		if g == nil {
			g = make([]float64, len(n.theta))
			grads[b] = g
		}
		w := n.newGradWork(parallel.ChunkRows)
		for _, ch := range chunks {
			loss[b] += n.accumGradient(g, w, rowsOf(X, ch[0], ch[1]), rowsOf(Y, ch[0], ch[1]))
		}
	})
	E := loss[0]
	for b := 1; b < len(blocks); b++ {
		E += loss[b]
		for q, v := range grads[b] {
			dst[q] += v
		}
	}
	if n.mask != nil {
		for q, live := range n.mask {
			if !live {
				dst[q] = 0
			}
		}
	}
	return E
}

type gradWork struct {
	t *Trace
	d []*mat.Dense // dℓ/dA per layer
}

func (n *Network) newGradWork(rows int) *gradWork {
	w := &gradWork{t: n.NewTrace(rows), d: make([]*mat.Dense, len(n.layers))}
	for l, ly := range n.layers {
		w.d[l] = mat.NewDense(rows, ly.Out, nil)
	}
	return w
}

// OutputDelta writes dℓₙ/da_L, the derivative of each sample's loss with
// respect to the output pre-activations, for the last forward pass in t and
// targets Y, to dst (rows × outputs).
func (n *Network) OutputDelta(dst *mat.Dense, t *Trace, Y *mat.Dense) {
	L := len(n.layers) - 1
	A, Z := t.A[L], t.Z[L]
	rows, _ := A.Dims()
	for i := 0; i < rows; i++ {
		n.loss.outputDelta(dst.RawRowView(i), A.RawRowView(i), Z.RawRowView(i), Y.RawRowView(i), n.layers[L].Act)
	}
}

// SampleLoss returns ℓ for sample i of the last forward pass in t.
func (n *Network) SampleLoss(t *Trace, Y *mat.Dense, i int) float64 {
	L := len(n.layers) - 1
	return n.loss.sampleLoss(t.A[L].RawRowView(i), t.Z[L].RawRowView(i), Y.RawRowView(i))
}

// accumGradient adds the gradient over one chunk to g and returns its loss.
func (n *Network) accumGradient(g []float64, w *gradWork, X, Y *mat.Dense) float64 {
	rows, _ := X.Dims()
	n.ForwardTrace(w.t, X)
	L := len(n.layers) - 1
	var E float64
	for i := 0; i < rows; i++ {
		E += n.SampleLoss(w.t, Y, i)
	}
	D := view(w.d[L], rows)
	n.OutputDelta(D, w.t, Y)
	for l := L; l >= 0; l-- {
		ly := n.layers[l]
		in := X
		if l > 0 {
			in = w.t.Z[l-1]
		}
		gw := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: g[n.offs[l] : n.offs[l]+ly.Out*ly.In]}
		dr := D.RawMatrix()
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, dr, in.RawMatrix(), 1, gw)
		gb := g[n.offs[l]+ly.Out*ly.In : n.offs[l+1]]
		for i := 0; i < rows; i++ {
			for j, v := range dr.Data[i*dr.Stride : i*dr.Stride+ly.Out] {
				gb[j] += v
			}
		}
		if l == 0 {
			break
		}
		prev := n.layers[l-1]
		Dp := view(w.d[l-1], rows)
		W := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: n.theta[n.offs[l] : n.offs[l]+ly.Out*ly.In]}
		dp := Dp.RawMatrix()
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, dr, W, 0, dp)
		A, Z := w.t.A[l-1].RawMatrix(), w.t.Z[l-1].RawMatrix()
		for i := 0; i < rows; i++ {
			drow := dp.Data[i*dp.Stride : i*dp.Stride+prev.Out]
			arow := A.Data[i*A.Stride : i*A.Stride+prev.Out]
			zrow := Z.Data[i*Z.Stride : i*Z.Stride+prev.Out]
			for j := range drow {
				drow[j] *= prev.Act.Deriv(arow[j], zrow[j])
			}
		}
		D = Dp
	}
	return E
}
