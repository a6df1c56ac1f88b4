package hessian

import (
	"fmt"

	"github.com/secondorder/prune/internal/sysmem"
)

// memoryFraction is the fraction of the available memory that
// DefaultMemoryLimit allows for one dense matrix.
const memoryFraction = 0.5

// availableMemory returns the memory available to the process: the smaller
// of physical memory and the limit of its control group (cgroup v2
// memory.max or v1 memory.limit_in_bytes), and which of them applies.
// Bytes is 0 when neither can be read.
func availableMemory() (bytes int64, source string) {
	l := sysmem.Available()
	return l.Bytes, l.Source
}

// DefaultMemoryLimit returns half of the memory available to the process
// (physical or its control group's limit), or 4 GiB when it is unknown.
func DefaultMemoryLimit() int64 {
	if p, _ := availableMemory(); p > 0 {
		return int64(memoryFraction * float64(p))
	}
	return 4 << 30
}

// DefaultMemoryLimitSource describes DefaultMemoryLimit, such as "half of
// the cgroup v2 memory.max (/sys/fs/cgroup/memory.max), 1.0 GiB".
func DefaultMemoryLimitSource() string {
	p, src := availableMemory()
	if p <= 0 {
		return "4 GiB, as the available memory is unknown"
	}
	return fmt.Sprintf("half of the %s, %s", src, sysmem.FormatBytes(p))
}

// DenseBytes returns the bytes of an n×n float64 matrix.
func DenseBytes(n int) int64 { return 8 * int64(n) * int64(n) }

// MemoryError reports a dense matrix that would exceed the memory limit.
// Alternatives, when not empty, replaces the cheaper methods the message
// suggests.
type MemoryError struct {
	What         string
	Dim          int
	Bytes, Limit int64
	Alternatives string
}

func (e *MemoryError) Error() string {
	alt := e.Alternatives
	if alt == "" {
		alt = "use a diagonal curvature (diag, diag-bl, diag-lm, hutchinson), matrix-free products (Hv, Lanczos), " +
			"layer-wise OBS, or raise the memory limit"
	}
	limit := sysmem.FormatBytes(e.Limit)
	if e.Limit == DefaultMemoryLimit() {
		limit += " (" + DefaultMemoryLimitSource() + ")"
	}
	return fmt.Sprintf("%s of %d×%d parameters needs %s, above the memory limit of %s; %s",
		e.What, e.Dim, e.Dim, sysmem.FormatBytes(e.Bytes), limit, alt)
}

// CheckMemory returns a *MemoryError when an n×n float64 matrix would need
// more than limit bytes (0: DefaultMemoryLimit; negative: no limit).
func CheckMemory(what string, n int, limit int64) error {
	if limit < 0 {
		return nil
	}
	if limit == 0 {
		limit = DefaultMemoryLimit()
	}
	if b := DenseBytes(n); b > limit {
		return &MemoryError{What: what, Dim: n, Bytes: b, Limit: limit}
	}
	return nil
}
