package hessian

import (
	"context"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/parallel"
)

// Fisher is the empirical Fisher matrix F = Σₙ gₙ gₙᵀ, gₙ = ∇ℓₙ, positive
// semi-definite; near a minimum of a well-specified model it approaches
// GaussNewton, elsewhere it can be far from it.
type Fisher struct {
	P *Problem
}

// Dim returns the number of parameters covered.
func (f Fisher) Dim() int { return f.P.Dim() }

// gradients fills rows i of G (nr × W) with the per-sample gradients of the
// last run of p.
func perSampleGradients(p *pass, G []float64) {
	net := p.net
	W := net.NumParams()
	for i := 0; i < p.rows; i++ {
		row := G[i*W : (i+1)*W]
		for l, ly := range p.layers {
			z := p.input(l).RawRowView(i)
			d := p.delta[l].RawRowView(i)
			o := net.Offset(l)
			for j, dj := range d {
				seg := row[o+j*ly.In : o+(j+1)*ly.In]
				for h, zv := range z {
					seg[h] = dj * zv
				}
				row[o+ly.Out*ly.In+j] = dj
			}
		}
	}
}

// DenseTo builds F into dst (Dim×Dim).
func (f Fisher) DenseTo(ctx context.Context, dst *mat.SymDense) error {
	pr := f.P
	if dst.SymmetricDim() != pr.Dim() {
		panic("hessian: destination has the wrong size")
	}
	if err := pr.Check(); err != nil {
		return err
	}
	W := pr.Net.NumParams()
	k := pr.Dim()
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	p := newPass(pr.Net, rows)
	G := make([]float64, rows*W)
	at := make([]float64, rows*k)
	c := rawUpper(dst)
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		nr := hi - lo
		p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
		perSampleGradients(p, G)
		if !pr.all() {
			for r := 0; r < nr; r++ {
				for a, q := range pr.Params {
					G[r*k+a] = G[r*W+q]
				}
			}
		}
		transposeTo(at, G[:nr*k], nr, k)
		rankK(c, blas64.General{Rows: k, Cols: nr, Stride: nr, Data: at[:k*nr]}, blas64.General{Rows: nr, Cols: k, Stride: k, Data: G[:nr*k]})
	}
	return nil
}

// DiagTo writes the diagonal of F, Σₙ gₙ², to dst.
func (f Fisher) DiagTo(ctx context.Context, dst []float64) error {
	pr := f.P
	if err := pr.Check(); err != nil {
		return err
	}
	W := pr.Net.NumParams()
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	p := newPass(pr.Net, rows)
	G := make([]float64, rows*W)
	full := make([]float64, W)
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
		perSampleGradients(p, G)
		for r := 0; r < hi-lo; r++ {
			for q, g := range G[r*W : (r+1)*W] {
				full[q] += g * g
			}
		}
	}
	pr.gather(dst, full)
	return nil
}

// MulVecTo sets dst = F v without forming F or the per-sample gradients.
func (f Fisher) MulVecTo(dst, v []float64) {
	// gₙᵀv = Σ_l δ_lᵀ (V_l z_{l−1} + v_b), then F v = Σₙ gₙ (gₙᵀv) is one
	// more back-propagation-shaped product.
	pr := f.P
	if len(dst) != pr.Dim() || len(v) != pr.Dim() {
		panic("hessian: vector length mismatch")
	}
	net := pr.Net
	W := net.NumParams()
	full := make([]float64, W)
	pr.scatter(full, v)
	N, _ := pr.X.Dims()
	blocks := parallel.Blocks(N)
	parts := make([][]float64, len(blocks))
	parallel.ForBlocks(blocks, func(b int, chunks [][2]int) {
		p := newPass(net, parallel.ChunkRows)
		g := make([]float64, W)
		s := make([]float64, parallel.ChunkRows)
		var tmp []*mat.Dense
		for _, ly := range p.layers {
			tmp = append(tmp, mat.NewDense(parallel.ChunkRows, ly.Out, nil))
		}
		for _, ch := range chunks {
			p.run(rowsOf(pr.X, ch[0], ch[1]), rowsOf(pr.Y, ch[0], ch[1]))
			rows := p.rows
			clear(s[:rows])
			for l, ly := range p.layers {
				o := net.Offset(l)
				V := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: full[o : o+ly.Out*ly.In]}
				t := head(tmp[l], rows)
				blas64.Gemm(blas.NoTrans, blas.Trans, 1, p.input(l).RawMatrix(), V, 0, t.RawMatrix())
				vb := full[o+ly.Out*ly.In : o+ly.NumParams()]
				for i := 0; i < rows; i++ {
					tr, d := t.RawRowView(i), p.delta[l].RawRowView(i)
					for j := range tr {
						s[i] += d[j] * (tr[j] + vb[j])
					}
				}
			}
			for l, ly := range p.layers {
				o := net.Offset(l)
				t := head(tmp[l], rows)
				for i := 0; i < rows; i++ {
					tr, d := t.RawRowView(i), p.delta[l].RawRowView(i)
					for j := range tr {
						tr[j] = s[i] * d[j]
					}
				}
				gW := blas64.General{Rows: ly.Out, Cols: ly.In, Stride: ly.In, Data: g[o : o+ly.Out*ly.In]}
				blas64.Gemm(blas.Trans, blas.NoTrans, 1, t.RawMatrix(), p.input(l).RawMatrix(), 1, gW)
				gb := g[o+ly.Out*ly.In : o+ly.NumParams()]
				for i := 0; i < rows; i++ {
					for j, x := range t.RawRowView(i) {
						gb[j] += x
					}
				}
			}
		}
		parts[b] = g
	})
	pr.gather(dst, sumParts(parts))
}
