package sysmem

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

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
