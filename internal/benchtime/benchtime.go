// Package benchtime times computations for the benchmark programs and
// describes the machine they ran on.
package benchtime

import (
	"bufio"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"
)

// MinRun is the shortest timed run: faster computations are repeated
// within one run and the time divided by the number of calls.
const MinRun = 100 * time.Millisecond

// Result is the timing of one computation.
type Result struct {
	D     time.Duration // median time of one call
	Runs  int           // timed runs (1 when the warm-up run was used)
	Calls int           // calls per run
}

// Measure times fn: the median of reps runs after a warm-up run, or the
// warm-up run alone when it takes longer than slow. A run shorter than
// MinRun repeats fn.
func Measure(fn func() error, reps int, slow time.Duration) (Result, error) {
	t := time.Now()
	if err := fn(); err != nil {
		return Result{}, err
	}
	d := time.Since(t)
	if d > slow {
		return Result{D: d, Runs: 1, Calls: 1}, nil
	}
	calls := 1
	if d < MinRun {
		calls = int(MinRun/max(d, time.Microsecond)) + 1
	}
	ts := make([]time.Duration, reps)
	for i := range ts {
		t := time.Now()
		for range calls {
			if err := fn(); err != nil {
				return Result{}, err
			}
		}
		ts[i] = time.Since(t) / time.Duration(calls)
	}
	slices.Sort(ts)
	med := ts[reps/2]
	if reps%2 == 0 {
		med = (ts[reps/2-1] + ts[reps/2]) / 2
	}
	return Result{D: med, Runs: reps, Calls: calls}, nil
}

// CPUModel returns the CPU model name from /proc/cpuinfo, or "unknown".
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// DGEMMRate returns DGEMMRateN(2000, reps).
func DGEMMRate(reps int) float64 { return DGEMMRateN(2000, reps) }

// DGEMMRateN returns the BLAS's matrix-multiply rate in GFLOP/s: the
// median of reps products of two n×n matrices (2n³ flops) after a warm-up
// product.
func DGEMMRateN(n, reps int) float64 {
	rng := rand.New(rand.NewPCG(3, 3))
	a, b := mat.NewDense(n, n, nil), mat.NewDense(n, n, nil)
	for _, m := range []*mat.Dense{a, b} {
		raw := m.RawMatrix()
		for i := range raw.Data {
			raw.Data[i] = rng.NormFloat64()
		}
	}
	var c mat.Dense
	c.ReuseAs(n, n)
	r, _ := Measure(func() error { c.Mul(a, b); return nil }, reps, time.Hour)
	return 2 * float64(n) * float64(n) * float64(n) / r.D.Seconds() / 1e9
}

// LoadAverage returns the 1-, 5- and 15-minute load averages from
// /proc/loadavg, or "unknown".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
