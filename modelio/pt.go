package modelio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// legacyMagic is the magic number that the legacy (non-zip) format of
// torch.save pickles first.
var legacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// readPT reads the tensors of the state_dict that torch.save wrote to the
// .pt file of size bytes in r, in the dict's order: the zip format (a
// data.pkl pickle and one raw record per storage) or the legacy format
// (_use_new_zipfile_serialization=False: pickles followed by the raw
// storages). The pickle is read with an allow-list (see unpickle).
func readPT(r io.ReaderAt, size int64) ([]*tensor, error) {
	if size <= 0 {
		return nil, errors.New("empty file: not a .pt file of torch.save")
	}
	var head [14]byte
	k, _ := r.ReadAt(head[:], 0)
	if k >= len(legacyMagic) && bytes.Equal(head[:], legacyMagic) {
		if size > maxElems*8 {
			return nil, fmt.Errorf("legacy .pt file larger than %d bytes", int64(maxElems)*8)
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
			return nil, err
		}
		return readLegacyPT(b)
	}
	if k < 4 || string(head[:4]) != "PK\x03\x04" {
		return nil, errors.New("not a .pt file of torch.save: neither a zip archive nor the legacy format")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a .pt file of torch.save: %v", err)
	}
	files := make(map[string]*zip.File)
	prefix := ""
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			return nil, fmt.Errorf("record %s appears twice", f.Name)
		}
		files[f.Name] = f
		if dir, ok := strings.CutSuffix(f.Name, "data.pkl"); ok && strings.Count(dir, "/") == 1 && strings.HasSuffix(dir, "/") {
			if prefix != "" {
				return nil, fmt.Errorf("two pickles, %sdata.pkl and %s", prefix, f.Name)
			}
			prefix = dir
		}
	}
	if prefix == "" {
		return nil, errors.New("no ARCHIVE/data.pkl record: not a .pt file of torch.save")
	}
	budget := int64(math.MaxInt64)
	if size < math.MaxInt64/(2*maxRatio) {
		budget = maxRatio*size + 1<<12
	}
	record := func(name string, max int64) ([]byte, error) {
		f := files[name]
		if f == nil {
			return nil, fmt.Errorf("no record %s", name)
		}
		if f.UncompressedSize64 > uint64(max) || int64(f.UncompressedSize64) > budget {
			return nil, fmt.Errorf("record %s: %d bytes, more than the file can hold", name, f.UncompressedSize64)
		}
		budget -= int64(f.UncompressedSize64)
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("record %s: %v", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		if err == nil && uint64(len(b)) != f.UncompressedSize64 {
			err = errors.New("size differs from the zip directory")
		}
		if err != nil {
			return nil, fmt.Errorf("record %s: %v", name, err)
		}
		return b, nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if files[prefix+"byteorder"] != nil {
		b, err := record(prefix+"byteorder", 16)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			bo = binary.BigEndian
		default:
			return nil, fmt.Errorf("record %sbyteorder: %q, want little or big", prefix, b)
		}
	}
	pkl, err := record(prefix+"data.pkl", maxPickle)
	if err != nil {
		return nil, err
	}
	storages := make(map[string]*ptStorage)
	entries, _, err := unpickle(pkl, func(pid any) (any, error) {
		dt, key, n, err := storageID(pid)
		if err != nil {
			return nil, err
		}
		if st := storages[key]; st != nil {
			if st.dtype != dt || st.numel != n {
				return nil, fmt.Errorf("storage %s named with two dtypes or sizes", key)
			}
			return st, nil
		}
		st := &ptStorage{dtype: dt, key: key, numel: n}
		storages[key] = st
		return st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%sdata.pkl: %w", prefix, err)
	}
	load := func(st *ptStorage) error {
		name := prefix + "data/" + st.key
		b, err := record(name, int64(st.numel)*int64(elemSize(st.dtype)))
		if err != nil {
			return err
		}
		if len(b) != st.numel*elemSize(st.dtype) {
			return fmt.Errorf("record %s: %d bytes, want %d for %d elements of %s", name, len(b), st.numel*elemSize(st.dtype), st.numel, st.dtype)
		}
		st.data = make([]float64, st.numel)
		decode(st.data, b, st.dtype, bo)
		return nil
	}
	return ptTensors(entries, load)
}

// ptTensors returns the tensors of the entries of an unpickled state_dict,
// loading the storage of each floating-point tensor with load once.
func ptTensors(entries []types.DictEntry, load func(*ptStorage) error) ([]*tensor, error) {
	entries, err := stateEntries(entries)
	if err != nil {
		return nil, err
	}
	var out []*tensor
	seen := make(map[string]bool)
	// A tensor of a state_dict holds no more elements than its storage, and
	// the tensors together, but for shared storages, no more than the
	// storages: larger ones (such as a stride-0 expansion) are refused, so
	// that memory stays bounded by the file.
	stored, total := 0, 0
	counted := make(map[*ptStorage]bool)
	for _, e := range entries {
		if pt, ok := e.Value.(*ptTensor); ok && !counted[pt.storage] {
			counted[pt.storage] = true
			stored += pt.storage.numel
		}
	}
	for _, e := range entries {
		key, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("a key of the state_dict is a %s, not a str", pyType(e.Key))
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		pt, ok := e.Value.(*ptTensor)
		if !ok {
			return nil, fmt.Errorf("%s: a %s, not a tensor", key, pyType(e.Value))
		}
		t := &tensor{key: key, dtype: pt.storage.dtype, shape: pt.size}
		k := numel(pt.size)
		if k < 0 || k > pt.storage.numel {
			return nil, fmt.Errorf("%s: shape %s has more elements than its storage of %d", key, shapeString(pt.size), pt.storage.numel)
		}
		if total += k; total > 2*stored {
			return nil, fmt.Errorf("%s: the tensors hold more than twice the %d elements of their storages", key, stored)
		}
		if dtypeSize(t.dtype) > 0 {
			if pt.storage.data == nil {
				if err := load(pt.storage); err != nil {
					return nil, err
				}
			}
			var err error
			if t.data, err = strided(pt.storage.data, pt.offset, pt.size, pt.stride); err != nil {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// readLegacyPT reads a state_dict in the legacy format of torch.save: the
// pickles of the magic number, the protocol version and the system
// information, the pickle of the state_dict, the pickle of the list of
// storage keys, and then each storage as its element count (8 bytes,
// little-endian) and its raw data.
func readLegacyPT(b []byte) ([]*tensor, error) {
	rest := b
	var littleEndian = true
	for i := range 3 {
		n, err := scanPickle(rest)
		if err != nil {
			return nil, fmt.Errorf("legacy header pickle %d: %v", i+1, err)
		}
		if j := bytes.Index(rest[:n], []byte("little_endian")); i == 2 && j >= 0 {
			after := rest[j+len("little_endian") : min(n, j+len("little_endian")+8)]
			littleEndian = !bytes.Contains(after, []byte{0x89})
		}
		rest = rest[n:]
	}
	storages := make(map[string]*ptStorage)
	entries, rest, err := unpickle(rest, func(pid any) (any, error) {
		dt, key, n, err := storageID(pid)
		if err != nil {
			return nil, err
		}
		if st := storages[key]; st != nil {
			return st, nil
		}
		st := &ptStorage{dtype: dt, key: key, numel: n}
		storages[key] = st
		return st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("state_dict pickle: %w", err)
	}
	keysList, rest, err := unpickleKeys(rest)
	if err != nil {
		return nil, fmt.Errorf("storage keys pickle: %w", err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if !littleEndian {
		bo = binary.BigEndian
	}
	for _, key := range keysList {
		st := storages[key]
		if st == nil {
			return nil, fmt.Errorf("storage %s is listed but not used", key)
		}
		if len(rest) < 8 {
			return nil, fmt.Errorf("storage %s: truncated", key)
		}
		n := bo.Uint64(rest)
		size := uint64(elemSize(st.dtype))
		if n != uint64(st.numel) || n*size > uint64(len(rest)-8) {
			return nil, fmt.Errorf("storage %s: %d elements, want %d, or truncated", key, n, st.numel)
		}
		raw := rest[8 : 8+n*size]
		rest = rest[8+n*size:]
		if dtypeSize(st.dtype) > 0 {
			st.data = make([]float64, n)
			decode(st.data, raw, st.dtype, bo)
		}
	}
	return ptTensors(entries, func(st *ptStorage) error {
		return fmt.Errorf("storage %s is used but not stored", st.key)
	})
}

// unpickleKeys reads the pickle of a list of strings at the start of p.
func unpickleKeys(p []byte) ([]string, []byte, error) {
	n, err := scanPickle(p)
	if err != nil {
		return nil, nil, err
	}
	var keys []string
	i := 0
	q := p[:n]
	// The list holds only BINUNICODE strings (with memo puts): read them
	// directly instead of building objects.
	for i < len(q) {
		switch op := q[i]; op {
		case 0x80, 'q', 'K':
			i += 2
		case 'r', 'J':
			i += 5
		case ']', '(', 'e', 'a', '.', 0x94:
			i++
		case 'X':
			l := int(binary.LittleEndian.Uint32(q[i+1:]))
			keys = append(keys, string(q[i+5:i+5+l]))
			i += 5 + l
		case 0x8c:
			l := int(q[i+1])
			keys = append(keys, string(q[i+2:i+2+l]))
			i += 2 + l
		default:
			return nil, nil, fmt.Errorf("opcode 0x%02x: want a list of strings", op)
		}
	}
	return keys, p[n:], nil
}

// checkpointKeys are the keys under which a training checkpoint, a dict
// such as {"state_dict": …, "epoch": 3, "optimizer": …}, commonly holds the
// model's state_dict.
var checkpointKeys = []string{"state_dict", "model_state_dict", "model"}

// stateEntries returns the entries of the state_dict in entries: entries
// itself, or, for a training checkpoint, the dict under one of
// checkpointKeys.
func stateEntries(entries []types.DictEntry) ([]types.DictEntry, error) {
	var keys []string
	for _, e := range entries {
		k, _ := e.Key.(string)
		if _, ok := e.Value.(*ptTensor); ok {
			return entries, nil
		}
		keys = append(keys, k)
	}
	for _, want := range checkpointKeys {
		for _, e := range entries {
			if k, _ := e.Key.(string); k != want {
				continue
			}
			switch d := e.Value.(type) {
			case *types.OrderedDict:
				var sub []types.DictEntry
				for el := d.List.Front(); el != nil; el = el.Next() {
					en := el.Value.(*types.OrderedDictEntry)
					sub = append(sub, types.DictEntry{Key: en.Key, Value: en.Value})
				}
				return sub, nil
			case *types.Dict:
				return *d, nil
			}
		}
	}
	if len(entries) == 0 {
		return entries, nil
	}
	if len(keys) > 5 {
		keys = append(keys[:5], "…")
	}
	return nil, fmt.Errorf("a dict of %s with no tensors and none of the keys %s that a training checkpoint keeps the state_dict under; save model.state_dict()", strings.Join(keys, ", "), strings.Join(checkpointKeys, ", "))
}
