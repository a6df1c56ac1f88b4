package modelio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickle is the largest pickle, in bytes, that reading accepts: the
// pickle of a state_dict holds the keys and shapes, not the values.
const maxPickle = 64 << 20

// The classes that the pickle of a state_dict may name: the dict, the
// function that rebuilds a tensor from its storage, and the storage types.
// Nothing else is resolved, and nothing named is ever run: each is a Go
// value that records its arguments.
var (
	// storageDTypes maps a torch storage class to its dtype; the dtypes
	// without a floating-point value are read as such, to be refused by
	// name with the module that holds them (such as a BatchNorm's
	// num_batches_tracked).
	storageDTypes = map[string]string{
		"HalfStorage": dtF16, "BFloat16Storage": dtBF16, "FloatStorage": dtF32, "DoubleStorage": dtF64,
		"LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
		"ByteStorage": "uint8", "BoolStorage": "bool",
		"ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
	}
	storageSizes = map[string]int{"int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16}
)

// elemSize returns the size in bytes of an element of a storage dtype.
func elemSize(dtype string) int {
	if s := dtypeSize(dtype); s > 0 {
		return s
	}
	return storageSizes[dtype]
}

// storageClass is an allowed torch storage class.
type storageClass struct{ dtype string }

// ptStorage is a storage named by a persistent id of the pickle.
type ptStorage struct {
	dtype string
	key   string // name of the record holding the data
	numel int
	data  []float64 // decoded on first use
}

// ptTensor is a tensor rebuilt by torch._utils._rebuild_tensor_v2.
type ptTensor struct {
	storage      *ptStorage
	offset       int
	size, stride []int
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2 and
// _rebuild_tensor: (storage, storage_offset, size, stride, …).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want at least 4", len(args))
	}
	st, ok := args[0].(*ptStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: the storage is a %s", pyType(args[0]))
	}
	off, err := pyInt(args[1])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset: %v", err)
	}
	size, err := pyInts(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %v", err)
	}
	stride, err := pyInts(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %v", err)
	}
	return &ptTensor{storage: st, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter: (data,
// requires_grad, backward_hooks), as state_dict(keep_vars=True) saves.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	t, ok := args[0].(*ptTensor)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: the data is a %s", pyType(args[0]))
	}
	return t, nil
}

// findClass resolves the classes of the allow-list and refuses every other.
func findClass(module, name string) (any, error) {
	switch module {
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2", "_rebuild_tensor":
			return rebuildTensor{}, nil
		case "_rebuild_parameter":
			return rebuildParameter{}, nil
		}
	case "torch":
		if dt, ok := storageDTypes[name]; ok {
			return &storageClass{dtype: dt}, nil
		}
	case "collections":
		if name == "OrderedDict" {
			return &types.OrderedDictClass{}, nil
		}
	}
	return nil, &refusedError{module + "." + name}
}

// refusedError is the error for a class outside the allow-list.
type refusedError struct{ name string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("the pickle names %s, which a state_dict of tensors does not hold; refused (only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the torch storage classes are allowed, and nothing is run)", e.name)
}

// unpickle reads the pickle p of a state_dict with the allow-list;
// persistent resolves the persistent ids of storages. It returns the dict's
// entries in order.
func unpickle(p []byte, persistent func(any) (any, error)) (entries []types.DictEntry, rest []byte, err error) {
	n, err := scanPickle(p)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			entries, rest, err = nil, nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(p[:n]))
	u.FindClass = findClass
	u.PersistentLoad = persistent
	v, err := u.Load()
	if err != nil {
		var re *refusedError
		if errors.As(err, &re) {
			return nil, nil, re
		}
		return nil, nil, fmt.Errorf("malformed pickle: %v", err)
	}
	switch d := v.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			en := e.Value.(*types.OrderedDictEntry)
			entries = append(entries, types.DictEntry{Key: en.Key, Value: en.Value})
		}
	case *types.Dict:
		entries = *d
	default:
		return nil, nil, fmt.Errorf("the pickle holds a %s, not a state_dict (a dict of tensors); save model.state_dict(), not the model", pyType(v))
	}
	return entries, p[n:], nil
}

// pyType names the type of a value of the unpickler.
func pyType(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return "str"
	case int, int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case *types.Tuple:
		return "tuple"
	case *types.List:
		return "list"
	case *types.Dict, *types.OrderedDict:
		return "dict"
	case *ptTensor:
		return "tensor"
	case *ptStorage:
		return "storage"
	case *types.GenericObject:
		return "object of " + v.Class.Module + "." + v.Class.Name
	}
	return fmt.Sprintf("value of Go type %T", v)
}

// maxPyInt bounds the integers of a state_dict's pickle (sizes, strides,
// offsets) that reading accepts.
const maxPyInt = 1 << 40

// pyInt returns the Python int v, refusing other types and magnitudes above
// maxPyInt.
func pyInt(v any) (int, error) {
	var x int64
	switch v := v.(type) {
	case int:
		x = int64(v)
	case int64:
		x = v
	case *big.Int:
		if !v.IsInt64() {
			return 0, fmt.Errorf("%v is out of range", v)
		}
		x = v.Int64()
	default:
		return 0, fmt.Errorf("a %s, want an int", pyType(v))
	}
	if x > maxPyInt || x < -maxPyInt {
		return 0, fmt.Errorf("%d is out of range", x)
	}
	return int(x), nil
}

// pyInts returns the tuple v of ints.
func pyInts(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("a %s, want a tuple of ints", pyType(v))
	}
	if t.Len() > 32 {
		return nil, fmt.Errorf("%d dimensions", t.Len())
	}
	out := make([]int, t.Len())
	for i := range out {
		var err error
		if out[i], err = pyInt(t.Get(i)); err != nil {
			return nil, fmt.Errorf("[%d]: %v", i, err)
		}
	}
	return out, nil
}

// storageID parses the persistent id of a storage, ('storage', class, key,
// location, numel[, view metadata]), returning the class's dtype, the key
// and numel.
func storageID(pid any) (dtype, key string, n int, err error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return "", "", 0, fmt.Errorf("persistent id %s, want ('storage', class, key, location, numel)", pyType(pid))
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return "", "", 0, fmt.Errorf("persistent id of kind %v, want 'storage'", t.Get(0))
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		return "", "", 0, fmt.Errorf("persistent id: storage class is a %s", pyType(t.Get(1)))
	}
	key, ok = t.Get(2).(string)
	if !ok || key == "" || len(key) > 64 {
		return "", "", 0, fmt.Errorf("persistent id: storage key %v is not a short string", t.Get(2))
	}
	n, err = pyInt(t.Get(4))
	if err != nil || n < 0 || n > maxElems {
		return "", "", 0, fmt.Errorf("persistent id: storage size %v out of range", t.Get(4))
	}
	if t.Len() > 5 && t.Get(5) != nil {
		return "", "", 0, errors.New("storage views (legacy view metadata) are not supported")
	}
	return cls.dtype, key, n, nil
}

// scanPickle walks the opcodes of the pickle at the start of p and returns
// its length up to and including STOP. It refuses opcodes that a state_dict
// does not need (those that build objects of arbitrary classes or read
// extension registries and out-of-band buffers), GLOBAL names outside the
// allow-list, and arguments that run past the end of p, so that the
// unpickler never allocates more than p holds.
func scanPickle(p []byte) (int, error) {
	if len(p) > maxPickle {
		return 0, fmt.Errorf("pickle larger than %d bytes", maxPickle)
	}
	i := 0
	need := func(k uint64) error {
		if k > uint64(len(p)-i) {
			return errors.New("truncated pickle")
		}
		return nil
	}
	line := func() (string, error) {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return "", errors.New("truncated pickle")
		}
		s := string(p[i : i+j])
		i += j + 1
		return s, nil
	}
	le := binary.LittleEndian
	for i < len(p) {
		op := p[i]
		i++
		var skip uint64
		switch op {
		case '.': // STOP
			return i, nil
		case '(', '0', '1', '2', 'N', 'a', 'b', 'd', '}', 'e', 'l', ']', 'R', 's', 't', ')', 'u', 'Q',
			0x88, 0x89, 0x85, 0x86, 0x87, 0x8f, 0x90, 0x91, 0x94, 0x93:
		case 'K', 'q', 'h', 0x80:
			skip = 1
		case 'M':
			skip = 2
		case 'J', 'r', 'j':
			skip = 4
		case 'G':
			skip = 8
		case 0x95: // FRAME: the frame's opcodes follow and are scanned
			if err := need(8); err != nil {
				return 0, err
			}
			if le.Uint64(p[i:]) > uint64(len(p)-i-8) {
				return 0, errors.New("truncated pickle: frame longer than the pickle")
			}
			skip = 8
		case 'U', 'C', 0x8c, 0x8a:
			if err := need(1); err != nil {
				return 0, err
			}
			skip = 1 + uint64(p[i])
		case 'T', 'X', 'B', 0x8b:
			if err := need(4); err != nil {
				return 0, err
			}
			skip = 4 + uint64(le.Uint32(p[i:]))
		case 0x8d, 0x8e, 0x96:
			if err := need(8); err != nil {
				return 0, err
			}
			k := le.Uint64(p[i:])
			if k > uint64(len(p)) {
				return 0, errors.New("truncated pickle")
			}
			skip = 8 + k
		case 'I', 'L', 'F', 'S', 'V', 'p', 'g':
			if _, err := line(); err != nil {
				return 0, err
			}
		case 'c': // GLOBAL
			mod, err := line()
			if err != nil {
				return 0, err
			}
			name, err := line()
			if err != nil {
				return 0, err
			}
			if _, err := findClass(mod, name); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("pickle opcode 0x%02x at byte %d is not allowed in a state_dict", op, i-1)
		}
		if err := need(skip); err != nil {
			return 0, err
		}
		i += int(skip)
	}
	return 0, errors.New("truncated pickle: no STOP")
}
