// Package heappeak measures the peak of the Go heap while a computation
// runs, for the benchmark programs.
package heappeak

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Interval is the sampling interval.
const Interval = 20 * time.Millisecond

// Sampler samples the heap in a goroutine from Start to Stop.
type Sampler struct {
	base int64
	max  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start collects garbage, records the heap as the baseline and starts
// sampling.
func Start() *Sampler {
	runtime.GC()
	s := &Sampler{base: heap(), stop: make(chan struct{})}
	s.max.Store(s.base)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(Interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.observe()
			}
		}
	}()
	return s
}

func heap() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func (s *Sampler) observe() {
	if v := heap(); v > s.max.Load() {
		s.max.Store(v)
	}
}

// Stop stops sampling and returns the peak heap above the baseline, in
// bytes.
func (s *Sampler) Stop() int64 {
	s.observe()
	close(s.stop)
	s.wg.Wait()
	return max(s.max.Load()-s.base, 0)
}
