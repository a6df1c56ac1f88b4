package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSet(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, p := range []string{a, c} {
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A failure after some files are written leaves every path as it was.
	var s Set
	if err := s.WriteBytes(a, []byte("new a")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	if err := s.Write(b, func(w io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	s.Abort()
	if got, _ := os.ReadFile(a); string(got) != "old" {
		t.Errorf("a = %q after Abort", got)
	}
	if _, err := os.Stat(b); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b exists after Abort")
	}
	checkNoTemp(t, dir)

	s = Set{}
	s.WriteBytes(a, []byte("new a"))
	s.WriteBytes(b, []byte("new b"))
	s.Remove(c)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{a: "new a", b: "new b"} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c not removed")
	}
	if err := s.WriteBytes(a, nil); err == nil {
		t.Error("Write after Commit succeeded")
	}
	checkNoTemp(t, dir)
}

// TestTryLock is the repro of two concurrent runs into one output: the
// second fails at once, and after Unlock the lock can be taken again.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(path)
	if runtime.GOOS != "windows" && (!errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "being written by another process")) {
		t.Errorf("second lock: %v", err)
	}
	l.Unlock()
	l.Unlock()
	if _, err := os.Stat(LockPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
	l2, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after Unlock: %v", err)
	}
	l2.Unlock()
	var nilLock *Lock
	nilLock.Unlock()
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	dangling := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "missing"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path      string
		overwrite bool
		want      string
	}{
		{filepath.Join(dir, "new"), false, ""},
		{file, false, "exists"},
		{file, true, ""},
		{dir, true, "is a directory"},
		{filepath.Join(dir, "no", "f"), true, "does not exist"},
		{filepath.Join(file, "f"), true, "is not a directory"},
		{dangling, false, "symbolic link"},
		{dangling, true, ""},
	} {
		err := CheckWritable(tc.path, tc.overwrite)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckWritable(%s, %t) = %v, want %q", tc.path, tc.overwrite, err, tc.want)
		}
	}
	checkNoTemp(t, dir)
	if os.Geteuid() != 0 && runtime.GOOS != "windows" {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if err := CheckWritable(filepath.Join(ro, "f"), false); err == nil || !strings.Contains(err.Error(), "cannot create files") {
			t.Errorf("read-only directory: %v", err)
		}
	}
}
