package hessian

import (
	"strings"
	"testing"
)

// TestDefaultMemoryLimitSource checks that the default limit is half of
// the available memory and that its errors name where the limit comes
// from.
func TestDefaultMemoryLimitSource(t *testing.T) {
	p, src := availableMemory()
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
