package npyfile

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/mat"
)

func readMatrix(t *testing.T, path string) *mat.Dense {
	t.Helper()
	var m mat.Dense
	read(t, path, 2, &m)
	return &m
}

func readVector(t *testing.T, path string) []float64 {
	t.Helper()
	var v []float64
	read(t, path, 1, &v)
	return v
}

// read reads a float64 .npy file in C order of the given rank into dst.
func read(t *testing.T, path string, rank int, dst any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Trim(r.Header.Descr.Type, "'") != "<f8" || r.Header.Descr.Fortran || len(r.Header.Descr.Shape) != rank {
		t.Fatalf("%s: header %v, want <f8, C order, rank %d", path, r.Header, rank)
	}
	if err := r.Read(dst); err != nil {
		t.Fatal(err)
	}
}

func TestNPYMatrixRoundTrip(t *testing.T) {
	for _, n := range []int{1, 3, 64, 65, 130} {
		m := mat.NewSymDense(n, nil)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				m.SetSym(i, j, math.Sin(float64(1+i*n+j))*math.Pow(10, float64(j%7)-3))
			}
		}
		// Garbage below the diagonal of the storage must not reach the file.
		raw := m.RawSymmetric()
		for i := 1; i < n; i++ {
			raw.Data[i*raw.Stride] = math.NaN()
		}
		want := mat.NewSymDense(n, nil)
		want.CopySym(m)
		path := filepath.Join(t.TempDir(), "m.npy")
		if err := WriteSym(path, m); err != nil {
			t.Fatal(err)
		}
		got := readMatrix(t, path)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if got.At(i, j) != want.At(i, j) {
					t.Fatalf("n=%d: [%d,%d] = %v, want %v", n, i, j, got.At(i, j), want.At(i, j))
				}
				if m.At(i, j) != want.At(i, j) {
					t.Fatalf("n=%d: writing changed the matrix at [%d,%d]", n, i, j)
				}
			}
		}
	}
}

func TestNPYVectorRoundTrip(t *testing.T) {
	v := []float64{1, -2.5, math.SmallestNonzeroFloat64, math.MaxFloat64, 0, 1e-300}
	path := filepath.Join(t.TempDir(), "v.npy")
	if err := WriteVector(path, v); err != nil {
		t.Fatal(err)
	}
	got := readVector(t, path)
	if len(got) != len(v) {
		t.Fatalf("read %d values, want %d", len(got), len(v))
	}
	for i := range v {
		if got[i] != v[i] {
			t.Errorf("[%d] = %v, want %v", i, got[i], v[i])
		}
	}
}

// TestNPYHeader checks the bytes that NumPy reads: the magic string, a
// version, the header dictionary and the data size.
func TestNPYHeader(t *testing.T) {
	m := mat.NewSymDense(3, []float64{1, 2, 3, 0, 4, 5, 0, 0, 6})
	path := filepath.Join(t.TempDir(), "m.npy")
	if err := WriteSym(path, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		t.Fatalf("no NumPy magic: %q", b[:min(len(b), 10)])
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(b[8])|int(b[9])<<8, 10
	case 2, 3:
		hlen, off = int(b[8])|int(b[9])<<8|int(b[10])<<16|int(b[11])<<24, 12
	default:
		t.Fatalf("version %d.%d", b[6], b[7])
	}
	hdr := string(b[off : off+hlen])
	for _, want := range []string{"'descr': '<f8'", "'fortran_order': False", "'shape': (3, 3)"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("header %q lacks %q", hdr, want)
		}
	}
	if !strings.HasSuffix(hdr, "\n") {
		t.Errorf("header %q does not end in a newline", hdr)
	}
	if got := len(b) - off - hlen; got != 9*8 {
		t.Errorf("%d data bytes, want 72", got)
	}
}
