package datasets

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

func TestXor(t *testing.T) {
	t.Parallel()
	s, err := Load("xor", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantX := mat.NewDense(4, 2, []float64{0, 0, 0, 1, 1, 0, 1, 1})
	wantY := mat.NewDense(4, 1, []float64{0, 1, 1, 0})
	for _, set := range []*nn.Data{&s.Train, &s.Test} {
		if !mat.Equal(set.X, wantX) || !mat.Equal(set.Y, wantY) {
			t.Errorf("%s: got X=%v Y=%v", set.Name, mat.Formatted(set.X), mat.Formatted(set.Y))
		}
	}
	if s.Train.X == s.Test.X {
		t.Error("training and test set share their inputs")
	}
	if s.Valid.X != nil || s.Loss != "mse" || s.Train.Classes != 0 {
		t.Errorf("got Valid=%v Loss=%q Classes=%d", s.Valid, s.Loss, s.Train.Classes)
	}
	if s.Train.Name != "xor/train" || s.Test.Name != "xor/test" {
		t.Errorf("got names %q and %q", s.Train.Name, s.Test.Name)
	}
}

func TestParity(t *testing.T) {
	t.Parallel()
	for n := minParity; n <= maxParity; n++ {
		s, err := Load("parity"+itoa(n), nil)
		if err != nil {
			t.Fatal(err)
		}
		set := s.Train
		if set.Len() != 1<<n || set.Inputs() != n || set.Targets() != 1 {
			t.Fatalf("parity%d: got %d×%d → %d", n, set.Len(), set.Inputs(), set.Targets())
		}
		seen := make(map[string]bool)
		for i := range set.Len() {
			ones, code := 0, 0
			for _, v := range set.X.RawRowView(i) {
				if v != 0 && v != 1 {
					t.Fatalf("parity%d: row %d: input %v not a bit", n, i, v)
				}
				ones += int(v)
				code = code<<1 | int(v)
			}
			if code != i {
				t.Errorf("parity%d: row %d holds pattern %d", n, i, code)
			}
			if want := float64(ones % 2); set.Y.At(i, 0) != want {
				t.Errorf("parity%d: row %d: got label %v, want %v", n, i, set.Y.At(i, 0), want)
			}
			seen[rowKey(&set, i)] = true
		}
		if len(seen) != 1<<n {
			t.Errorf("parity%d: %d unique rows, want %d", n, len(seen), 1<<n)
		}
		if !mat.Equal(s.Train.X, s.Test.X) || !mat.Equal(s.Train.Y, s.Test.Y) {
			t.Errorf("parity%d: training and test sets differ", n)
		}
	}
	for _, name := range []string{"parity1", "parity11", "parity", "parity02", "parity+4", "parityx"} {
		if _, err := Load(name, nil); err == nil {
			t.Errorf("Load(%q): no error", name)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "table")
	if err := os.WriteFile(file, []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, test := range []struct {
		name  string
		kind  string
		param int
		err   string
	}{
		{name: "xor", kind: "xor"},
		{name: "XOR", kind: "xor"},
		{name: "parity2", kind: "parity", param: 2},
		{name: "parity10", kind: "parity", param: 10},
		{name: "Parity7", kind: "parity", param: 7},
		{name: "monks1", kind: "monks", param: 1},
		{name: "monks3", kind: "monks", param: 3},
		{name: "sine", kind: "sine"},
		{name: "spirals", kind: "spirals"},
		{name: "mnist", kind: "mnist"},
		{name: "data.csv", kind: "csv"},
		{name: "DATA.CSV", kind: "csv"},
		{name: "some/dir/table", kind: "csv"},
		{name: file, kind: "csv"},
		{name: "", err: "empty data set name"},
		{name: "iris", err: `unknown data set "iris"; valid names are xor, parity2 … parity10, monks1, monks2, monks3, sine, spirals, mnist, a CSV file path, or an .npz file`},
		{name: "parity11", err: `bad data set name "parity11": parity number 11 out of range 2..10`},
		{name: "parity1", err: "out of range 2..10"},
		{name: "parity", err: "parity needs a number 2..10"},
		{name: "parity007", err: "parity needs a number"},
		{name: "monks0", err: "monks number 0 out of range 1..3"},
		{name: "monks4", err: "out of range 1..3"},
		{name: "monks", err: "monks needs a number 1..3"},
		{name: "monks-1", err: "monks needs a number"},
		{name: "parity99999999999999999999", err: "parity needs a number"},
	} {
		kind, param, err := Parse(test.name)
		if test.err != "" {
			if err == nil || !strings.Contains(err.Error(), test.err) {
				t.Errorf("Parse(%q): got error %v, want one containing %q", test.name, err, test.err)
			}
			continue
		}
		if err != nil || kind != test.kind || param != test.param {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", test.name, kind, param, err, test.kind, test.param)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	infos := Names()
	if len(infos) != 1+9+3+3 {
		t.Errorf("got %d names", len(infos))
	}
	seen := make(map[string]bool)
	for _, info := range infos {
		if seen[info.Name] {
			t.Errorf("duplicate name %q", info.Name)
		}
		seen[info.Name] = true
		if info.Description == "" || strings.Contains(info.Description, "\n") {
			t.Errorf("%s: bad description %q", info.Name, info.Description)
		}
		if kind, _, err := Parse(info.Name); err != nil || kind == "csv" {
			t.Errorf("%s: Parse gives %q, %v", info.Name, kind, err)
		}
		opt := &Options{}
		if info.Name == "mnist" {
			if _, err := MNISTDir(); err != nil {
				continue
			}
			opt.N, opt.TestN = 10, 10
		}
		s, err := Load(info.Name, opt)
		if err != nil {
			t.Errorf("%s: %v", info.Name, err)
			continue
		}
		if s.Train.Inputs() != info.Inputs || s.Train.Outputs() != info.Outputs || s.Loss != info.Loss {
			t.Errorf("%s: loaded %d inputs, %d outputs, loss %q; Names says %d, %d, %q",
				info.Name, s.Train.Inputs(), s.Train.Outputs(), s.Loss, info.Inputs, info.Outputs, info.Loss)
		}
		if s.Test.X == nil || s.Test.Inputs() != info.Inputs || s.Test.Outputs() != info.Outputs {
			t.Errorf("%s: test set does not match the training set", info.Name)
		}
		if s.Info == "" || strings.Contains(s.Info, "\n") {
			t.Errorf("%s: bad info %q", info.Name, s.Info)
		}
		if !strings.HasPrefix(s.Train.Name, info.Name+"/") {
			t.Errorf("%s: training set named %q", info.Name, s.Train.Name)
		}
	}
}

func TestSplitByName(t *testing.T) {
	t.Parallel()
	s, err := Load("monks2", &Options{ValidFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]*nn.Data{"train": &s.Train, "valid": &s.Valid, "validation": &s.Valid, "Test": &s.Test} {
		got, err := s.Split(name)
		if err != nil || got != want {
			t.Errorf("Split(%q) = %p, %v; want %p", name, got, err, want)
		}
	}
	if _, err := s.Split("dev"); err == nil {
		t.Error("Split(dev): no error")
	}
	s, err = Load("xor", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Split("valid")
	if err == nil || !strings.Contains(err.Error(), "xor has no validation split") {
		t.Errorf("got error %v", err)
	}
	s.Test = nn.Data{}
	if _, err = s.Split("test"); err == nil || !strings.Contains(err.Error(), "xor has no test split") {
		t.Errorf("got error %v", err)
	}
}

func TestSubset(t *testing.T) {
	t.Parallel()
	s := Parity(3)
	sub := s.Subset([]int{5, 1, 5})
	if sub.Len() != 3 || sub.Inputs() != 3 || sub.Targets() != 1 {
		t.Fatalf("got %d×%d → %d", sub.Len(), sub.Inputs(), sub.Targets())
	}
	want := mat.NewDense(3, 3, []float64{1, 0, 1, 0, 0, 1, 1, 0, 1})
	if !mat.Equal(sub.X, want) {
		t.Errorf("got X=%v", mat.Formatted(sub.X))
	}
	sub.X.Set(0, 0, 7)
	sub.Y.Set(0, 0, 7)
	if s.X.At(5, 0) != 1 || s.Y.At(5, 0) != 0 {
		t.Error("Subset shares storage with its source")
	}
	for _, idx := range [][]int{nil, {8}, {-1}} {
		if !panics(func() { s.Subset(idx) }) {
			t.Errorf("Subset(%v) did not panic", idx)
		}
	}
}

func TestSplitRandom(t *testing.T) {
	t.Parallel()
	s := Parity(6)
	a, b := splitRandom(*s, 0.25, rand.NewPCG(1, 2))
	if a.Len() != 48 || b.Len() != 16 {
		t.Fatalf("got sizes %d and %d", a.Len(), b.Len())
	}
	// Row i of a parity set is the binary code of i, so rows identify
	// samples.
	seen := make(map[int]bool)
	var codes [2][]int
	for k, part := range []*nn.Data{a, b} {
		last := -1
		for i := range part.Len() {
			c := code(part.X.RawRowView(i))
			if seen[c] {
				t.Fatalf("sample %d in both parts", c)
			}
			seen[c] = true
			if c <= last {
				t.Errorf("part %d out of order", k)
			}
			last = c
			if part.Y.At(i, 0) != float64(bits.OnesCount(uint(c))%2) {
				t.Errorf("sample %d lost its label", c)
			}
			codes[k] = append(codes[k], c)
		}
	}
	if len(seen) != 64 {
		t.Errorf("parts cover %d samples, want 64", len(seen))
	}
	_, b2 := splitRandom(*s, 0.25, rand.NewPCG(1, 2))
	if !mat.Equal(b.X, b2.X) {
		t.Error("split not reproducible")
	}
	_, b3 := splitRandom(*s, 0.25, rand.NewPCG(2, 2))
	if mat.Equal(b.X, b3.X) {
		t.Error("split does not depend on the source")
	}
	for _, frac := range []float64{0, 1, -0.5, 1.5, math.NaN(), 0.001, 0.999} {
		if !panics(func() { splitRandom(*s, frac, rand.NewPCG(1, 2)) }) {
			t.Errorf("SplitRandom(%v) did not panic", frac)
		}
	}
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	s, err := Load("monks1", &Options{Seed: 3, ValidFraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 93 || s.Valid.Len() != 31 || s.Test.Len() != 432 {
		t.Errorf("got sizes %d/%d/%d", s.Train.Len(), s.Valid.Len(), s.Test.Len())
	}
	if s.Train.Name != "monks1/train" || s.Valid.Name != "monks1/valid" {
		t.Errorf("got names %q and %q", s.Train.Name, s.Valid.Name)
	}
	for _, opt := range []Options{
		{ValidFraction: 1},
		{ValidFraction: -0.1},
		{ValidFraction: math.NaN()},
		{ValidFraction: 0.001},
		{N: -1},
		{TestN: -1},
	} {
		if _, err := Load("monks1", &opt); err == nil {
			t.Errorf("Load(monks1, %+v): no error", opt)
		}
	}
	if _, err := Load("xor", &Options{ValidFraction: 0.1}); err == nil {
		t.Error("Load(xor) with an empty validation set: no error")
	}
}

func TestStandardizer(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 1))
	const n = 50
	x := mat.NewDense(n, 3, nil)
	for i := range n {
		x.SetRow(i, []float64{5 + 3*rnd.NormFloat64(), 2, -100 * rnd.Float64()})
	}
	s := &nn.Data{Name: "t", X: x, Y: mat.NewDense(n, 1, nil)}
	orig := mat.DenseCopyOf(x)
	z := NewStandardizer(*s)
	got := z.Apply(*s)
	if !mat.Equal(s.X, orig) {
		t.Error("Apply modified its input")
	}
	col := make([]float64, n)
	for j := range 3 {
		mat.Col(col, j, got.X)
		m, sd := stat.MeanStdDev(col, nil)
		wantSD := 1.0
		if j == 1 {
			wantSD = 0
			if z.Std[j] != 1 {
				t.Errorf("constant column has Std %v, want 1", z.Std[j])
			}
		}
		if math.Abs(m) > 1e-12 || math.Abs(sd-wantSD) > 1e-12 {
			t.Errorf("column %d: mean %v, sd %v", j, m, sd)
		}
	}
	if !panics(func() { z.Apply(*Parity(2)) }) {
		t.Error("Apply to a set of another width did not panic")
	}

	// Load standardizes all splits with the training statistics.
	l, err := Load("sine", &Options{Standardize: true, ValidFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Load("sine", &Options{ValidFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	m, sd := stat.MeanStdDev(l.Train.X.RawMatrix().Data, nil)
	if math.Abs(m) > 1e-12 || math.Abs(sd-1) > 1e-12 {
		t.Errorf("standardized training inputs: mean %v, sd %v", m, sd)
	}
	zr := NewStandardizer(raw.Train)
	for _, p := range [][2]*nn.Data{{&l.Valid, &raw.Valid}, {&l.Test, &raw.Test}} {
		if !mat.EqualApprox(p[0].X, zr.Apply(*p[1]).X, 1e-12) {
			t.Errorf("%s not standardized with the training statistics", p[0].Name)
		}
		if !mat.Equal(p[0].Y, p[1].Y) {
			t.Errorf("%s: targets changed", p[0].Name)
		}
	}
}

func TestSine(t *testing.T) {
	t.Parallel()
	s, err := Sine(0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 200 || s.Test.Len() != 200 || s.Train.Inputs() != 1 || s.Train.Targets() != 1 {
		t.Fatalf("got %d and %d samples", s.Train.Len(), s.Test.Len())
	}
	big, err := Sine(5000, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if big.Test.Len() != 10 {
		t.Errorf("got %d test samples, want 10", big.Test.Len())
	}
	resid := make([]float64, big.Train.Len())
	last := math.Inf(-1)
	for i := range resid {
		x := big.Train.X.At(i, 0)
		if x < -math.Pi || x > math.Pi || x < last {
			t.Fatalf("sample %d: x = %v out of range or order", i, x)
		}
		last = x
		resid[i] = big.Train.Y.At(i, 0) - math.Sin(x)
	}
	m, sd := stat.MeanStdDev(resid, nil)
	if math.Abs(m) > 0.01 || math.Abs(sd-0.1) > 0.005 {
		t.Errorf("noise mean %v, sd %v; want 0, 0.1", m, sd)
	}
	if mat.Equal(s.Train.X, s.Test.X) {
		t.Error("training and test inputs are equal")
	}
	again, _ := Sine(0, 0, 1)
	other, _ := Sine(0, 0, 2)
	if !mat.Equal(s.Train.Y, again.Train.Y) || !mat.Equal(s.Test.X, again.Test.X) {
		t.Error("not reproducible")
	}
	if mat.Equal(s.Train.X, other.Train.X) {
		t.Error("does not depend on the seed")
	}
	if _, err := Sine(-1, 0, 1); err == nil {
		t.Error("negative size: no error")
	}
}

func TestSpirals(t *testing.T) {
	t.Parallel()
	s, err := Spirals(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 194 || s.Test.Len() != 192 || s.Train.Inputs() != 2 || s.Loss != "bce" {
		t.Fatalf("got %d and %d points", s.Train.Len(), s.Test.Len())
	}
	// The first point of the benchmark is (0, 6.5) and the last of the
	// first spiral (0.5, 0) at t = 96, φ = 6π.
	if x := s.Train.X.RawRowView(0); x[0] != 0 || x[1] != 6.5 {
		t.Errorf("first point %v", x)
	}
	if x := s.Train.X.RawRowView(192); math.Abs(x[0]) > 1e-12 || math.Abs(x[1]-0.5) > 1e-12 {
		t.Errorf("last point of the first spiral %v", x)
	}
	for _, set := range []*nn.Data{&s.Train, &s.Test} {
		ones := 0
		for i := 0; i < set.Len(); i += 2 {
			p, q := set.X.RawRowView(i), set.X.RawRowView(i+1)
			if p[0] != -q[0] || p[1] != -q[1] || set.Y.At(i, 0) != 1 || set.Y.At(i+1, 0) != 0 {
				t.Fatalf("%s: points %d and %d are not a mirrored pair", set.Name, i, i+1)
			}
			r := math.Hypot(p[0], p[1])
			if r < 0.5-1e-12 || r > 6.5+1e-12 {
				t.Errorf("%s: point %d at radius %v", set.Name, i, r)
			}
			ones++
		}
		if 2*ones != set.Len() {
			t.Errorf("%s: %d of %d points on the first spiral", set.Name, ones, set.Len())
		}
	}
	// Test points lie halfway along the spiral between training points.
	if r0, r1, rt := math.Hypot(6.5, 0), radius(&s.Train, 2), radius(&s.Test, 0); math.Abs(rt-(r0+r1)/2) > 1e-12 {
		t.Errorf("first test point at radius %v, want %v", rt, (r0+r1)/2)
	}
	small, err := Spirals(10)
	if err != nil || small.Train.Len() != 10 || small.Test.Len() != 8 {
		t.Errorf("Spirals(10): %v", err)
	}
	for _, n := range []int{-2, 2, 7} {
		if _, err := Spirals(n); err == nil {
			t.Errorf("Spirals(%d): no error", n)
		}
	}
}

func radius(s *nn.Data, i int) float64 {
	x := s.X.RawRowView(i)
	return math.Hypot(x[0], x[1])
}

// rowKey returns a key identifying the inputs and targets of row i.
func rowKey(s *nn.Data, i int) string {
	var b strings.Builder
	for _, v := range s.X.RawRowView(i) {
		b.WriteString(ftoa(v))
		b.WriteByte(' ')
	}
	b.WriteByte('|')
	for _, v := range s.Y.RawRowView(i) {
		b.WriteByte(' ')
		b.WriteString(ftoa(v))
	}
	return b.String()
}

func code(bits []float64) int {
	c := 0
	for _, v := range bits {
		c = c<<1 | int(v)
	}
	return c
}

func panics(f func()) (panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	f()
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
