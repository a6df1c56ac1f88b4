//go:build !openblas

package blasimpl

const name = "gonum (pure Go)"
