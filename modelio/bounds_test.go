package modelio

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/memtest"
)

// allocBound is the most bytes a read of data may allocate: a fixed
// overhead and a small multiple of the archive and of what its members
// really decompress to (at most 64 MiB each are counted).
func allocBound(data []byte) uint64 {
	content := uint64(len(data))
	if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err == nil {
		for _, f := range zr.File {
			if rc, err := f.Open(); err == nil {
				n, _ := io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
				rc.Close()
				content += uint64(n)
			}
		}
	}
	return 2<<20 + 40*content
}

// checkAlloc reads data and fails when the read allocates more than
// allocBound(data) or succeeds when wantErr is not empty; it returns the
// bytes allocated.
func checkAlloc(t testing.TB, data []byte, wantErr string) uint64 {
	t.Helper()
	var err error
	got := memtest.Allocated(func() { _, err = readBytes(data, "f.npz", tanhMSE) })
	t.Logf("error: %v", err)
	if bound := allocBound(data); got > bound {
		t.Errorf("read of a %d-byte archive allocated %d bytes, above %d (error %v)", len(data), got, bound, err)
	}
	if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
		t.Errorf("error %v, want %q", err, wantErr)
	}
	return got
}

// rawDeflate returns an archive with bias3000 and a member key.npy whose
// content is the deflate compression of content but whose headers declare
// a size of declared bytes.
func rawDeflate(t testing.TB, key string, content []byte, declared uint64) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(content)
	fw.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	bw, err := zw.CreateHeader(&zip.FileHeader{Name: bias3000.key + ".npy", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	bw.Write(bias3000.npy)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: key + ".npy", Method: zip.Deflate,
		CRC32: crc32.ChecksumIEEE(content), CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bias3000 is the bias of a 3000-output layer.
var bias3000 = entry{key: "0.bias", npy: npyArray("<f4", false, []int{3000}, make([]byte, 12000))}

// TestReadBoundedTruncated is the repro of the truncated .npz whose read
// reached 3.1 GB: an array declaring 1.2 GB of float32 in a 1.1 MB member.
func TestReadBoundedTruncated(t *testing.T) {
	data := savez(entry{key: "0.weight", npy: npyArray("<f4", false, []int{3000, 100000}, make([]byte, 1100000))}, bias3000)
	got := checkAlloc(t, data, "truncated data")
	t.Logf("truncated %d-byte archive: %d bytes allocated", len(data), got)
}

// TestReadBoundedLiar covers deflated members whose headers declare far
// more than their data: refused from the compressed size when no stream of
// it could hold the data, and read in chunks to the early end otherwise.
func TestReadBoundedLiar(t *testing.T) {
	// 1 MB of zeros deflates to about 1 KB, which cannot hold 1.2 GB.
	hdr := npyArray("<f4", false, []int{3000, 100000}, nil)
	zeros := append(append([]byte(nil), hdr...), make([]byte, 1<<20)...)
	checkAlloc(t, rawDeflate(t, "0.weight", zeros, 1<<40), "truncated data")

	// 1 MB of random bytes deflates to about 1 MB, which could hold 1 GB:
	// the read ends at the data's end having allocated a few MB.
	rng := rand.New(rand.NewPCG(1, 2))
	noise := npyArray("<f4", false, []int{3000, 50000}, nil)
	for range 1 << 20 {
		noise = append(noise, byte(rng.Uint32()))
	}
	data := rawDeflate(t, "0.weight", noise, 1<<31)
	got := checkAlloc(t, data, "0.weight")
	t.Logf("deflated %d-byte archive declaring 2 GiB: %d bytes allocated", len(data), got)
}
