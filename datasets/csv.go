package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// maxClasses bounds the number of classes of a CSV file.
const maxClasses = 1 << 16

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
func ReadCSV(r io.Reader, name string, targets int, classes bool) (*Set, error) {
	return readCSV(r, name, targets, classes, nil)
}

// readCSV is ReadCSV with a header row that is present, absent or detected
// when header is nil.
func readCSV(r io.Reader, name string, targets int, classes bool, header *bool) (*Set, error) {
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
		values []float64
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
			values = append(values, v)
		}
		rows++
	}
	if rows == 0 {
		return nil, &FormatError{File: name, Msg: "no data rows"}
	}

	inputs := cols - targets
	x := mat.NewDense(rows, inputs, nil)
	y := mat.NewDense(rows, targets, nil)
	nClasses := 0
	for i := range rows {
		row := values[i*cols : (i+1)*cols]
		copy(x.RawRowView(i), row[:inputs])
		copy(y.RawRowView(i), row[inputs:])
		if classes {
			nClasses = max(nClasses, int(row[cols-1])+1)
		}
	}
	return &Set{Name: name, X: x, Y: y, Classes: nClasses}, nil
}

// loadCSV returns the splits of the CSV file path.
func loadCSV(path string, o *Options) (*Splits, error) {
	targets := o.Targets
	if targets < 0 {
		return nil, fmt.Errorf("datasets: negative number of target columns %d", targets)
	}
	if targets == 0 {
		targets = 1
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := readCSV(f, path, targets, o.Classes, o.Header)
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
	return &Splits{Train: s, Test: test, Loss: loss, Info: info}, nil
}
