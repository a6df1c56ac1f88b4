package hessian

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// pass holds one chunk's forward and backward quantities: per layer l the
// input z_{l−1} (X for l = 0), f′(a_l), f″(a_l), and δ_l = ∂ℓ/∂a_l, one row
// per sample.
type pass struct {
	net    *nn.Network
	layers []nn.Layer
	t      *nn.Trace
	X, Y   *mat.Dense
	rows   int
	d1, d2 []*mat.Dense
	delta  []*mat.Dense
}

func newPass(net *nn.Network, maxRows int) *pass {
	ls := net.Layers()
	p := &pass{net: net, layers: ls, t: net.NewTrace(maxRows)}
	p.d1 = make([]*mat.Dense, len(ls))
	p.d2 = make([]*mat.Dense, len(ls))
	p.delta = make([]*mat.Dense, len(ls))
	for l, ly := range ls {
		p.d1[l] = mat.NewDense(maxRows, ly.Out, nil)
		p.d2[l] = mat.NewDense(maxRows, ly.Out, nil)
		p.delta[l] = mat.NewDense(maxRows, ly.Out, nil)
	}
	return p
}

func head(m *mat.Dense, rows int) *mat.Dense {
	r, c := m.Dims()
	if r == rows {
		return m
	}
	return m.Slice(0, rows, 0, c).(*mat.Dense)
}

func rowsOf(m *mat.Dense, lo, hi int) *mat.Dense {
	_, c := m.Dims()
	return m.Slice(lo, hi, 0, c).(*mat.Dense)
}

// input returns the input matrix of layer l.
func (p *pass) input(l int) *mat.Dense {
	if l == 0 {
		return p.X
	}
	return p.t.Z[l-1]
}

// weights returns W_l as a BLAS matrix backed by the network's parameters.
func weights(net *nn.Network, l int) blas64.General {
	ly := net.Layer(l)
	o := net.Offset(l)
	return blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: net.RawParams()[o : o+ly.Out*ly.In]}
}

// run does the forward pass and back-propagates δ over X and Y.
func (p *pass) run(X, Y *mat.Dense) {
	rows, _ := X.Dims()
	p.rows, p.X, p.Y = rows, X, Y
	p.net.ForwardTrace(p.t, X)
	L := len(p.layers) - 1
	for l, ly := range p.layers {
		d1, d2 := head(p.d1[l], rows), head(p.d2[l], rows)
		p.d1[l], p.d2[l] = d1, d2
		p.delta[l] = head(p.delta[l], rows)
		if ly.Act == nn.Softmax {
			continue
		}
		A, Z := p.t.A[l], p.t.Z[l]
		for i := 0; i < rows; i++ {
			a, z := A.RawRowView(i), Z.RawRowView(i)
			r1, r2 := d1.RawRowView(i), d2.RawRowView(i)
			for j := range a {
				r1[j] = ly.Act.Deriv(a[j], z[j])
				r2[j] = ly.Act.Deriv2(a[j], z[j])
			}
		}
	}
	if Y == nil {
		return
	}
	p.net.OutputDelta(p.delta[L], p.t, Y)
	for l := L; l > 0; l-- {
		dp := p.delta[l-1].RawMatrix()
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, p.delta[l].RawMatrix(), weights(p.net, l), 0, dp)
		d1 := p.d1[l-1].RawMatrix()
		for i := 0; i < rows; i++ {
			row := dp.Data[i*dp.Stride : i*dp.Stride+dp.Cols]
			f := d1.Data[i*d1.Stride : i*d1.Stride+d1.Cols]
			for j := range row {
				row[j] *= f[j]
			}
		}
	}
}

// outputCurv writes, for sample i, the out×out second derivative of ℓ with
// respect to the output pre-activations a_L to g (row-major). With gn set it
// writes the Gauss–Newton part only (the f″ term of an MSE output dropped).
//
//	MSE: diag(f′² + (f−y) f″)   (GN: diag(f′²))
//	BCE: diag(p(1−p))
//	CE:  diag(p) − ppᵀ
func (p *pass) outputCurv(g []float64, i int, gn bool) {
	L := len(p.layers) - 1
	out := p.layers[L].Out
	z := p.t.Z[L].RawRowView(i)
	clear(g[:out*out])
	switch p.net.Loss() {
	case nn.MSE:
		y := p.Y.RawRowView(i)
		d1, d2 := p.d1[L].RawRowView(i), p.d2[L].RawRowView(i)
		for k := 0; k < out; k++ {
			v := d1[k] * d1[k]
			if !gn {
				v += (z[k] - y[k]) * d2[k]
			}
			g[k*out+k] = v
		}
	case nn.BCE:
		for k := 0; k < out; k++ {
			g[k*out+k] = z[k] * (1 - z[k])
		}
	case nn.CE:
		for k := 0; k < out; k++ {
			for h := 0; h < out; h++ {
				g[k*out+h] = -z[k] * z[h]
			}
			g[k*out+k] += z[k]
		}
	}
}

// outputFactor writes, for sample i, a matrix B (r×out, row-major) with
// BᵀB equal to the Gauss–Newton output curvature, and returns r.
//
//	MSE: diag(f′);  BCE: diag(√(p(1−p)));  CE: (I − uuᵀ) diag(u), u = √p.
func (p *pass) outputFactor(b []float64, i int) int {
	L := len(p.layers) - 1
	out := p.layers[L].Out
	z := p.t.Z[L].RawRowView(i)
	clear(b[:out*out])
	switch p.net.Loss() {
	case nn.MSE:
		d1 := p.d1[L].RawRowView(i)
		for k := 0; k < out; k++ {
			b[k*out+k] = d1[k]
		}
	case nn.BCE:
		for k := 0; k < out; k++ {
			b[k*out+k] = sqrt(z[k] * (1 - z[k]))
		}
	case nn.CE:
		for k := 0; k < out; k++ {
			uk := sqrt(z[k])
			for h := 0; h < out; h++ {
				uh := sqrt(z[h])
				v := -uk * uh * uh
				if h == k {
					v += uh
				}
				b[k*out+h] = v
			}
		}
	}
	return out
}
