package memtest

import "testing"

var sink []byte

func TestAllocated(t *testing.T) {
	got := Allocated(func() { sink = make([]byte, 1<<20) })
	if got < 1<<20 || got > 2<<20 {
		t.Errorf("Allocated = %d for a 1 MiB allocation", got)
	}
	if got := Allocated(func() {}); got > 64<<10 {
		t.Errorf("Allocated = %d for nothing", got)
	}
}
