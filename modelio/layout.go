package modelio

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/secondorder/prune/nn"
)

// MetaKey is the key of Network.Meta under which reading a state_dict
// (.npz, .pt or .safetensors) records the network's Layout, so that writing
// puts every array back under its name and in its dtype. The entry survives
// a prune-mlp/1 file, where it is the object
//
//	"npz": {"prefix": "model.", "modules": [0, 2, 4], "dtype": "float32", "masked": ["0.weight"]}
//
// or, for modules named otherwise,
//
//	"npz": {"names": ["fc1", "fc2"], "dtype": "float32", "masks": "plain"}
//
// with masked and masks left out when empty.
const MetaKey = "npz"

// Layout says how the parameters of a network are named and stored in a
// PyTorch state_dict.
type Layout struct {
	// Prefix is the part of every key before the module index, such as
	// "model." or "" (see IsPrefix).
	Prefix string

	// Modules holds the index in the nn.Sequential of the Linear module of
	// each layer, in increasing order.
	Modules []int

	// Names, when not empty, holds the module name of each layer in place
	// of Prefix and Modules, such as "fc1" or "encoder.layers.2": the keys
	// of layer l are Names[l]+".weight" and Names[l]+".bias" (or "weight"
	// and "bias" for the one layer of a bare Linear module, named "").
	Names []string

	// DType is "float16", "bfloat16", "float32" or "float64", the dtype of
	// the arrays written. An .npz archive holds float16 and bfloat16
	// values as float32, which NumPy reads.
	DType string

	// Masked lists the tensors, named without the prefix as in "0.weight" or
	// "2.bias" (with Names, "fc1.weight"), that are written in the form of
	// torch.nn.utils.prune, N.weight_orig and N.weight_mask, even when none
	// of their entries is pruned. Tensors with a pruned entry are written
	// in that form unless Masks is "plain".
	Masked []string

	// Masks says how tensors with pruned entries are written: "prune" (or
	// empty), in the _orig and _mask form of torch.nn.utils.prune, which a
	// module takes after prune.identity; or "plain", under the tensor's own
	// key with the pruned entries exactly zero, which an unpruned module
	// takes as it is (and which reads back as live zeros). Masked is
	// ignored with "plain".
	Masks string
}

// The values of Layout.Masks.
const (
	MasksPrune = "prune"
	MasksPlain = "plain"
)

// module returns the module name of layer l without the prefix: Names[l],
// or the module index.
func (lay Layout) module(l int) string {
	if len(lay.Names) > 0 {
		return lay.Names[l]
	}
	return strconv.Itoa(lay.Modules[l])
}

// Key returns the key of tensor t ("weight", "bias", "weight_orig", …) of
// layer l.
func (lay Layout) Key(l int, t string) string {
	return joinKey(lay.Prefix+lay.module(l), t)
}

// joinKey returns the key of tensor t of the module named m.
func joinKey(m, t string) string {
	if m == "" {
		return t
	}
	return m + "." + t
}

// DefaultLayout returns the layout of a network that was not read from an
// .npz archive: no prefix, float64, and the Linear layers at modules 0, 2,
// 4, …, as in nn.Sequential(Linear, Tanh, Linear, Sigmoid).
func DefaultLayout(n *nn.Network) Layout {
	mods := make([]int, n.NumLayers())
	for l := range mods {
		mods[l] = 2 * l
	}
	return Layout{Modules: mods, DType: "float64"}
}

// LayoutOf returns the layout recorded in n.Meta[MetaKey], or the default
// layout when there is none. It returns an error when the recorded layout
// is malformed or does not fit n.
func LayoutOf(n *nn.Network) (Layout, error) {
	v, ok := n.Meta[MetaKey]
	if !ok {
		return DefaultLayout(n), nil
	}
	lay, err := parseLayout(v)
	if err == nil {
		err = lay.check(n.NumLayers())
	}
	if err != nil {
		return Layout{}, fmt.Errorf("meta.%s: %w", MetaKey, err)
	}
	return lay, nil
}

// SetLayout records lay in n.Meta[MetaKey]. It returns an error, leaving n
// unchanged, when lay does not fit n.
func SetLayout(n *nn.Network, lay Layout) error {
	if err := lay.check(n.NumLayers()); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if n.Meta == nil {
		n.Meta = make(map[string]any)
	}
	n.Meta[MetaKey] = lay.meta()
	return nil
}

// meta returns the layout as a Meta value.
func (lay Layout) meta() map[string]any {
	m := map[string]any{"dtype": lay.DType}
	if len(lay.Names) > 0 {
		m["names"] = slices.Clone(lay.Names)
	} else {
		m["prefix"] = lay.Prefix
		m["modules"] = slices.Clone(lay.Modules)
	}
	if len(lay.Masked) > 0 {
		m["masked"] = slices.Clone(lay.Masked)
	}
	if lay.Masks != "" {
		m["masks"] = lay.Masks
	}
	return m
}

// check returns an error when lay cannot name a network of layers layers.
func (lay Layout) check(layers int) error {
	switch lay.DType {
	case dtF16, dtBF16, dtF32, dtF64:
	default:
		return fmt.Errorf("dtype %q: want float16, bfloat16, float32 or float64", lay.DType)
	}
	switch lay.Masks {
	case "", MasksPrune, MasksPlain:
	default:
		return fmt.Errorf("masks %q: want prune or plain", lay.Masks)
	}
	if len(lay.Names) > 0 {
		return lay.checkNames(layers)
	}
	if !IsPrefix(lay.Prefix) {
		return fmt.Errorf("prefix %q: want empty or dot-separated names each followed by a dot, such as \"model.\"", lay.Prefix)
	}
	if len(lay.Modules) != layers {
		return fmt.Errorf("modules: %d module indices for %d layers", len(lay.Modules), layers)
	}
	for l, m := range lay.Modules {
		if m < 0 {
			return fmt.Errorf("modules[%d]: %d is negative", l, m)
		}
		if l > 0 && m <= lay.Modules[l-1] {
			return fmt.Errorf("modules[%d]: %d does not follow %d; want increasing indices", l, m, lay.Modules[l-1])
		}
	}
	for i, t := range lay.Masked {
		mod, name, ok := strings.Cut(t, ".")
		m, err := strconv.Atoi(mod)
		if !ok || err != nil || (name != "weight" && name != "bias") || !slices.Contains(lay.Modules, m) || strconv.Itoa(m) != mod {
			return fmt.Errorf("masked[%d]: %q is not N.weight or N.bias for a module N of modules", i, t)
		}
	}
	return nil
}

// IsPrefix reports whether p can prefix the keys of a state_dict: it is
// empty, or non-empty names separated and ended by dots, such as "model." or
// "net.body.".
func IsPrefix(p string) bool {
	if p == "" {
		return true
	}
	if !strings.HasSuffix(p, ".") {
		return false
	}
	for _, s := range strings.Split(p[:len(p)-1], ".") {
		if s == "" {
			return false
		}
	}
	return true
}

// parseLayout reads a layout from a Meta value, as set by SetLayout or as
// read back from a prune-mlp/1 file.
func parseLayout(v any) (Layout, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Layout{}, fmt.Errorf("%T, want an object", v)
	}
	var lay Layout
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var err error
		switch k {
		case "prefix":
			lay.Prefix, err = metaString(v)
		case "dtype":
			lay.DType, err = metaString(v)
		case "modules":
			lay.Modules, err = metaInts(v)
		case "masked":
			lay.Masked, err = metaStrings(v)
		case "names":
			lay.Names, err = metaStrings(v)
			if err == nil && len(lay.Names) == 0 {
				err = errors.New("empty")
			}
		case "masks":
			lay.Masks, err = metaString(v)
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return Layout{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	_, names := m["names"]
	_, modules := m["modules"]
	_, prefix := m["prefix"]
	switch {
	case names && (modules || prefix):
		return Layout{}, errors.New("names: not allowed with prefix and modules")
	case !names && !modules:
		return Layout{}, errors.New("modules: missing")
	}
	if _, ok := m["dtype"]; !ok {
		return Layout{}, errors.New("dtype: missing")
	}
	return lay, nil
}

func metaString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%T, want a string", v)
	}
	return s, nil
}

func metaStrings(v any) ([]string, error) {
	switch v := v.(type) {
	case []string:
		return slices.Clone(v), nil
	case []any:
		s := make([]string, len(v))
		for i, x := range v {
			var ok bool
			if s[i], ok = x.(string); !ok {
				return nil, fmt.Errorf("[%d]: %T, want a string", i, x)
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("%T, want an array of strings", v)
}

func metaInts(v any) ([]int, error) {
	switch v := v.(type) {
	case []int:
		return slices.Clone(v), nil
	case []any:
		s := make([]int, len(v))
		for i, x := range v {
			var f float64
			switch x := x.(type) {
			case int:
				s[i] = x
				continue
			case float64:
				f = x
			case json.Number:
				var err error
				if f, err = x.Float64(); err != nil {
					return nil, fmt.Errorf("[%d]: %v", i, err)
				}
			default:
				return nil, fmt.Errorf("[%d]: %T, want an integer", i, x)
			}
			if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
				return nil, fmt.Errorf("[%d]: %v is not an integer", i, f)
			}
			s[i] = int(f)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%T, want an array of integers", v)
}

// checkNames checks a layout that names its modules.
func (lay Layout) checkNames(layers int) error {
	if lay.Prefix != "" || lay.Modules != nil {
		return errors.New("names: not allowed with prefix and modules")
	}
	if len(lay.Names) != layers {
		return fmt.Errorf("names: %d module names for %d layers", len(lay.Names), layers)
	}
	for l, m := range lay.Names {
		if !isModuleName(m) || m == "" && layers > 1 {
			return fmt.Errorf("names[%d]: %q is not a module name such as fc1 or net.0", l, m)
		}
		if slices.Index(lay.Names, m) != l {
			return fmt.Errorf("names[%d]: %q appears twice", l, m)
		}
	}
	for i, t := range lay.Masked {
		ok := false
		for _, m := range lay.Names {
			ok = ok || t == joinKey(m, weight) || t == joinKey(m, bias)
		}
		if !ok {
			return fmt.Errorf("masked[%d]: %q is not NAME.weight or NAME.bias for a module NAME of names", i, t)
		}
	}
	return nil
}

// isModuleName reports whether m can name a module in a state_dict key:
// empty, or printable names without spaces separated by dots.
func isModuleName(m string) bool {
	for _, r := range m {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return m == "" || IsPrefix(m+".")
}

// MaskedKey returns the name under which Masked lists tensor t ("weight"
// or "bias") of layer l.
func (lay Layout) MaskedKey(l int, t string) string {
	if len(lay.Names) > 0 {
		return joinKey(lay.Names[l], t)
	}
	return strconv.Itoa(lay.Modules[l]) + "." + t
}
