package nn

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/secondorder/prune/internal/parallel"
	"gonum.org/v1/gonum/mat"
)

// cancelAfterContext is a context that is cancelled at its after-th call of
// Err and counts the calls.
type cancelAfterContext struct {
	context.Context
	after int64
	calls atomic.Int64
	once  sync.Once
	done  chan struct{}
}

func (c *cancelAfterContext) Done() <-chan struct{} { return c.done }

func (c *cancelAfterContext) Err() error {
	if c.calls.Add(1) >= c.after {
		c.once.Do(func() { close(c.done) })
		return context.Canceled
	}
	return nil
}

func TestEvaluateContextStopsBetweenChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, err := New([]int{5, 4, 3}, []Activation{Tanh, Softmax}, CE)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(3, 4))
	const rows = 200 * parallel.ChunkRows
	X := mat.NewDense(rows, 5, nil)
	Y := mat.NewDense(rows, 1, nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < 5; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		Y.Set(i, 0, float64(rng.IntN(3)))
	}
	want := n.Evaluate(X, Y)
	got, err := n.EvaluateContext(context.Background(), X, Y)
	if err != nil || got != want {
		t.Fatalf("EvaluateContext(Background) = %+v, %v; Evaluate = %+v", got, err, want)
	}

	ctx := &cancelAfterContext{Context: context.Background(), after: 3, done: make(chan struct{})}
	m, err := n.EvaluateContext(ctx, X, Y)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled evaluation returned %v, want context.Canceled", err)
	}
	if m != (Metrics{}) {
		t.Errorf("cancelled evaluation returned metrics %+v, want zero", m)
	}
	// Every chunk is preceded by one check; after the cancellation each
	// block stops at its next check, so at most after + blocks chunks are
	// looked at out of 200.
	if calls, limit := ctx.calls.Load(), int64(3+len(parallel.Blocks(rows))+1); calls > limit {
		t.Errorf("cancelled evaluation checked the context %d times, want at most %d (of %d chunks)", calls, limit, rows/parallel.ChunkRows)
	}
}
