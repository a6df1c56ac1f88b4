package hessian

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// syrkBlock is the tile size of rankK.
const syrkBlock = 256

// rankK adds A B to the upper triangle of c (k×k, row-major with stride
// c.Stride), A being k×r and B r×k with A B symmetric: B = Aᵀ, or Aᵀ with
// its rows scaled (Aᵀ S, S diagonal). It works in row tiles with general
// matrix products without a transposed operand, which run at the BLAS's
// full matrix-multiply rate (pure-Go Dsyrk does not), and touches only
// tiles on or above the diagonal.
func rankK(c, a, b blas64.General) {
	k := a.Rows
	for i0 := 0; i0 < k; i0 += syrkBlock {
		i1 := min(i0+syrkBlock, k)
		ai := blas64.General{Rows: i1 - i0, Cols: a.Cols, Stride: a.Stride, Data: a.Data[i0*a.Stride:]}
		bj := blas64.General{Rows: b.Rows, Cols: k - i0, Stride: b.Stride, Data: b.Data[i0:]}
		ct := blas64.General{Rows: i1 - i0, Cols: k - i0, Stride: c.Stride, Data: c.Data[i0*c.Stride+i0:]}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, ai, bj, 1, ct)
	}
}

// transposeTo writes the transpose of the rows×cols matrix src (stride
// cols) to dst (cols×rows, stride rows).
func transposeTo(dst, src []float64, rows, cols int) {
	const b = 32
	for i0 := 0; i0 < rows; i0 += b {
		i1 := min(i0+b, rows)
		for j0 := 0; j0 < cols; j0 += b {
			j1 := min(j0+b, cols)
			for i := i0; i < i1; i++ {
				row := src[i*cols : i*cols+cols]
				for j := j0; j < j1; j++ {
					dst[j*rows+i] = row[j]
				}
			}
		}
	}
}

// rawUpper returns the storage of dst as a general matrix and zeroes it.
func rawUpper(dst *mat.SymDense) blas64.General {
	r := dst.RawSymmetric()
	if r.Uplo != blas.Upper {
		panic("hessian: destination must be upper-triangular storage")
	}
	g := blas64.General{Rows: r.N, Cols: r.N, Stride: r.Stride, Data: r.Data}
	for i := 0; i < r.N; i++ {
		clear(r.Data[i*r.Stride+i : i*r.Stride+r.N])
	}
	return g
}
