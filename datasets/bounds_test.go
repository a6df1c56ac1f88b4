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
	"github.com/secondorder/prune/nn"
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

// TestReadIDXGzipMembers checks that a gzip input of thousands of empty
// members after the header, read as one stream, fails as truncated with
// memory bounded by the input, as the fuzz target requires.
func TestReadIDXGzipMembers(t *testing.T) {
	var head, empty bytes.Buffer
	w := gzip.NewWriter(&head)
	w.Write([]byte{0, 0, 8, 1, 0x10, 0, 0, 0}) // 2²⁸ labels declared
	w.Close()
	gzip.NewWriter(&empty).Close()
	data := head.Bytes()
	for len(data) < 64<<10 {
		data = append(data, empty.Bytes()...)
	}
	var err error
	got := memtest.Allocated(func() { _, err = ReadIDX(bytes.NewReader(data), "members.gz") })
	if err == nil || !strings.Contains(err.Error(), "members.gz: truncated data: dimensions [268435456] need 268435456 bytes, got 0") {
		t.Errorf("error %v", err)
	}
	if bound := idxAllocBound(data); got > bound {
		t.Errorf("%d bytes of gzip members allocated %d, above %d", len(data), got, bound)
	}
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
		s   *nn.Splits
		err error
	)
	got := memtest.Allocated(func() { s, err = LoadMNIST(dir, 10, 0) })
	if err != nil || s.Train.Len() != 10 || s.Test.Len() != 5 {
		t.Fatalf("LoadMNIST(10): %v", err)
	}
	if got > 4<<20 {
		t.Errorf("LoadMNIST(10) allocated %d bytes", got)
	}
	// All 3 M images: refused before reading as too large for memory
	// (17.5 GiB as float64) or, on a machine with more than 35 GiB, at the
	// end of the data.
	got = memtest.Allocated(func() { _, err = LoadMNIST(dir, 0, 0) })
	if err == nil || !strings.Contains(err.Error(), "truncated data") && !strings.Contains(err.Error(), "more than half the available memory") {
		t.Errorf("LoadMNIST(0): error %v", err)
	}
	if got > 8<<20 {
		t.Errorf("LoadMNIST(0) allocated %d bytes for 1 MiB of images", got)
	}
}

// csvAllocBound is the most bytes that reading a CSV input of size bytes
// may allocate: the parser's buffers for one line and a small multiple of
// the input, for the values, their growth and the matrices.
func csvAllocBound(size int) uint64 { return 100*MaxCSVLine + 32*uint64(size) }

// TestReadCSVBounded is the repro of a 100 MB CSV line that took 2.8 GB
// and of CSV files that are endless: a line longer than MaxCSVLine and an
// input beyond the size limit fail cleanly with memory bounded by the
// limits, and a table's read allocates a small multiple of its size.
func TestReadCSVBounded(t *testing.T) {
	var table strings.Builder
	for i := range 20000 {
		table.WriteString("0.5,1,0,0,2.25,0,0,1,0,")
		table.WriteString([]string{"0\n", "1\n"}[i%2])
	}
	var err error
	got := memtest.Allocated(func() { _, err = ReadCSV(strings.NewReader(table.String()), "t.csv", 1, true) })
	if err != nil || got > csvAllocBound(table.Len()) {
		t.Errorf("table of %d bytes: %d bytes allocated, error %v", table.Len(), got, err)
	}

	long := strings.Repeat("0,", 10<<20/2) // one 10 MB line
	got = memtest.Allocated(func() { _, err = ReadCSV(strings.NewReader(long), "long.csv", 1, false) })
	if err == nil || !strings.Contains(err.Error(), "long.csv: a line longer than") {
		t.Errorf("10 MB line: error %v", err)
	}
	if bound := uint64(100 * MaxCSVLine); got > bound {
		t.Errorf("10 MB line: %d bytes allocated, above %d", got, bound)
	}
	t.Logf("10 MB line: %d bytes allocated", got)

	// An endless input of short lines stops at the size limit.
	endless := io.MultiReader(strings.NewReader("a,b\n"), &repeater{line: []byte("1,2\n")})
	_, err = readCSV(endless, "endless.csv", 1, false, nil, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "larger than the CSV size limit of 1048576 bytes") {
		t.Errorf("endless input: error %v", err)
	}
}

// repeater repeats line without end.
type repeater struct {
	line []byte
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.line[r.off]
		r.off = (r.off + 1) % len(r.line)
	}
	return len(p), nil
}

// TestLoadCSVDevices is the repro of /dev/zero and a FIFO given as CSV
// files, which ran out of memory.
func TestLoadCSVDevices(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero on this system")
	}
	var err error
	got := memtest.Allocated(func() { _, err = Load("/dev/zero", nil) })
	if err == nil || !strings.Contains(err.Error(), "/dev/zero: a line longer than") {
		t.Errorf("/dev/zero: error %v", err)
	}
	if got > 100*MaxCSVLine {
		t.Errorf("/dev/zero: %d bytes allocated", got)
	}

	fifo := filepath.Join(t.TempDir(), "data.csv")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		io.Copy(w, &repeater{line: []byte("1,2,3\n")}) // ends when the reader closes
	}()
	_, err = Load(fifo, &Options{MaxCSVBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "larger than the CSV size limit") {
		t.Errorf("FIFO: error %v", err)
	}
	<-done

	// A regular file above the limit is refused before it is read.
	big := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(big, []byte(strings.Repeat("1,2\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, &Options{MaxCSVBytes: 100}); err == nil || !strings.Contains(err.Error(), "4000 bytes, larger than the CSV size limit of 100 bytes") {
		t.Errorf("big file: error %v", err)
	}
	if _, err := Load(big, &Options{MaxCSVBytes: -1}); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

// TestReadMonksEndless checks that an endless MONK's input stops at
// MaxMonksExamples.
func TestReadMonksEndless(t *testing.T) {
	_, err := ReadMonks(&repeater{line: []byte(" 1 1 1 1 1 3 1 data_5\n")}, "endless.train")
	if err == nil || !strings.Contains(err.Error(), "more than 65536 examples") {
		t.Errorf("error %v", err)
	}
	_, err = ReadMonks(&repeater{line: []byte{0}}, "zero.train")
	if err == nil || !strings.Contains(err.Error(), "zero.train") {
		t.Errorf("error %v", err)
	}
}
