package modelio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxSafetensorsHeader is the largest JSON header, in bytes, that reading
// accepts, as the safetensors library does.
const maxSafetensorsHeader = 100 << 20

// safetensorsDTypes maps the dtypes of the safetensors format to ours; the
// others are read as such, to be refused by name.
var safetensorsDTypes = map[string]string{"F16": dtF16, "BF16": dtBF16, "F32": dtF32, "F64": dtF64}

// readSafetensors reads the tensors of the .safetensors file of size bytes
// in r: an 8-byte little-endian header length, a JSON object that maps each
// tensor name to its dtype, shape and data_offsets (begin and end in the
// data that follows the header) plus an optional __metadata__ object of
// strings, and the raw little-endian data. The tensors come in the order of
// the header.
func readSafetensors(r io.ReaderAt, size int64) ([]*tensor, error) {
	var lb [8]byte
	if k, _ := r.ReadAt(lb[:], 0); k < 8 {
		return nil, errors.New("truncated safetensors file: no 8-byte header length")
	}
	hl := binary.LittleEndian.Uint64(lb[:])
	if hl > maxSafetensorsHeader || hl > uint64(size-8) {
		return nil, fmt.Errorf("safetensors header length %d exceeds the file of %d bytes (or %d bytes)", hl, size, maxSafetensorsHeader)
	}
	hdr := make([]byte, hl)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors header: %v", err)
	}
	dataStart := 8 + int64(hl)
	dataLen := size - dataStart

	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("safetensors header is not a JSON object")
	}
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	var out []*tensor
	type span struct {
		begin, end int64
		key        string
	}
	var spans []span
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors header: %v", err)
		}
		key := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("safetensors header: key %q appears twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			var meta map[string]string
			if err := dec.Decode(&meta); err != nil {
				return nil, fmt.Errorf("safetensors header: __metadata__: want an object of strings: %v", err)
			}
			continue
		}
		var e entry
		d2 := json.RawMessage{}
		if err := dec.Decode(&d2); err != nil {
			return nil, fmt.Errorf("safetensors header: %s: %v", key, err)
		}
		strict := json.NewDecoder(bytes.NewReader(d2))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&e); err != nil || e.Shape == nil {
			return nil, fmt.Errorf("safetensors header: %s: want {\"dtype\", \"shape\", \"data_offsets\"}", key)
		}
		dt, ok := safetensorsDTypes[e.DType]
		size := dtypeSize(dt)
		if !ok {
			dt = strings.ToLower(e.DType)
			size = map[string]int{"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}[e.DType]
			if size == 0 {
				return nil, fmt.Errorf("safetensors header: %s: unknown dtype %q", key, e.DType)
			}
		}
		n := numel(e.Shape)
		if n < 0 {
			return nil, fmt.Errorf("%s: shape %s: more than %d elements or a negative size", key, shapeString(e.Shape), maxElems)
		}
		b, end := e.Offsets[0], e.Offsets[1]
		if b < 0 || end < b || end > dataLen {
			return nil, fmt.Errorf("%s: data_offsets [%d, %d] outside the %d bytes of data", key, b, end, dataLen)
		}
		if end-b != int64(n)*int64(size) {
			return nil, fmt.Errorf("%s: data_offsets [%d, %d] hold %d bytes, want %d for shape %s of %s", key, b, end, end-b, int64(n)*int64(size), shapeString(e.Shape), e.DType)
		}
		spans = append(spans, span{b, end, key})
		t := &tensor{key: key, dtype: dt, shape: e.Shape}
		if ok {
			raw := make([]byte, end-b)
			if _, err := r.ReadAt(raw, dataStart+b); err != nil && !(err == io.EOF && len(raw) == 0) {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
			t.data = make([]float64, n)
			decode(t.data, raw, dt, binary.LittleEndian)
		}
		out = append(out, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("safetensors header: %v", err)
	}
	if dec.More() {
		return nil, errors.New("safetensors header: trailing data after the JSON object")
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.begin - b.begin) })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("the data of %s and %s overlap", spans[i-1].key, spans[i].key)
		}
	}
	return out, nil
}

// writeSafetensors writes the tensors ts to w in the safetensors format,
// in their order, the header padded with spaces to a multiple of 8 bytes.
func writeSafetensors(w io.Writer, ts []outTensor) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	var off int64
	names := map[string]string{dtF16: "F16", dtBF16: "BF16", dtF32: "F32", dtF64: "F64"}
	for i, t := range ts {
		if i > 0 {
			hdr.WriteByte(',')
		}
		k, _ := json.Marshal(t.key)
		n := int64(len(t.values)) * int64(dtypeSize(t.dtype))
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, k, names[t.dtype], jsonInts(t.shape), off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(hdr.Len()))
	b = append(b, hdr.Bytes()...)
	for _, t := range ts {
		b = encode(b, t.values, t.dtype)
	}
	_, err := w.Write(b)
	return err
}

// jsonInts formats v as a JSON array.
func jsonInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}
