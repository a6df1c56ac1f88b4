// Package atomicfile writes files so that a reader, or a later run after a
// crash, sees either the old content or the complete new content, never a
// partial file.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Write creates or replaces the file at path with the bytes that write
// produces.
//
// The data go to a temporary file in the same directory, which is flushed,
// synced to stable storage and then renamed over path; the directory is
// synced afterwards where the system supports it. When write or any of these
// steps fails, the temporary file is removed, the file at path is left as it
// was and the error is returned. A process killed during Write may leave a
// temporary file named "."+base(path)+".tmp-*" behind, but never a partial
// file at path.
//
// A new file gets mode 0666 less the process's umask, as os.Create gives; a
// file that is replaced keeps its permissions. When path is a symbolic
// link, the link itself is replaced, not its target.
func Write(path string, write func(w io.Writer) error) error {
	var s Set
	defer s.Abort()
	if err := s.Write(path, write); err != nil {
		return err
	}
	return s.Commit()
}

// WriteBytes creates or replaces the file at path with data, as Write does.
func WriteBytes(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// A Set writes several files as a set: Write and WriteBytes write each to a
// temporary file next to it, synced to stable storage, and Commit renames
// them all over their paths in the order they were added, then removes the
// files given to Remove. A failure before Commit, including running out of
// disk space, leaves every path as it was. Commit's renames are not atomic
// together: a reader can see the first files of the set renamed and not the
// last ones, and so a set whose reader must never take a mixed set for a
// valid one records in its last file a digest of the others, which the
// reader checks. The zero Set is empty and ready to use; a Set is not safe
// for concurrent use.
type Set struct {
	pending []pending
	removes []string
	done    bool
}

// pending is a file of a Set written to tmp and to be renamed to path.
type pending struct {
	tmp, path, dir string
}

// Write writes the bytes that write produces to a temporary file for path,
// to be renamed over path by Commit. A new file gets mode 0666 less the
// umask; a file that exists keeps its permissions. On error the temporary
// file is removed and the Set is unchanged.
func (s *Set) Write(path string, write func(w io.Writer) error) (err error) {
	if s.done {
		return errors.New("atomicfile: Write after Commit or Abort")
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := createTemp(dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		// Also runs when write panics.
		if err != nil || !closed {
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
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	s.pending = append(s.pending, pending{tmp: tmp, path: path, dir: dir})
	return nil
}

// WriteBytes adds a file of content data to the set, as Write does.
func (s *Set) WriteBytes(path string, data []byte) error {
	return s.Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Remove makes Commit remove the file at path, if it exists, after the
// renames.
func (s *Set) Remove(path string) { s.removes = append(s.removes, path) }

// Commit renames the files of the set over their paths in the order they
// were added, removes the files given to Remove and syncs the directories.
// It stops at the first failure, removing the temporary files not renamed,
// and returns the error. After Commit the Set can no longer be used.
func (s *Set) Commit() error {
	if s.done {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	defer s.Abort()
	dirs := make(map[string]bool)
	for len(s.pending) > 0 {
		p := s.pending[0]
		if err := os.Rename(p.tmp, p.path); err != nil {
			return err
		}
		s.pending = s.pending[1:]
		dirs[p.dir] = true
	}
	for _, path := range s.removes {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		dirs[filepath.Dir(path)] = true
	}
	for dir := range dirs {
		syncDir(dir)
	}
	return nil
}

// Abort removes the temporary files of the set that Commit has not renamed.
// It may be called more than once, and after Commit, and is typically
// deferred.
func (s *Set) Abort() {
	for _, p := range s.pending {
		os.Remove(p.tmp)
	}
	s.pending = nil
	s.done = true
}

// createTemp creates a new file named prefix followed by random digits in
// dir, with mode 0666 less the umask: os.CreateTemp's files have mode 0600
// whatever the umask.
func createTemp(dir, prefix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
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
