package hessian

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/secondorder/prune/nn"
)

// The last two layers of the exact build.
//
// For the parameters of the last two layers L−1 and L (all of them for a
// network with one hidden layer) the exact Hessian is the Gauss–Newton form
// with the exact output curvature Λ = ∂²ℓ/∂a_L² plus two sparse terms:
//
//	H = Σₙ J̃ₙᵀ Λₙ J̃ₙ
//	  + Σₙ diag(f″_{L−1} ⊙ W_Lᵀδ_L) ⊗ x̃x̃ᵀ      (block (L−1, L−1), unit by unit)
//	  + Σₙ x̃[i] δ_L[k] f′_{L−1}[j]              (entry ((L−1,j,i), (L,k,j)))
//
// with J̃ₙ = ∂a_L/∂θ over those parameters and x̃ the input of layer L−1
// extended by 1: the second derivatives of a_L with respect to the
// parameters are the f″ term within layer L−1 and the product of a weight
// of layer L with the activation it multiplies. Writing Λₙ = Bₙᵀ Sₙ Bₙ with
// S a diagonal of signs (S = I but for an MSE output with f″ ≠ 0), the
// first term is the signed Gram matrix of the rows Bₙ J̃ₙ, one matrix
// product of the same shape and cost as the Gauss–Newton build; the other
// two cost O(N·W·in).

// gramWork holds the buffers of gramBlock.
type gramWork struct {
	rows  []float64 // R × w, R = nr·out rows of B J̃
	at    []float64 // w × R, its transpose
	signs []float64 // R
	b     []float64 // out × out factor
	bp    []float64 // out × out_l
}

// gramPool keeps gramWork buffers between builds.
var gramPool = sync.Pool{New: func() any { return new(gramWork) }}

// gramFirst returns the first layer of the Gram part of the exact build.
func gramFirst(nLayers int) int { return max(0, nLayers-2) }

// gramBlock adds the Gram part over the parameters of layers from..L for
// the samples of the last pass to out: the exact output curvature, or with
// gn the Gauss–Newton one.
func (p *pass) gramBlock(w *gramWork, s *second, out blas64.General, from int, gn bool) {
	net := p.net
	W := net.NumParams()
	o0 := net.Offset(from)
	wd := W - o0
	L := len(p.layers) - 1
	outL := p.layers[L].Out
	nr := p.rows
	R := nr * outL
	w.rows = grow(w.rows, R*wd)
	w.signs = grow(w.signs, R)
	w.b = grow(w.b, outL*outL)
	maxOut := 0
	for _, ly := range p.layers {
		maxOut = max(maxOut, ly.Out)
	}
	w.bp = grow(w.bp, outL*maxOut)
	signed := false
	for n := 0; n < nr; n++ {
		r := p.outputFactor(w.b, n)
		sg := w.signs[n*outL : (n+1)*outL]
		for k := range sg {
			sg[k] = 1
		}
		if !gn && p.net.Loss() == nn.MSE {
			// Λ = diag(f′² + (f−y) f″): B = diag(√|λ|), S = sign.
			z := p.t.Z[L].RawRowView(n)
			y := p.Y.RawRowView(n)
			d1, d2 := p.d1[L].RawRowView(n), p.d2[L].RawRowView(n)
			for k := 0; k < outL; k++ {
				lam := d1[k]*d1[k] + (z[k]-y[k])*d2[k]
				w.b[k*outL+k] = math.Sqrt(math.Abs(lam))
				if lam < 0 {
					sg[k] = -1
					signed = true
				}
			}
		}
		B := blas64.General{Rows: r, Cols: outL, Stride: outL, Data: w.b}
		for l := from; l <= L; l++ {
			p.jacobianLayer(w.rows[n*outL*wd:], wd, w.bp, B, s, n, l, net.Offset(l)-o0)
		}
	}
	w.at = grow(w.at, wd*R)
	transposeTo(w.at, w.rows, R, wd)
	a := blas64.General{Rows: wd, Cols: R, Stride: R, Data: w.at}
	c := blas64.General{Rows: wd, Cols: wd, Stride: out.Stride, Data: out.Data[o0*out.Stride+o0:]}
	rows := blas64.General{Rows: R, Cols: wd, Stride: wd, Data: w.rows}
	if signed {
		// S B J̃: the rows scaled by their signs.
		for i, sg := range w.signs {
			if sg < 0 {
				for q := range w.rows[i*wd : (i+1)*wd] {
					w.rows[i*wd+q] = -w.rows[i*wd+q]
				}
			}
		}
	}
	rankK(c, a, rows)
}

// gramResidual adds the two sparse terms of the last two layers' exact
// Hessian (see gramBlock) for the samples of the last pass to out. It needs
// a hidden layer.
func (p *pass) gramResidual(w *kronWork, out blas64.General) {
	net := p.net
	L := len(p.layers) - 1
	l := L - 1
	nr := p.rows
	ly, lo := p.layers[l], p.layers[L]
	ol, il, oL := ly.Out, ly.In, lo.Out
	il1 := il + 1
	cols := il1 * il1
	zl := p.input(l).RawMatrix()
	w.xt = grow(w.xt, nr*il1)
	extend(w.xt, zl.Data, zl.Stride, nr, il)
	x := w.xt
	w.r = grow(w.r, nr*cols)
	outerRows(w.r, x, x, nr, il1, il1)
	// Block (L−1, L−1): c_n[j] = f″[j] (W_Lᵀ δ_L)[j] for the pairs (j, j).
	w.et = grow(w.et, nr*ol)
	e := blas64.General{Rows: nr, Cols: ol, Stride: ol, Data: w.et}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[L].RawMatrix(), weights(net, L), 0, e)
	w.kt = grow(w.kt, ol*nr)
	d2 := p.d2[l].RawMatrix()
	for n := 0; n < nr; n++ {
		for j := 0; j < ol; j++ {
			w.kt[j*nr+n] = d2.Data[n*d2.Stride+j] * e.Data[n*ol+j]
		}
	}
	w.t = grow(w.t, ol*cols)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: ol, Cols: nr, Stride: nr, Data: w.kt},
		blas64.General{Rows: nr, Cols: cols, Stride: cols, Data: w.r}, 0,
		blas64.General{Rows: ol, Cols: cols, Stride: cols, Data: w.t})
	offL, offM := net.Offset(l), net.Offset(L)
	for j := 0; j < ol; j++ {
		addPair(out, w.t[j*cols:(j+1)*cols], offL, offL, ol, il, ol, il, j, j, true)
	}
	// Entries ((L−1,j,i), (L,k,j)): Σₙ δ_L[k] f′[j] x̃[i].
	np := ol * oL
	w.kt = grow(w.kt, np*nr)
	dm, d1 := p.delta[L].RawMatrix(), p.d1[l].RawMatrix()
	for n := 0; n < nr; n++ {
		for j := 0; j < ol; j++ {
			f := d1.Data[n*d1.Stride+j]
			for k := 0; k < oL; k++ {
				w.kt[(j*oL+k)*nr+n] = dm.Data[n*dm.Stride+k] * f
			}
		}
	}
	w.u = grow(w.u, np*il1)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: np, Cols: nr, Stride: nr, Data: w.kt},
		blas64.General{Rows: nr, Cols: il1, Stride: il1, Data: x}, 0,
		blas64.General{Rows: np, Cols: il1, Stride: il1, Data: w.u})
	S := out.Stride
	im := lo.In // = ol
	bl := offL + ol*il
	for j := 0; j < ol; j++ {
		for k := 0; k < oL; k++ {
			u := w.u[(j*oL+k)*il1 : (j*oL+k+1)*il1]
			col := offM + k*im + j
			for i := 0; i < il; i++ {
				out.Data[(offL+j*il+i)*S+col] += u[i]
			}
			out.Data[(bl+j)*S+col] += u[il]
		}
	}
}
