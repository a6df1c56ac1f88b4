package modelio

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/nn"
)

// SaveSet adds the files of Save(path, n) to the set s, to be renamed by
// s.Commit together with the other files of s: the model file, and for an
// .npz archive then its spec file, which records the archive's SHA-256 so
// that Load refuses an archive and a spec file that were not written
// together, as a commit interrupted between the two renames could leave.
// Nothing is added when n cannot be written.
//
// SaveSet is for programs that write a model with other files as one set;
// the set type is internal to the module.
func SaveSet(s *atomicfile.Set, path string, n *nn.Network) error {
	ext, err := format(path)
	if err != nil {
		return err
	}
	if ext == ".json" {
		return named(path, s.Write(path, func(w io.Writer) error { return WriteJSON(w, n) }))
	}
	if _, err := writable(n); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := writeSidecar(io.Discard, n, ""); err != nil {
		return fmt.Errorf("%s: %w", SpecPath(path), err)
	}
	write := Write
	switch ext {
	case ".pt":
		write = WritePT
	case ".safetensors":
		write = WriteSafetensors
	}
	h := sha256.New()
	if err := s.Write(path, func(w io.Writer) error { return write(io.MultiWriter(w, h), n) }); err != nil {
		return named(path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	side := SpecPath(path)
	return named(side, s.Write(side, func(w io.Writer) error { return writeSidecar(w, n, sum) }))
}

// isSHA256 reports whether s is a SHA-256 in lower-case hexadecimal.
func isSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkModelSum returns an error when the spec file side records a
// SHA-256 (sc.sum) that the archive f of size bytes does not have.
func checkModelSum(f *os.File, size int64, sc *sidecar, side string) error {
	if sc == nil || sc.sum == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sc.sum {
		return fmt.Errorf("SHA-256 %s…, but its spec file %s was written for the archive of SHA-256 %s…: the two were not written together (an interrupted write?); write the model again", got[:12], side, sc.sum[:12])
	}
	return nil
}
