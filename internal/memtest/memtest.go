// Package memtest measures the memory that a function allocates, for tests
// that bound the allocation of readers by the size of their input.
package memtest

import "runtime"

// Allocated returns the bytes that the program allocated while fn ran: the
// growth of runtime.MemStats.TotalAlloc, which counts every allocation and
// so bounds the peak of fn's heap from above. Allocations of other
// goroutines running at the same time are counted too.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
