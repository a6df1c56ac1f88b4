package hessian

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

func sqrt(x float64) float64 { return math.Sqrt(math.Max(x, 0)) }

// second holds, for one chunk, the per-sample matrices of second derivatives
// of ℓ with respect to the pre-activations,
//
//	G_L = ∂²ℓ/∂a_L²,
//	G_l = diag(f′_l) W_{l+1}ᵀ G_{l+1} W_{l+1} diag(f′_l) + diag(f″_l ⊙ W_{l+1}ᵀ δ_{l+1}),
//
// and the Jacobians between pre-activations P_{ml} = ∂a_m/∂a_l (m > l),
//
//	P_{l+1,l} = W_{l+1} diag(f′_l),    P_{m,l} = P_{m,m−1} P_{m−1,l}.
//
// With gn set the f″ terms are dropped (the Gauss–Newton recursion).
type second struct {
	G [][]float64   // G[l]: rows × out_l × out_l
	P [][][]float64 // P[m][l]: rows × out_m × out_l, l < m
	k []float64     // rows × out_m × out_{m−1}: workspace for G_m P_{m,m−1}
}

func (p *pass) newSecond(maxRows int) *second {
	L := len(p.layers)
	s := &second{G: make([][]float64, L), P: make([][][]float64, L)}
	kn := 0
	for l, ly := range p.layers {
		if l > 0 {
			kn = max(kn, ly.Out*p.layers[l-1].Out)
		}
		s.G[l] = make([]float64, maxRows*ly.Out*ly.Out)
		s.P[l] = make([][]float64, l)
		for k := 0; k < l; k++ {
			s.P[l][k] = make([]float64, maxRows*ly.Out*p.layers[k].Out)
		}
	}
	s.k = make([]float64, maxRows*kn)
	return s
}

// computeG fills s.G for the samples of the last run.
func (p *pass) computeG(s *second, gn bool) {
	L := len(p.layers) - 1
	maxOut := 0
	for _, ly := range p.layers {
		maxOut = max(maxOut, ly.Out)
	}
	tmp := make([]float64, maxOut*maxOut)
	e := make([]float64, maxOut)
	outL := p.layers[L].Out
	for i := 0; i < p.rows; i++ {
		p.outputCurv(s.G[L][i*outL*outL:(i+1)*outL*outL], i, gn)
	}
	for l := L - 1; l >= 0; l-- {
		o, on := p.layers[l].Out, p.layers[l+1].Out
		W := weights(p.net, l+1)
		for i := 0; i < p.rows; i++ {
			gn1 := blas64.General{Rows: on, Cols: on, Stride: on, Data: s.G[l+1][i*on*on : (i+1)*on*on]}
			T := blas64.General{Rows: on, Cols: o, Stride: o, Data: tmp[:on*o]}
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, gn1, W, 0, T)
			g := blas64.General{Rows: o, Cols: o, Stride: o, Data: s.G[l][i*o*o : (i+1)*o*o]}
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, W, T, 0, g)
			d1 := p.d1[l].RawRowView(i)
			for j := 0; j < o; j++ {
				row := g.Data[j*o : j*o+o]
				for k := range row {
					row[k] *= d1[j] * d1[k]
				}
			}
			if gn {
				continue
			}
			// e = W_{l+1}ᵀ δ_{l+1} = ∂ℓ/∂z_l.
			dn := p.delta[l+1].RawRowView(i)
			ev := e[:o]
			clear(ev)
			for k := 0; k < on; k++ {
				wk := W.Data[k*o : k*o+o]
				for j := range ev {
					ev[j] += dn[k] * wk[j]
				}
			}
			d2 := p.d2[l].RawRowView(i)
			for j := 0; j < o; j++ {
				g.Data[j*o+j] += d2[j] * ev[j]
			}
		}
	}
}

// computeP fills s.P for the samples of the last run.
func (p *pass) computeP(s *second) {
	for m := 1; m < len(p.layers); m++ {
		om, oprev := p.layers[m].Out, p.layers[m-1].Out
		W := weights(p.net, m)
		for i := 0; i < p.rows; i++ {
			d1 := p.d1[m-1].RawRowView(i)
			// P_{m,m−1} = W_m diag(f′_{m−1}).
			pm := s.P[m][m-1][i*om*oprev : (i+1)*om*oprev]
			for k := 0; k < om; k++ {
				for j := 0; j < oprev; j++ {
					pm[k*oprev+j] = W.Data[k*oprev+j] * d1[j]
				}
			}
			for l := m - 2; l >= 0; l-- {
				ol := p.layers[l].Out
				src := blas64.General{Rows: oprev, Cols: ol, Stride: ol, Data: s.P[m-1][l][i*oprev*ol : (i+1)*oprev*ol]}
				dst := blas64.General{Rows: om, Cols: ol, Stride: ol, Data: s.P[m][l][i*om*ol : (i+1)*om*ol]}
				a := blas64.General{Rows: om, Cols: oprev, Stride: oprev, Data: pm}
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, a, src, 0, dst)
			}
		}
	}
}
