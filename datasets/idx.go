package datasets

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// IDX is the contents of an IDX file of unsigned bytes, the format of the
// MNIST files.
type IDX struct {
	// Dims holds the size of each dimension, outermost first, of the
	// data read: Dims[0] is the number of items read, which ReadIDXN may
	// limit.
	Dims []int

	// Count is the size of the outermost dimension that the file
	// declares, at least Dims[0].
	Count int

	// Data holds the elements in row-major order; its length is the
	// product of Dims.
	Data []byte
}

const (
	idxUbyte = 0x08 // IDX data type code of unsigned bytes

	// idxChunk is the most memory reserved ahead of reading, so that
	// memory grows with the data that is really there, not with what the
	// header declares.
	idxChunk = 1 << 20

	// idxMax bounds the bytes the dimensions may declare, so that their
	// product cannot overflow.
	idxMax = 1 << 62
)

// ReadIDX reads an IDX file of unsigned bytes, such as the MNIST images
// (magic number 0x00000803) and labels (0x00000801), compressed with gzip
// or not: gzip is detected from its magic bytes 0x1f 0x8b. The name is used
// in error messages. ReadIDX returns an error if the magic number is not
// that of unsigned bytes, if a dimension is zero, or if the data is not
// exactly as long as the dimensions require.
//
// Memory grows with the data read, to at most about twice it;
// when r is a regular uncompressed file, its size is checked against the
// dimensions before any data is read.
func ReadIDX(r io.Reader, name string) (*IDX, error) { return ReadIDXN(r, name, 0) }

// ReadIDXN is ReadIDX reading only the first n items of the outermost
// dimension (all of them when n ≤ 0 or n exceeds their number): the rest
// of the data is not read, and its length is only checked when r is a
// regular uncompressed file, from the file's size.
func ReadIDXN(r io.Reader, name string, n int) (*IDX, error) {
	return readIDX(r, name, n, nil)
}

// readIDX is ReadIDXN calling check, when not nil, with the dimensions
// declared before any data is read; an error of check is returned as it
// is.
func readIDX(r io.Reader, name string, n int, check func(dims []int) error) (*IDX, error) {
	raw := int64(-1)
	if st, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() {
			raw = fi.Size()
		}
	}
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FormatError{File: name, Msg: "gzip: " + err.Error()}
		}
		defer zr.Close()
		r, raw = zr, -1
	} else {
		r = br
	}

	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, &FormatError{File: name, Msg: "reading magic number: " + readErr(err)}
	}
	magic := binary.BigEndian.Uint32(head[:])
	if head[0] != 0 || head[1] != 0 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("bad magic number 0x%08x, not an IDX file", magic)}
	}
	if head[2] != idxUbyte {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("magic number 0x%08x: unsupported data type 0x%02x, want unsigned bytes (0x08)", magic, head[2])}
	}
	nd := int(head[3])
	if nd == 0 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("magic number 0x%08x: no dimensions", magic)}
	}

	dims := make([]int, nd)
	size := int64(1)
	for i := range dims {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("reading dimension %d of %d: %s", i+1, nd, readErr(err))}
		}
		d := binary.BigEndian.Uint32(b[:])
		if d == 0 {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("dimension %d is zero", i+1)}
		}
		dims[i] = int(d)
		if uint64(d) > idxMax/uint64(size) {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("dimensions %v too large: more than 2⁶² bytes", dims[:i+1])}
		}
		size *= int64(d)
	}
	if check != nil {
		if err := check(dims); err != nil {
			return nil, err
		}
	}
	header := int64(4 + 4*nd)
	if raw >= 0 {
		switch got := raw - header; {
		case got < size:
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("truncated data: dimensions %v need %d bytes, got %d", dims, size, got)}
		case got > size:
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("trailing data: dimensions %v need %d bytes, got more", dims, size)}
		}
	}

	count := dims[0]
	want := size
	if n > 0 && n < count {
		want = size / int64(count) * int64(n)
		dims[0] = n
	}
	data := make([]byte, 0, min(want, idxChunk))
	for int64(len(data)) < want {
		k := int(min(want-int64(len(data)), idxChunk))
		if cap(data)-len(data) < k {
			// Double, so that the copies sum to less than the data.
			grown := make([]byte, len(data), int(min(int64(max(2*cap(data), len(data)+k)), want)))
			copy(grown, data)
			data = grown
		}
		m, err := io.ReadFull(r, data[len(data):len(data)+k])
		data = data[:len(data)+m]
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, &FormatError{File: name, Msg: fmt.Sprintf("truncated data: dimensions %v need %d bytes, got %d", append([]int{count}, dims[1:]...), size, len(data))}
			}
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("reading data: %s (read %d of %d bytes)", readErr(err), len(data), size)}
		}
	}
	if want == size && raw < 0 {
		var b [1]byte
		switch _, err := io.ReadFull(r, b[:]); err {
		case nil:
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("trailing data: dimensions %v need %d bytes, got more", dims, size)}
		case io.EOF:
		default:
			return nil, &FormatError{File: name, Msg: "reading data: " + readErr(err)}
		}
	}
	return &IDX{Dims: dims, Count: count, Data: data}, nil
}

// readErr describes a read error, naming an early end of data as such.
func readErr(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "unexpected end of data"
	}
	return err.Error()
}
