package hessian

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/secondorder/prune/internal/sysmem"
)

// MemoryFraction is the fraction of the available memory that
// DefaultMemoryLimit allows for one dense matrix.
const MemoryFraction = 0.5

// PhysicalMemory returns the machine's physical memory in bytes, read from
// /proc/meminfo, or 0 when it cannot be read.
func PhysicalMemory() int64 { return sysmem.Physical().Bytes }

// AvailableMemory returns the memory available to the process: the smaller
// of physical memory and the limit of its control group (cgroup v2
// memory.max or v1 memory.limit_in_bytes), and which of them applies.
// Bytes is 0 when neither can be read.
func AvailableMemory() (bytes int64, source string) {
	l := sysmem.Available()
	return l.Bytes, l.Source
}

// DefaultMemoryLimit returns MemoryFraction of AvailableMemory, or 4 GiB
// when it is unknown.
func DefaultMemoryLimit() int64 {
	if p, _ := AvailableMemory(); p > 0 {
		return int64(MemoryFraction * float64(p))
	}
	return 4 << 30
}

// DefaultMemoryLimitSource describes DefaultMemoryLimit, such as "half of
// the cgroup v2 memory.max (/sys/fs/cgroup/memory.max), 1.0 GiB".
func DefaultMemoryLimitSource() string {
	p, src := AvailableMemory()
	if p <= 0 {
		return "4 GiB, as the available memory is unknown"
	}
	return fmt.Sprintf("half of the %s, %s", src, FormatBytes(p))
}

// DenseBytes returns the bytes of an n×n float64 matrix.
func DenseBytes(n int) int64 { return 8 * int64(n) * int64(n) }

// MemoryError reports a dense matrix that would exceed the memory limit.
//
// Alternatives, when not empty, replaces the list of cheaper methods the
// message suggests, so that a caller can leave out the one that failed.
// The message names the source of the limit when it is the default one.
type MemoryError struct {
	What         string
	Dim          int
	Bytes        int64
	Limit        int64
	Alternatives string
}

func (e *MemoryError) Error() string {
	alt := e.Alternatives
	if alt == "" {
		alt = "use a diagonal curvature (diag, diag-bl, diag-lm, hutchinson), matrix-free products (Hv, Lanczos), " +
			"layer-wise OBS, or raise the limit (--max-memory)"
	}
	limit := FormatBytes(e.Limit)
	if e.Limit == DefaultMemoryLimit() {
		limit += " (" + DefaultMemoryLimitSource() + ")"
	}
	return fmt.Sprintf("%s of %d×%d parameters needs %s, above the memory limit of %s; %s",
		e.What, e.Dim, e.Dim, FormatBytes(e.Bytes), limit, alt)
}

// CheckMemory returns a *MemoryError when an n×n float64 matrix would need
// more than limit bytes. A limit of 0 means DefaultMemoryLimit; a negative
// limit disables the check.
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

// FormatBytes formats a byte count with a binary unit, such as "1.5 GiB".
func FormatBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// ErrBytesTooLarge is returned, wrapped, by ParseBytes for a size that does
// not fit in an int64.
var ErrBytesTooLarge = errors.New("too large")

// ParseBytes parses a size such as "512M", "8GiB", "2.5G" or "1000000". A
// size above 2⁶³−1 bytes gives an error wrapping ErrBytesTooLarge.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if errors.Is(err, strconv.ErrRange) && !math.IsInf(v, 0) {
		err = nil // underflow to zero
	}
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsNaN(v) || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional K, M, G or T suffix", s)
	}
	// 2⁶³ is exact in float64; any product at or above it overflows int64.
	if errors.Is(err, strconv.ErrRange) || v*mult >= (1<<63) {
		return 0, fmt.Errorf("size %q: %w (the largest is %s)", s, ErrBytesTooLarge, FormatBytes(math.MaxInt64))
	}
	return int64(v * mult), nil
}
