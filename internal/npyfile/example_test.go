package npyfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"codeberg.org/sbinet/npyio"
	"github.com/secondorder/prune/internal/npyfile"
	"gonum.org/v1/gonum/mat"
)

// A symmetric matrix written as a (2, 2) float64 array, both triangles
// filled, and read back.
func Example() {
	dir, err := os.MkdirTemp("", "npyfile")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "h.npy")
	if err := npyfile.WriteSym(path, mat.NewSymDense(2, []float64{1, 2, 2, 3})); err != nil {
		panic(err)
	}
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	var m mat.Dense
	if err := npyio.Read(f, &m); err != nil {
		panic(err)
	}
	fmt.Println(m.RawMatrix().Data)
	// Output:
	// [1 2 2 3]
}
