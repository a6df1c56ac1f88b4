package main

import (
	"os"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/mat"
)

// readNPYMatrix reads a 2-D float64 .npy file.
func readNPYMatrix(t *testing.T, path string) *mat.Dense {
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
	if strings.Trim(r.Header.Descr.Type, "'") != "<f8" || r.Header.Descr.Fortran || len(r.Header.Descr.Shape) != 2 {
		t.Fatalf("%s: header %v, want <f8, C order, 2-D", path, r.Header)
	}
	var m mat.Dense
	if err := r.Read(&m); err != nil {
		t.Fatal(err)
	}
	if rows, cols := m.Dims(); rows != r.Header.Descr.Shape[0] || cols != r.Header.Descr.Shape[1] {
		t.Fatalf("%s: read %d×%d, header shape %v", path, rows, cols, r.Header.Descr.Shape)
	}
	return &m
}

// readNPYVector reads a 1-D float64 .npy file.
func readNPYVector(t *testing.T, path string) []float64 {
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
	if strings.Trim(r.Header.Descr.Type, "'") != "<f8" || r.Header.Descr.Fortran || len(r.Header.Descr.Shape) != 1 {
		t.Fatalf("%s: header %v, want <f8, C order, 1-D", path, r.Header)
	}
	var v []float64
	if err := r.Read(&v); err != nil {
		t.Fatal(err)
	}
	if len(v) != r.Header.Descr.Shape[0] {
		t.Fatalf("%s: read %d values, header shape %v", path, len(v), r.Header.Descr.Shape)
	}
	return v
}
