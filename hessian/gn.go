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
	jw := newJacobianWork(pr, hi-lo)
	J := jw.fill(lo, hi)
	return mat.DenseCopyOf(J)
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
