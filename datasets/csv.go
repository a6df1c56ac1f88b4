package datasets

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// maxClasses bounds the number of classes of a CSV file.
const maxClasses = 1 << 16

// Limits of the CSV reader.
const (
	// DefaultMaxCSVBytes is the default limit on the size of a CSV file,
	// 256 MiB: the full MNIST training set as CSV is about 110 MB. The
	// values take 16 bytes each while they are read (8 in the matrices),
	// so that a table of one-digit fields needs up to 8 times its size.
	DefaultMaxCSVBytes = 256 << 20

	// MaxCSVLine is the longest line of a CSV file, in bytes: some
	// 250 000 columns of numbers. The parser holds about 80 bytes per
	// field of a line, so the limit bounds it to about 100 MB.
	MaxCSVLine = 1 << 20
)

// errCSVSize and errCSVLine end a read at the size and line limits.
var (
	errCSVSize = errors.New("csv size limit")
	errCSVLine = errors.New("csv line limit")
)

// limitReader passes at most max bytes of r, then fails with errCSVSize,
// and fails with errCSVLine on a line longer than MaxCSVLine bytes, so that
// neither an endless input such as /dev/zero nor a single huge line can
// hold more than a bounded amount of memory in the CSV parser.
type limitReader struct {
	r    io.Reader
	left int64 // bytes that may still be read; negative for no limit
	line int   // length of the current line
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left == 0 {
		// Anything more is over the limit; a clean end is not.
		var b [1]byte
		if n, err := l.r.Read(b[:]); n > 0 {
			return 0, errCSVSize
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if l.left > 0 && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	if l.left > 0 {
		l.left -= int64(n)
	}
	q := p[:n]
	if i := bytes.IndexByte(q, '\n'); i < 0 {
		l.line += n
	} else {
		if l.line+i > MaxCSVLine {
			return 0, errCSVLine
		}
		for q = q[i+1:]; ; {
			j := bytes.IndexByte(q, '\n')
			if j < 0 {
				break
			}
			if j > MaxCSVLine {
				return 0, errCSVLine
			}
			q = q[j+1:]
		}
		l.line = len(q)
	}
	if l.line > MaxCSVLine {
		return 0, errCSVLine
	}
	return n, err
}

// ReadCSV reads a table of numbers in CSV format. The last targets columns
// are the targets and the others the inputs. If classes is true, targets
// must be 1 and the target column must hold class indices, non-negative
// integers less than 65536; the set's Classes is then the largest index
// plus one.
//
// The first row is a header, and is skipped, if any of its fields does not
// parse as a number. A leading byte order mark is ignored. Fields may be quoted and surrounded by spaces; lines
// starting with '#' and empty lines are skipped. Every row must have the
// same number of fields, and every field must be a finite number.
//
// The name is used in error messages, which give the line and the column
// at fault.
//
// ReadCSV reads at most DefaultMaxCSVBytes bytes and lines of at most
// MaxCSVLine bytes; the records are parsed as they are read, so that
// memory stays within a small multiple of the input's size: 16 bytes per
// value, up to 8 times the size of a table of one-digit fields.
func ReadCSV(r io.Reader, name string, targets int, classes bool) (*nn.Data, error) {
	return readCSV(r, name, targets, classes, nil, 0)
}

// readCSV is ReadCSV with a header row that is present, absent or detected
// when header is nil, and a limit of maxBytes bytes as Options.MaxCSVBytes.
func readCSV(r io.Reader, name string, targets int, classes bool, header *bool, maxBytes int64) (*nn.Data, error) {
	if maxBytes == 0 {
		maxBytes = DefaultMaxCSVBytes
	}
	r = &limitReader{r: r, left: maxBytes}
	if targets < 1 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("%d target columns, want at least 1", targets)}
	}
	if classes && targets != 1 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("class-index targets need 1 target column, not %d", targets)}
	}

	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	cr.ReuseRecord = true

	var (
		cols   int
		names  []string
		values chunked
		rows   int
	)
	column := func(j int) string {
		if j < len(names) && names[j] != "" {
			return fmt.Sprintf("column %d (%q)", j+1, names[j])
		}
		return fmt.Sprintf("column %d", j+1)
	}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			switch {
			case errors.Is(err, errCSVSize):
				return nil, &FormatError{File: name, Msg: fmt.Sprintf("larger than the CSV size limit of %d bytes; raise the limit (--max-csv-size) to read it", maxBytes)}
			case errors.Is(err, errCSVLine):
				return nil, &FormatError{File: name, Msg: fmt.Sprintf("a line longer than %d bytes: not a CSV table of numbers", MaxCSVLine)}
			}
			if errors.As(err, &pe) {
				return nil, &FormatError{File: name, Line: pe.Line, Msg: pe.Err.Error()}
			}
			return nil, &FormatError{File: name, Msg: err.Error()}
		}
		line, _ := cr.FieldPos(0)
		if first {
			rec[0] = strings.TrimPrefix(rec[0], "\ufeff") // byte order mark
			cols = len(rec)
			if targets >= cols {
				return nil, &FormatError{File: name, Line: line, Msg: fmt.Sprintf("%d target columns leave no inputs among %d columns", targets, cols)}
			}
			isHeader := false
			if header != nil {
				isHeader = *header
			} else {
				for _, f := range rec {
					if _, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
						isHeader = true
						break
					}
				}
			}
			if isHeader {
				names = make([]string, cols)
				for j, f := range rec {
					names[j] = strings.TrimSpace(f)
				}
				continue
			}
		}
		if len(rec) != cols {
			return nil, &FormatError{File: name, Line: line, Msg: fmt.Sprintf("got %d fields, want %d", len(rec), cols)}
		}
		for j, f := range rec {
			f = strings.TrimSpace(f)
			if f == "" {
				return nil, &FormatError{File: name, Line: line, Field: column(j), Msg: "empty field"}
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return nil, &FormatError{File: name, Line: line, Field: column(j), Msg: fmt.Sprintf("%q is not a number", f)}
			}
			if !finite(v) {
				return nil, &FormatError{File: name, Line: line, Field: column(j), Msg: fmt.Sprintf("%q is not a finite number", f)}
			}
			if classes && j == cols-1 {
				if v < 0 || v != math.Trunc(v) {
					return nil, &FormatError{File: name, Line: line, Field: column(j), Msg: fmt.Sprintf("class index %q is not a non-negative integer", f)}
				}
				if v >= maxClasses {
					return nil, &FormatError{File: name, Line: line, Field: column(j), Msg: fmt.Sprintf("class index %q too large (at most %d)", f, maxClasses-1)}
				}
			}
			values.add(v)
		}
		rows++
	}
	if rows == 0 {
		return nil, &FormatError{File: name, Msg: "no data rows"}
	}

	inputs := cols - targets
	x := mat.NewDense(rows, inputs, nil)
	y := mat.NewDense(rows, targets, nil)
	xd, yd := x.RawMatrix().Data, y.RawMatrix().Data
	nClasses := 0
	k := 0 // the index of the value in the table
	values.drain(func(v float64) {
		i, j := k/cols, k%cols
		if j < inputs {
			xd[i*inputs+j] = v
		} else {
			yd[i*targets+j-inputs] = v
			if classes {
				nClasses = max(nClasses, int(v)+1)
			}
		}
		k++
	})
	return &nn.Data{Name: name, X: x, Y: y, Classes: nClasses}, nil
}

// chunked holds values in fixed-size chunks, so that growing it copies
// nothing, and gives them back in order, dropping each chunk once it is
// read: the table's values are held once, plus the matrices they go to.
type chunked struct {
	full [][]float64
	cur  []float64
}

// chunkLen is the number of values of a chunk, 512 KiB.
const chunkLen = 1 << 16

func (c *chunked) add(v float64) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]float64, 0, chunkLen)
	}
	c.cur = append(c.cur, v)
}

// drain calls fn with every value in order and empties c.
func (c *chunked) drain(fn func(v float64)) {
	for i, ch := range append(c.full, c.cur) {
		for _, v := range ch {
			fn(v)
		}
		if i < len(c.full) {
			c.full[i] = nil
		}
	}
	*c = chunked{}
}

// loadCSV returns the splits of the CSV file path.
func loadCSV(path string, o *Options) (*nn.Splits, error) {
	targets := o.Targets
	if targets < 0 {
		return nil, fmt.Errorf("datasets: negative number of target columns %d", targets)
	}
	if targets == 0 {
		targets = 1
	}
	maxBytes := o.MaxCSVBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxCSVBytes
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, fmt.Errorf("datasets: %s is a directory, not a CSV file", path)
	case fi.Mode().IsRegular() && maxBytes > 0 && fi.Size() > maxBytes:
		return nil, &FormatError{File: path, Msg: fmt.Sprintf("%d bytes, larger than the CSV size limit of %d bytes; raise the limit (--max-csv-size) to read it", fi.Size(), maxBytes)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := readCSV(f, path, targets, o.Classes, o.Header, maxBytes)
	if err != nil {
		return nil, err
	}
	s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + "/train"
	test, err := loadCSVTest(o.Test, s, targets, o)
	if err != nil {
		return nil, err
	}
	loss, kind := "mse", fmt.Sprintf("%d targets", s.Targets())
	if s.Classes > 0 {
		loss, kind = "ce", fmt.Sprintf("%d classes", s.Classes)
	}
	info := fmt.Sprintf("CSV file %s: %d samples, %d inputs, %s", path, s.Len(), s.Inputs(), kind)
	if test != nil {
		info += fmt.Sprintf("; test file %s: %d samples", o.Test, test.Len())
	}
	sp := &nn.Splits{Train: *s, Loss: loss, Info: info}
	if test != nil {
		sp.Test = *test
	}
	return sp, nil
}
