//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteMode is the repro of outputs always 0644: a new file follows the
// umask and a replaced file keeps its mode.
func TestWriteMode(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(dir, "new")
	if err := WriteBytes(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file under umask 077: mode %v, want 0600", fi.Mode().Perm())
	}
	syscall.Umask(0o022)
	kept := filepath.Join(dir, "kept")
	if err := os.WriteFile(kept, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(kept, 0o640)
	if err := WriteBytes(kept, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kept); fi.Mode().Perm() != 0o640 {
		t.Errorf("replaced 0640 file: mode %v", fi.Mode().Perm())
	}
}
