// Package atomicfile writes files so that a reader, or a later run after a
// crash, sees either the old content or the complete new content, never a
// partial file.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces the file at path with the bytes that write
// produces.
//
// The data go to a temporary file in the same directory, which is flushed,
// synced to stable storage, given mode 0644 and then renamed over path; the
// directory is synced afterwards where the system supports it. When write or
// any of these steps fails, the temporary file is removed, the file at path is
// left as it was and the error is returned. A process killed during Write may
// leave a temporary file named "."+base(path)+".tmp-*" behind, but never a
// partial file at path.
//
// When path is a symbolic link, the link itself is replaced, not its target.
func Write(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed, done := false, false
	defer func() {
		// Also runs when write panics.
		if !done {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	done = true
	syncDir(dir)
	return nil
}

// WriteBytes creates or replaces the file at path with data, as Write does.
func WriteBytes(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// syncDir syncs the directory dir so that a rename in it is durable. Errors
// are ignored: not every system can sync a directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// CheckNotInput returns an error when out names the same file as one of
// inputs. Two names are the same file when both exist and os.SameFile says
// so (this catches hard and symbolic links), or, when one does not exist,
// when their cleaned absolute paths are equal. Empty names are ignored.
func CheckNotInput(out string, inputs ...string) error {
	if out == "" {
		return nil
	}
	outInfo, outErr := os.Stat(out)
	for _, in := range inputs {
		if in == "" {
			continue
		}
		if same(out, outInfo, outErr, in) {
			return fmt.Errorf("output %q is the same file as input %q", out, in)
		}
	}
	return nil
}

func same(out string, outInfo os.FileInfo, outErr error, in string) bool {
	if outErr == nil {
		if inInfo, err := os.Stat(in); err == nil {
			return os.SameFile(outInfo, inInfo)
		}
	}
	a, err := filepath.Abs(out)
	if err != nil {
		return filepath.Clean(out) == filepath.Clean(in)
	}
	b, err := filepath.Abs(in)
	if err != nil {
		return filepath.Clean(out) == filepath.Clean(in)
	}
	return a == b
}
