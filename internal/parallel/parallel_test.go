package parallel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, test := range []struct {
		n, size int
		want    []Range
	}{
		{0, 3, []Range{}},
		{1, 3, []Range{{0, 1}}},
		{6, 3, []Range{{0, 3}, {3, 6}}},
		{7, 3, []Range{{0, 3}, {3, 6}, {6, 7}}},
		{2, 1, []Range{{0, 1}, {1, 2}}},
	} {
		if got := Split(test.n, test.size); !slices.Equal(got, test.want) {
			t.Errorf("Split(%d, %d) = %v, want %v", test.n, test.size, got, test.want)
		}
	}
	if (Range{3, 7}).Len() != 4 {
		t.Error("Range.Len")
	}
	for _, bad := range [][2]int{{-1, 1}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%d, %d) did not panic", bad[0], bad[1])
				}
			}()
			Split(bad[0], bad[1])
		}()
	}
}

// term returns values whose sum in floating point depends on the order of
// the additions.
func term(t int) float64 { return math.Pow(10, float64(t%7*3)) / float64(t+1) }

func TestRunDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const n = 200
	var ref []float64
	var refSum float64
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for _, workers := range []int{0, 1, 3, 7, n + 5} {
			var states atomic.Int32
			var done []int
			res, err := Run(context.Background(), n, workers,
				func() []float64 { states.Add(1); return make([]float64, 1) },
				func(buf []float64, t int) (float64, error) {
					buf[0] = term(t) // scratch space of this worker
					return buf[0], nil
				},
				func(t int) { done = append(done, t) })
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref, refSum = res, Sum(res)
			}
			if !slices.Equal(res, ref) || math.Float64bits(Sum(res)) != math.Float64bits(refSum) {
				t.Errorf("GOMAXPROCS=%d workers=%d: results differ", procs, workers)
			}
			w := workers
			if w <= 0 {
				w = procs
			}
			if got := int(states.Load()); got != min(w, n) {
				t.Errorf("GOMAXPROCS=%d workers=%d: %d states, want %d", procs, workers, got, min(w, n))
			}
			slices.Sort(done)
			if len(done) != n || done[0] != 0 || done[n-1] != n-1 || len(slices.Compact(done)) != n {
				t.Errorf("GOMAXPROCS=%d workers=%d: done called for %d tasks", procs, workers, len(done))
			}
		}
	}
	for i, v := range ref {
		if v != term(i) {
			t.Fatalf("result %d is %v, want %v", i, v, term(i))
		}
	}
	// The terms are such that the order of the sum matters, so the test
	// would see a reduction in another order.
	rev := slices.Clone(ref)
	slices.Reverse(rev)
	if Sum(rev) == refSum {
		t.Errorf("the sum in reverse order is the same, %v", refSum)
	}
	if res, err := Run(context.Background(), 0, 2, func() int { return 0 }, func(int, int) (int, error) { return 1, nil }, nil); err != nil || len(res) != 0 {
		t.Errorf("no tasks: %v, %v", res, err)
	}
}

func TestRunErrors(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		var ran atomic.Int32
		_, err := Run(context.Background(), 100, workers, func() int { return 0 },
			func(_ int, t int) (int, error) {
				ran.Add(1)
				if t == 3 || t == 9 {
					return 0, fmt.Errorf("task %d failed", t)
				}
				return t, nil
			}, nil)
		if err == nil || err.Error() != "task 3 failed" {
			t.Errorf("workers=%d: error %v, want that of task 3", workers, err)
		}
		if n := ran.Load(); n >= 100 {
			t.Errorf("workers=%d: %d tasks ran after a failure", workers, n)
		}

		_, err = Run(context.Background(), 10, workers, func() int { return 0 },
			func(_ int, t int) (int, error) {
				if t == 5 {
					var m map[string]int
					m["x"]++ // a bug
				}
				return t, nil
			}, nil)
		if err == nil || !strings.Contains(err.Error(), "internal error in task 5") {
			t.Errorf("workers=%d: panic gives error %v", workers, err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		_, err = Run(ctx, 1000, workers, func() int { return 0 },
			func(_ int, t int) (int, error) {
				if t == 2 {
					cancel()
				}
				return t, nil
			}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("workers=%d: canceled run gives error %v", workers, err)
		}
	}
}

func ExampleRun() {
	// The squares of 0…9 on 3 goroutines, each with its own buffer, summed
	// in index order.
	res, err := Run(context.Background(), 10, 3,
		func() []int { return make([]int, 1) },
		func(buf []int, t int) (float64, error) {
			buf[0] = t * t
			return float64(buf[0]), nil
		}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res, Sum(res))
	// Output: [0 1 4 9 16 25 36 49 64 81] 285
}
