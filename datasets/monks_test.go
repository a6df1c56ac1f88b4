package datasets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// monksDir holds the original UCI files of the MONK's problems, shipped
// with the tests (see its README.md).
var monksDir = filepath.Join("testdata", "monks")

// sharedMonksDir is where the workplace keeps another copy of the UCI
// files; TestMonksFilesShared compares the two when it exists.
var sharedMonksDir = filepath.Join("..", "..", "shared", "data", "monks")

// decodeMonks inverts MonksEncode, reporting whether x is a valid coding.
func decodeMonks(x []float64) (a [6]int, ok bool) {
	off := 0
	for i, n := range monksValues {
		for v := 1; v <= n; v++ {
			switch x[off+v-1] {
			case 0:
			case 1:
				if a[i] != 0 {
					return a, false
				}
				a[i] = v
			default:
				return a, false
			}
		}
		if a[i] == 0 {
			return a, false
		}
		off += n
	}
	return a, true
}

func TestMonksDomain(t *testing.T) {
	t.Parallel()
	d := MonksDomain()
	if len(d) != 432 {
		t.Fatalf("got %d examples, want 432", len(d))
	}
	if d[0] != [6]int{1, 1, 1, 1, 1, 1} || d[1] != [6]int{1, 1, 1, 1, 1, 2} || d[2] != [6]int{1, 1, 1, 1, 2, 1} || d[431] != [6]int{3, 3, 2, 3, 4, 2} {
		t.Errorf("domain starts %v and ends %v", d[:3], d[431])
	}
	seen := make(map[[6]int]bool)
	for i, a := range d {
		if i > 0 && slices.Compare(d[i-1][:], a[:]) >= 0 {
			t.Errorf("example %d: %v not after %v", i, a, d[i-1])
		}
		seen[a] = true
		x := MonksEncode(a)
		if len(x) != 17 {
			t.Fatalf("coding of length %d", len(x))
		}
		sum := 0.0
		for _, v := range x {
			sum += v
		}
		if sum != 6 {
			t.Errorf("%v: coding sums to %v", a, sum)
		}
		if b, ok := decodeMonks(x); !ok || b != a {
			t.Errorf("%v: coding %v decodes to %v", a, x, b)
		}
	}
	if len(seen) != 432 {
		t.Errorf("%d unique examples", len(seen))
	}
	want := []float64{0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1}
	if got := MonksEncode([6]int{2, 3, 1, 2, 4, 2}); !slices.Equal(got, want) {
		t.Errorf("MonksEncode = %v, want %v", got, want)
	}
	for _, a := range [][6]int{{0, 1, 1, 1, 1, 1}, {1, 1, 3, 1, 1, 1}, {1, 1, 1, 1, 5, 1}} {
		if !panics(func() { MonksEncode(a) }) {
			t.Errorf("MonksEncode(%v) did not panic", a)
		}
	}
}

func TestMonksRule(t *testing.T) {
	t.Parallel()
	for _, test := range []struct {
		problem int
		a       [6]int
		want    bool
	}{
		{1, [6]int{2, 2, 1, 1, 4, 1}, true},
		{1, [6]int{1, 2, 1, 1, 1, 1}, true},
		{1, [6]int{1, 2, 1, 1, 2, 1}, false},
		{2, [6]int{1, 1, 2, 2, 2, 2}, true},
		{2, [6]int{1, 2, 2, 2, 2, 1}, true},
		{2, [6]int{1, 1, 1, 2, 2, 2}, false},
		{2, [6]int{1, 2, 2, 2, 2, 2}, false},
		{3, [6]int{1, 3, 1, 1, 3, 1}, true},
		{3, [6]int{1, 3, 1, 2, 3, 1}, false},
		{3, [6]int{1, 2, 1, 2, 3, 1}, true},
		{3, [6]int{1, 2, 1, 1, 4, 1}, false},
	} {
		if got := MonksRule(test.problem, test.a); got != test.want {
			t.Errorf("MonksRule(%d, %v) = %t", test.problem, test.a, got)
		}
	}
	for _, p := range []int{0, 4} {
		if !panics(func() { MonksRule(p, [6]int{1, 1, 1, 1, 1, 1}) }) {
			t.Errorf("MonksRule(%d) did not panic", p)
		}
	}
}

// monksMismatches returns the number of rows of s whose label differs from
// the rule, failing the test for rows that are not valid codings.
func monksMismatches(t *testing.T, s *nn.Data, problem int) (mismatches, positives int) {
	t.Helper()
	for i := range s.Len() {
		a, ok := decodeMonks(s.X.RawRowView(i))
		if !ok {
			t.Fatalf("%s: row %d is not a valid coding", s.Name, i)
		}
		y := s.Y.At(i, 0)
		if y != 0 && y != 1 {
			t.Fatalf("%s: row %d: label %v", s.Name, i, y)
		}
		if (y == 1) != MonksRule(problem, a) {
			mismatches++
		}
		if y == 1 {
			positives++
		}
	}
	return mismatches, positives
}

func TestMonks(t *testing.T) {
	t.Parallel()
	sizes := [3]int{124, 169, 122}
	noise := [3]int{0, 0, 6}
	testPositives := [3]int{216, 142, 228}
	for p := 1; p <= 3; p++ {
		s, err := Load("monks"+itoa(p), &Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if s.Train.Len() != sizes[p-1] || s.Test.Len() != 432 || s.Train.Inputs() != 17 || s.Train.Targets() != 1 {
			t.Errorf("monks%d: got %d and %d examples", p, s.Train.Len(), s.Test.Len())
		}
		if m, pos := monksMismatches(t, &s.Test, p); m != 0 || pos != testPositives[p-1] {
			t.Errorf("monks%d: test set has %d labels against the rule and %d positives, want 0 and %d", p, m, pos, testPositives[p-1])
		}
		for i, a := range MonksDomain() {
			if !slices.Equal(s.Test.X.RawRowView(i), MonksEncode(a)) {
				t.Fatalf("monks%d: test row %d is not example %v", p, i, a)
			}
		}
		if m, _ := monksMismatches(t, &s.Train, p); m != noise[p-1] {
			t.Errorf("monks%d: training set has %d labels against the rule, want %d", p, m, noise[p-1])
		}
		seen := make(map[string]bool)
		for i := range s.Train.Len() {
			seen[rowKey(&nn.Data{X: s.Train.X, Y: mat.NewDense(s.Train.Len(), 1, nil)}, i)] = true
		}
		if len(seen) != s.Train.Len() {
			t.Errorf("monks%d: training set repeats examples", p)
		}

		again := Monks(p, 1)
		if !mat.Equal(again.Train.X, s.Train.X) || !mat.Equal(again.Train.Y, s.Train.Y) {
			t.Errorf("monks%d: training set not reproducible", p)
		}
		other := Monks(p, 2)
		if mat.Equal(other.Train.X, s.Train.X) {
			t.Errorf("monks%d: training set does not depend on the seed", p)
		}
		if m, _ := monksMismatches(t, &other.Train, p); m != noise[p-1] {
			t.Errorf("monks%d seed 2: training set has %d labels against the rule, want %d", p, m, noise[p-1])
		}
	}
	// Seed 0 is a seed like any other.
	if zero, one := Monks(3, 0), Monks(3, 1); mat.Equal(zero.Train.X, one.Train.X) {
		t.Error("seeds 0 and 1 give the same training set")
	}
}

func TestReadMonksUCI(t *testing.T) {
	t.Parallel()
	sizes := [3]int{124, 169, 122}
	positives := [3]int{62, 64, 60}
	noise := [3]int{0, 0, 6}
	for p := 1; p <= 3; p++ {
		s, err := LoadMonksDir(monksDir, p)
		if err != nil {
			t.Fatal(err)
		}
		if m, pos := monksMismatches(t, &s.Train, p); s.Train.Len() != sizes[p-1] || pos != positives[p-1] || m != noise[p-1] {
			t.Errorf("monks-%d.train: %d examples, %d positive, %d against the rule; want %d, %d, %d",
				p, s.Train.Len(), pos, m, sizes[p-1], positives[p-1], noise[p-1])
		}

		// The test file is the labeled domain, in some order.
		gen := Monks(p, 1).Test
		var got, want []string
		for i := range s.Test.Len() {
			got = append(got, rowKey(&s.Test, i))
		}
		for i := range gen.Len() {
			want = append(want, rowKey(&gen, i))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("monks-%d.test differs from the generated domain", p)
		}

		l, err := Load("monks"+itoa(p), &Options{MonksDir: monksDir})
		if err != nil {
			t.Fatal(err)
		}
		if !mat.Equal(l.Train.X, s.Train.X) || l.Train.Name != "monks"+itoa(p)+"/train" {
			t.Errorf("Load with MonksDir differs from LoadMonksDir")
		}
	}
}

// TestMonksFilesShared checks that the shipped files are the ones at
// sharedMonksDir, when that directory exists.
func TestMonksFilesShared(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(sharedMonksDir); err != nil {
		t.Skipf("no second copy of the UCI files to compare with: %v", err)
	}
	for p := 1; p <= 3; p++ {
		for _, split := range []string{"train", "test"} {
			name := "monks-" + itoa(p) + "." + split
			a, err := os.ReadFile(filepath.Join(monksDir, name))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(sharedMonksDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from %s", filepath.Join(monksDir, name), filepath.Join(sharedMonksDir, name))
			}
		}
	}
}

func TestReadMonks(t *testing.T) {
	t.Parallel()
	const good = " 1 1 1 1 1 3 1 data_5\n\n 0 3 3 2 3 4 2 data_432\n1 2 1 2 1 1 2\n"
	s, err := ReadMonks(strings.NewReader(good), "good")
	if err != nil {
		t.Fatal(err)
	}
	want := mat.NewDense(3, 17, nil)
	for i, a := range [][6]int{{1, 1, 1, 1, 3, 1}, {3, 3, 2, 3, 4, 2}, {2, 1, 2, 1, 1, 2}} {
		want.SetRow(i, MonksEncode(a))
	}
	if !mat.Equal(s.X, want) || !mat.Equal(s.Y, mat.NewDense(3, 1, []float64{1, 0, 1})) {
		t.Errorf("got X=%v Y=%v", mat.Formatted(s.X), mat.Formatted(s.Y))
	}

	for _, test := range []struct {
		in          string
		line        int
		field, want string
	}{
		{in: " 1 1 1 1 1 3 1 data_5\n 1 1 1 1 1 7 1 data_6\n", line: 2, field: "a5",
			want: "monks-1.train:2: a5: value 7 out of range 1..4"},
		{in: " 2 1 1 1 1 1 1 data_1\n", line: 1, field: "class", want: `monks-1.train:1: class: "2" is not 0 or 1`},
		{in: " 1 1 1 x 1 1 1 data_1\n", line: 1, field: "a3", want: `monks-1.train:1: a3: "x" is not an integer`},
		{in: " 1 1 1 3 1 1 1 data_1\n", line: 1, field: "a3", want: "value 3 out of range 1..2"},
		{in: " 1 0 1 1 1 1 1 data_1\n", line: 1, field: "a1", want: "value 0 out of range 1..3"},
		{in: "\n\n 1 1 1 1 1 1\n", line: 3, want: "monks-1.train:3: got 6 fields"},
		{in: " 1 1 1 1 1 1 1 data_1 extra\n", line: 1, want: "got 9 fields"},
		{in: "", want: "monks-1.train: no examples"},
		{in: "\n  \n", want: "no examples"},
	} {
		_, err := ReadMonks(strings.NewReader(test.in), "monks-1.train")
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), test.want) || fe.Line != test.line || fe.Field != test.field {
			t.Errorf("ReadMonks(%q): got error %v, want %q at line %d, field %q", test.in, err, test.want, test.line, test.field)
		}
	}

	dir := t.TempDir()
	if _, err := LoadMonksDir(dir, 1); err == nil || !strings.Contains(err.Error(), "monks-1.train") {
		t.Errorf("missing files: got error %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "monks-2.train"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "monks-2.test"), []byte(" 1 1 1 1 1 1 1\n 1 1 1 1 1 9 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMonksDir(dir, 2); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "monks-2.test")+":2: a5:") {
		t.Errorf("bad test file: got error %v", err)
	}
}
