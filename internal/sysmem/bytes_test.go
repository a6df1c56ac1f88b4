package sysmem

import (
	"errors"
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

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"512M": 512 << 20, "8GiB": 8 << 30, "1000": 1000, "1.5K": 1536} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if _, err := ParseBytes("lots"); err == nil {
		t.Error("ParseBytes(\"lots\") succeeded")
	}
}
