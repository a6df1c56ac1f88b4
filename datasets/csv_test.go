package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestReadCSV(t *testing.T) {
	t.Parallel()
	for _, test := range []struct {
		name    string
		in      string
		targets int
		classes bool
		x, y    []float64
		cols    int
		nc      int
	}{
		{name: "plain", in: "1,2,3\n4,5,6\n", targets: 1, x: []float64{1, 2, 4, 5}, y: []float64{3, 6}, cols: 2},
		{name: "header", in: "a, b ,y\n1,2,3\n-4e1, 5.5 ,6\n", targets: 1, x: []float64{1, 2, -40, 5.5}, y: []float64{3, 6}, cols: 2},
		{name: "two targets", in: "1,2,3\r\n4,5,6\r\n", targets: 2, x: []float64{1, 4}, y: []float64{2, 3, 5, 6}, cols: 1},
		{name: "comments and quotes", in: "# comment\n\n\"1\",2\n\n3,\" 4\"\n", targets: 1, x: []float64{1, 3}, y: []float64{2, 4}, cols: 1},
		{name: "classes", in: "x,label\n0.5,2\n1.5,0\n2.5,4\n", targets: 1, classes: true, x: []float64{0.5, 1.5, 2.5}, y: []float64{2, 0, 4}, cols: 1, nc: 5},
		{name: "byte order mark", in: "\ufeff1,2\n3,4\n", targets: 1, x: []float64{1, 3}, y: []float64{2, 4}, cols: 1},
		{name: "class 0 only", in: "1,0\n", targets: 1, classes: true, x: []float64{1}, y: []float64{0}, cols: 1, nc: 1},
	} {
		s, err := ReadCSV(strings.NewReader(test.in), "t.csv", test.targets, test.classes)
		if err != nil {
			t.Errorf("%s: %v", test.name, err)
			continue
		}
		rows := len(test.x) / test.cols
		if !mat.Equal(s.X, mat.NewDense(rows, test.cols, test.x)) || !mat.Equal(s.Y, mat.NewDense(rows, test.targets, test.y)) || s.Classes != test.nc {
			t.Errorf("%s: got X=%v Y=%v classes %d", test.name, mat.Formatted(s.X), mat.Formatted(s.Y), s.Classes)
		}
	}
}

func TestReadCSVErrors(t *testing.T) {
	t.Parallel()
	for _, test := range []struct {
		name    string
		in      string
		targets int
		classes bool
		line    int
		field   string
		want    string
	}{
		{name: "empty", in: "", targets: 1, want: "d.csv: no data rows"},
		{name: "blank", in: "\n\n# nothing\n", targets: 1, want: "d.csv: no data rows"},
		{name: "header only", in: "a,b\n", targets: 1, want: "no data rows"},
		{name: "ragged", in: "1,2,3\n4,5,6\n7,8\n", targets: 1, line: 3, want: "d.csv:3: got 2 fields, want 3"},
		{name: "ragged after header", in: "a,b\n\n1,2\n1,2,3\n", targets: 1, line: 4, want: "d.csv:4: got 3 fields, want 2"},
		{name: "not a number", in: "1,2\n3,x\n", targets: 1, line: 2, field: "column 2", want: `d.csv:2: column 2: "x" is not a number`},
		{name: "named column", in: "in,out\n1,2\n3,1..2\n", targets: 1, line: 3, field: `column 2 ("out")`, want: `d.csv:3: column 2 ("out"): "1..2" is not a number`},
		{name: "NaN", in: "1,2\nNaN,2\n", targets: 1, line: 2, field: "column 1", want: `"NaN" is not a finite number`},
		{name: "NaN first row", in: "NaN,2\n", targets: 1, line: 1, field: "column 1", want: "not a finite number"},
		{name: "Inf", in: "1,2\n3,-Inf\n", targets: 1, line: 2, field: "column 2", want: `"-Inf" is not a finite number`},
		{name: "overflow", in: "1,2\n3,1e999\n", targets: 1, line: 2, field: "column 2", want: "not a finite number"},
		{name: "empty field", in: "1,2\n,2\n", targets: 1, line: 2, field: "column 1", want: "d.csv:2: column 1: empty field"},
		{name: "targets too many", in: "1,2\n", targets: 2, line: 1, want: "d.csv:1: 2 target columns leave no inputs among 2 columns"},
		{name: "one column", in: "1\n2\n", targets: 1, line: 1, want: "leave no inputs"},
		{name: "targets zero", in: "1,2\n", targets: 0, want: "d.csv: 0 target columns, want at least 1"},
		{name: "classes two targets", in: "1,2,3\n", targets: 2, classes: true, want: "class-index targets need 1 target column, not 2"},
		{name: "fractional class", in: "1,2\n1,1.5\n", targets: 1, classes: true, line: 2, field: "column 2", want: `class index "1.5" is not a non-negative integer`},
		{name: "negative class", in: "1,-1\n", targets: 1, classes: true, line: 1, field: "column 2", want: "not a non-negative integer"},
		{name: "huge class", in: "1,1e9\n", targets: 1, classes: true, line: 1, field: "column 2", want: "too large"},
		{name: "bare quote", in: "1,2\n3,4\"\n", targets: 1, line: 2, want: "d.csv:2: bare \" in non-quoted-field"},
	} {
		_, err := ReadCSV(strings.NewReader(test.in), "d.csv", test.targets, test.classes)
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), test.want) || fe.Line != test.line || fe.Field != test.field {
			t.Errorf("%s: got error %v, want %q at line %d, field %q", test.name, err, test.want, test.line, test.field)
		}
	}
}

func TestLoadCSV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "points.csv")
	var b strings.Builder
	b.WriteString("x1,x2,class\n")
	for i := range 40 {
		b.WriteString(itoa(i) + "," + itoa(i*i) + "," + itoa(i%3) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 40 || s.Train.Inputs() != 2 || s.Train.Targets() != 1 || s.Train.Classes != 0 || s.Loss != "mse" || s.Test.X != nil || s.Valid.X != nil {
		t.Errorf("got %d×%d → %d, loss %q", s.Train.Len(), s.Train.Inputs(), s.Train.Targets(), s.Loss)
	}
	if s.Train.Name != "points/train" {
		t.Errorf("got name %q", s.Train.Name)
	}

	s, err = Load(path, &Options{Classes: true, ValidFraction: 0.25, Standardize: true, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 30 || s.Valid.Len() != 10 || s.Train.Classes != 3 || s.Valid.Classes != 3 || s.Loss != "ce" {
		t.Errorf("got %d and %d samples, %d classes, loss %q", s.Train.Len(), s.Valid.Len(), s.Train.Classes, s.Loss)
	}
	if _, err := s.Split("test"); err == nil {
		t.Error("CSV data set has a test split")
	}

	s, err = Load(path, &Options{Targets: 2})
	if err != nil || s.Train.Inputs() != 1 || s.Train.Targets() != 2 {
		t.Errorf("two targets: %v", err)
	}
	if _, err := Load(path, &Options{Targets: -1}); err == nil {
		t.Error("negative targets: no error")
	}
	if _, err := Load(path, &Options{Targets: 3}); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("three targets: got error %v", err)
	}

	// A forced header drops a numeric first row; a forced absence of a
	// header makes a text first row an error.
	yes, no := true, false
	numeric := filepath.Join(dir, "numeric")
	if err := os.WriteFile(numeric, []byte("1,2\n3,4\n5,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(numeric, &Options{Header: &yes}); err != nil || s.Train.Len() != 2 {
		t.Errorf("forced header: %v", err)
	}
	if s, err := Load(numeric, nil); err != nil || s.Train.Len() != 3 {
		t.Errorf("detected header: %v", err)
	}
	if _, err := Load(path, &Options{Header: &no}); err == nil || !strings.Contains(err.Error(), `:1: column 1: "x1" is not a number`) {
		t.Errorf("forced no header: got error %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.csv"), nil); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing file: got error %v", err)
	}
}
