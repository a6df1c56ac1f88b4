package modelio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strconv"
)

// ptStorageClass names the torch storage class of each dtype.
var ptStorageClass = map[string]string{dtF16: "HalfStorage", dtBF16: "BFloat16Storage", dtF32: "FloatStorage", dtF64: "DoubleStorage"}

// writePT writes ts as torch.save writes a state_dict: a zip archive,
// stored without compression, holding archive/data.pkl (the pickle, protocol
// 2, of an OrderedDict of tensors rebuilt by torch._utils._rebuild_tensor_v2
// from storages named by persistent ids), archive/data/K for storage K
// (raw little-endian values, each record's data aligned to 64 bytes as torch
// aligns it), archive/byteorder and archive/version.
func writePT(w io.Writer, ts []outTensor) error {
	cw := &countWriter{w: w}
	zw := zip.NewWriter(cw)
	add := func(name string, data []byte) error {
		if err := zw.Flush(); err != nil {
			return err
		}
		// The local header is 30 bytes, the name and an extra field of 4
		// bytes and the padding.
		pad := int((64 - (cw.n+30+int64(len(name))+4)%64) % 64)
		extra := binary.LittleEndian.AppendUint16([]byte("FB"), uint16(pad))
		extra = append(extra, make([]byte, pad)...)
		f, err := zw.CreateRaw(&zip.FileHeader{
			Name: name, Method: zip.Store, Extra: extra,
			CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data)),
		})
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	}
	if err := add("archive/data.pkl", statePickle(ts)); err != nil {
		return err
	}
	for i, t := range ts {
		if err := add("archive/data/"+strconv.Itoa(i), encode(nil, t.values, t.dtype)); err != nil {
			return err
		}
	}
	if err := add("archive/byteorder", []byte("little")); err != nil {
		return err
	}
	if err := add("archive/version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}

// statePickle returns the pickle of the state_dict of ts, each tensor with
// its own storage, key "0", "1", … in order.
func statePickle(ts []outTensor) []byte {
	var b bytes.Buffer
	global := func(mod, name string) { b.WriteString("c" + mod + "\n" + name + "\n") }
	str := func(s string) {
		b.WriteByte('X')
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
		b.WriteString(s)
	}
	integer := func(v int) {
		switch {
		case v >= 0 && v < 1<<8:
			b.WriteByte('K')
			b.WriteByte(byte(v))
		case v >= 0 && v < 1<<16:
			b.WriteByte('M')
			b.Write(binary.LittleEndian.AppendUint16(nil, uint16(v)))
		default:
			b.WriteByte('J')
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
		}
	}
	tuple := func(v []int) {
		b.WriteByte('(')
		for _, x := range v {
			integer(x)
		}
		b.WriteByte('t')
	}
	b.Write([]byte{0x80, 2})
	global("collections", "OrderedDict")
	b.WriteString(")R(")
	for i, t := range ts {
		str(t.key)
		global("torch._utils", "_rebuild_tensor_v2")
		b.WriteString("((")
		str("storage")
		global("torch", ptStorageClass[t.dtype])
		str(strconv.Itoa(i))
		str("cpu")
		integer(len(t.values))
		b.WriteString("tQ")
		integer(0)
		tuple(t.shape)
		stride := make([]int, len(t.shape))
		s := 1
		for d := len(t.shape) - 1; d >= 0; d-- {
			stride[d] = s
			s *= t.shape[d]
		}
		tuple(stride)
		b.WriteByte(0x89) // requires_grad=False
		global("collections", "OrderedDict")
		b.WriteString(")R") // backward_hooks
		b.WriteString("tR")
	}
	b.WriteString("u.")
	return b.Bytes()
}
