package hessian

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// MulVecTo sets dst = H v by Pearlmutter's R-operator.
func (h Exact) MulVecTo(dst, v []float64) { rop(h.P, dst, v, false) }

// rwork is the per-block workspace of the R-operator passes.
type rwork struct {
	p          *pass
	ra, rz, rd []*mat.Dense
	tmp        *mat.Dense
	g          []float64
	outc       []float64
}

func newRWork(net *nn.Network) *rwork {
	p := newPass(net, nn.ChunkRows)
	w := &rwork{p: p}
	maxOut := 0
	for _, ly := range p.layers {
		w.ra = append(w.ra, mat.NewDense(nn.ChunkRows, ly.Out, nil))
		w.rz = append(w.rz, mat.NewDense(nn.ChunkRows, ly.Out, nil))
		w.rd = append(w.rd, mat.NewDense(nn.ChunkRows, ly.Out, nil))
		maxOut = max(maxOut, ly.Out)
	}
	w.tmp = mat.NewDense(nn.ChunkRows, maxOut, nil)
	w.g = make([]float64, net.NumParams())
	L := len(p.layers) - 1
	w.outc = make([]float64, p.layers[L].Out*p.layers[L].Out)
	return w
}

// rop computes dst = H v (gn false) or the Gauss–Newton product G v (gn
// true) over the covered parameters.
func rop(pr *Problem, dst, v []float64, gn bool) {
	if len(dst) != pr.Dim() || len(v) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	net := pr.Net
	W := net.NumParams()
	full := make([]float64, W)
	pr.scatter(full, v)
	N, _ := pr.X.Dims()
	blocks := nn.Blocks(N)
	parts := make([][]float64, len(blocks))
	nn.ForBlocks(blocks, func(b int, chunks [][2]int) {
		w := newRWork(net)
		clear(w.g)
		for _, ch := range chunks {
			w.chunk(rowsOf(pr.X, ch[0], ch[1]), rowsOf(pr.Y, ch[0], ch[1]), full, gn)
		}
		parts[b] = w.g
	})
	pr.gather(dst, sumParts(parts))
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
		prev := p.layers[l-1]
		rdp := head(w.rd[l-1], rows)
		w.rd[l-1] = rdp
		Wl := weights(net, l)
		gemm(blas.NoTrans, blas.NoTrans, 1, rd, Wl, 0, rdp.RawMatrix())
		if !gn {
			V := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: v[o : o+ly.Out*ly.In]}
			gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[l].RawMatrix(), V, 1, rdp.RawMatrix())
			e := head(w.tmp, rows)
			e = e.Slice(0, rows, 0, prev.Out).(*mat.Dense)
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
