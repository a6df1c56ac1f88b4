package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrLocked is returned, wrapped, by TryLock when another process holds the
// lock.
var ErrLocked = errors.New("locked by another process")

// A Lock is an advisory lock on an output, held by this process until
// Unlock.
type Lock struct {
	f    *os.File
	path string
}

// LockPath returns the path of the lock file of the output path: a hidden
// file next to it, "."+base(path)+".lock".
func LockPath(path string) string {
	dir, base := filepath.Split(filepath.Clean(path))
	return filepath.Join(dir, "."+base+".lock")
}

// TryLock takes an exclusive advisory lock (flock) on LockPath(path), creating
// the lock file, and fails at once with an error wrapping ErrLocked when
// another process holds it, so that two runs writing the same output do not
// interleave. The lock is released by Unlock, or when the process ends; the
// lock file is removed by Unlock. On systems without flock, TryLock succeeds
// without locking.
func TryLock(path string) (*Lock, error) {
	lp := LockPath(path)
	for range 10 {
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", lp, err)
		}
		if err := flock(f); err != nil {
			f.Close()
			if errors.Is(err, ErrLocked) {
				return nil, fmt.Errorf("%s is being written by another process (lock file %s); wait for it to finish: %w", path, lp, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", lp, err)
		}
		// The holder before us may have removed the file after we opened
		// it: the lock is only good on the file at lp now.
		held, err1 := f.Stat()
		now, err2 := os.Stat(lp)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return &Lock{f: f, path: lp}, nil
		}
		f.Close()
		if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return nil, fmt.Errorf("lock %s: %w", lp, err2)
		}
	}
	return nil, fmt.Errorf("%s is being written by another process (lock file %s keeps changing): %w", path, lp, ErrLocked)
}

// Unlock removes the lock file and releases the lock. It may be called on a
// nil Lock, and more than once.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	// Removed while held, so that no other process locks a file that is
	// about to disappear without noticing (see TryLock).
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// CheckWritable returns an error when a file cannot be written at path
// before any work is done: its directory must exist and take a new file,
// which CheckWritable tests by creating and removing one, and path must not
// be a directory. When overwrite is false, path must not exist, a symbolic
// link whose target does not exist counting as existing (replacing it
// would replace the link).
func CheckWritable(path string, overwrite bool) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("directory %s does not exist", dir)
		}
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi, err := os.Lstat(path); err == nil {
		switch {
		case fi.IsDir():
			return fmt.Errorf("%s is a directory", path)
		case fi.Mode()&fs.ModeSymlink != 0:
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return fmt.Errorf("%s is a link to a directory", path)
			} else if err != nil && !overwrite {
				target, _ := os.Readlink(path)
				return fmt.Errorf("%s is a symbolic link to %s, which does not exist (give --overwrite to replace the link)", path, target)
			}
			if !overwrite {
				return fmt.Errorf("%s exists (give --overwrite to replace it)", path)
			}
		case !overwrite:
			return fmt.Errorf("%s exists (give --overwrite to replace it)", path)
		}
	}
	f, err := createTemp(dir, "."+filepath.Base(path)+".probe-")
	if err != nil {
		return fmt.Errorf("cannot create files in %s: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}
