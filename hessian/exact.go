package hessian

import (
	"context"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Exact is the exact Hessian H = ∇²E: MulVecTo by Pearlmutter's R-operator
// (about the cost of two gradients), DenseTo block by block at about the
// cost of the Gauss–Newton build.
type Exact struct {
	P *Problem
}

// The dense build. Parameters of layer l act on ℓ only through a_l, so for
// W_l[j][i] and W_m[k][h] with l ≤ m
//
//	∂²ℓ/∂W_l[j][i]∂W_m[k][h] = z̃_{l−1}[i] ( K_{ml}[k][j] z̃_{m−1}[h] + δ_m[k] F_{m−1,l}[h][j] ),
//
// with K_{ml} = G_m P_{ml} = ∂δ_m/∂a_l, F_{m−1,l} = ∂z_{m−1}/∂a_l (zero when
// m = l) and z̃ the layer input extended by 1 for the bias, in three forms:
//
//   - the parameters of the last two layers (all of them with one hidden
//     layer) in the Gram form of the Gauss–Newton build, with the exact
//     output curvature, plus two sparse terms (gram.go);
//   - the blocks of layers l and m = l, l+1 before them as one matrix
//     product over the unit pairs (j, k) (kron.go);
//   - the remaining blocks, of layers two or more apart, one row strip per
//     unit with the F term folded in.
//
// DiagTo uses the diagonal blocks only: H[(l,j,i),(l,j,i)] = Σₙ G_l[j][j] z̃_{l−1}[i]².

// Dim returns the number of parameters covered.
func (h Exact) Dim() int { return h.P.Dim() }

// colTile is the number of columns of one tile of the dense exact build;
// a variable so that tests can exercise tiling on small networks.
var colTile = 1024

// useGram selects the Gram form for the last two layers of the exact
// build; a variable so that tests can compare it with the block products.
var useGram = true

// DenseTo builds H into dst (Dim×Dim).
func (h Exact) DenseTo(ctx context.Context, dst *mat.SymDense) error {
	return denseBlocks(ctx, h.P, dst, false)
}

// denseBlocks builds the exact Hessian, or with gn the Gauss–Newton matrix,
// by the block formula of Exact.
func denseBlocks(ctx context.Context, pr *Problem, dst *mat.SymDense, gn bool) error {
	if dst.SymmetricDim() != pr.Dim() {
		panic("hessian: destination has the wrong size")
	}
	if err := pr.Check(); err != nil {
		return err
	}
	net := pr.Net
	W := net.NumParams()
	// Blocks are written in the full parameter order: into dst directly
	// when every parameter is covered, else into a W×W scratch matrix that
	// is compacted afterwards.
	var out blas64.General
	if pr.all() {
		out = rawUpper(dst)
	} else {
		if err := CheckMemory("full-order scratch matrix", W, 0); err != nil {
			return err
		}
		out = blas64.General{Rows: W, Cols: W, Stride: W, Data: make([]float64, W*W)}
	}
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	p := newPass(net, rows)
	s := p.newSecond(rows)
	layers := p.layers
	maxIn := 0
	for _, ly := range layers {
		maxIn = max(maxIn, ly.In)
	}
	cbuf := make([]float64, rows*max(colTile, maxIn))
	cbbuf := make([]float64, rows*colTile)
	ztbuf := make([]float64, maxIn*rows)
	gw := gramPool.Get().(*gramWork)
	defer gramPool.Put(gw)
	kw := kronPool.Get().(*kronWork)
	defer kronPool.Put(kw)
	ones := make([]float64, rows)
	for i := range ones {
		ones[i] = 1
	}
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		nr := hi - lo
		p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
		p.computeG(s, gn)
		p.computeP(s)
		// The last two layers' parameters by the Gram form, the
		// others' rows by Kronecker products and column strips.
		first := len(layers)
		if useGram {
			first = gramFirst(len(layers))
			p.gramBlock(gw, s, out, first, gn)
			if !gn && first < len(layers)-1 {
				p.gramResidual(kw, out)
			}
		}
		for l := range first {
			ol, il := layers[l].Out, layers[l].In
			// Zᵀ of the layer input: general products without a
			// transposed operand run fastest in pure-Go BLAS.
			zr := p.input(l).RawMatrix()
			zt := blas64.General{Rows: il, Cols: nr, Stride: nr, Data: ztbuf[:il*nr]}
			for i := 0; i < nr; i++ {
				for c, v := range zr.Data[i*zr.Stride : i*zr.Stride+il] {
					zt.Data[c*nr+i] = v
				}
			}
			for m := l; m < len(layers); m++ {
				if p.useKron(l, m) {
					p.kronBlock(kw, s, out, l, m, gn)
					continue
				}
				om, im := layers[m].Out, layers[m].In
				zm := p.input(m).RawMatrix()
				var K []float64 // per sample om×ol
				if m == l {
					K = s.G[m]
				} else {
					K = make([]float64, nr*om*ol)
					for i := 0; i < nr; i++ {
						g := blas64.General{Rows: om, Cols: om, Stride: om, Data: s.G[m][i*om*om : (i+1)*om*om]}
						pm := blas64.General{Rows: om, Cols: ol, Stride: ol, Data: s.P[m][l][i*om*ol : (i+1)*om*ol]}
						blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, g, pm, 0, blas64.General{Rows: om, Cols: ol, Stride: ol, Data: K[i*om*ol : (i+1)*om*ol]})
					}
				}
				// F_{m−1,l}[h][j] = f′_{m−1}[h] P_{m−1,l}[h][j], or f′_l[h] δ_hj when m−1 = l.
				residual := !gn && m > l
				// Columns are processed in tiles of units k of layer m so
				// that each tile of C stays in cache between its fill and
				// its product.
				tile := max(1, colTile/im)
				cb := blas64.General{Rows: nr, Cols: 0, Stride: tile, Data: cbbuf}
				for j := 0; j < ol; j++ {
					r0 := net.Offset(l) + j*il
					rb := net.Offset(l) + ol*il + j
					for k0 := 0; k0 < om; k0 += tile {
						k1 := min(k0+tile, om)
						nk := k1 - k0
						// Tiles left of unit j in a diagonal block lie below
						// the diagonal but for their bias columns.
						biasOnly := m == l && k1 <= j
						if biasOnly {
							for i := 0; i < nr; i++ {
								kk := K[i*om*ol : (i+1)*om*ol]
								brow := cb.Data[i*nk : (i+1)*nk]
								for k := k0; k < k1; k++ {
									brow[k-k0] = kk[k*ol+j]
								}
							}
							cb.Cols, cb.Stride = nk, nk
							cb0 := net.Offset(m) + om*im + k0
							blk := blas64.General{Rows: il, Cols: nk, Stride: out.Stride, Data: out.Data[r0*out.Stride+cb0:]}
							blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, zt, cb, 1, blk)
							blas64.Gemv(blas.Trans, 1, cb, blas64.Vector{N: nr, Inc: 1, Data: ones[:nr]}, 1, blas64.Vector{N: nk, Inc: 1, Data: out.Data[rb*out.Stride+cb0:]})
							continue
						}
						cw := blas64.General{Rows: nr, Cols: nk * im, Stride: nk * im, Data: cbuf[:nr*nk*im]}
						cb.Cols, cb.Stride = nk, nk
						for i := 0; i < nr; i++ {
							crow := cw.Data[i*cw.Stride : (i+1)*cw.Stride]
							brow := cb.Data[i*nk : (i+1)*nk]
							z := zm.Data[i*zm.Stride : i*zm.Stride+im]
							kk := K[i*om*ol : (i+1)*om*ol]
							for k := k0; k < k1; k++ {
								c := kk[k*ol+j]
								seg := crow[(k-k0)*im : (k-k0+1)*im]
								for hh, zv := range z {
									seg[hh] = c * zv
								}
								brow[k-k0] = c
							}
							if !residual {
								continue
							}
							dm := p.delta[m].RawRowView(i)
							d1 := p.d1[m-1].RawRowView(i)
							if m-1 == l {
								// F[h][j] = f′_l[j] δ_hj: only column h = j.
								f := d1[j]
								for k := k0; k < k1; k++ {
									crow[(k-k0)*im+j] += dm[k] * f
								}
								continue
							}
							pp := s.P[m-1][l][i*im*ol : (i+1)*im*ol]
							for k := k0; k < k1; k++ {
								seg := crow[(k-k0)*im : (k-k0+1)*im]
								dk := dm[k]
								for hh := range seg {
									seg[hh] += dk * d1[hh] * pp[hh*ol+j]
								}
							}
						}
						cw0 := net.Offset(m) + k0*im
						cb0 := net.Offset(m) + om*im + k0
						blk := blas64.General{Rows: il, Cols: nk * im, Stride: out.Stride, Data: out.Data[r0*out.Stride+cw0:]}
						blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, zt, cw, 1, blk)
						blk = blas64.General{Rows: il, Cols: nk, Stride: out.Stride, Data: out.Data[r0*out.Stride+cb0:]}
						blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, zt, cb, 1, blk)
						one := blas64.Vector{N: nr, Inc: 1, Data: ones[:nr]}
						blas64.Gemv(blas.Trans, 1, cw, one, 1, blas64.Vector{N: nk * im, Inc: 1, Data: out.Data[rb*out.Stride+cw0:]})
						blas64.Gemv(blas.Trans, 1, cb, one, 1, blas64.Vector{N: nk, Inc: 1, Data: out.Data[rb*out.Stride+cb0:]})
					}
				}
			}
		}
	}
	if !pr.all() {
		dst.CopySym(pr.compact(out.Data))
	}
	return nil
}

// DiagTo writes the exact diagonal of H to dst.
func (h Exact) DiagTo(ctx context.Context, dst []float64) error {
	if gnIsExact(h.P.Net) {
		return gnDiagTo(ctx, h.P, dst)
	}
	return diagFromG(ctx, h.P, dst, false)
}

func diagFromG(ctx context.Context, pr *Problem, dst []float64, gn bool) error {
	if err := pr.Check(); err != nil {
		return err
	}
	net := pr.Net
	full := make([]float64, net.NumParams())
	N, _ := pr.X.Dims()
	rows := min(N, parallel.ChunkRows)
	p := newPass(net, rows)
	s := p.newSecond(rows)
	for lo := 0; lo < N; lo += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+rows, N)
		p.run(rowsOf(pr.X, lo, hi), rowsOf(pr.Y, lo, hi))
		p.computeG(s, gn)
		for l, ly := range p.layers {
			z := p.input(l)
			o := net.Offset(l)
			for i := 0; i < hi-lo; i++ {
				g := s.G[l][i*ly.Out*ly.Out:]
				zr := z.RawRowView(i)
				for j := 0; j < ly.Out; j++ {
					gjj := g[j*ly.Out+j]
					row := full[o+j*ly.In : o+(j+1)*ly.In]
					for k, zv := range zr {
						row[k] += gjj * zv * zv
					}
					full[o+ly.Out*ly.In+j] += gjj
				}
			}
		}
	}
	pr.gather(dst, full)
	return nil
}
