package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
)

// idxAllocBound is the most bytes that reading the IDX file data may
// allocate: a fixed overhead for the readers and their buffers and a small
// multiple of the file and of what it decompresses to.
func idxAllocBound(data []byte) uint64 {
	content := int64(len(data))
	if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
		n, _ := io.Copy(io.Discard, zr)
		content += n
	}
	return 2<<20 + 5*uint64(content)
}

// gzipBomb returns a gzipped IDX header declaring count images of 28×28
// pixels followed by zeros bytes of zeros.
func gzipBomb(t testing.TB, count, zeros int) []byte {
	t.Helper()
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	w.Write([]byte{0, 0, 8, 3})
	for _, d := range []uint32{uint32(count), 28, 28} {
		binary.Write(w, binary.BigEndian, d)
	}
	buf := make([]byte, 1<<20)
	for left := zeros; left > 0; left -= len(buf) {
		w.Write(buf[:min(left, len(buf))])
	}
	w.Close()
	return z.Bytes()
}

// TestReadIDXBomb is the repro of a small gzip IDX declaring 3 M images
// that took 8.2 GB even with -n 10: ReadIDXN reads only the items asked
// for, and ReadIDX grows with the data that is really there and fails at
// its end.
func TestReadIDXBomb(t *testing.T) {
	data := gzipBomb(t, 3000000, 64<<20)
	var (
		idx *IDX
		err error
	)
	got := memtest.Allocated(func() { idx, err = ReadIDXN(bytes.NewReader(data), "bomb.gz", 10) })
	if err != nil || idx.Dims[0] != 10 || idx.Count != 3000000 || len(idx.Data) != 7840 {
		t.Fatalf("ReadIDXN(10): %v, %v", idx, err)
	}
	if got > 2<<20 {
		t.Errorf("ReadIDXN(10) of a %d-byte file allocated %d bytes", len(data), got)
	}
	got = memtest.Allocated(func() { _, err = ReadIDX(bytes.NewReader(data), "bomb.gz") })
	if err == nil || !strings.Contains(err.Error(), "truncated data: dimensions [3000000 28 28] need 2352000000 bytes, got 67108864") {
		t.Errorf("ReadIDX: error %v", err)
	}
	if bound := uint64(2<<20 + 5*(64<<20)); got > bound {
		t.Errorf("ReadIDX of 64 MiB of data allocated %d bytes, above %d", got, bound)
	}
	t.Logf("ReadIDX of 64 MiB of data: %d bytes allocated", got)
}

// TestReadIDXFileSize checks that an uncompressed file's size is checked
// against its dimensions before any data is read, with -n too.
func TestReadIDXFileSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short-idx3-ubyte")
	if err := os.WriteFile(path, idxBytes(t, []int{3000000, 28, 28}, make([]byte, 1000), false), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := memtest.Allocated(func() { _, err = ReadIDXN(f, path, 10) })
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "truncated data: dimensions [3000000 28 28] need 2352000000 bytes, got 1000") {
		t.Errorf("error %v", err)
	}
	if got > 1<<20 {
		t.Errorf("allocated %d bytes", got)
	}
}

// TestReadIDXHugeDims is the repro of "dimensions [4294967295 0]": the
// message shows the dimensions declared.
func TestReadIDXHugeDims(t *testing.T) {
	data := []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	_, err := ReadIDX(bytes.NewReader(data), "x.idx")
	if err == nil || !strings.Contains(err.Error(), "dimensions [4294967295 4294967295") || strings.Contains(err.Error(), " 0]") {
		t.Errorf("error %v", err)
	}
}

// TestLoadMNISTLimit checks that LoadMNIST with n reads n images of a
// training file declaring millions.
func TestLoadMNISTLimit(t *testing.T) {
	dir := t.TempDir()
	labels := func(count, have int) []byte {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write([]byte{0, 0, 8, 1})
		binary.Write(w, binary.BigEndian, uint32(count))
		w.Write(make([]byte, have))
		w.Close()
		return z.Bytes()
	}
	for name, data := range map[string][]byte{
		mnistTrainImages + ".gz": gzipBomb(t, 3000000, 1<<20),
		mnistTrainLabels + ".gz": labels(3000000, 1000),
		mnistTestImages + ".gz":  gzipBomb(t, 5, 5*784),
		mnistTestLabels + ".gz":  labels(5, 5),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var (
		s   *Splits
		err error
	)
	got := memtest.Allocated(func() { s, err = LoadMNIST(dir, 10, 0) })
	if err != nil || s.Train.Len() != 10 || s.Test.Len() != 5 {
		t.Fatalf("LoadMNIST(10): %v", err)
	}
	if got > 4<<20 {
		t.Errorf("LoadMNIST(10) allocated %d bytes", got)
	}
	if _, err := LoadMNIST(dir, 0, 0); err == nil || !strings.Contains(err.Error(), "truncated data") {
		t.Errorf("LoadMNIST(0): error %v", err)
	}
}
