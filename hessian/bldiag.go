package hessian

import (
	"context"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
)

// blMaxTasks bounds the sample blocks of a Becker–LeCun build, each with
// its own partial diagonal; the blocks depend on N only, and the partials
// are added in block order, so the result has the same bits for any
// GOMAXPROCS.
const blMaxTasks = 8

// blWorkers returns the goroutines of a build: GOMAXPROCS (0) with Go's
// BLAS, one with OpenBLAS, whose own threads then share the products
// (concurrent calls from several threads contend for them and waste CPU).
func blWorkers() int {
	if blasimpl.Core() != "" {
		return 1
	}
	return 0
}

// blChunk is the number of samples of one pass through the network.
const blChunk = 1024

// blPlan is the part of each layer a Becker–LeCun build computes: the
// units rows[l] and inputs cols[l] with a covered weight, so that the
// weight diagonal of layer l is the |rows|×|cols| block
//
//	D_l = G_l[:, rows]ᵀ (Z_{l−1}[:, cols] ⊙ Z_{l−1}[:, cols]),
//
// summed over the samples, and the layer's bias diagonal the column sums
// of G_l. off[l] is the block's offset in a partial; the Out_l bias sums
// follow it.
//
// The forward pass skips the inputs whose weights are all zero and not
// covered (pixels pruned away): it runs on net, whose first layer has the
// inputs in only, and colsIn[0] are the positions of cols[0] among them.
type blPlan struct {
	rows, cols [][]int
	colsIn     [][]int
	in         []int       // the inputs of the first layer used, nil for all
	net        *nn.Network // the network of the forward pass
	off        []int
	size       int
	w2         []blas64.General // W_l ⊙ W_l
	chunk      int

	// With metrics, the forward pass runs on the whole network in
	// nn.Network.Evaluate's chunks and writes each sample's loss and
	// correctness here.
	loss []float64
	ok   []bool
}

func newBLPlan(pr *Problem, chunk int, metrics bool) *blPlan {
	net := pr.Net
	L := net.NumLayers()
	pl := &blPlan{rows: make([][]int, L), cols: make([][]int, L), off: make([]int, L), chunk: chunk}
	rowOn := make([][]bool, L)
	colOn := make([][]bool, L)
	for l := range L {
		ly := net.Layer(l)
		rowOn[l], colOn[l] = make([]bool, ly.Out), make([]bool, ly.In)
	}
	mark := func(q int) {
		p := net.ParamAt(q)
		if !p.Bias {
			rowOn[p.Layer][p.Row] = true
			colOn[p.Layer][p.Col] = true
		}
	}
	if pr.all() {
		for q := range net.NumParams() {
			mark(q)
		}
	} else {
		for _, q := range pr.Params {
			mark(q)
		}
	}
	for l := range L {
		ly := net.Layer(l)
		for j, on := range rowOn[l] {
			if on {
				pl.rows[l] = append(pl.rows[l], j)
			}
		}
		for i, on := range colOn[l] {
			if on {
				pl.cols[l] = append(pl.cols[l], i)
			}
		}
		pl.colsIn = append(pl.colsIn, pl.cols[l])
		pl.off[l] = pl.size
		pl.size += len(pl.rows[l])*len(pl.cols[l]) + ly.Out
		w := weights(net, l)
		ws := blas64.General{Rows: w.Rows, Cols: w.Cols, Stride: w.Cols, Data: make([]float64, len(w.Data))}
		for i, x := range w.Data {
			ws.Data[i] = x * x
		}
		pl.w2 = append(pl.w2, ws)
	}
	pl.net = net
	if metrics {
		N, _ := pr.X.Dims()
		pl.loss, pl.ok = make([]float64, N), make([]bool, N)
		return pl
	}
	pl.compactInputs(pr, colOn[0])
	return pl
}

// compactInputs sets up a forward pass without the inputs whose weights are
// all zero and not covered (on[i] reports a covered weight of input i),
// when they are at least a tenth of the inputs.
func (pl *blPlan) compactInputs(pr *Problem, on []bool) {
	net := pr.Net
	ly := net.Layer(0)
	W := weights(net, 0)
	used := make([]int, 0, ly.In)
	pos := make([]int, ly.In)
	for i := range ly.In {
		keep := on[i]
		for j := 0; j < ly.Out && !keep; j++ {
			keep = W.Data[j*W.Stride+i] != 0
		}
		pos[i] = len(used)
		if keep {
			used = append(used, i)
		}
	}
	if 10*len(used) > 9*ly.In {
		return
	}
	sizes := net.Sizes()
	sizes[0] = max(len(used), 1)
	acts := make([]nn.Activation, net.NumLayers())
	for l := range acts {
		acts[l] = net.Layer(l).Act
	}
	c, err := nn.New(sizes, acts, net.Loss())
	if err != nil {
		return // keep the full forward pass
	}
	th, src := c.RawParams(), net.RawParams()
	Wc := weights(c, 0)
	for j := range ly.Out {
		for k, i := range used {
			Wc.Data[j*Wc.Stride+k] = W.Data[j*W.Stride+i]
		}
	}
	o0, o1 := c.Offset(0)+ly.Out*len(used), net.Offset(0)+ly.Out*ly.In
	copy(th[o0:], src[o1:])
	if len(used) == 0 {
		clear(Wc.Data) // one zero input keeps the layer's shape valid
	}
	pl.in, pl.net = used, c
	pl.colsIn[0] = make([]int, len(pl.cols[0]))
	for k, i := range pl.cols[0] {
		pl.colsIn[0][k] = pos[i]
	}
}

// scatter adds the partial diagonal part to the full diagonal full.
func (pl *blPlan) scatter(full, part []float64, net *nn.Network) {
	for l, rows := range pl.rows {
		ly := net.Layer(l)
		o := net.Offset(l)
		cols := pl.cols[l]
		k := pl.off[l]
		for _, j := range rows {
			dst := full[o+j*ly.In:]
			for _, i := range cols {
				dst[i] += part[k]
				k++
			}
		}
		b := full[o+ly.Out*ly.In : o+ly.NumParams()]
		for j := range b {
			b[j] += part[k+j]
		}
	}
}

// blWork is one goroutine's scratch space for a chunk of samples.
type blWork struct {
	t        *nn.Trace
	g, e, dl []*mat.Dense // ∂²ℓ/∂a_l² (diagonal), ∂ℓ/∂z_l, δ_l = ∂ℓ/∂a_l
	gc, zc   []float64    // compacted G_l[:, rows] and Z_{l−1}[:, cols]²
	xc       *mat.Dense   // the inputs of the forward pass (blPlan.in)
	base     []*mat.Dense // with metrics: the chunk's A_l then Z_l
	sub      *nn.Trace    // with metrics: a view of rows of base
	m        [2][]float64 // Gauss–Newton: M_l and M_{l−1}
	fp       []float64    // Gauss–Newton: f′ of one sample
}

func (pl *blPlan) newWork(net *nn.Network, mode blMode) *blWork {
	full := mode == blFull
	rows := pl.chunk
	w := &blWork{t: pl.net.NewTrace(rows)}
	if pl.loss != nil {
		w.base = append(slices.Clone(w.t.A), w.t.Z...)
		L := len(w.t.A)
		w.sub = &nn.Trace{A: make([]*mat.Dense, L), Z: make([]*mat.Dense, L)}
	}
	if pl.in != nil {
		w.xc = mat.NewDense(rows, max(len(pl.in), 1), nil)
	}
	maxR, maxC := 0, 0
	for l, ly := range net.Layers() {
		w.g = append(w.g, mat.NewDense(rows, ly.Out, nil))
		if full {
			w.e = append(w.e, mat.NewDense(rows, ly.Out, nil))
			w.dl = append(w.dl, mat.NewDense(rows, ly.Out, nil))
		}
		maxR, maxC = max(maxR, len(pl.rows[l])), max(maxC, len(pl.cols[l]))
	}
	w.gc = make([]float64, rows*maxR)
	w.zc = make([]float64, rows*maxC)
	if mode == blGN {
		maxOut := 0
		for _, ly := range net.Layers() {
			maxOut = max(maxOut, ly.Out)
		}
		for k := range w.m {
			w.m[k] = make([]float64, rows*net.Outputs()*maxOut)
		}
		w.fp = make([]float64, maxOut)
	}
	return w
}

// gnDiagTo writes the diagonal of the Gauss–Newton matrix of pr to dst.
func gnDiagTo(ctx context.Context, pr *Problem, dst []float64) error {
	if len(dst) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	if err := pr.Check(); err != nil {
		return err
	}
	full := make([]float64, pr.Net.NumParams())
	if err := blDiag(ctx, pr, blGN, full, blWorkers()); err != nil {
		return err
	}
	pr.gather(dst, full)
	return nil
}

// gnIsExact reports whether the diagonal of the Gauss–Newton matrix is that
// of H: no hidden activation has a second derivative (relu, linear) and
// the output's curvature is Λ (ce, bce, or mse with a linear output).
func gnIsExact(net *nn.Network) bool {
	L := net.NumLayers() - 1
	for l := range L {
		if a := net.Layer(l).Act; a != nn.ReLU && a != nn.Linear {
			return false
		}
	}
	return net.Loss() != nn.MSE || net.Layer(L).Act == nn.Linear
}

// DiagMetricsTo is DiagTo that also returns the network's metrics on the
// data, nn.Network.Evaluate's bit for bit, and keeps the diagonal for DiagTo.
func (d BeckerLeCun) DiagMetricsTo(ctx context.Context, dst []float64) (nn.Metrics, error) {
	pr := d.P
	if len(dst) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	if err := pr.Check(); err != nil {
		return nn.Metrics{}, err
	}
	N, _ := pr.X.Dims()
	full := make([]float64, pr.Net.NumParams())
	// blChunk is a multiple of Evaluate's chunks.
	m, err := blDiagPlan(ctx, pr, d.mode(), full, blWorkers(), newBLPlan(pr, min(N, blChunk), true))
	if err != nil {
		return nn.Metrics{}, err
	}
	pr.gather(dst, full)
	c := &blCache{theta: slices.Clone(pr.Net.RawParams()), X: pr.X, Y: pr.Y, params: slices.Clone(pr.Params), diag: slices.Clone(dst)}
	ropMu.Lock()
	pr.bl[d.mode()] = c
	ropMu.Unlock()
	return m, nil
}

// blKept returns the diagonal of the mode kept with pr for its current
// state, or nil.
func blKept(pr *Problem, mode blMode) []float64 {
	if mode == blGN {
		return nil
	}
	ropMu.Lock()
	c := pr.bl[mode]
	ropMu.Unlock()
	if c != nil && c.X == any(pr.X) && c.Y == any(pr.Y) && slices.Equal(c.params, pr.Params) && slices.Equal(c.theta, pr.Net.RawParams()) {
		return c.diag
	}
	return nil
}

// blMode selects the diagonal a build computes.
type blMode int

const (
	blFull blMode = iota // Becker–LeCun
	blLM                 // Becker–LeCun without f″ terms
	blGN                 // the Gauss–Newton diagonal, from the output factor
)

// blDiag computes the diagonal of the given mode of pr over all the
// problem's parameters into full, of length pr.Net.NumParams(); entries
// not covered are left unspecified.
func blDiag(ctx context.Context, pr *Problem, mode blMode, full []float64, workers int) error {
	if h := blKept(pr, mode); h != nil {
		pr.scatter(full, h)
		return nil
	}
	chunk := blChunk
	if mode == blGN {
		chunk = parallel.ChunkRows // the factor has Outputs rows per sample
	}
	return blDiagChunk(ctx, pr, mode, full, workers, chunk)
}

func blDiagChunk(ctx context.Context, pr *Problem, mode blMode, full []float64, workers, chunk int) error {
	N, _ := pr.X.Dims()
	_, err := blDiagPlan(ctx, pr, mode, full, workers, newBLPlan(pr, min(N, chunk), false))
	return err
}

// blDiagPlan is blDiagChunk on the plan pl; with pl's metrics it returns
// the network's metrics on the problem's data.
func blDiagPlan(ctx context.Context, pr *Problem, mode blMode, full []float64, workers int, pl *blPlan) (nn.Metrics, error) {
	N, _ := pr.X.Dims()
	chunk := pl.chunk
	nc := (N + chunk - 1) / chunk
	per := (nc + blMaxTasks - 1) / blMaxTasks
	blocks := parallel.Split(N, per*chunk)
	parts, err := parallel.Run(ctx, len(blocks), workers,
		func() *blWork { return pl.newWork(pr.Net, mode) },
		func(w *blWork, t int) ([]float64, error) {
			part := make([]float64, pl.size)
			b := blocks[t]
			for lo := b.Lo; lo < b.Hi; lo += chunk {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				hi := min(lo+chunk, b.Hi)
				pl.chunkTo(part, w, pr, lo, hi, mode)
			}
			return part, nil
		}, nil)
	if err != nil {
		return nn.Metrics{}, err
	}
	clear(full)
	for _, part := range parts[1:] {
		for i, v := range part {
			parts[0][i] += v
		}
	}
	pl.scatter(full, parts[0], pr.Net)
	if pl.loss == nil {
		return nn.Metrics{}, nil
	}
	return nn.SumMetrics(pl.loss, pl.ok), nil
}

// chunkTo adds the diagonal over the samples lo…hi−1 to part.
func (pl *blPlan) chunkTo(part []float64, w *blWork, pr *Problem, lo, hi int, mode blMode) {
	if mode == blGN {
		pl.gnChunkTo(part, w, pr, lo, hi)
		return
	}
	lm := mode == blLM
	net := pl.net
	nr := hi - lo
	X := pl.forward(w, pr, lo, hi)
	L := net.NumLayers() - 1
	out := net.Layer(L)
	gL := head(w.g[L], nr).RawMatrix()
	A, Z := w.t.A[L].RawMatrix(), w.t.Z[L].RawMatrix()
	var Y blas64.General
	if !lm || net.Loss() == nn.MSE {
		Y = rowsOf(pr.Y, lo, hi).RawMatrix()
	}
	for i := range nr {
		a, z, g := A.Data[i*A.Stride:i*A.Stride+out.Out], Z.Data[i*Z.Stride:i*Z.Stride+out.Out], gL.Data[i*gL.Stride:i*gL.Stride+out.Out]
		switch net.Loss() {
		case nn.MSE:
			y := Y.Data[i*Y.Stride:]
			for k := range g {
				d1 := out.Act.Deriv(a[k], z[k])
				g[k] = d1 * d1
				if !lm {
					g[k] += (z[k] - y[k]) * out.Act.Deriv2(a[k], z[k])
				}
			}
		default: // BCE and CE: the diagonal of diag(p) − ppᵀ or diag(p(1−p))
			for k, p := range z {
				g[k] = p * (1 - p)
			}
		}
	}
	if !lm {
		net.OutputDelta(head(w.dl[L], nr), w.t, rowsOf(pr.Y, lo, hi))
	}
	for l := L; l >= 0; l-- {
		ly := net.Layer(l)
		gl := head(w.g[l], nr).RawMatrix()
		pl.accumulate(part, w, l, ly, gl, X, nr)
		if l == 0 {
			break
		}
		gp := head(w.g[l-1], nr).RawMatrix()
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, gl, pl.w2[l], 0, gp)
		prev := net.Layer(l - 1)
		Ap, Zp := w.t.A[l-1].RawMatrix(), w.t.Z[l-1].RawMatrix()
		if lm {
			for i := range nr {
				scaleDeriv2(gp.Data[i*gp.Stride:i*gp.Stride+prev.Out], Ap.Data[i*Ap.Stride:], Zp.Data[i*Zp.Stride:], prev.Act)
			}
			continue
		}
		// e = δ_l W_l = ∂ℓ/∂z_{l−1}, δ_{l−1} = e ⊙ f′.
		e := head(w.e[l-1], nr).RawMatrix()
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, head(w.dl[l], nr).RawMatrix(), weights(net, l), 0, e)
		dp := head(w.dl[l-1], nr).RawMatrix()
		for i := range nr {
			r := gp.Data[i*gp.Stride : i*gp.Stride+prev.Out]
			er, dr := e.Data[i*e.Stride:], dp.Data[i*dp.Stride:]
			a, z := Ap.Data[i*Ap.Stride:], Zp.Data[i*Zp.Stride:]
			for j := range r {
				d1 := prev.Act.Deriv(a[j], z[j])
				r[j] = r[j]*d1*d1 + prev.Act.Deriv2(a[j], z[j])*er[j]
				dr[j] = er[j] * d1
			}
		}
	}
}

// forward runs the forward pass of the samples lo…hi−1 into w.t and
// returns its input matrix.
func (pl *blPlan) forward(w *blWork, pr *Problem, lo, hi int) *mat.Dense {
	X := rowsOf(pr.X, lo, hi)
	if pl.loss != nil {
		pl.forwardMetrics(w, pr, lo, hi)
		return X
	}
	if pl.in != nil {
		xc := head(w.xc, hi-lo)
		for i := range hi - lo {
			src, dst := X.RawRowView(i), xc.RawRowView(i)
			for k, c := range pl.in {
				dst[k] = src[c]
			}
		}
		X = xc
	}
	pl.net.ForwardTrace(w.t, X)
	return X
}

// forwardMetrics runs the forward pass of the samples lo…hi−1 into w.t in
// the chunks of Evaluate (lo is a multiple of them) and writes their
// metrics to pl.loss and pl.ok.
func (pl *blPlan) forwardMetrics(w *blWork, pr *Problem, lo, hi int) {
	L := len(w.sub.A)
	for s := lo; s < hi; s += parallel.ChunkRows {
		e := min(s+parallel.ChunkRows, hi)
		for l := range L {
			w.sub.A[l] = rowsOf(w.base[l], s-lo, e-lo)
			w.sub.Z[l] = rowsOf(w.base[L+l], s-lo, e-lo)
		}
		pl.net.ForwardTrace(w.sub, rowsOf(pr.X, s, e))
		pl.net.SampleMetricsTo(pl.loss[s:e], pl.ok[s:e], w.sub, rowsOf(pr.Y, s, e))
	}
	for l := range L {
		w.t.A[l], w.t.Z[l] = head(w.base[l], hi-lo), head(w.base[L+l], hi-lo)
	}
}

// gnChunkTo adds the Gauss–Newton diagonal over the samples lo…hi−1 to
// part. The rows of Mₗ = Bₙ ∂a_L/∂a_l, C per sample with BₙᵀBₙ = Λₙ, are
// propagated back as one matrix,
//
//	M_L = Bₙ,  M_{l−1} = (M_l W_l) ⊙ f′(a_{l−1}),  g_l[j] = Σ_c M_l[c][j]²,
//
// and g_l takes the place of the Becker–LeCun g_l.
func (pl *blPlan) gnChunkTo(part []float64, w *blWork, pr *Problem, lo, hi int) {
	net := pl.net
	nr := hi - lo
	X := pl.forward(w, pr, lo, hi)
	L := net.NumLayers() - 1
	out := net.Layer(L)
	C := out.Out
	A, Z := w.t.A[L].RawMatrix(), w.t.Z[L].RawMatrix()
	cur := 0 // M is in w.m[cur]
	M := blas64.General{Rows: nr * C, Cols: C, Stride: C, Data: w.m[cur][:nr*C*C]}
	clear(M.Data)
	for i := range nr {
		a, z := A.Data[i*A.Stride:i*A.Stride+C], Z.Data[i*Z.Stride:i*Z.Stride+C]
		b := M.Data[i*C*C : (i+1)*C*C]
		switch net.Loss() {
		case nn.MSE:
			for k := range C {
				b[k*C+k] = out.Act.Deriv(a[k], z[k])
			}
		case nn.BCE:
			for k, p := range z {
				b[k*C+k] = sqrt(p * (1 - p))
			}
		case nn.CE: // (I − uuᵀ) diag(u), u = √p
			for k := range C {
				uk := sqrt(z[k])
				for h := range C {
					uh := sqrt(z[h])
					b[k*C+h] = -uk * uh * uh
					if h == k {
						b[k*C+h] += uh
					}
				}
			}
		}
	}
	for l := L; l >= 0; l-- {
		ly := net.Layer(l)
		gl := head(w.g[l], nr).RawMatrix()
		for i := range nr {
			g := gl.Data[i*gl.Stride : i*gl.Stride+ly.Out]
			clear(g)
			for c := range C {
				for j, v := range M.Data[(i*C+c)*M.Stride : (i*C+c)*M.Stride+ly.Out] {
					g[j] += v * v
				}
			}
		}
		pl.accumulate(part, w, l, ly, gl, X, nr)
		if l == 0 {
			break
		}
		prev := net.Layer(l - 1)
		cur = 1 - cur
		next := blas64.General{Rows: nr * C, Cols: prev.Out, Stride: prev.Out, Data: w.m[cur][:nr*C*prev.Out]}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, M, weights(net, l), 0, next)
		Ap, Zp := w.t.A[l-1].RawMatrix(), w.t.Z[l-1].RawMatrix()
		fp := w.fp[:prev.Out]
		for i := range nr {
			derivTo(fp, Ap.Data[i*Ap.Stride:], Zp.Data[i*Zp.Stride:], prev.Act)
			for c := range C {
				r := next.Data[(i*C+c)*next.Stride : (i*C+c)*next.Stride+prev.Out]
				for j, f := range fp {
					r[j] *= f
				}
			}
		}
		M = next
	}
}

// accumulate adds G_l[:, rows]ᵀ (Z[:, cols] ⊙ Z[:, cols]) and the column
// sums of G_l over the nr rows of the chunk to layer l's part, with Z the
// layer's input (X, the input of the forward pass, for l = 0).
func (pl *blPlan) accumulate(part []float64, w *blWork, l int, ly nn.Layer, gl blas64.General, X *mat.Dense, nr int) {
	in := X.RawMatrix()
	if l > 0 {
		in = w.t.Z[l-1].RawMatrix()
	}
	rows, cols := pl.rows[l], pl.colsIn[l]
	o := pl.off[l]
	nR, nC := len(rows), len(cols)
	if nR > 0 && nC > 0 {
		for i := range nr {
			g, dst := gl.Data[i*gl.Stride:], w.gc[i*nR:(i+1)*nR]
			for k, j := range rows {
				dst[k] = g[j]
			}
			z, zd := in.Data[i*in.Stride:], w.zc[i*nC:(i+1)*nC]
			for k, c := range cols {
				zd[k] = z[c] * z[c]
			}
		}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1,
			blas64.General{Rows: nr, Cols: nR, Stride: nR, Data: w.gc[:nr*nR]},
			blas64.General{Rows: nr, Cols: nC, Stride: nC, Data: w.zc[:nr*nC]},
			1, blas64.General{Rows: nR, Cols: nC, Stride: nC, Data: part[o : o+nR*nC]})
	}
	b := part[o+nR*nC : o+nR*nC+ly.Out]
	for i := range nr {
		for j, x := range gl.Data[i*gl.Stride : i*gl.Stride+ly.Out] {
			b[j] += x
		}
	}
}

// derivTo writes f′(a) to d, given a and z = f(a).
func derivTo(d, a, z []float64, f nn.Activation) {
	switch f {
	case nn.Linear:
		for j := range d {
			d[j] = 1
		}
	case nn.ReLU:
		for j := range d {
			d[j] = 0
			if a[j] > 0 {
				d[j] = 1
			}
		}
	default:
		for j := range d {
			d[j] = f.Deriv(a[j], z[j])
		}
	}
}

// scaleDeriv2 multiplies g by f′(a)², given a and z = f(a).
func scaleDeriv2(g, a, z []float64, f nn.Activation) {
	switch f {
	case nn.Linear:
	case nn.ReLU:
		for j := range g {
			if !(a[j] > 0) {
				g[j] = 0
			}
		}
	case nn.Tanh:
		for j := range g {
			d := 1 - z[j]*z[j]
			g[j] *= d * d
		}
	case nn.Sigmoid:
		for j := range g {
			d := z[j] * (1 - z[j])
			g[j] *= d * d
		}
	default:
		for j := range g {
			d := f.Deriv(a[j], z[j])
			g[j] *= d * d
		}
	}
}
