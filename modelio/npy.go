package modelio

import (
	"archive/zip"
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
	length  int // bytes of the preamble and header, before the data
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
	h := &header{descr: strings.Trim(m[1], "'"), fortran: m[2] == "True", length: start + n}
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

// readChunk is the number of bytes of data readArray decodes at a time.
const readChunk = 64 << 10

// memberLimit returns the most bytes that the member f of an archive of
// size bytes can yield when read: its declared uncompressed size, which
// archive/zip enforces, and no more than a member of its compressed size
// can hold, the compressed size itself being at most the archive's.
func memberLimit(f *zip.File, size int64) int64 {
	c := min(f.CompressedSize64, uint64(size))
	lim := c
	if f.Method != zip.Store {
		lim = maxRatio*c + 1<<10
	}
	return int64(min(f.UncompressedSize64, lim, math.MaxInt64))
}

// readArray reads the array in the member f of an archive of size bytes.
// want checks the header before any data is read. budget is the number of
// bytes of data that may still be allocated; readArray decreases it.
//
// The data the header declares must fit in what the member can yield (see
// memberLimit), which is checked before anything is allocated, and it is
// read and converted in chunks, so that memory grows with the data that
// the file really holds, never with what a header claims.
func readArray(f *zip.File, size int64, want func(*header) error, budget *int64) (*array, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
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
	es := h.elemSize()
	need := int64(n) * int64(es)
	if room := memberLimit(f, size) - int64(h.length); need > room {
		return nil, fmt.Errorf("truncated data: shape %s of %s needs %d bytes, but the member holds at most %d", shapeString(h.shape), h.descr, need, max(room, 0))
	}
	if need > *budget {
		return nil, fmt.Errorf("shape %s of %s needs %d bytes, more than the archive can hold", shapeString(h.shape), h.descr, need)
	}
	*budget -= need
	if _, err := br.Discard(h.length); err != nil {
		return nil, truncated(err, "npy header")
	}

	var order binary.ByteOrder = binary.LittleEndian
	if h.descr[0] == '>' {
		order = binary.BigEndian
	}
	a := &array{header: *h, data: make([]float64, 0, min(n, readChunk/es))}
	buf := make([]byte, readChunk)
	for left := need; left > 0; {
		k := int(min(left, readChunk))
		if _, err := io.ReadFull(br, buf[:k]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("truncated data: shape %s of %s needs %d bytes", shapeString(h.shape), h.descr, need)
			}
			return nil, err
		}
		left -= int64(k)
		if es == 4 {
			for i := 0; i < k; i += 4 {
				a.data = append(a.data, float64(math.Float32frombits(order.Uint32(buf[i:]))))
			}
		} else {
			for i := 0; i < k; i += 8 {
				a.data = append(a.data, math.Float64frombits(order.Uint64(buf[i:])))
			}
		}
	}
	// Reading to the end lets the zip reader check the size and checksum.
	switch _, err := br.ReadByte(); err {
	case io.EOF:
	case nil:
		return nil, fmt.Errorf("data longer than the %d bytes of shape %s of %s", need, shapeString(h.shape), h.descr)
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

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
