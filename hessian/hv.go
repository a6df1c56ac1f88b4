package hessian

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
)

// MulVecTo sets dst = H v; products on the same problem may run concurrently.
func (h Exact) MulVecTo(dst, v []float64) { rop(h.P, dst, v, false) }

// rwork is the per-block workspace of the R-operator passes.
type rwork struct {
	p          *pass
	ra, rz, rd []*mat.Dense
	e          []*mat.Dense // per layer l−1: δ_l W_l
	g          []float64
	outc       []float64
}

func newRWork(net *nn.Network, rows int) *rwork {
	p := newPass(net, rows)
	w := &rwork{p: p}
	for _, ly := range p.layers {
		w.ra = append(w.ra, mat.NewDense(rows, ly.Out, nil))
		w.rz = append(w.rz, mat.NewDense(rows, ly.Out, nil))
		w.rd = append(w.rd, mat.NewDense(rows, ly.Out, nil))
		w.e = append(w.e, mat.NewDense(rows, ly.Out, nil))
	}
	w.g = make([]float64, net.NumParams())
	L := len(p.layers) - 1
	w.outc = make([]float64, p.layers[L].Out*p.layers[L].Out)
	return w
}

// ropWork is the workspace of one R-operator product over a problem: per
// block of samples a workspace for its full chunks and one for a shorter
// last chunk, the chunk views of X and Y, and the workers that run the
// blocks in parallel.
type ropWork struct {
	net     *nn.Network
	n, dim  int
	X, Y    *mat.Dense // the data the views were made for
	full    []float64
	blocks  [][][2]int
	work    [][2]*rwork       // per block: full chunks, short chunk
	views   [][][2]*mat.Dense // per block and chunk: X and Y rows
	gn      bool
	jobs    chan int
	wg      sync.WaitGroup
	stopped sync.Once
}

var ropMu sync.Mutex // guards Problem.rop

// takeRop returns a workspace for pr, reusing the problem's when it fits.
func (pr *Problem) takeRop() *ropWork {
	ropMu.Lock()
	w := pr.rop
	pr.rop = nil
	ropMu.Unlock()
	N, _ := pr.X.Dims()
	if w != nil && w.net == pr.Net && w.n == N && w.dim == pr.Dim() {
		if w.X != pr.X || w.Y != pr.Y {
			w.setViews(pr.X, pr.Y)
		}
		return w
	}
	if w != nil {
		w.stop()
	}
	return newRopWork(pr)
}

// putRop keeps w with pr for the next product, or stops it when the problem
// has one already.
func (pr *Problem) putRop(w *ropWork) {
	ropMu.Lock()
	if pr.rop == nil {
		pr.rop = w
		w = nil
	}
	ropMu.Unlock()
	if w != nil {
		w.stop()
	}
}

func newRopWork(pr *Problem) *ropWork {
	net := pr.Net
	N, _ := pr.X.Dims()
	w := &ropWork{net: net, n: N, dim: pr.Dim(), full: make([]float64, net.NumParams())}
	w.blocks = parallel.Blocks(N)
	w.work = make([][2]*rwork, len(w.blocks))
	for b, chunks := range w.blocks {
		for _, ch := range chunks {
			k := 0
			if ch[1]-ch[0] < parallel.ChunkRows {
				k = 1
			}
			if w.work[b][k] == nil {
				w.work[b][k] = newRWork(net, ch[1]-ch[0])
			}
		}
	}
	w.setViews(pr.X, pr.Y)
	if workers := min(runtime.GOMAXPROCS(0), len(w.blocks)); workers > 1 {
		w.jobs = make(chan int, len(w.blocks))
		for range workers - 1 {
			go w.worker()
		}
		// The workers hold w, not pr: stop them when pr is collected.
		runtime.AddCleanup(pr, func(w *ropWork) { w.stop() }, w)
	}
	return w
}

func (w *ropWork) setViews(X, Y *mat.Dense) {
	w.X, w.Y = X, Y
	w.views = make([][][2]*mat.Dense, len(w.blocks))
	for b, chunks := range w.blocks {
		for _, ch := range chunks {
			w.views[b] = append(w.views[b], [2]*mat.Dense{rowsOf(X, ch[0], ch[1]), rowsOf(Y, ch[0], ch[1])})
		}
	}
}

func (w *ropWork) worker() {
	for b := range w.jobs {
		w.block(b)
		w.wg.Done()
	}
}

func (w *ropWork) stop() {
	w.stopped.Do(func() {
		if w.jobs != nil {
			close(w.jobs)
		}
	})
}

// block runs the chunks of block b into the gradient of its full-chunk
// workspace.
func (w *ropWork) block(b int) {
	g := w.work[b][0]
	if g == nil {
		g = w.work[b][1]
	}
	clear(g.g)
	for c, ch := range w.blocks[b] {
		rw := w.work[b][0]
		if ch[1]-ch[0] < parallel.ChunkRows {
			rw = w.work[b][1]
		}
		v := w.views[b][c]
		rw.chunk(v[0], v[1], w.full, w.gn)
		if rw != g {
			for q, x := range rw.g {
				g.g[q] += x
			}
			clear(rw.g)
		}
	}
}

// result returns the gradient of block b's workspace.
func (w *ropWork) result(b int) []float64 {
	if g := w.work[b][0]; g != nil {
		return g.g
	}
	return w.work[b][1].g
}

// rop computes dst = H v (gn false) or the Gauss–Newton product G v (gn
// true) over the covered parameters.
func rop(pr *Problem, dst, v []float64, gn bool) {
	if len(dst) != pr.Dim() || len(v) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	w := pr.takeRop()
	defer pr.putRop(w)
	pr.scatter(w.full, v)
	w.gn = gn
	nb := len(w.blocks)
	if w.jobs == nil {
		for b := range nb {
			w.block(b)
		}
	} else {
		w.wg.Add(nb)
		for b := range nb {
			w.jobs <- b
		}
		// This goroutine works too, until the queue is empty.
	loop:
		for {
			select {
			case b := <-w.jobs:
				w.block(b)
				w.wg.Done()
			default:
				break loop
			}
		}
		w.wg.Wait()
	}
	// Sum the blocks in block order: the same bits for any GOMAXPROCS.
	out := w.result(0)
	for b := 1; b < nb; b++ {
		for q, x := range w.result(b) {
			out[q] += x
		}
	}
	pr.gather(dst, out)
}

func gemm(tA, tB blas.Transpose, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	blas64.Gemm(tA, tB, alpha, a, b, beta, c)
}

// chunk adds the R-operator product over one chunk to w.g.
func (w *rwork) chunk(X, Y *mat.Dense, v []float64, gn bool) {
	p := w.p
	net := p.net
	p.run(X, Y)
	rows := p.rows
	L := len(p.layers) - 1
	// R-forward: R{a_l} = Z_{l−1} V_lᵀ + 1 r_bᵀ + R{Z_{l−1}} W_lᵀ, R{z_l} = f′ ⊙ R{a_l}.
	for l, ly := range p.layers {
		ra := head(w.ra[l], rows)
		w.ra[l] = ra
		rz := head(w.rz[l], rows)
		w.rz[l] = rz
		o := net.Offset(l)
		V := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: v[o : o+ly.Out*ly.In]}
		gemm(blas.NoTrans, blas.Trans, 1, p.input(l).RawMatrix(), V, 0, ra.RawMatrix())
		if l > 0 {
			gemm(blas.NoTrans, blas.Trans, 1, w.rz[l-1].RawMatrix(), weights(net, l), 1, ra.RawMatrix())
		}
		rb := v[o+ly.Out*ly.In : o+ly.NumParams()]
		for i := 0; i < rows; i++ {
			r := ra.RawRowView(i)
			for j := range r {
				r[j] += rb[j]
			}
		}
		if l == L {
			break
		}
		for i := 0; i < rows; i++ {
			r, z, d := ra.RawRowView(i), rz.RawRowView(i), p.d1[l].RawRowView(i)
			for j := range r {
				z[j] = d[j] * r[j]
			}
		}
	}
	// R{δ_L} = (∂²ℓ/∂a_L²) R{a_L}.
	outL := p.layers[L].Out
	rdL := head(w.rd[L], rows)
	w.rd[L] = rdL
	for i := 0; i < rows; i++ {
		p.outputCurv(w.outc, i, gn)
		r, d := w.ra[L].RawRowView(i), rdL.RawRowView(i)
		for k := 0; k < outL; k++ {
			var s float64
			for h := 0; h < outL; h++ {
				s += w.outc[k*outL+h] * r[h]
			}
			d[k] = s
		}
	}
	for l := L; l >= 0; l-- {
		ly := p.layers[l]
		o := net.Offset(l)
		rd := w.rd[l].RawMatrix()
		gW := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: w.g[o : o+ly.Out*ly.In]}
		// R{∂E/∂W_l} = R{δ_l}ᵀ Z_{l−1} + δ_lᵀ R{Z_{l−1}}.
		gemm(blas.Trans, blas.NoTrans, 1, rd, p.input(l).RawMatrix(), 1, gW)
		if !gn && l > 0 {
			gemm(blas.Trans, blas.NoTrans, 1, p.delta[l].RawMatrix(), w.rz[l-1].RawMatrix(), 1, gW)
		}
		gb := w.g[o+ly.Out*ly.In : o+ly.NumParams()]
		for i := 0; i < rows; i++ {
			for j, x := range rd.Data[i*rd.Stride : i*rd.Stride+ly.Out] {
				gb[j] += x
			}
		}
		if l == 0 {
			break
		}
		// R{δ_{l−1}} = f″ ⊙ R{a_{l−1}} ⊙ (δ_l W_l) + f′ ⊙ (δ_l V_l + R{δ_l} W_l).
		rdp := head(w.rd[l-1], rows)
		w.rd[l-1] = rdp
		Wl := weights(net, l)
		gemm(blas.NoTrans, blas.NoTrans, 1, rd, Wl, 0, rdp.RawMatrix())
		if !gn {
			V := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: v[o : o+ly.Out*ly.In]}
			gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[l].RawMatrix(), V, 1, rdp.RawMatrix())
			e := head(w.e[l-1], rows)
			w.e[l-1] = e
			gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[l].RawMatrix(), Wl, 0, e.RawMatrix())
			for i := 0; i < rows; i++ {
				r, d1, d2 := rdp.RawRowView(i), p.d1[l-1].RawRowView(i), p.d2[l-1].RawRowView(i)
				ra, ev := w.ra[l-1].RawRowView(i), e.RawRowView(i)
				for j := range r {
					r[j] = d1[j]*r[j] + d2[j]*ra[j]*ev[j]
				}
			}
			continue
		}
		for i := 0; i < rows; i++ {
			r, d1 := rdp.RawRowView(i), p.d1[l-1].RawRowView(i)
			for j := range r {
				r[j] *= d1[j]
			}
		}
	}
}
