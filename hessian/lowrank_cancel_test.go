package hessian

import (
	"context"
	"errors"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// countdownContext is a context whose Err reports cancellation from its
// left-th call on and counts the calls.
type countdownContext struct {
	left, calls int
}

func (c *countdownContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *countdownContext) Done() <-chan struct{}       { return nil }
func (c *countdownContext) Value(any) any               { return nil }
func (c *countdownContext) Err() error {
	c.calls++
	if c.calls >= c.left {
		return context.Canceled
	}
	return nil
}

// TestLowRankBuildChecksContext checks that the build of a wide low-rank
// form asks its context between column chunks, not only between row tiles,
// and stops at the first cancellation: with m = 8 rows there is one row
// tile, so a build that checked only between row tiles would not see a
// cancellation that comes at its second check.
func TestLowRankBuildChecksContext(t *testing.T) {
	const m, n = 8, 5*lowRankCols + 7
	g := make([]float64, m*n)
	for i := range g {
		g[i] = float64(i%13) - 6
	}
	for _, stop := range []int{2, 4, 7} {
		ctx := &countdownContext{left: stop}
		_, err := NewLowRank(ctx, mat.NewDense(m, n, g), 1)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at check %d: err %v, want context.Canceled", stop, err)
		}
		if ctx.calls != stop {
			t.Errorf("cancelled at check %d: %d checks made, want the build to stop at that one", stop, ctx.calls)
		}
	}
	// Uncancelled, the same form is built.
	if _, err := NewLowRank(context.Background(), mat.NewDense(m, n, g), 1); err != nil {
		t.Fatal(err)
	}
}
