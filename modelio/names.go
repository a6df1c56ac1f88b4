package modelio

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/secondorder/prune/nn"
)

// module is the group of tensors of one module of a state_dict, the keys
// that share everything before their last dot.
type module struct {
	name    string
	tensors map[string]*tensor // by tensor name: weight, bias_mask, …
	keys    []string           // in file order
}

// modules groups ts by module, in the order of first appearance.
func modules(ts []*tensor) []*module {
	var out []*module
	by := make(map[string]*module)
	for _, t := range ts {
		name, tn := "", t.key
		if i := strings.LastIndexByte(t.key, '.'); i >= 0 {
			name, tn = t.key[:i], t.key[i+1:]
		}
		m := by[name]
		if m == nil {
			m = &module{name: name, tensors: make(map[string]*tensor)}
			by[name] = m
			out = append(out, m)
		}
		m.tensors[tn] = t
		m.keys = append(m.keys, t.key)
	}
	return out
}

// describe lists up to three keys of m.
func (m *module) describe() string {
	s := strings.Join(m.keys[:min(3, len(m.keys))], ", ")
	if len(m.keys) > 3 {
		s += ", …"
	}
	return s
}

// linear returns the tensors of m as a Linear module: weight and bias, each
// plain or in the _orig and _mask form; a mask is nil when absent. It
// returns an error naming m's keys when m is not a Linear module.
func (m *module) linear() (w, wm, b, bm *tensor, err error) {
	label := m.name
	if label == "" {
		label = "(top level)"
	}
	for _, k := range m.keys {
		tn := k[strings.LastIndexByte(k, '.')+1:]
		switch tn {
		case weight, weight + orig, weight + mask, bias, bias + orig, bias + mask:
			continue
		}
		return nil, nil, nil, nil, fmt.Errorf("module %s (keys %s) is not a Linear layer: %s is not a weight or bias; only networks of Linear layers and parameter-free activations can be read (a BatchNorm, an Embedding or a convolution cannot)", label, m.describe(), k)
	}
	pick := func(name string) (*tensor, *tensor, error) {
		p, o, mk := m.tensors[name], m.tensors[name+orig], m.tensors[name+mask]
		key := func(t string) string { return joinKey(m.name, t) }
		switch {
		case p != nil && o != nil:
			return nil, nil, fmt.Errorf("%s and %s both present; want one of them", key(name), key(name+orig))
		case mk != nil && o == nil:
			return nil, nil, fmt.Errorf("%s without %s (torch.nn.utils.prune stores %s and %s in place of %s)", key(name+mask), key(name+orig), key(name+orig), key(name+mask), key(name))
		case o != nil && mk == nil:
			return nil, nil, fmt.Errorf("%s without %s", key(name+orig), key(name+mask))
		case o != nil:
			return o, mk, nil
		}
		return p, nil, nil
	}
	if w, wm, err = pick(weight); err != nil {
		return
	}
	if b, bm, err = pick(bias); err != nil {
		return
	}
	switch {
	case w == nil:
		return nil, nil, nil, nil, fmt.Errorf("module %s (keys %s): %s without a weight", label, m.describe(), b.key)
	case b == nil:
		return nil, nil, nil, nil, fmt.Errorf("%s without %s: Linear layers without bias are not supported", w.key, joinKey(m.name, bias))
	case len(w.shape) != 2:
		return nil, nil, nil, nil, fmt.Errorf("module %s (keys %s) is not a Linear layer: %s has shape %s, want 2-D (out, in)", label, m.describe(), w.key, shapeString(w.shape))
	case w.shape[0] == 0 || w.shape[1] == 0:
		return nil, nil, nil, nil, fmt.Errorf("%s: shape %s has no elements", w.key, shapeString(w.shape))
	case len(b.shape) != 1 || b.shape[0] != w.shape[0]:
		return nil, nil, nil, nil, fmt.Errorf("%s: shape %s, want (%d,) for the %d outputs of %s", b.key, shapeString(b.shape), w.shape[0], w.shape[0], w.key)
	}
	for _, c := range []struct{ t, like *tensor }{{wm, w}, {bm, b}} {
		if c.t != nil && !slices.Equal(c.t.shape, c.like.shape) {
			return nil, nil, nil, nil, fmt.Errorf("%s: shape %s, want %s like %s", c.t.key, shapeString(c.t.shape), shapeString(c.like.shape), c.like.key)
		}
	}
	for _, t := range []*tensor{w, wm, b, bm} {
		if t != nil && dtypeSize(t.dtype) == 0 {
			return nil, nil, nil, nil, fmt.Errorf("unsupported dtype %s in %s; want float16, bfloat16, float32 or float64", t.dtype, t.key)
		}
	}
	return w, wm, b, bm, nil
}

// chain returns an error when the weights of mods, in order, do not chain:
// each takes as many inputs as the one before gives outputs.
func chain(mods []*module) error {
	for l := 1; l < len(mods); l++ {
		w, p := linearWeight(mods[l]), linearWeight(mods[l-1])
		if w.shape[1] != p.shape[0] {
			return fmt.Errorf("%s: shape %s takes %d inputs, but %s gives %d outputs", w.key, shapeString(w.shape), w.shape[1], p.key, p.shape[0])
		}
	}
	return nil
}

// linearWeight returns the weight (or weight_orig) of a checked Linear
// module.
func linearWeight(m *module) *tensor {
	if w := m.tensors[weight]; w != nil {
		return w
	}
	return m.tensors[weight+orig]
}

// naturalLess orders module names with their runs of digits compared as
// numbers, so that fc2 comes before fc10 and net.2 before net.10.
func naturalLess(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			x, _ := strconv.Atoi(a[:min(da, 9)])
			y, _ := strconv.Atoi(b[:min(db, 9)])
			if x != y {
				return x - y
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// fromTensors builds a network from the tensors ts of a state_dict, in
// file order (see the package documentation): its Linear layers in file
// order, or in the order of spec.Layers when given. When the file order
// does not chain but the natural order of the module names does (as for a
// safetensors file, whose writer sorts the keys), the natural order is
// used.
func fromTensors(ts []*tensor, spec *Spec, sc *sidecar, sidecar string) (*nn.Network, error) {
	if len(ts) == 0 {
		return nil, errors.New("empty state_dict: no tensors")
	}
	for _, t := range ts {
		if !isModuleName(t.key) || t.key == "" {
			return nil, fmt.Errorf("key %q is not a module name and a tensor name, such as fc1.weight or net.0.bias", t.key)
		}
	}
	mods := modules(ts)
	byName := make(map[string]*module)
	for _, m := range mods {
		byName[m.name] = m
		if _, _, _, _, err := m.linear(); err != nil {
			return nil, err
		}
	}
	var order []string
	switch {
	case spec != nil && len(spec.Layers) > 0:
		order = spec.Layers
	case sc != nil && len(sc.layers) > 0:
		order = sc.layers
	}
	if order != nil {
		var sel []*module
		for _, name := range order {
			m := byName[name]
			if m == nil {
				var all []string
				for _, m := range mods {
					all = append(all, m.name)
				}
				return nil, fmt.Errorf("layers: no module %q; the state_dict has %s", name, strings.Join(all, ", "))
			}
			if slices.Contains(sel, m) {
				return nil, fmt.Errorf("layers: %s given twice", name)
			}
			sel = append(sel, m)
		}
		for _, m := range mods {
			if !slices.Contains(sel, m) {
				return nil, fmt.Errorf("layers: Linear module %s (keys %s) is not listed; list every Linear module in order", m.name, m.describe())
			}
		}
		if err := chain(sel); err != nil {
			return nil, fmt.Errorf("in the order of layers: %w", err)
		}
		mods = sel
	} else if err := chain(mods); err != nil {
		nat := slices.Clone(mods)
		slices.SortStableFunc(nat, func(a, b *module) int { return naturalLess(a.name, b.name) })
		if chain(nat) != nil {
			return nil, fmt.Errorf("in file order: %w; give the order of the Linear modules (--layers fc1,fc2,… or \"layers\" in the spec file)", err)
		}
		mods = nat
	}

	lay := layoutOf(mods)
	layers := make([]nn.Layer, len(mods))
	tens := make([]tensors4, len(mods))
	total := 0
	for l, m := range mods {
		w, wm, b, bm, _ := m.linear()
		tens[l] = tensors4{w, wm, b, bm}
		if total += len(w.data) + len(b.data); total > maxElems {
			return nil, fmt.Errorf("%s: more than %d parameters", w.key, maxElems)
		}
		layers[l] = nn.Layer{In: w.shape[1], Out: w.shape[0]}
		if wm != nil {
			lay.Masked = append(lay.Masked, lay.MaskedKey(l, weight))
		}
		if bm != nil {
			lay.Masked = append(lay.Masked, lay.MaskedKey(l, bias))
		}
		for _, t := range tens[l] {
			if t == nil {
				continue
			}
			if err := checkTensor(t, t == wm || t == bm); err != nil {
				return nil, err
			}
		}
	}
	acts, loss, err := resolve(spec, sc, describeNames(mods), len(mods), sidecar)
	if err != nil {
		return nil, err
	}
	vals := make([][4][]float64, len(tens))
	for l, t := range tens {
		for i, x := range t {
			if x != nil {
				vals[l][i] = x.data
			}
		}
	}
	return assemble(layers, acts, loss, vals, sc, lay)
}

// assemble builds the network of layers with the activations acts and the
// loss, sets its parameters from vals (per layer: weights, weight mask,
// biases, bias mask; a nil mask keeps every entry) and masks the entries
// whose mask is 0, and gives it the spec file's meta object and the layout.
func assemble(layers []nn.Layer, acts []nn.Activation, loss nn.Loss, vals [][4][]float64, sc *sidecar, lay Layout) (*nn.Network, error) {
	for l := range layers {
		layers[l].Act = acts[l]
	}
	n, err := nn.FromLayers(layers, loss)
	if err != nil {
		return nil, err
	}
	theta := n.RawParams()
	live := make([]bool, len(theta))
	pruned := false
	for l, v := range vals {
		off := n.Offset(l)
		boff := off + len(v[0])
		copy(theta[off:], v[0])
		copy(theta[boff:], v[2])
		for q := off; q < n.Offset(l+1); q++ {
			live[q] = true
		}
		for _, mk := range []struct {
			m     []float64
			start int
		}{{v[1], off}, {v[3], boff}} {
			for i, x := range mk.m {
				if x == 0 {
					live[mk.start+i] = false
					pruned = true
				}
			}
		}
	}
	if pruned {
		n.SetMask(live)
	}
	copyMeta(n, sc)
	if err := SetLayout(n, lay); err != nil {
		return nil, err
	}
	return n, nil
}

// tensors4 holds a Linear layer's weight, weight mask, bias and bias mask.
type tensors4 [4]*tensor

// copyMeta copies the meta object of the spec file sc, if any, to n.Meta,
// but for the layout.
func copyMeta(n *nn.Network, sc *sidecar) {
	if sc == nil {
		return
	}
	for k, v := range sc.meta {
		if k != MetaKey {
			if n.Meta == nil {
				n.Meta = make(map[string]any)
			}
			n.Meta[k] = v
		}
	}
}

// checkTensor returns an error naming the first element of t that is NaN or
// ±Inf, or, for a mask, that is neither 0 nor 1.
func checkTensor(t *tensor, isMask bool) error {
	return checkValues(&array{header: header{shape: t.shape}, data: t.data}, t.key, isMask)
}

// layoutOf returns the layout that names the modules mods: a prefix and
// module indices when their names are PREFIX.N with one prefix and
// increasing N, as in an nn.Sequential, else their names; and the dtype
// of their weights and biases when they share one, else float64.
func layoutOf(mods []*module) Layout {
	var lay Layout
	seq := true
	for l, m := range mods {
		i := strings.LastIndexByte(m.name, '.')
		p, idx := m.name[:i+1], m.name[i+1:]
		k, err := strconv.Atoi(idx)
		if err != nil || strconv.Itoa(k) != idx || k < 0 || (l > 0 && (p != lay.Prefix || k <= lay.Modules[l-1])) {
			seq = false
			break
		}
		lay.Prefix = p
		lay.Modules = append(lay.Modules, k)
	}
	if !seq {
		lay.Prefix, lay.Modules = "", nil
		for _, m := range mods {
			lay.Names = append(lay.Names, m.name)
		}
	}
	for _, m := range mods {
		w, _, b, _, _ := m.linear()
		for _, t := range []*tensor{w, b} {
			switch {
			case lay.DType == "":
				lay.DType = t.dtype
			case lay.DType != t.dtype:
				lay.DType = dtF64
			}
		}
	}
	return lay
}

// describeNames returns a description such as "2 Linear layers (fc1, fc2)".
func describeNames(mods []*module) string {
	s := make([]string, len(mods))
	for i, m := range mods {
		s[i] = m.name
	}
	if len(mods) == 1 {
		return "1 Linear layer (" + s[0] + ")"
	}
	return fmt.Sprintf("%d Linear layers (%s)", len(mods), strings.Join(s, ", "))
}

// tensors reads the arrays of the archive in the order of its entries;
// arrays of a dtype other than float32 and float64 are kept without their
// values, to be refused with the module that holds them.
func (ar *archive) tensors(keys []string) ([]*tensor, error) {
	var ts []*tensor
	for _, e := range keys {
		key := e
		a, err := readArray(ar.entries[e], ar.size, func(*header) error { return nil }, &ar.budget)
		if err != nil {
			var ud unsupportedDType
			if errors.As(err, &ud) {
				ts = append(ts, &tensor{key: key, dtype: ud.descr})
				continue
			}
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		dt := dtF64
		if a.elemSize() == 4 {
			dt = dtF32
		}
		ts = append(ts, &tensor{key: key, dtype: dt, shape: a.shape, data: a.data})
	}
	return ts, nil
}
