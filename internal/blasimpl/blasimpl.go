// Package blasimpl selects the BLAS implementation that every gonum call in
// the toolkit uses. The default build uses gonum's pure-Go BLAS; building
// with -tags openblas links OpenBLAS through gonum.org/v1/netlib's cgo
// binding (Debian: libopenblas-dev).
package blasimpl

// Name returns the BLAS implementation in use: "gonum (pure Go)" or
// "OpenBLAS (netlib cgo)".
func Name() string { return name }
