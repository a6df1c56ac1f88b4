//go:build openblas

package blasimpl

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

const name = "OpenBLAS (netlib cgo)"

func init() { blas64.Use(netlib.Implementation{}) }
