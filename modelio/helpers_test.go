package modelio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// npyArray returns an .npy file as NumPy writes it: format 1.0, the header
// padded with spaces to a multiple of 64 bytes and ended by a newline.
func npyArray(descr string, fortran bool, shape []int, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, order, shapeString(shape))
	return npyRaw(1, h, data)
}

// npyRaw returns an .npy file of the given major version and header text,
// which it pads as NumPy does.
func npyRaw(major byte, h string, data []byte) []byte {
	pre := 10
	if major != 1 {
		pre = 12
	}
	for (pre+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

// f4 returns v as little-endian float32 bytes.
func f4(v ...float64) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
	}
	return b
}

// f8 returns v as little-endian float64 bytes.
func f8(v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// f8be returns v as big-endian float64 bytes.
func f8be(v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

// entry is one array of an archive.
type entry struct {
	key  string // without .npy
	npy  []byte
	name string // name in the archive; key + ".npy" when empty
}

// arr returns the entry key holding a C-order array of the given dtype
// ("<f4" or "<f8") and shape.
func arr(key, descr string, shape []int, v ...float64) entry {
	data := f8(v...)
	if descr == "<f4" {
		data = f4(v...)
	}
	return entry{key: key, npy: npyArray(descr, false, shape, data)}
}

// savez returns an archive of the entries, uncompressed as np.savez writes
// it.
func savez(entries ...entry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		name := e.name
		if name == "" {
			name = e.key + ".npy"
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			panic(err)
		}
		w.Write(e.npy)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// mlp returns the entries of the state_dict of nn.Sequential(Linear(2, 3),
// Tanh(), Linear(3, 1), Sigmoid()) in the given dtype, with keys prefixed by
// prefix.
func mlp(prefix, descr string) []entry {
	return []entry{
		arr(prefix+"0.weight", descr, []int{3, 2}, 0.5, -1.25, 0.75, 0, -0.5, 2),
		arr(prefix+"0.bias", descr, []int{3}, 0.125, -0.25, 1),
		arr(prefix+"2.weight", descr, []int{1, 3}, 1.5, -2, 0.25),
		arr(prefix+"2.bias", descr, []int{1}, -0.375),
	}
}

// rawArray is one array of an archive as stored.
type rawArray struct {
	descr, order, shape string
	data                []byte
}

var rawHeaderRE = regexp.MustCompile(`^\{'descr': '([^']*)', 'fortran_order': (True|False), 'shape': (\([^)]*\)), \} *\n$`)

// unzip returns the arrays of an archive by key, and the keys in archive
// order.
func unzip(t testing.TB, data []byte) (map[string]rawArray, []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]rawArray)
	var keys []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:6]) != "\x93NUMPY" {
			t.Fatalf("%s: bad magic", f.Name)
		}
		var n, start int
		switch b[6] {
		case 1:
			n, start = int(binary.LittleEndian.Uint16(b[8:])), 10
		case 2:
			n, start = int(binary.LittleEndian.Uint32(b[8:])), 12
		default:
			t.Fatalf("%s: version %d", f.Name, b[6])
		}
		h := rawHeaderRE.FindStringSubmatch(string(b[start : start+n]))
		if h == nil {
			t.Fatalf("%s: header %q", f.Name, b[start:start+n])
		}
		k := strings.TrimSuffix(f.Name, ".npy")
		keys = append(keys, k)
		m[k] = rawArray{descr: h[1], order: h[2], shape: h[3], data: b[start+n:]}
	}
	return m, keys
}

// sameArrays reports the differences between the arrays of two archives,
// ignoring the npy format version and the archive layout.
func sameArrays(t testing.TB, got, want []byte) {
	t.Helper()
	g, gk := unzip(t, got)
	w, wk := unzip(t, want)
	slices.Sort(gk)
	slices.Sort(wk)
	if !slices.Equal(gk, wk) {
		t.Fatalf("keys %v, want %v", gk, wk)
	}
	for _, k := range wk {
		if g[k].descr != w[k].descr || g[k].shape != w[k].shape || g[k].order != w[k].order {
			t.Errorf("%s: %s %s fortran=%s, want %s %s fortran=%s", k, g[k].descr, g[k].shape, g[k].order, w[k].descr, w[k].shape, w[k].order)
		}
		if !bytes.Equal(g[k].data, w[k].data) {
			t.Errorf("%s: data % x, want % x", k, g[k].data, w[k].data)
		}
	}
}
