package datasets

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// The arrays of a data file (.npz, or a directory of .npy files): inputs X
// and targets y of the training set, and of the optional test and
// validation sets.
var arrayNames = []string{"X", "y", "X_test", "y_test", "X_valid", "y_valid"}

// maxArrayRatio bounds the ratio of the size of an array to the bytes that
// hold it: deflate compresses by at most 1032:1.
const maxArrayRatio = 1032

// maxArrayElems bounds the number of elements of one array.
const maxArrayElems = 1 << 31

// npyHeaderRE matches the header dictionary of an .npy file as NumPy
// writes it.
var npyHeaderRE = regexp.MustCompile(`^\{'descr': '([<>|=]?[a-z][0-9]+)', 'fortran_order': (True|False), 'shape': \(((?:[0-9]{1,12}, )*[0-9]{1,12},?)?\), \} *\n$`)

// npyArray is a decoded .npy array, values in C order.
type npyArray struct {
	kind  byte // 'f' float, 'i' signed, 'u' unsigned, 'b' bool
	shape []int
	data  []float64
}

// isArrayPath reports whether name names a data file of arrays: an .npz
// file or a directory (of .npy files).
func isArrayPath(name string) bool {
	if strings.EqualFold(filepath.Ext(name), ".npz") {
		return true
	}
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// loadArrays returns the splits of the data file path: an .npz archive, as
// np.savez("data.npz", X=X, y=y, X_test=…, y_test=…) writes it, or a
// directory holding X.npy, y.npy and the others as np.save writes them.
func loadArrays(path string, o *Options) (*nn.Splits, error) {
	arrays, err := readArrayFile(path)
	if err != nil {
		return nil, err
	}
	for k := range arrays {
		if !slices.Contains(arrayNames, k) {
			return nil, &FormatError{File: path, Field: k, Msg: "unknown array; want X, y and optionally X_test, y_test, X_valid, y_valid"}
		}
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s := &nn.Splits{}
	sets := []struct {
		suffix, split string
		dst           *nn.Data
	}{{"", "train", &s.Train}, {"_test", "test", &s.Test}, {"_valid", "valid", &s.Valid}}
	for _, c := range sets {
		X, hasX := arrays["X"+c.suffix]
		y, hasY := arrays["y"+c.suffix]
		switch {
		case !hasX && !hasY:
			if c.suffix == "" {
				return nil, &FormatError{File: path, Msg: "no arrays X and y"}
			}
			continue
		case !hasX:
			return nil, &FormatError{File: path, Field: "y" + c.suffix, Msg: "without X" + c.suffix}
		case !hasY:
			return nil, &FormatError{File: path, Field: "X" + c.suffix, Msg: "without y" + c.suffix}
		}
		set, err := arraySet(path, c.suffix, X, y, o.Classes)
		if err != nil {
			return nil, err
		}
		set.Name = base + "/" + c.split
		*c.dst = *set
	}
	classes := 0
	for _, set := range []*nn.Data{&s.Train, &s.Test, &s.Valid} {
		if set.X == nil {
			continue
		}
		if set.Inputs() != s.Train.Inputs() || (set.Classes > 0) != (s.Train.Classes > 0) || set.Classes == 0 && set.Targets() != s.Train.Targets() {
			return nil, &FormatError{File: path, Field: "X" + strings.TrimPrefix(set.Name, base+"/"), Msg: fmt.Sprintf("%d inputs and %d targets, but X and y have %d and %d", set.Inputs(), set.Targets(), s.Train.Inputs(), s.Train.Targets())}
		}
		classes = max(classes, set.Classes)
	}
	for _, set := range []*nn.Data{&s.Train, &s.Test, &s.Valid} {
		if set.X != nil && set.Classes > 0 {
			set.Classes = classes
		}
	}
	if s.Valid.X != nil && o.ValidFraction > 0 {
		return nil, &FormatError{File: path, Field: "X_valid", Msg: "a validation set is given; a validation fraction cannot be held out too"}
	}
	kind := fmt.Sprintf("%d targets", s.Train.Targets())
	s.Loss = "mse"
	if classes > 0 {
		s.Loss, kind = "ce", fmt.Sprintf("%d classes", classes)
	}
	s.Info = fmt.Sprintf("arrays %s: %d training samples, %d inputs, %s", path, s.Train.Len(), s.Train.Inputs(), kind)
	if s.Test.X != nil {
		s.Info += fmt.Sprintf(", %d test samples", s.Test.Len())
	}
	return s, nil
}

// arraySet returns the set of inputs X, flattened to one row per sample,
// and targets y: class indices when y is 1-D of integers (or classes is
// set), else y's columns.
func arraySet(path, suffix string, X, y *npyArray, classes bool) (*nn.Data, error) {
	xf, yf := "X"+suffix, "y"+suffix
	if len(X.shape) < 1 || X.shape[0] == 0 {
		return nil, &FormatError{File: path, Field: xf, Msg: fmt.Sprintf("shape %v: want (samples, inputs…) with at least one sample", X.shape)}
	}
	n := X.shape[0]
	d := 1
	for _, k := range X.shape[1:] {
		d *= k
	}
	if d == 0 {
		return nil, &FormatError{File: path, Field: xf, Msg: fmt.Sprintf("shape %v: no inputs", X.shape)}
	}
	if len(y.shape) < 1 || len(y.shape) > 2 || y.shape[0] != n {
		return nil, &FormatError{File: path, Field: yf, Msg: fmt.Sprintf("shape %v: want (%d,) or (%d, targets) for the %d samples of %s", y.shape, n, n, n, xf)}
	}
	for i, v := range X.data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, &FormatError{File: path, Field: fmt.Sprintf("%s[%d]", xf, i/d), Msg: fmt.Sprintf("%v is not a finite number", v)}
		}
	}
	set := &nn.Data{X: mat.NewDense(n, d, X.data)}
	isClass := len(y.shape) == 1 && (y.kind != 'f' || classes)
	if classes && !isClass {
		return nil, &FormatError{File: path, Field: yf, Msg: fmt.Sprintf("shape %v: class labels need a 1-D array", y.shape)}
	}
	if isClass {
		for i, v := range y.data {
			if v != math.Trunc(v) || v < 0 || v >= maxClasses {
				return nil, &FormatError{File: path, Field: fmt.Sprintf("%s[%d]", yf, i), Msg: fmt.Sprintf("%v is not a class label 0, 1, … below %d", v, maxClasses)}
			}
			set.Classes = max(set.Classes, int(v)+1)
		}
		set.Y = mat.NewDense(n, 1, y.data)
		return set, nil
	}
	k := 1
	if len(y.shape) == 2 {
		k = y.shape[1]
	}
	if k == 0 {
		return nil, &FormatError{File: path, Field: yf, Msg: fmt.Sprintf("shape %v: no targets", y.shape)}
	}
	for i, v := range y.data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, &FormatError{File: path, Field: fmt.Sprintf("%s[%d]", yf, i/k), Msg: fmt.Sprintf("%v is not a finite number", v)}
		}
	}
	set.Y = mat.NewDense(n, k, y.data)
	return set, nil
}

// readArrayFile reads the arrays of an .npz archive or of the .npy files of
// a directory, by name without the extension.
func readArrayFile(path string) (map[string]*npyArray, error) {
	out := make(map[string]*npyArray)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		for _, k := range arrayNames {
			p := filepath.Join(path, k+".npy")
			b, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			a, err := parseNPY(b)
			if err != nil {
				return nil, &FormatError{File: p, Msg: err.Error()}
			}
			out[k] = a
		}
		if len(out) == 0 {
			return nil, &FormatError{File: path, Msg: "a directory without X.npy and y.npy"}
		}
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readNPZ(f, fi.Size(), path)
}

// readNPZ reads the arrays of the .npz archive of size bytes in r; name
// names it in errors.
func readNPZ(r io.ReaderAt, size int64, name string) (map[string]*npyArray, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("not an .npz archive: %v", err)}
	}
	out := make(map[string]*npyArray)
	budget := maxArrayRatio*size + 1<<12
	for _, f := range zr.File {
		k := strings.TrimSuffix(f.Name, ".npy")
		if _, dup := out[k]; dup {
			return nil, &FormatError{File: name, Field: k, Msg: "appears twice"}
		}
		if int64(f.UncompressedSize64) > budget || f.UncompressedSize64 > 1<<40 {
			return nil, &FormatError{File: name, Field: k, Msg: fmt.Sprintf("%d bytes, more than the archive can hold", f.UncompressedSize64)}
		}
		budget -= int64(f.UncompressedSize64)
		rc, err := f.Open()
		if err != nil {
			return nil, &FormatError{File: name, Field: k, Msg: err.Error()}
		}
		b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		rc.Close()
		if err == nil && uint64(len(b)) != f.UncompressedSize64 {
			err = errors.New("size differs from the zip directory")
		}
		if err != nil {
			return nil, &FormatError{File: name, Field: k, Msg: err.Error()}
		}
		a, err := parseNPY(b)
		if err != nil {
			return nil, &FormatError{File: name, Field: k, Msg: err.Error()}
		}
		out[k] = a
	}
	return out, nil
}

// parseNPY decodes the .npy file b: floating-point, integer or boolean
// elements of any byte order, in C or Fortran order.
func parseNPY(b []byte) (*npyArray, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, errors.New("not an .npy array: bad magic bytes")
	}
	var hl, start int
	switch b[6] {
	case 1:
		hl, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, errors.New("truncated .npy header")
		}
		hl, start = int(min(binary.LittleEndian.Uint32(b[8:]), 1<<20)), 12
	default:
		return nil, fmt.Errorf(".npy format version %d is not supported", b[6])
	}
	if start+hl > len(b) {
		return nil, errors.New("truncated .npy header")
	}
	m := npyHeaderRE.FindSubmatch(b[start : start+hl])
	if m == nil {
		return nil, fmt.Errorf(".npy header %.80q is not in the layout NumPy writes", strings.TrimSpace(string(b[start:start+hl])))
	}
	descr := string(m[1])
	var order binary.ByteOrder = binary.LittleEndian
	switch descr[0] {
	case '>':
		order = binary.BigEndian
		descr = descr[1:]
	case '<', '|', '=':
		descr = descr[1:]
	}
	size, _ := strconv.Atoi(descr[1:])
	a := &npyArray{kind: descr[0]}
	switch {
	case a.kind == 'f' && (size == 2 || size == 4 || size == 8),
		(a.kind == 'i' || a.kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8),
		a.kind == 'b' && size == 1:
	default:
		return nil, fmt.Errorf("unsupported dtype %s; want floating-point, integer or boolean elements", m[1])
	}
	n := 1
	for _, s := range strings.Split(string(m[3]), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil || d > maxArrayElems {
			return nil, fmt.Errorf("shape (%s): dimension %s is too large", m[3], s)
		}
		a.shape = append(a.shape, d)
		if n *= d; n > maxArrayElems {
			return nil, fmt.Errorf("shape %v: more than %d elements", a.shape, maxArrayElems)
		}
	}
	raw := b[start+hl:]
	if len(raw) != n*size {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes of data, the file holds %d", a.shape, m[1], n*size, len(raw))
	}
	a.data = make([]float64, n)
	for i := range a.data {
		p := raw[i*size:]
		switch {
		case a.kind == 'f' && size == 2:
			a.data[i] = half(order.Uint16(p))
		case a.kind == 'f' && size == 4:
			a.data[i] = float64(math.Float32frombits(order.Uint32(p)))
		case a.kind == 'f':
			a.data[i] = math.Float64frombits(order.Uint64(p))
		case a.kind == 'u' || a.kind == 'b':
			a.data[i] = float64(uintAt(p, size, order))
		default:
			u := uintAt(p, size, order)
			a.data[i] = float64(int64(u<<(64-8*size)) >> (64 - 8*size))
		}
	}
	if string(m[2]) == "True" && len(a.shape) > 1 {
		a.data = fromFortran(a.data, a.shape)
	}
	return a, nil
}

// uintAt returns the unsigned integer of size bytes at the start of p.
func uintAt(p []byte, size int, order binary.ByteOrder) uint64 {
	switch size {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(order.Uint16(p))
	case 4:
		return uint64(order.Uint32(p))
	}
	return order.Uint64(p)
}

// half returns the value of the IEEE float16 h.
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m, -24)
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// fromFortran returns the array of shape stored in Fortran order in v, in
// C order.
func fromFortran(v []float64, shape []int) []float64 {
	out := make([]float64, len(v))
	idx := make([]int, len(shape))
	for k := range v {
		// k runs over Fortran order: the first index fastest.
		c := 0
		for d := range shape {
			c = c*shape[d] + idx[d]
		}
		out[c] = v[k]
		for d := range shape {
			if idx[d]++; idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// readBytesNPZ reads the arrays of an .npz archive in memory; for fuzzing.
func readBytesNPZ(b []byte) (map[string]*npyArray, error) {
	return readNPZ(bytes.NewReader(b), int64(len(b)), "fuzz.npz")
}

// loadCSVTest reads the test file path of the CSV training set train, which
// it must match in inputs and targets; nil for an empty path. Both sets get
// the larger number of classes.
func loadCSVTest(path string, train *nn.Data, targets int, o *Options) (*nn.Data, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := readCSV(f, path, targets, o.Classes, o.Header, o.MaxCSVBytes)
	if err != nil {
		return nil, err
	}
	if t.Inputs() != train.Inputs() {
		return nil, &FormatError{File: path, Msg: fmt.Sprintf("%d inputs and %d targets, but the training file has %d and %d", t.Inputs(), t.Targets(), train.Inputs(), train.Targets())}
	}
	t.Name = strings.TrimSuffix(train.Name, "/train") + "/test"
	if t.Classes > 0 {
		c := max(t.Classes, train.Classes)
		t.Classes, train.Classes = c, c
	}
	return t, nil
}
