package hessian

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// pairTile is the largest number of unit pairs (j, k) of one product of
// kronBlock; a variable so that tests can exercise the tiling on small
// networks.
var pairTile = 1024

// kronWork holds the buffers of kronBlock, reused over layers and chunks.
type kronWork struct {
	xt, zt []float64 // N × (in+1) layer inputs with a trailing 1
	r      []float64 // N × (il+1)(im+1) products x̃[i]·z̃[h]
	kt     []float64 // pairs × N coefficients
	t      []float64 // pairs × (il+1)(im+1) results
	et     []float64 // pairs × N coefficients of the residual term
	u      []float64 // pairs × (il+1) residual results
}

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// extend writes the rows of z (nr × c, stride zs) with a trailing 1 to dst
// (nr × (c+1)).
func extend(dst []float64, z []float64, zs, nr, c int) {
	for n := 0; n < nr; n++ {
		row := dst[n*(c+1) : (n+1)*(c+1)]
		copy(row, z[n*zs:n*zs+c])
		row[c] = 1
	}
}

// outerRows writes row n of dst (nr × a·b) as the outer product of row n
// of x (nr × a) and row n of z (nr × b), x[i]·z[h] at i·b+h.
func outerRows(dst, x, z []float64, nr, a, b int) {
	for n := 0; n < nr; n++ {
		xr := x[n*a : (n+1)*a]
		zr := z[n*b : (n+1)*b]
		row := dst[n*a*b : (n+1)*a*b]
		for i, xv := range xr {
			seg := row[i*b : (i+1)*b]
			for h, zv := range zr {
				seg[h] = xv * zv
			}
		}
	}
}

// kronBlock adds the block of H (or with gn of the Gauss–Newton matrix)
// between the parameters of layers l and m = l or l+1 over the nr samples
// of the last pass to out, the upper triangle of the full-order matrix.
//
// With x̃ and z̃ the inputs of layers l and m extended by 1 for the biases,
// and K = ∂δ_m/∂a_l (K = G_l when m = l), the block is
//
//	H[(l,j,i),(m,k,h)] = Σₙ K[k][j] x̃[i] z̃[h] + [h = j] Σₙ x̃[i] δ_m[k] f′_l[j],
//
// the second term for m = l+1 and the exact Hessian only. For each pair of
// units (j, k) the first term is an (il+1)×(im+1) matrix, and all of them
// come from one matrix product over the samples,
//
//	T[(j,k), (i,h)] = Σₙ K[k][j] · (x̃ ⊗ z̃)[i,h],
//
// whose inner dimension is the number of samples and whose outer
// dimensions are the number of unit pairs and (il+1)(im+1): large enough
// for the BLAS's full matrix-multiply rate. For m = l only the pairs j ≤ k
// are formed. The rows of T are then added into H as contiguous runs.
func (p *pass) kronBlock(w *kronWork, s *second, out blas64.General, l, m int, gn bool) {
	net := p.net
	nr := p.rows
	ly, lm := p.layers[l], p.layers[m]
	ol, il, om, im := ly.Out, ly.In, lm.Out, lm.In
	il1, im1 := il+1, im+1
	cols := il1 * im1
	zl := p.input(l).RawMatrix()
	w.xt = grow(w.xt, nr*il1)
	extend(w.xt, zl.Data, zl.Stride, nr, il)
	x := w.xt
	z := x
	if m != l {
		zm := p.input(m).RawMatrix()
		w.zt = grow(w.zt, nr*im1)
		extend(w.zt, zm.Data, zm.Stride, nr, im)
		z = w.zt
	}
	w.r = grow(w.r, nr*cols)
	outerRows(w.r, x, z, nr, il1, im1)
	R := blas64.General{Rows: nr, Cols: cols, Stride: cols, Data: w.r}
	Xb := blas64.General{Rows: nr, Cols: il1, Stride: il1, Data: x}
	// K per sample: om × ol.
	var K []float64
	if m == l {
		K = s.G[l]
	} else {
		K = s.k
		for n := 0; n < nr; n++ {
			g := blas64.General{Rows: om, Cols: om, Stride: om, Data: s.G[m][n*om*om : (n+1)*om*om]}
			pm := blas64.General{Rows: om, Cols: ol, Stride: ol, Data: s.P[m][l][n*om*ol : (n+1)*om*ol]}
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, g, pm, 0, blas64.General{Rows: om, Cols: ol, Stride: ol, Data: K[n*om*ol : (n+1)*om*ol]})
		}
	}
	residual := !gn && m == l+1
	// The pairs (j, k) in order: j ≤ k for m = l, all for m = l+1.
	offL, offM := net.Offset(l), net.Offset(m)
	tile := max(1, min(pairTile, max(64, (1<<22)/cols)))
	w.kt = grow(w.kt, tile*nr)
	w.t = grow(w.t, tile*cols)
	if residual {
		w.et = grow(w.et, tile*nr)
		w.u = grow(w.u, tile*il1)
	}
	pj := make([]int32, 0, tile)
	pk := make([]int32, 0, tile)
	flush := func() {
		np := len(pj)
		if np == 0 {
			return
		}
		for n := 0; n < nr; n++ {
			kk := K[n*om*ol : (n+1)*om*ol]
			for q := 0; q < np; q++ {
				w.kt[q*nr+n] = kk[int(pk[q])*ol+int(pj[q])]
			}
		}
		Kt := blas64.General{Rows: np, Cols: nr, Stride: nr, Data: w.kt}
		T := blas64.General{Rows: np, Cols: cols, Stride: cols, Data: w.t}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, Kt, R, 0, T)
		if residual {
			dm := p.delta[m].RawMatrix()
			d1 := p.d1[l].RawMatrix()
			for n := 0; n < nr; n++ {
				dr := dm.Data[n*dm.Stride:]
				fr := d1.Data[n*d1.Stride:]
				for q := 0; q < np; q++ {
					w.et[q*nr+n] = dr[pk[q]] * fr[pj[q]]
				}
			}
			Et := blas64.General{Rows: np, Cols: nr, Stride: nr, Data: w.et}
			U := blas64.General{Rows: np, Cols: il1, Stride: il1, Data: w.u}
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, Et, Xb, 0, U)
			for q := 0; q < np; q++ {
				t := w.t[q*cols : (q+1)*cols]
				j := int(pj[q])
				for i, uv := range w.u[q*il1 : (q+1)*il1] {
					t[i*im1+j] += uv
				}
			}
		}
		// Distinct pairs add to distinct entries of H, so that the pairs
		// can be added in parallel.
		forRanges(np, func(q0, q1 int) {
			for q := q0; q < q1; q++ {
				j, k := int(pj[q]), int(pk[q])
				t := w.t[q*cols : (q+1)*cols]
				addPair(out, t, offL, offM, ol, il, om, im, j, k, m == l)
			}
		})
		pj, pk = pj[:0], pk[:0]
	}
	for j := 0; j < ol; j++ {
		k0 := 0
		if m == l {
			k0 = j
		}
		for k := k0; k < om; k++ {
			pj = append(pj, int32(j))
			pk = append(pk, int32(k))
			if len(pj) == tile {
				flush()
			}
		}
	}
	flush()
}

// forRanges calls fn on up to GOMAXPROCS disjoint ranges covering [0, n).
func forRanges(n int, fn func(lo, hi int)) {
	p := min(runtime.GOMAXPROCS(0), n/16)
	if p <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for g := 0; g < p; g++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(g*n/p, (g+1)*n/p)
	}
	wg.Wait()
}

// kronPool keeps kronWork buffers between builds.
var kronPool = sync.Pool{New: func() any { return new(kronWork) }}

// useKron reports whether kronBlock should build the block of layers l and
// m: when it has enough unit pairs for a large matrix product.
func (p *pass) useKron(l, m int) bool {
	if m > l+1 {
		return false
	}
	ol, om := p.layers[l].Out, p.layers[m].Out
	pairs := ol * om
	if m == l {
		pairs = ol * (ol + 1) / 2
	}
	return pairs >= minKronPairs
}

// minKronPairs is the fewest unit pairs for which kronBlock is used; a
// variable so that tests can exercise both paths.
var minKronPairs = 64

// addPair adds the (il+1)×(im+1) matrix t of the unit pair (j, k) to the
// upper triangle of out: entry [i][h] belongs at row (l, j, i) and column
// (m, k, h), index il or im standing for the bias. For a diagonal block
// (diag) j ≤ k, and entries whose place falls below the diagonal go to the
// mirrored place, which is the entry of the pair (k, j).
func addPair(out blas64.General, t []float64, offL, offM, ol, il, om, im, j, k int, diag bool) {
	im1 := im + 1
	S := out.Stride
	bl := offL + ol*il // first bias row of layer l
	bm := offM + om*im // first bias column of layer m
	if !diag {
		for i := 0; i < il; i++ {
			r := offL + j*il + i
			dst := out.Data[r*S+offM+k*im : r*S+offM+k*im+im]
			src := t[i*im1 : i*im1+im]
			for h, v := range src {
				dst[h] += v
			}
			out.Data[r*S+bm+k] += t[i*im1+im]
		}
		r := bl + j
		dst := out.Data[r*S+offM+k*im : r*S+offM+k*im+im]
		for h, v := range t[il*im1 : il*im1+im] {
			dst[h] += v
		}
		out.Data[r*S+bm+k] += t[il*im1+im]
		return
	}
	// Diagonal block: il = im, j ≤ k.
	for i := 0; i < il; i++ {
		r := offL + j*il + i
		h0 := 0
		if j == k {
			h0 = i
		}
		dst := out.Data[r*S+offM+k*im+h0 : r*S+offM+k*im+im]
		for h, v := range t[i*im1+h0 : i*im1+im] {
			dst[h] += v
		}
		// Weight (j, i) with bias k.
		out.Data[r*S+bm+k] += t[i*im1+im]
	}
	if j != k {
		// Bias j with weight (k, h) lies below the diagonal: it is
		// H[(k,h)][b_j], the entry of the pair (k, j).
		for h := 0; h < im; h++ {
			r := offM + k*im + h
			out.Data[r*S+bl+j] += t[il*im1+h]
		}
	}
	out.Data[(bl+j)*S+bm+k] += t[il*im1+im]
}
