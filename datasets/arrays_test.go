package datasets

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// npy returns an .npy file of format 1.0 with the given dtype, order, shape
// and raw data.
func npy(descr string, fortran bool, shape []int, data []byte) []byte {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	sh := strings.Join(s, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	f := "False"
	if fortran {
		f = "True"
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }", descr, f, sh)
	h += strings.Repeat(" ", (64-(10+len(h)+1)%64)%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	return append(append(b, h...), data...)
}

func le32(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
	}
	return b
}

func be64(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func i64(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

// npzBytes returns an .npz archive of the .npy files named by key.
func npzBytes(entries ...any) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		w, _ := zw.Create(entries[i].(string) + ".npy")
		w.Write(entries[i+1].([]byte))
	}
	zw.Close()
	return buf.Bytes()
}

func TestArrays(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "digits.npz")
	data := npzBytes(
		"X", npy("<f4", false, []int{3, 1, 2}, le32(0.5, 1, 2, 3, -1, 0.25)),
		"y", npy("<i8", false, []int{3}, i64(0, 2, 1)),
		"X_test", npy(">f8", true, []int{2, 2}, be64(1, 3, 2, 4)),
		"y_test", npy("|u1", false, []int{2}, []byte{3, 0}),
	)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 3 || s.Train.Inputs() != 2 || s.Train.Classes != 4 || s.Test.Classes != 4 || s.Loss != "ce" || s.Valid.X != nil {
		t.Fatalf("splits %+v %+v", s.Train, s.Test)
	}
	if got := s.Train.X.RawMatrix().Data; fmt.Sprint(got) != "[0.5 1 2 3 -1 0.25]" {
		t.Errorf("X %v", got)
	}
	if got := s.Test.X.RawMatrix().Data; fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("X_test %v (Fortran order)", got)
	}
	if got := s.Test.Y.RawMatrix().Data; fmt.Sprint(got) != "[3 0]" {
		t.Errorf("y_test %v", got)
	}
	if _, err := Load(path, &Options{ValidFraction: 0.5}); err != nil {
		t.Errorf("valid fraction: %v", err)
	}

	// Regression targets, and a directory of .npy files.
	npyDir := filepath.Join(dir, "reg")
	os.Mkdir(npyDir, 0o755)
	os.WriteFile(filepath.Join(npyDir, "X.npy"), npy("<f4", false, []int{2, 1}, le32(1, 2)), 0o644)
	os.WriteFile(filepath.Join(npyDir, "y.npy"), npy("<f4", false, []int{2, 2}, le32(0.5, 1, 1.5, 2)), 0o644)
	os.WriteFile(filepath.Join(npyDir, "X_valid.npy"), npy("<f4", false, []int{1, 1}, le32(3)), 0o644)
	os.WriteFile(filepath.Join(npyDir, "y_valid.npy"), npy("<f4", false, []int{1, 2}, le32(3, 4)), 0o644)
	s, err = Load(npyDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Targets() != 2 || s.Train.Classes != 0 || s.Valid.Len() != 1 || s.Test.X != nil || s.Loss != "mse" {
		t.Errorf("regression splits %+v", s)
	}
	if _, err := Load(npyDir, &Options{ValidFraction: 0.5}); err == nil || !strings.Contains(err.Error(), "a validation set is given") {
		t.Errorf("valid fraction with X_valid: %v", err)
	}

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown key", npzBytes("X", npy("<f4", false, []int{1, 1}, le32(1)), "y", npy("<i8", false, []int{1}, i64(0)), "labels", npy("<i8", false, []int{1}, i64(0))), "labels: unknown array"},
		{"no y", npzBytes("X", npy("<f4", false, []int{1, 1}, le32(1))), "X: without y"},
		{"no X_test", npzBytes("X", npy("<f4", false, []int{1, 1}, le32(1)), "y", npy("<i8", false, []int{1}, i64(0)), "y_test", npy("<i8", false, []int{1}, i64(0))), "y_test: without X_test"},
		{"rows", npzBytes("X", npy("<f4", false, []int{2, 1}, le32(1, 2)), "y", npy("<i8", false, []int{1}, i64(0))), "y: shape [1]: want (2,)"},
		{"nan", npzBytes("X", npy("<f4", false, []int{2, 1}, le32(1, math.NaN())), "y", npy("<i8", false, []int{2}, i64(0, 1))), "X[1]: NaN is not a finite number"},
		{"label", npzBytes("X", npy("<f4", false, []int{1, 1}, le32(1)), "y", npy("<i8", false, []int{1}, i64(-1))), "y[0]: -1 is not a class label"},
		{"inputs", npzBytes("X", npy("<f4", false, []int{1, 1}, le32(1)), "y", npy("<i8", false, []int{1}, i64(0)), "X_test", npy("<f4", false, []int{1, 2}, le32(1, 2)), "y_test", npy("<i8", false, []int{1}, i64(0))), "2 inputs"},
		{"dtype", npzBytes("X", npy("<c16", false, []int{1}, make([]byte, 16)), "y", npy("<i8", false, []int{1}, i64(0))), "unsupported dtype <c16"},
		{"short", npzBytes("X", npy("<f4", false, []int{2, 1}, le32(1)), "y", npy("<i8", false, []int{2}, i64(0, 1))), "needs 8 bytes of data, the file holds 4"},
		{"not zip", []byte("X,y\n1,0\n"), "not an .npz archive"},
	} {
		p := filepath.Join(dir, "bad.npz")
		os.WriteFile(p, c.data, 0o644)
		_, err := Load(p, nil)
		if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %s: …%s…", c.name, err, p, c.want)
		}
	}
}

func TestCSVTest(t *testing.T) {
	dir := t.TempDir()
	train, test := filepath.Join(dir, "a.csv"), filepath.Join(dir, "a_test.csv")
	os.WriteFile(train, []byte("x1,x2,y\n1,2,0\n3,4,1\n"), 0o644)
	os.WriteFile(test, []byte("x1,x2,y\n5,6,2\n"), 0o644)
	s, err := Load(train, &Options{Test: test, Classes: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Test.X == nil || s.Test.Len() != 1 || s.Train.Classes != 3 || s.Test.Classes != 3 || s.Test.Name != "a/test" {
		t.Fatalf("test split %+v", s.Test)
	}
	os.WriteFile(test, []byte("5,6,7,2\n"), 0o644)
	if _, err := Load(train, &Options{Test: test, Classes: true}); err == nil || !strings.Contains(err.Error(), test+": 3 inputs") {
		t.Errorf("error %v", err)
	}
}

func FuzzReadArrays(f *testing.F) {
	f.Add(npzBytes("X", npy("<f4", false, []int{3, 1, 2}, le32(0.5, 1, 2, 3, -1, 0.25)), "y", npy("<i8", false, []int{3}, i64(0, 2, 1))))
	f.Add(npzBytes("X", npy(">f8", true, []int{2, 2}, be64(1, 3, 2, 4)), "y", npy("|u1", false, []int{2}, []byte{3, 0})))
	f.Fuzz(func(t *testing.T, b []byte) {
		arrays, err := readBytesNPZ(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.npz") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for k, a := range arrays {
			n := 1
			for _, d := range a.shape {
				n *= d
			}
			if n != len(a.data) {
				t.Fatalf("%s: shape %v, %d values", k, a.shape, len(a.data))
			}
		}
	})
}
