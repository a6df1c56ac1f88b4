package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// IDX is the contents of an IDX file of unsigned bytes, the format of the
// MNIST files.
type IDX struct {
	// Dims holds the size of each dimension, outermost first.
	Dims []int

	// Data holds the elements in row-major order; its length is the
	// product of Dims.
	Data []byte
}

const (
	idxUbyte = 0x08 // IDX data type code of unsigned bytes

	// idxChunk bounds the memory reserved ahead of reading, so that a
	// corrupt header cannot cause a huge allocation.
	idxChunk = 4 << 20

	// idxMax bounds the number of elements of an IDX file.
	idxMax = 1 << 40
)

// ReadIDX reads an IDX file of unsigned bytes, such as the MNIST images
// (magic number 0x00000803) and labels (0x00000801), compressed with gzip
// or not: gzip is detected from its magic bytes 0x1f 0x8b. The name is used
// in error messages. ReadIDX returns an error if the magic number is not
// that of unsigned bytes, if a dimension is zero, or if the data is not
// exactly as long as the dimensions require.
func ReadIDX(r io.Reader, name string) (*IDX, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FormatError{File: name, Msg: "gzip: " + err.Error()}
		}
		defer zr.Close()
		r = zr
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
	size := 1
	for i := range dims {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("reading dimension %d of %d: %s", i+1, nd, readErr(err))}
		}
		d := binary.BigEndian.Uint32(b[:])
		if d == 0 {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("dimension %d is zero", i+1)}
		}
		if uint64(d) > idxMax/uint64(size) {
			return nil, &FormatError{File: name, Msg: fmt.Sprintf("dimensions %v… too large", dims[:i+1])}
		}
		dims[i] = int(d)
		size *= int(d)
	}

	var buf bytes.Buffer
	buf.Grow(min(size, idxChunk))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(size)+1))
	if err != nil {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("reading data: %s (read %d of %d bytes)", readErr(err), got, size)}
	}
	switch {
	case got < int64(size):
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("truncated data: dimensions %v need %d bytes, got %d", dims, size, got)}
	case got > int64(size):
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("trailing data: dimensions %v need %d bytes, got more", dims, size)}
	}
	return &IDX{Dims: dims, Data: buf.Bytes()}, nil
}

// readErr describes a read error, naming an early end of data as such.
func readErr(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "unexpected end of data"
	}
	return err.Error()
}
