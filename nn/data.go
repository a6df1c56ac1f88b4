package nn

import (
	"fmt"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Data is a set of samples: the rows of X are the inputs and the rows of Y
// the targets. For class-index targets (CE), Y has one column holding the
// class 0…Classes−1 of each sample as a float64, and Classes is the number
// of classes; otherwise Classes is 0. A Data with a nil X holds no samples.
type Data struct {
	Name    string // names the samples in messages, such as "monks1/train"
	X, Y    *mat.Dense
	Classes int
}

// Len returns the number of samples.
func (d Data) Len() int {
	if d.X == nil {
		return 0
	}
	r, _ := d.X.Dims()
	return r
}

// Inputs returns the number of input columns.
func (d Data) Inputs() int {
	_, c := d.X.Dims()
	return c
}

// Targets returns the number of target columns: 1 for class-index targets.
func (d Data) Targets() int {
	_, c := d.Y.Dims()
	return c
}

// Outputs returns the number of network outputs that fit the data: Classes
// for class-index targets and Targets otherwise.
func (d Data) Outputs() int {
	if d.Classes > 0 {
		return d.Classes
	}
	return d.Targets()
}

// Subset returns copies of the samples listed in idx, in the order given.
// Indices may repeat. It panics if idx is empty or holds an index out of
// range.
func (d Data) Subset(idx []int) *Data {
	if len(idx) == 0 {
		panic("nn: empty subset")
	}
	n := d.Len()
	x := mat.NewDense(len(idx), d.Inputs(), nil)
	y := mat.NewDense(len(idx), d.Targets(), nil)
	for i, j := range idx {
		if j < 0 || j >= n {
			panic(fmt.Sprintf("nn: subset index %d out of range [0,%d)", j, n))
		}
		copy(x.RawRowView(i), d.X.RawRowView(j))
		copy(y.RawRowView(i), d.Y.RawRowView(j))
	}
	return &Data{Name: d.Name, X: x, Y: y, Classes: d.Classes}
}

// Splits is a data set: training samples and, when their X is not nil,
// validation and test samples. Loss ("mse", "bce" or "ce") and Info, a
// one-line description, are what a reader of the data set suggests and
// says of it; nothing else uses them.
type Splits struct {
	Train, Valid, Test Data
	Loss, Info         string
}

// Split returns the split named "train", "valid" (or "validation") or
// "test", or an error when the name is unknown or the split is absent.
func (s *Splits) Split(name string) (*Data, error) {
	var (
		d    *Data
		full string
	)
	switch strings.ToLower(name) {
	case "train", "training":
		d, full = &s.Train, "training"
	case "valid", "validation":
		d, full = &s.Valid, "validation"
	case "test":
		d, full = &s.Test, "test"
	default:
		return nil, fmt.Errorf("unknown split %q (want train, valid or test)", name)
	}
	if d.X == nil {
		what := "data set"
		if s.Train.Name != "" {
			what = baseName(s.Train.Name)
		}
		hint := ""
		if full == "validation" {
			hint = " (request one with a validation fraction)"
		}
		return nil, fmt.Errorf("%s has no %s split%s", what, full, hint)
	}
	return d, nil
}

// baseName returns the data set part of a name such as "xor/train".
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		switch name[i+1:] {
		case "train", "valid", "test":
			return name[:i]
		}
	}
	return name
}
