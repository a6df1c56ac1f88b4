package datasets

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// monksValues holds the number of values of the attributes a1 … a6 of the
// MONK's problems; attribute i takes the values 1..monksValues[i].
var monksValues = [6]int{3, 3, 2, 3, 4, 2}

const (
	// monksInputs is the length of the one-hot coding of an example.
	monksInputs = 3 + 3 + 2 + 3 + 4 + 2

	// monksDomain is the number of possible examples.
	monksDomain = 3 * 3 * 2 * 3 * 4 * 2

	// monksNoise is the number of training labels flipped in MONK-3:
	// 5 % of 122, rounded.
	monksNoise = 6
)

// monksTrainSize holds the training set sizes of the original MONK's
// problems 1, 2 and 3.
var monksTrainSize = [3]int{124, 169, 122}

var monksRules = [3]string{
	"(a1 = a2) or (a5 = 1)",
	"exactly two of a1 … a6 are 1",
	"(a5 = 3 and a4 = 1) or (a5 ≠ 4 and a2 ≠ 3), 5 % training label noise",
}

func monksInfo(problem int) string {
	return fmt.Sprintf("MONK-%d: %s; %d training examples, all 432 as test set, 17 one-hot inputs",
		problem, monksRules[problem-1], monksTrainSize[problem-1])
}

func checkMonksProblem(problem int) {
	if problem < 1 || problem > 3 {
		panic(fmt.Sprintf("datasets: MONK's problem %d out of range 1..3", problem))
	}
}

// MonksRule reports whether the example with attribute values a belongs to
// the target concept of MONK's problem 1, 2 or 3, without label noise:
//
//	MONK-1: (a1 = a2) or (a5 = 1)
//	MONK-2: exactly two of the six attributes equal 1
//	MONK-3: (a5 = 3 and a4 = 1) or (a5 ≠ 4 and a2 ≠ 3)
//
// MonksRule panics if problem is not 1, 2 or 3.
func MonksRule(problem int, a [6]int) bool {
	checkMonksProblem(problem)
	switch problem {
	case 1:
		return a[0] == a[1] || a[4] == 1
	case 2:
		ones := 0
		for _, v := range a {
			if v == 1 {
				ones++
			}
		}
		return ones == 2
	default:
		return (a[4] == 3 && a[3] == 1) || (a[4] != 4 && a[1] != 3)
	}
}

// MonksDomain returns all 432 examples of the MONK's problems in
// lexicographic order: a1 varies slowest and a6 fastest, each attribute
// taking its values in ascending order.
func MonksDomain() [][6]int {
	d := make([][6]int, 0, monksDomain)
	var a [6]int
	var rec func(i int)
	rec = func(i int) {
		if i == len(a) {
			d = append(d, a)
			return
		}
		for v := 1; v <= monksValues[i]; v++ {
			a[i] = v
			rec(i + 1)
		}
	}
	rec(0)
	return d
}

// MonksEncode returns the 17-element one-hot coding of the example with
// attribute values a: blocks of 3, 3, 2, 3, 4 and 2 elements for a1 … a6,
// each with a 1 at the position of the value in ascending order.
// MonksEncode panics if a value is out of range.
func MonksEncode(a [6]int) []float64 {
	x := make([]float64, monksInputs)
	encodeMonks(x, a)
	return x
}

func encodeMonks(dst []float64, a [6]int) {
	off := 0
	for i, v := range a {
		if v < 1 || v > monksValues[i] {
			panic(fmt.Sprintf("datasets: MONK's attribute a%d value %d out of range 1..%d", i+1, v, monksValues[i]))
		}
		dst[off+v-1] = 1
		off += monksValues[i]
	}
}

// monksSet returns the set of examples with labels.
func monksSet(name string, examples [][6]int, labels []bool) *nn.Data {
	x := mat.NewDense(len(examples), monksInputs, nil)
	y := mat.NewDense(len(examples), 1, nil)
	for i, a := range examples {
		encodeMonks(x.RawRowView(i), a)
		if labels[i] {
			y.Set(i, 0, 1)
		}
	}
	return &nn.Data{Name: name, X: x, Y: y}
}

// Monks returns MONK's problem 1, 2 or 3 generated from its rule (see
// MonksRule). The test set is the whole domain of 432 examples in the order
// of MonksDomain, labeled by the rule. The training set has the size of the
// original one (124, 169 and 122 examples), drawn with the seed from the
// domain without replacement and kept in domain order. For MONK-3, the
// labels of 6 training examples chosen with the seed are flipped, as the
// original has 5 % label noise. Inputs are coded by MonksEncode.
// Monks panics if problem is not 1, 2 or 3.
func Monks(problem int, seed uint64) *nn.Splits {
	checkMonksProblem(problem)
	domain := MonksDomain()
	labels := make([]bool, len(domain))
	for i, a := range domain {
		labels[i] = MonksRule(problem, a)
	}

	n := monksTrainSize[problem-1]
	idx := rand.New(rand.NewPCG(seed, streamMonksTrain+uint64(problem))).Perm(len(domain))[:n]
	slices.Sort(idx)
	trainX := make([][6]int, n)
	trainY := make([]bool, n)
	for i, j := range idx {
		trainX[i], trainY[i] = domain[j], labels[j]
	}
	if problem == 3 {
		flip := rand.New(rand.NewPCG(seed, streamMonksNoise+uint64(problem))).Perm(n)[:monksNoise]
		for _, i := range flip {
			trainY[i] = !trainY[i]
		}
	}

	prefix := fmt.Sprintf("monks%d/", problem)
	return &nn.Splits{
		Train: *monksSet(prefix+"train", trainX, trainY),
		Test:  *monksSet(prefix+"test", domain, labels),
		Loss:  "mse",
		Info:  monksInfo(problem),
	}
}

// MaxMonksExamples is the most examples ReadMonks accepts; the MONK's
// domain has 432 distinct examples.
const MaxMonksExamples = 1 << 16

// ReadMonks reads a MONK's problem file in the original UCI format. Each
// line holds the class (0 or 1), the attribute values a1 … a6 and an
// example identifier such as data_17, separated by white space; the
// identifier may be missing and blank lines are skipped. The name is used
// in error messages, which give the line number and the field at fault.
// Inputs are coded by MonksEncode. A file of more than MaxMonksExamples
// examples is refused, so that an endless input stops.
func ReadMonks(r io.Reader, name string) (*nn.Data, error) {
	var (
		examples [][6]int
		labels   []bool
	)
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 7 && len(f) != 8 {
			return nil, &FormatError{File: name, Line: line, Msg: fmt.Sprintf("got %d fields, want class a1 a2 a3 a4 a5 a6 id", len(f))}
		}
		var label bool
		switch f[0] {
		case "0":
		case "1":
			label = true
		default:
			return nil, &FormatError{File: name, Line: line, Field: "class", Msg: fmt.Sprintf("%q is not 0 or 1", f[0])}
		}
		var a [6]int
		for i := range a {
			field := "a" + strconv.Itoa(i+1)
			v, err := strconv.Atoi(f[i+1])
			if err != nil {
				return nil, &FormatError{File: name, Line: line, Field: field, Msg: fmt.Sprintf("%q is not an integer", f[i+1])}
			}
			if v < 1 || v > monksValues[i] {
				return nil, &FormatError{File: name, Line: line, Field: field, Msg: fmt.Sprintf("value %d out of range 1..%d", v, monksValues[i])}
			}
			a[i] = v
		}
		if len(examples) == MaxMonksExamples {
			return nil, &FormatError{File: name, Line: line, Msg: fmt.Sprintf("more than %d examples: not a MONK's problem file", MaxMonksExamples)}
		}
		examples = append(examples, a)
		labels = append(labels, label)
	}
	if err := sc.Err(); err != nil {
		return nil, &FormatError{File: name, Line: line + 1, Msg: err.Error()}
	}
	if len(examples) == 0 {
		return nil, &FormatError{File: name, Msg: "no examples"}
	}
	return monksSet(name, examples, labels), nil
}

// LoadMonksDir reads MONK's problem 1, 2 or 3 from the original UCI files
// monks-N.train and monks-N.test in dir; see ReadMonks. LoadMonksDir panics
// if problem is not 1, 2 or 3.
func LoadMonksDir(dir string, problem int) (*nn.Splits, error) {
	checkMonksProblem(problem)
	read := func(split string) (*nn.Data, error) {
		path := filepath.Join(dir, fmt.Sprintf("monks-%d.%s", problem, split))
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		s, err := ReadMonks(f, path)
		if err != nil {
			return nil, err
		}
		s.Name = fmt.Sprintf("monks%d/%s", problem, split)
		return s, nil
	}
	train, err := read("train")
	if err != nil {
		return nil, err
	}
	test, err := read("test")
	if err != nil {
		return nil, err
	}
	return &nn.Splits{
		Train: *train,
		Test:  *test,
		Loss:  "mse",
		Info:  fmt.Sprintf("MONK-%d from %s: %s; %d training and %d test examples, 17 one-hot inputs", problem, dir, monksRules[problem-1], train.Len(), test.Len()),
	}, nil
}
