package datasets

import (
	"bytes"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
	"github.com/secondorder/prune/nn"
)

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("a,b,y\n1,2,3\n4,5,6\n"), 1, false)
	f.Add([]byte("1,2,3\n4,5\n"), 1, false)
	f.Add([]byte("0.5,2\n1.5,0\n"), 1, true)
	f.Add([]byte("1,2,3\n"), 2, false)
	f.Add([]byte("\"1\",\" 2\"\n# c\n3,NaN\n"), 1, false)
	f.Add([]byte("x\n"), 0, false)
	f.Add([]byte("1,1e999\n"), 1, true)
	f.Fuzz(func(t *testing.T, data []byte, targets int, classes bool) {
		var (
			s   *nn.Data
			err error
		)
		if got, bound := memtest.Allocated(func() { s, err = ReadCSV(bytes.NewReader(data), "fuzz.csv", targets, classes) }), csvAllocBound(len(data)); got > bound {
			t.Fatalf("read of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if s.Len() < 1 || s.Inputs() < 1 || s.Targets() != targets {
			t.Errorf("got %d×%d → %d for %d targets", s.Len(), s.Inputs(), s.Targets(), targets)
		}
		for _, m := range [][]float64{s.X.RawMatrix().Data, s.Y.RawMatrix().Data} {
			for _, v := range m {
				if !finite(v) {
					t.Fatalf("non-finite value %v", v)
				}
			}
		}
		if classes {
			for i := range s.Len() {
				if c := s.Y.At(i, 0); c < 0 || c >= float64(s.Classes) {
					t.Fatalf("class %v out of range 0..%d", c, s.Classes-1)
				}
			}
		} else if s.Classes != 0 {
			t.Errorf("got %d classes", s.Classes)
		}
	})
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes(f, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6}, false))
	f.Add(idxBytes(f, []int{2, 2, 2}, make([]byte, 8), true))
	f.Add(idxBytes(f, []int{4}, []byte{0, 1, 2}, false))
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			idx *IDX
			err error
		)
		got := memtest.Allocated(func() { idx, err = ReadIDX(bytes.NewReader(data), "fuzz.idx") })
		if bound := idxAllocBound(data); got > bound {
			t.Fatalf("read of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.idx: ") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		size := 1
		for _, d := range idx.Dims {
			if d < 1 {
				t.Fatalf("dimension %d", d)
			}
			size *= d
		}
		if len(idx.Dims) == 0 || len(idx.Data) != size {
			t.Errorf("dims %v with %d bytes", idx.Dims, len(idx.Data))
		}
	})
}

func FuzzReadMonks(f *testing.F) {
	f.Add([]byte(" 1 1 1 1 1 3 1 data_5\n 1 1 1 1 1 3 2 data_6\n"))
	f.Add([]byte(" 0 3 3 2 3 4 2\n\n"))
	f.Add([]byte(" 1 1 1 1 1 7 1 data_6\n"))
	f.Add([]byte(" 2 1 1 1 1 1 1 data_1\n"))
	f.Add([]byte("1 1 1 1 1 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			s   *nn.Data
			err error
		)
		if got, bound := memtest.Allocated(func() { s, err = ReadMonks(bytes.NewReader(data), "fuzz.train") }), uint64(1<<20+64*len(data)); got > bound {
			t.Fatalf("read of %d bytes allocated %d, above %d", len(data), got, bound)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.train") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if s.Len() < 1 || s.Inputs() != 17 || s.Targets() != 1 {
			t.Fatalf("got %d×%d → %d", s.Len(), s.Inputs(), s.Targets())
		}
		for i := range s.Len() {
			if _, ok := decodeMonks(s.X.RawRowView(i)); !ok {
				t.Fatalf("row %d is not a valid coding", i)
			}
			if y := s.Y.At(i, 0); y != 0 && y != 1 {
				t.Fatalf("row %d: label %v", i, y)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"xor", "parity2", "parity10", "parity11", "parity007", "monks3", "monks-1", "sine", "spirals", "mnist", "MNIST", "data.csv", "a/b", "", "parity+2", "monks١"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, param, err := Parse(name)
		if err != nil {
			if kind != "" || param != 0 {
				t.Errorf("Parse(%q) = %q, %d with error %v", name, kind, param, err)
			}
			return
		}
		lower := strings.ToLower(name)
		switch kind {
		case "xor", "sine", "spirals", "mnist":
			if lower != kind || param != 0 {
				t.Errorf("Parse(%q) = %q, %d", name, kind, param)
			}
		case "parity":
			if param < 2 || param > 10 || lower != "parity"+itoa(param) {
				t.Errorf("Parse(%q) = %q, %d", name, kind, param)
			}
		case "monks":
			if param < 1 || param > 3 || lower != "monks"+itoa(param) {
				t.Errorf("Parse(%q) = %q, %d", name, kind, param)
			}
		case "csv", "arrays":
			if param != 0 || name == "" {
				t.Errorf("Parse(%q) = %q, %d", name, kind, param)
			}
		default:
			t.Errorf("Parse(%q): unknown kind %q", name, kind)
		}
	})
}
