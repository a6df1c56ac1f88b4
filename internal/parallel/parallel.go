// Package parallel runs independent tasks on a fixed number of goroutines
// with results that do not depend on how many there are.
//
// The work is cut into tasks that depend only on the size of the problem
// (Split gives fixed blocks of consecutive items), each task's result is
// stored at its index, and the caller reduces the results in index order
// (Sum), so the same inputs give the same bits for any GOMAXPROCS or
// number of workers.
package parallel

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// Range is the half-open range of items [Lo, Hi).
type Range struct{ Lo, Hi int }

// Len returns the number of items in r.
func (r Range) Len() int { return r.Hi - r.Lo }

// Split cuts the items 0…n−1 into consecutive ranges of size items, the
// last one shorter when size does not divide n. It returns no ranges for
// n = 0 and panics if n < 0 or size < 1.
func Split(n, size int) []Range {
	if n < 0 || size < 1 {
		panic(fmt.Sprintf("parallel: Split(%d, %d)", n, size))
	}
	rs := make([]Range, 0, (n+size-1)/size)
	for lo := 0; lo < n; lo += size {
		rs = append(rs, Range{lo, min(lo+size, n)})
	}
	return rs
}

// Sum returns the sum of xs in index order.
func Sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// Run calls fn(state, t) for the tasks t = 0…n−1 on up to workers
// goroutines (GOMAXPROCS when workers ≤ 0) and returns the results by task.
// Each goroutine gets its own state from newState, scratch space that fn
// may overwrite, so a task's result must depend on t alone. Tasks are
// started in index order; done, when not nil, is called after each task
// that succeeds, one call at a time.
//
// Run checks ctx before each task. It starts no more tasks once one has
// failed or ctx is done, and then returns the error of the failing task of
// lowest index, ctx.Err() if no task failed, or an error naming the task
// for a panic in fn, which it recovers.
func Run[S, R any](ctx context.Context, n, workers int, newState func() S, fn func(state S, t int) (R, error), done func(t int)) ([]R, error) {
	if n < 0 {
		panic(fmt.Sprintf("parallel: Run of %d tasks", n))
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	res := make([]R, n)
	errs := make([]error, n)
	var (
		mu     sync.Mutex
		next   int
		failed bool
	)
	// take returns the next task to run, or false when there is none.
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || next >= n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			failed = true
			return 0, false
		}
		t := next
		next++
		return t, true
	}
	work := func() {
		state := newState()
		for {
			t, ok := take()
			if !ok {
				return
			}
			res[t], errs[t] = guard(fn, state, t)
			mu.Lock()
			if errs[t] != nil {
				failed = true
			} else if done != nil {
				done(t)
			}
			mu.Unlock()
		}
	}
	if workers == 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// guard runs fn(state, t) and turns a panic into an error, so that a bug
// in a worker goroutine, which no caller could recover, ends the run with
// an error instead of the program.
func guard[S, R any](fn func(S, int) (R, error), state S, t int) (r R, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in task %d: %v", t, p)
		}
	}()
	return fn(state, t)
}

// ChunkRows is the number of samples processed together in one chunk of a
// batched pass.
const ChunkRows = 256

// maxBlocks is the fixed number of partial sums a batched reduction uses.
const maxBlocks = 8

// Blocks splits rows samples into [lo,hi) chunks of at most ChunkRows and
// groups them into at most 8 blocks of consecutive chunks. The grouping
// depends only on rows, so a reduction that sums per-block partial results
// in block order gives the same bits whatever GOMAXPROCS is.
func Blocks(rows int) [][][2]int {
	nc := (rows + ChunkRows - 1) / ChunkRows
	nb := min(nc, maxBlocks)
	blocks := make([][][2]int, nb)
	for c := 0; c < nc; c++ {
		b := c * nb / nc
		hi := min((c+1)*ChunkRows, rows)
		blocks[b] = append(blocks[b], [2]int{c * ChunkRows, hi})
	}
	return blocks
}

// ForBlocks calls fn(b, chunks) for every block b of blocks on up to
// GOMAXPROCS goroutines and returns when all calls have returned.
func ForBlocks(blocks [][][2]int, fn func(b int, chunks [][2]int)) {
	workers := min(runtime.GOMAXPROCS(0), len(blocks))
	if workers <= 1 {
		for b, ch := range blocks {
			fn(b, ch)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, len(blocks))
	for b := range blocks {
		next <- b
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				fn(b, blocks[b])
			}
		}()
	}
	wg.Wait()
}
