package modelio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npz"
)

// maxHeader is the largest npy header, in bytes, that reading accepts;
// NumPy's own limit is 10000.
const maxHeader = 1 << 14

// maxElems is the largest number of elements of one array, and of a whole
// network, that reading accepts.
const maxElems = 1 << 30

// headerRE matches an npy header dictionary in the layout that NumPy, and
// every writer that follows it, produces:
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }
//
// followed by spaces and a newline. The descr of a structured dtype is a
// list; it is matched only to be reported as unsupported.
var headerRE = regexp.MustCompile(`^\{'descr': ('[^'\n]*'|\[[^\n]*\]), 'fortran_order': (True|False), 'shape': \(((?:[0-9]{1,12}, )*[0-9]{1,12},?)?\), \} *\n$`)

// header is the checked header of one array.
type header struct {
	descr   string // dtype as in the header without quotes, such as "<f4"
	fortran bool
	shape   []int
}

// elemSize returns the size in bytes of an element of a supported dtype.
func (h *header) elemSize() int {
	if h.descr[2] == '4' {
		return 4
	}
	return 8
}

// checkHeader checks the npy preamble and header at the start of br without
// consuming them, so that npy.NewReader is only ever given a header it parses
// correctly. It returns the header as npy.NewReader will read it.
func checkHeader(br *bufio.Reader) (*header, error) {
	pre, err := br.Peek(10)
	if err != nil {
		return nil, truncated(err, "npy header")
	}
	if string(pre[:6]) != string(npy.Magic[:]) {
		return nil, errors.New("not an npy array: bad magic bytes")
	}
	var n, start int
	switch major := pre[6]; major {
	case 1:
		n, start = int(binary.LittleEndian.Uint16(pre[8:])), 10
	case 2:
		p, err := br.Peek(12)
		if err != nil {
			return nil, truncated(err, "npy header")
		}
		n, start = int(min(binary.LittleEndian.Uint32(p[8:]), maxHeader+1)), 12
	default:
		return nil, fmt.Errorf("npy format version %d.%d is not supported; want 1.0 or 2.0", major, pre[7])
	}
	if n > maxHeader {
		return nil, fmt.Errorf("npy header longer than %d bytes", maxHeader)
	}
	p, err := br.Peek(start + n)
	if err != nil {
		return nil, truncated(err, "npy header")
	}
	text := string(p[start:])
	m := headerRE.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf("npy header %.80q is not in the layout NumPy writes", strings.TrimRight(text, " \n"))
	}
	h := &header{descr: strings.Trim(m[1], "'"), fortran: m[2] == "True"}
	switch h.descr {
	case "<f4", ">f4", "<f8", ">f8":
	default:
		return nil, unsupportedDType{h.descr}
	}
	total := 1
	for _, s := range strings.Split(m[3], ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil || d > maxElems {
			return nil, fmt.Errorf("shape (%s): dimension %s is too large", m[3], s)
		}
		h.shape = append(h.shape, d)
		if total *= d; total > maxElems {
			return nil, fmt.Errorf("shape %s: more than %d elements", shapeString(h.shape), maxElems)
		}
	}
	return h, nil
}

// unsupportedDType is the error for an array of a dtype other than float32
// or float64; the caller adds the key.
type unsupportedDType struct{ descr string }

func (e unsupportedDType) Error() string {
	return fmt.Sprintf("unsupported dtype %s; want float32 or float64", e.descr)
}

// truncated describes err, met while reading what, as truncation when it is
// an end of file.
func truncated(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("truncated %s", what)
	}
	return err
}

// shapeString formats a shape as NumPy does: (3, 2), (3,) or ().
func shapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// array is one array of an archive.
type array struct {
	header
	data []float64 // C order
}

// readArray reads the array in entry of zr. want checks the header before
// any data is read. budget is the number of bytes of data that may still be
// allocated; readArray decreases it.
func readArray(zr *npz.Reader, entry string, want func(*header) error, budget *int64) (*array, error) {
	rc, err := zr.Open(entry)
	if err != nil {
		return nil, unwrapNPZ(err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 16+maxHeader)
	h, err := checkHeader(br)
	if err != nil {
		return nil, err
	}
	if err := want(h); err != nil {
		return nil, err
	}
	n := 1
	for _, d := range h.shape {
		n *= d
	}
	size := int64(n) * int64(h.elemSize())
	if size > *budget {
		return nil, fmt.Errorf("shape %s of %s needs %d bytes, more than the archive can hold", shapeString(h.shape), h.descr, size)
	}
	*budget -= size

	rp, err := npy.NewReader(br)
	if err != nil {
		return nil, err
	}
	a := &array{header: *h, data: make([]float64, n)}
	switch h.elemSize() {
	case 4:
		v := make([]float32, n)
		err = rp.Read(&v)
		for i, x := range v {
			a.data[i] = float64(x)
		}
	case 8:
		err = rp.Read(&a.data)
	}
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("truncated data: shape %s of %s needs %d bytes", shapeString(h.shape), h.descr, size)
		}
		return nil, err
	}
	// Reading to the end lets the zip reader check the size and checksum.
	switch _, err := br.ReadByte(); err {
	case io.EOF:
	case nil:
		return nil, fmt.Errorf("data longer than the %d bytes of shape %s of %s", size, shapeString(h.shape), h.descr)
	default:
		return nil, err
	}
	if h.fortran && len(h.shape) == 2 {
		a.data = transpose(a.data, h.shape[0], h.shape[1])
	}
	return a, nil
}

// transpose returns the rows×cols matrix stored column by column in v, stored
// row by row.
func transpose(v []float64, rows, cols int) []float64 {
	t := make([]float64, len(v))
	for j := range cols {
		for i := range rows {
			t[i*cols+j] = v[j*rows+i]
		}
	}
	return t
}

// unwrapNPZ strips the wrapping that package npz adds to the errors of the
// zip reader.
func unwrapNPZ(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil || !strings.HasPrefix(err.Error(), "npz: ") {
			return err
		}
		err = u
	}
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
