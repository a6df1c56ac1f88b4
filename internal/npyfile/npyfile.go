// Package npyfile writes float64 vectors and symmetric matrices as NumPy
// .npy files, atomically.
package npyfile

import (
	"io"

	"codeberg.org/sbinet/npyio"
	"github.com/secondorder/prune/internal/atomicfile"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// WriteVector writes v to path as a NumPy .npy file holding a float64
// array of shape (len(v),). The file is written atomically.
func WriteVector(path string, v []float64) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return npyio.Write(w, v)
	})
}

// WriteSym writes the symmetric matrix m to path as a NumPy .npy file
// holding a float64 array of shape (n, n) in C (row-major) order, both
// triangles filled. The file is written atomically.
//
// To avoid a second n×n matrix, WriteSym copies the upper triangle of
// m's storage into the lower one, which a mat.SymDense with upper-triangular
// storage never reads, and writes the storage as a general matrix; m keeps
// its value.
func WriteSym(path string, m *mat.SymDense) error {
	full := fullView(m)
	return atomicfile.Write(path, func(w io.Writer) error {
		return npyio.Write(w, full)
	})
}

// fullView fills the lower triangle of the storage of m from its upper
// triangle and returns that storage as a general n×n matrix. The returned
// matrix shares its data with m.
func fullView(m *mat.SymDense) *mat.Dense {
	raw := m.RawSymmetric()
	if raw.Uplo != blas.Upper {
		// Every mat.SymDense stores its upper triangle; copy otherwise.
		return mat.DenseCopyOf(m)
	}
	n, s, d := raw.N, raw.Stride, raw.Data
	var full mat.Dense
	if n == 0 {
		return &full
	}
	// Tiles keep both the row read and the column written in cache.
	const tile = 64
	for i0 := 0; i0 < n; i0 += tile {
		i1 := min(i0+tile, n)
		for j0 := i0; j0 < n; j0 += tile {
			j1 := min(j0+tile, n)
			for i := i0; i < i1; i++ {
				for j := max(j0, i+1); j < j1; j++ {
					d[j*s+i] = d[i*s+j]
				}
			}
		}
	}
	full.SetRawMatrix(blas64.General{Rows: n, Cols: n, Stride: s, Data: d})
	return &full
}
