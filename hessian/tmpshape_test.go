package hessian

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

func BenchmarkTmpShape(b *testing.B) {
	for _, s := range [][4]int{{201, 256, 2601, 0}, {64, 256, 2601, 0}, {1024, 256, 2601, 0}, {256, 256, 5000, 1}, {2601, 256, 1024, 0}, {2000, 2000, 2000, 0}} {
		b.Run(fmt.Sprint(s), func(b *testing.B) {
			m, k, n := s[0], s[1], s[2]
			A := blas64.General{Rows: m, Cols: k, Stride: k, Data: make([]float64, m*k)}
			B := blas64.General{Rows: k, Cols: n, Stride: n, Data: make([]float64, k*n)}
			tb := blas.NoTrans
			if s[3] == 1 {
				B = blas64.General{Rows: n, Cols: k, Stride: k, Data: make([]float64, k*n)}
				tb = blas.Trans
			}
			for i := range A.Data {
				A.Data[i] = float64(i%7) - 3
			}
			for i := range B.Data {
				B.Data[i] = float64(i%5) - 2
			}
			C := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				blas64.Gemm(blas.NoTrans, tb, 1, A, B, 1, C)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
