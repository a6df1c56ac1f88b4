package hessian

import (
	"context"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// GaussNewton is the outer-product (Gauss–Newton) approximation of the
// Hessian,
//
//	G = Σₙ Jₙᵀ Λₙ Jₙ,
//
// with Jₙ = ∂a_L/∂θ the Jacobian of the output pre-activations and Λₙ
// = ∂²ℓ/∂a_L² without its residual term: diag(f′²) for MSE, diag(p(1−p))
// for BCE, diag(p) − ppᵀ for CE. G is positive semi-definite and equals H
// where the residual term vanishes.
type GaussNewton struct {
	P *Problem
}

// Dim returns the number of parameters covered.
func (g GaussNewton) Dim() int { return g.P.Dim() }

// MulVecTo sets dst = G v without forming G.
func (g GaussNewton) MulVecTo(dst, v []float64) { rop(g.P, dst, v, true) }

// DiagTo writes the diagonal of G to dst.
func (g GaussNewton) DiagTo(ctx context.Context, dst []float64) error {
	return gnDiagTo(ctx, g.P, dst)
}

// DenseTo builds G into dst (Dim×Dim), a rank-k update per chunk of samples.
func (g GaussNewton) DenseTo(ctx context.Context, dst *mat.SymDense) error {
	pr := g.P
	if dst.SymmetricDim() != pr.Dim() {
		panic("hessian: destination has the wrong size")
	}
	if err := pr.Check(); err != nil {
		return err
	}
	k := pr.Dim()
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	jw := newJacobianWork(pr, rows)
	c := rawUpper(dst)
	outL := pr.Net.Outputs()
	at := make([]float64, k*rows*outL)
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		J := jw.fill(lo, hi)
		r, _ := J.Dims()
		transposeTo(at, J.RawMatrix().Data, r, k)
		jr := J.RawMatrix()
		rankK(c, blas64.General{Rows: k, Cols: r, Stride: r, Data: at[:k*r]}, blas64.General{Rows: r, Cols: k, Stride: jr.Stride, Data: jr.Data})
	}
	return nil
}

// WeightedJacobian returns the rows Bₙ Jₙ, one per sample of lo..hi−1 and
// output, over the covered parameters (BₙᵀBₙ = Λₙ of GaussNewton, so that
// G = Σ rowsᵀrows; for MSE the rows are ∂ŷₖ/∂θ).
func WeightedJacobian(pr *Problem, lo, hi int) *mat.Dense {
	return newJacobianWork(pr, hi-lo).fill(lo, hi)
}

// gnRows writes the rows Bₙ Jₙ of WeightedJacobian straight into a buffer
// over the covered positions, its work space allocated once: a forward
// pass over ps samples, per sample the back-propagated B P_{L,l} of every
// layer (out_L × Σ out_l) and the layer inputs, and per position its unit
// and input (two int32, within the 16n of BlockBytes).
type gnRows struct {
	pr   *Problem
	p    *pass
	ps   int
	b    []float64 // B, out_L × out_L
	g    []float64 // B P_{L,l} of all layers, out_L × Σ out_l
	z    []float64 // the layer inputs, Σ in_l, then 1 for the biases
	unit []int32   // position → unit (offset in a row of g)
	in   []int32   // position → input (offset in z)
	goff []int     // layer → its offset in a row of g
}

func newGNRows(pr *Problem, step int) *gnRows {
	net := pr.Net
	ls := net.Layers()
	outL := ls[len(ls)-1].Out
	w := &gnRows{pr: pr, goff: make([]int, len(ls))}
	var outs, ins int
	zoff := make([]int, len(ls))
	for l, ly := range ls {
		w.goff[l], zoff[l] = outs, ins
		outs += ly.Out
		ins += ly.In
	}
	fixed, per := passSizes(GaussNewton{pr})
	w.ps = passRows(step, fixed, per)
	w.p = newPass(net, w.ps)
	w.b = make([]float64, outL*outL)
	w.g = make([]float64, outL*outs)
	w.z = make([]float64, ins+1)
	n := pr.Dim()
	w.unit, w.in = make([]int32, n), make([]int32, n)
	for a := range n {
		q := a
		if pr.Params != nil {
			q = pr.Params[a]
		}
		pp := net.ParamAt(q)
		w.unit[a] = int32(w.goff[pp.Layer] + pp.Row)
		w.in[a] = int32(ins)
		if !pp.Bias {
			w.in[a] = int32(zoff[pp.Layer] + pp.Col)
		}
	}
	w.z[ins] = 1
	return w
}

// fill writes the rows of samples lo..hi−1 to dst (row k at k·Dim) and
// returns their number.
func (w *gnRows) fill(lo, hi int, dst []float64) int {
	pr, p := w.pr, w.p
	n := pr.Dim()
	ls := p.layers
	L := len(ls) - 1
	outL := ls[L].Out
	outs := len(w.g) / outL
	rows := 0
	for c0 := lo; c0 < hi; c0 += w.ps {
		c1 := min(c0+w.ps, hi)
		p.run(rowsOf(pr.X, c0, c1), nil)
		for i := range c1 - c0 {
			r := p.outputFactor(w.b, i)
			// g_L = B; g_{l−1} = (g_l W_l) ∘ f′_{l−1}.
			for k := range r {
				copy(w.g[k*outs+w.goff[L]:][:outL], w.b[k*outL:(k+1)*outL])
			}
			for l := L; l > 0; l-- {
				g := blas64.General{Rows: r, Cols: ls[l].Out, Stride: outs, Data: w.g[w.goff[l]:]}
				gp := blas64.General{Rows: r, Cols: ls[l-1].Out, Stride: outs, Data: w.g[w.goff[l-1]:]}
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, g, weights(p.net, l), 0, gp)
				f := p.d1[l-1].RawRowView(i)
				for k := range r {
					row := gp.Data[k*outs : k*outs+len(f)]
					for j, fj := range f {
						row[j] *= fj
					}
				}
			}
			zo := 0
			for l := range ls {
				zo += copy(w.z[zo:], p.input(l).RawRowView(i))
			}
			for k := range r {
				gk := w.g[k*outs : (k+1)*outs]
				row := dst[(rows+k)*n : (rows+k+1)*n]
				for a := range row {
					row[a] = gk[w.unit[a]] * w.z[w.in[a]]
				}
			}
			rows += r
		}
	}
	return rows
}

type jacobianWork struct {
	pr   *Problem
	p    *pass
	s    *second
	full []float64 // rows·outL × W
	bp   []float64
	b    []float64
}

func newJacobianWork(pr *Problem, rows int) *jacobianWork {
	p := newPass(pr.Net, rows)
	outL := p.layers[len(p.layers)-1].Out
	maxOut := 0
	for _, ly := range p.layers {
		maxOut = max(maxOut, ly.Out)
	}
	return &jacobianWork{
		pr: pr, p: p, s: p.newSecond(rows),
		full: make([]float64, rows*outL*pr.Net.NumParams()),
		bp:   make([]float64, outL*maxOut),
		b:    make([]float64, outL*outL),
	}
}

// jacobianLayer writes the columns of layer l of the r rows B P_{L,l} ⊗ z̃
// of sample n (B is r×out_L), the rows B Jₙ, to rows (row k at k·stride),
// starting at column off; bp is workspace of r·out_l.
func (p *pass) jacobianLayer(rows []float64, stride int, bp []float64, B blas64.General, s *second, n, l, off int) {
	L := len(p.layers) - 1
	outL := p.layers[L].Out
	ly := p.layers[l]
	r := B.Rows
	// BP = B P_{L,l} (r × out_l), P_{L,L} = I.
	g := blas64.General{Rows: r, Cols: ly.Out, Stride: ly.Out, Data: bp[:r*ly.Out]}
	if l == L {
		copy(g.Data, B.Data[:r*outL])
	} else {
		P := blas64.General{Rows: outL, Cols: ly.Out, Stride: ly.Out, Data: s.P[L][l][n*outL*ly.Out : (n+1)*outL*ly.Out]}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, B, P, 0, g)
	}
	z := p.input(l).RawRowView(n)
	for k := 0; k < r; k++ {
		row := rows[k*stride:]
		for j := 0; j < ly.Out; j++ {
			c := g.Data[k*ly.Out+j]
			seg := row[off+j*ly.In : off+(j+1)*ly.In]
			for h, zv := range z {
				seg[h] = c * zv
			}
			row[off+ly.Out*ly.In+j] = c
		}
	}
}

// fill computes the weighted Jacobian rows of samples lo..hi−1 and returns
// them as a view over the covered parameters.
func (jw *jacobianWork) fill(lo, hi int) *mat.Dense {
	pr, p, s := jw.pr, jw.p, jw.s
	net := pr.Net
	W := net.NumParams()
	p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
	p.computeP(s)
	L := len(p.layers) - 1
	outL := p.layers[L].Out
	nr := hi - lo
	J := jw.full[:nr*outL*W]
	for i := 0; i < nr; i++ {
		r := p.outputFactor(jw.b, i)
		B := blas64.General{Rows: r, Cols: outL, Stride: outL, Data: jw.b}
		for l := range p.layers {
			p.jacobianLayer(J[i*outL*W:], W, jw.bp, B, s, i, l, net.Offset(l))
		}
	}
	if pr.all() {
		return mat.NewDense(nr*outL, W, J)
	}
	k := len(pr.Params)
	for row := 0; row < nr*outL; row++ {
		for a, q := range pr.Params {
			J[row*k+a] = J[row*W+q]
		}
	}
	return mat.NewDense(nr*outL, k, J[:nr*outL*k])
}
