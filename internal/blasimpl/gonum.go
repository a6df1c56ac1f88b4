//go:build !openblas

package blasimpl

func name() string    { return "gonum (pure Go)" }
func core() string    { return "" }
func warning() string { return "" }
