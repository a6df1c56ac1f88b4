package modelio

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npz"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
)

// The tensor names of a Linear module in a state_dict.
const (
	weight = "weight"
	bias   = "bias"
	orig   = "_orig"
	mask   = "_mask"
)

// maxRatio bounds the ratio of the uncompressed to the compressed size of
// the data of an archive: deflate compresses by at most 1032:1.
const maxRatio = 1032

// Read reads a network from the .npz archive of size bytes in r, a PyTorch
// state_dict of an nn.Sequential of Linear modules and parameter-free
// activations (see the package documentation for the names of the keys).
// spec gives the activations and the loss, which the archive does not hold;
// both are needed. name names the archive in errors, which all start with
// it.
//
// The network's Meta holds the archive's Layout under MetaKey, so that
// Write puts every array back under its name and in its dtype.
func Read(r io.ReaderAt, size int64, name string, spec *Spec) (*nn.Network, error) {
	n, err := read(r, size, spec, nil, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// linear holds the keys of the arrays of one Linear module.
type linear struct {
	module int
	// Each tensor is one array (weight, bias) or two (weight_orig and
	// weight_mask, bias_orig and bias_mask); the mask key is empty for one.
	weight, weightMask string
	bias, biasMask     string
}

// tensors holds the arrays of one Linear layer; a mask is nil when absent.
type tensors struct {
	w, wm, b, bm *array
}

// archive is an open .npz archive.
type archive struct {
	size    int64                // bytes of the archive
	entries map[string]*zip.File // key → member
	keys    []string             // the keys in the order of the members
	budget  int64                // bytes of data that may still be read
}

// get reads the array at key; want checks its header.
func (ar *archive) get(key string, want func(*header) error) (*array, error) {
	a, err := readArray(ar.entries[key], ar.size, want, &ar.budget)
	if err != nil {
		var ud unsupportedDType
		if errors.As(err, &ud) {
			return nil, fmt.Errorf("unsupported dtype %s in %s; want float32 or float64", ud.descr, key)
		}
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return a, nil
}

// read reads a network from an archive; sc is the content of its spec file,
// if any, and sidecar the path of that file, to be named in errors.
func read(r io.ReaderAt, size int64, spec *Spec, sc *sidecar, sidecar string) (*nn.Network, error) {
	if size <= 0 {
		return nil, errors.New("empty file: not an .npz archive")
	}
	var magic [len(npy.Magic)]byte
	if k, _ := r.ReadAt(magic[:], 0); k == len(magic) && magic == npy.Magic {
		return nil, errors.New("an .npy array, not an .npz archive of arrays")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an .npz archive: %v", err)
	}
	ar := &archive{size: size, entries: make(map[string]*zip.File), budget: math.MaxInt64}
	if size < math.MaxInt64/(2*maxRatio) {
		ar.budget = maxRatio*size + 1<<12
	}
	for _, f := range zr.File {
		k := strings.TrimSuffix(f.Name, ".npy")
		if _, dup := ar.entries[k]; dup {
			return nil, fmt.Errorf("key %q appears twice", k)
		}
		ar.entries[k] = f
		ar.keys = append(ar.keys, k)
	}
	prefix, lins, err := parseKeys(slices.Sorted(maps.Keys(ar.entries)))
	var kn keyNameError
	if err != nil && !errors.As(err, &kn) {
		return nil, err
	}
	if err != nil || spec != nil && len(spec.Layers) > 0 || sc != nil && len(sc.layers) > 0 {
		// Modules named otherwise than in an nn.Sequential, or in an
		// order given: read by module name.
		ts, terr := ar.tensors(ar.keys)
		if terr != nil {
			return nil, terr
		}
		return fromTensors(ts, spec, sc, sidecar)
	}

	lay := Layout{Prefix: prefix, DType: "float32"}
	layers := make([]nn.Layer, len(lins))
	ts := make([]tensors, len(lins))
	total := 0
	for l, lin := range lins {
		lay.Modules = append(lay.Modules, lin.module)
		prev := 0
		if l > 0 {
			prev = layers[l-1].Out
		}
		if ts[l], err = ar.linear(lin, prev, lins[max(l-1, 0)].weight); err != nil {
			return nil, err
		}
		t := ts[l]
		out, in := t.w.shape[0], t.w.shape[1]
		if total += out*in + out; total > maxElems {
			return nil, fmt.Errorf("%s: more than %d parameters", lin.weight, maxElems)
		}
		layers[l] = nn.Layer{In: in, Out: out}
		if t.wm != nil {
			lay.Masked = append(lay.Masked, strconv.Itoa(lin.module)+"."+weight)
		}
		if t.bm != nil {
			lay.Masked = append(lay.Masked, strconv.Itoa(lin.module)+"."+bias)
		}
		if t.w.elemSize() != 4 || t.b.elemSize() != 4 {
			lay.DType = "float64"
		}
	}
	for l, lin := range lins {
		t := ts[l]
		for _, c := range []struct {
			a      *array
			key    string
			isMask bool
		}{{t.w, lin.weight, false}, {t.wm, lin.weightMask, true}, {t.b, lin.bias, false}, {t.bm, lin.biasMask, true}} {
			if c.a == nil {
				continue
			}
			if err := checkValues(c.a, c.key, c.isMask); err != nil {
				return nil, err
			}
		}
	}

	acts, loss, err := resolve(spec, sc, describeLayers(lay.Modules), len(lay.Modules), sidecar)
	if err != nil {
		return nil, err
	}
	vals := make([][4][]float64, len(ts))
	for l, t := range ts {
		for i, x := range []*array{t.w, t.wm, t.b, t.bm} {
			if x != nil {
				vals[l][i] = x.data
			}
		}
	}
	return assemble(layers, acts, loss, vals, sc, lay)
}

// linear reads the arrays of the Linear module lin, whose weight must take
// prev inputs unless prev is 0; prevKey is the key of the weight that gives
// them.
func (ar *archive) linear(lin linear, prev int, prevKey string) (tensors, error) {
	var t tensors
	var err error
	t.w, err = ar.get(lin.weight, func(h *header) error {
		switch {
		case len(h.shape) != 2:
			return fmt.Errorf("shape %s, want 2-D (out, in)", shapeString(h.shape))
		case h.shape[0] == 0 || h.shape[1] == 0:
			return fmt.Errorf("shape %s has no elements", shapeString(h.shape))
		case prev > 0 && h.shape[1] != prev:
			return fmt.Errorf("shape %s takes %d inputs, but %s gives %d outputs", shapeString(h.shape), h.shape[1], prevKey, prev)
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	if lin.weightMask != "" {
		if t.wm, err = ar.get(lin.weightMask, sameShape(t.w.shape, lin.weight)); err != nil {
			return t, err
		}
	}
	out := t.w.shape[0]
	t.b, err = ar.get(lin.bias, func(h *header) error {
		if len(h.shape) != 1 || h.shape[0] != out {
			return fmt.Errorf("shape %s, want (%d,) for the %d outputs of %s", shapeString(h.shape), out, out, lin.weight)
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	if lin.biasMask != "" {
		if t.bm, err = ar.get(lin.biasMask, sameShape(t.b.shape, lin.bias)); err != nil {
			return t, err
		}
	}
	return t, nil
}

// sameShape returns the check that a mask has shape, that of the tensor key.
func sameShape(shape []int, key string) func(*header) error {
	return func(h *header) error {
		if !slices.Equal(h.shape, shape) {
			return fmt.Errorf("shape %s, want %s like %s", shapeString(h.shape), shapeString(shape), key)
		}
		return nil
	}
}

// checkValues returns an error naming the first element of a, the array at
// key, that is NaN or ±Inf, or, for a mask, that is neither 0 nor 1.
func checkValues(a *array, key string, isMask bool) error {
	for q, v := range a.data {
		var bad string
		switch {
		case !finite(v):
			bad = fmt.Sprintf("%v is not allowed", v)
		case isMask && v != 0 && v != 1:
			bad = fmt.Sprintf("%v is not 0 or 1", v)
		default:
			continue
		}
		if len(a.shape) == 2 {
			return fmt.Errorf("%s[%d][%d]: %s", key, q/a.shape[1], q%a.shape[1], bad)
		}
		return fmt.Errorf("%s[%d]: %s", key, q, bad)
	}
	return nil
}

// parseKeys sorts the keys of an archive into Linear modules and returns
// them in module order, with the prefix that all keys share.
func parseKeys(keys []string) (string, []linear, error) {
	if len(keys) == 0 {
		return "", nil, errors.New("empty archive: no arrays")
	}
	modules := make(map[int][]string) // module → tensor names
	prefix, first := "", ""
	for i, k := range keys {
		p, m, name, ok := splitKey(k)
		if !ok {
			return "", nil, keyNameError{fmt.Errorf("key %q is not [PREFIX.]N.NAME, the name of a parameter of module N of an nn.Sequential", k)}
		}
		if i == 0 {
			prefix, first = p, k
		} else if p != prefix {
			return "", nil, keyNameError{fmt.Errorf("keys %s and %s have different prefixes, %q and %q; want the keys of one nn.Sequential", first, k, prefix, p)}
		}
		modules[m] = append(modules[m], name)
	}
	var lins []linear
	for _, m := range slices.Sorted(maps.Keys(modules)) {
		names := modules[m]
		key := func(name string) string { return prefix + strconv.Itoa(m) + "." + name }
		for _, name := range names {
			switch name {
			case weight, weight + orig, weight + mask, bias, bias + orig, bias + mask:
				continue
			}
			slices.Sort(names)
			var list []string
			for _, name := range names[:min(3, len(names))] {
				list = append(list, key(name))
			}
			more := ""
			if len(names) > 3 {
				more = ", …"
			}
			return "", nil, fmt.Errorf("unsupported module %d (keys %s%s): only Linear layers and parameter-free activations are supported", m, strings.Join(list, ", "), more)
		}
		lin := linear{module: m}
		var err error
		if lin.weight, lin.weightMask, err = tensorKeys(names, weight, key); err != nil {
			return "", nil, err
		}
		if lin.bias, lin.biasMask, err = tensorKeys(names, bias, key); err != nil {
			return "", nil, err
		}
		switch {
		case lin.weight == "":
			return "", nil, fmt.Errorf("%s without %s", lin.bias, key(weight))
		case lin.bias == "":
			return "", nil, fmt.Errorf("%s without %s: Linear layers without bias are not supported", lin.weight, key(bias))
		}
		lins = append(lins, lin)
	}
	return prefix, lins, nil
}

// keyNameError is the error of parseKeys for keys that do not name the
// modules of one nn.Sequential; such archives are read by module name.
type keyNameError struct{ error }

// tensorKeys returns the keys of the tensor name (weight or bias) of a
// module that has the tensors names: the key of the tensor and no mask key,
// the keys of name_orig and name_mask, or two empty keys when the tensor is
// absent.
func tensorKeys(names []string, name string, key func(string) string) (string, string, error) {
	plain := slices.Contains(names, name)
	o := slices.Contains(names, name+orig)
	m := slices.Contains(names, name+mask)
	switch {
	case plain && o:
		return "", "", fmt.Errorf("%s and %s both present; want one of them", key(name), key(name+orig))
	case m && !o:
		return "", "", fmt.Errorf("%s without %s (torch.nn.utils.prune stores %s and %s in place of %s)", key(name+mask), key(name+orig), key(name+orig), key(name+mask), key(name))
	case o && !m:
		return "", "", fmt.Errorf("%s without %s", key(name+orig), key(name+mask))
	case o:
		return key(name + orig), key(name + mask), nil
	case plain:
		return key(name), "", nil
	}
	return "", "", nil
}

// splitKey splits a key PREFIX.N.NAME into its prefix (empty or ending in a
// dot), its module index N and its tensor name.
func splitKey(k string) (prefix string, module int, name string, ok bool) {
	for _, r := range k {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "", 0, "", false
		}
	}
	i := strings.LastIndexByte(k, '.')
	if i < 0 || i == len(k)-1 {
		return "", 0, "", false
	}
	rest, name := k[:i], k[i+1:]
	j := strings.LastIndexByte(rest, '.')
	prefix, idx := rest[:j+1], rest[j+1:]
	if !IsPrefix(prefix) || idx == "" || len(idx) > 9 || (len(idx) > 1 && idx[0] == '0') {
		return "", 0, "", false
	}
	for _, c := range []byte(idx) {
		if c < '0' || c > '9' {
			return "", 0, "", false
		}
	}
	module, _ = strconv.Atoi(idx)
	return prefix, module, name, true
}

// Write writes n to w as an .npz archive of its state_dict, named and typed
// by LayoutOf(n) (see the package documentation). It returns an error,
// having written nothing, when a parameter is NaN or ±Inf, does not fit the
// layout's dtype, or is pruned but not zero, or when the layout recorded in
// n.Meta is malformed.
func Write(w io.Writer, n *nn.Network) error {
	lay, err := writable(n)
	if err != nil {
		return err
	}
	zw := npz.NewWriter(w)
	for _, t := range stateTensors(n, lay) {
		rows, cols := 0, t.shape[0]
		if len(t.shape) == 2 {
			rows, cols = t.shape[0], t.shape[1]
		}
		if err := zw.Write(t.key+".npy", values(t.values, rows, cols, t.dtype)); err != nil {
			return err
		}
	}
	return zw.Close()
}

// values returns v as a value that npy.Write writes with the given dtype
// and with shape (rows, cols), or (cols,) when rows is 0.
func values(v []float64, rows, cols int, dtype string) any {
	if dtype == dtF64 {
		if rows == 0 {
			return v
		}
		return mat.NewDense(rows, cols, v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	if rows == 0 {
		return f
	}
	m := make([][]float32, rows)
	for j := range m {
		m[j] = f[j*cols : (j+1)*cols : (j+1)*cols]
	}
	return m
}

// writable returns the layout of n, or an error when n cannot be written
// with it.
func writable(n *nn.Network) (Layout, error) {
	lay, err := LayoutOf(n)
	if err != nil {
		return Layout{}, fmt.Errorf("cannot write npz: %w", err)
	}
	theta := n.RawParams()
	for q, v := range theta {
		var bad string
		switch {
		case !finite(v):
			bad = fmt.Sprintf("%v cannot be written", v)
		case !n.IsLive(q) && v != 0:
			bad = fmt.Sprintf("pruned but %v, not zero", v)
		case !fits(v, lay.DType):
			bad = fmt.Sprintf("%v overflows %s", v, lay.DType)
		default:
			continue
		}
		p := n.ParamAt(q)
		if p.Bias {
			return Layout{}, fmt.Errorf("cannot write npz: %s[%d]: %s", lay.Key(p.Layer, bias), p.Row, bad)
		}
		return Layout{}, fmt.Errorf("cannot write npz: %s[%d][%d]: %s", lay.Key(p.Layer, weight), p.Row, p.Col, bad)
	}
	return lay, nil
}
