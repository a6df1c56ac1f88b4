package hessian

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// MemoryFraction is the fraction of physical memory that DefaultMemoryLimit
// allows for one dense matrix.
const MemoryFraction = 0.5

var (
	physOnce sync.Once
	phys     int64
)

// PhysicalMemory returns the machine's physical memory in bytes, read from
// /proc/meminfo, or 0 when it cannot be read.
func PhysicalMemory() int64 {
	physOnce.Do(func() {
		f, err := os.Open("/proc/meminfo")
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, err := strconv.ParseInt(fields[1], 10, 64)
				if err == nil {
					phys = kb * 1024
				}
				return
			}
		}
	})
	return phys
}

// DefaultMemoryLimit returns MemoryFraction of physical memory, or 4 GiB
// when physical memory is unknown.
func DefaultMemoryLimit() int64 {
	if p := PhysicalMemory(); p > 0 {
		return int64(MemoryFraction * float64(p))
	}
	return 4 << 30
}

// DenseBytes returns the bytes of an n×n float64 matrix.
func DenseBytes(n int) int64 { return 8 * int64(n) * int64(n) }

// MemoryError reports a dense matrix that would exceed the memory limit.
type MemoryError struct {
	What  string
	Dim   int
	Bytes int64
	Limit int64
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("%s of %d×%d parameters needs %s, above the memory limit of %s; "+
		"use a diagonal curvature (diag, diag-bl, diag-lm, hutchinson), matrix-free products (Hv, Lanczos), "+
		"layer-wise OBS, or raise the limit (--max-memory)",
		e.What, e.Dim, e.Dim, FormatBytes(e.Bytes), FormatBytes(e.Limit))
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

// ParseBytes parses a size such as "512M", "8GiB", "2.5G" or "1000000".
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
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional K, M, G or T suffix", s)
	}
	return int64(v * mult), nil
}
