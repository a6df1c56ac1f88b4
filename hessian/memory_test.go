package hessian

import (
	"errors"
	"strings"
	"testing"
)

// TestParseBytesOverflow is the repro of --max-memory
// 99999999999999999999T overflowing to a negative size.
func TestParseBytesOverflow(t *testing.T) {
	for _, s := range []string{"99999999999999999999T", "9.3E18", "1e400", "9223372036854775808", "infT"} {
		if _, err := ParseBytes(s); !errors.Is(err, ErrBytesTooLarge) {
			t.Errorf("ParseBytes(%q) error %v, want ErrBytesTooLarge", s, err)
		}
	}
	for s, want := range map[string]int64{"8G": 8 << 30, "1e-400": 0, "8388607T": 8388607 << 40, "1000": 1000} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"NaN", "-1", "x", ""} {
		if _, err := ParseBytes(s); err == nil || errors.Is(err, ErrBytesTooLarge) {
			t.Errorf("ParseBytes(%q) error %v", s, err)
		}
	}
}

// TestDefaultMemoryLimitSource checks that the default limit is half of
// the available memory and that its errors name where the limit comes
// from.
func TestDefaultMemoryLimitSource(t *testing.T) {
	p, src := AvailableMemory()
	if p <= 0 || src == "" {
		t.Skipf("available memory unknown on this machine (%d, %q)", p, src)
	}
	if got := DefaultMemoryLimit(); got != p/2 {
		t.Errorf("DefaultMemoryLimit = %d, want half of %d", got, p)
	}
	err := CheckMemory("test matrix", 1<<20, 0)
	if err == nil || !strings.Contains(err.Error(), src) {
		t.Errorf("CheckMemory error %v does not name %q", err, src)
	}
}
