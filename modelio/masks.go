package modelio

import (
	"fmt"
	"slices"

	"github.com/secondorder/prune/nn"
)

// SetMasks records in n's layout the form in which a state_dict file
// holds its pruned tensors: MasksPrune or MasksPlain; empty leaves n as it
// is, and another form is an error.
func SetMasks(n *nn.Network, form string) error {
	switch form {
	case "":
		return nil
	case MasksPrune, MasksPlain:
	default:
		return fmt.Errorf("modelio: mask form %q: want %s or %s", form, MasksPrune, MasksPlain)
	}
	lay, err := LayoutOf(n)
	if err != nil {
		return err
	}
	lay.Masks = form
	if form == MasksPlain {
		lay.Masked = nil
	}
	if err := SetLayout(n, lay); err != nil {
		return err
	}
	n.Meta = MetaValue(n.Meta).(map[string]any)
	return nil
}

// SimplifyLayout removes from n's metadata what its state_dict layout says that
// writing would do anyway: the tensors listed as masked that have a pruned
// entry, and the whole layout when it is then the default one, so that a
// .json file carries a layout only when it matters and json → npz → json
// gives the same file.
func SimplifyLayout(n *nn.Network) error {
	if _, ok := n.Meta[MetaKey]; !ok {
		return nil
	}
	lay, err := LayoutOf(n)
	if err != nil {
		return err
	}
	var masked []string
	for _, t := range lay.Masked {
		if !tensorHasPruned(n, lay, t) {
			masked = append(masked, t)
		}
	}
	lay.Masked = masked
	def := DefaultLayout(n)
	if lay.Prefix == def.Prefix && lay.DType == def.DType && slices.Equal(lay.Modules, def.Modules) && len(lay.Names) == 0 && len(lay.Masked) == 0 && lay.Masks == "" {
		delete(n.Meta, MetaKey)
		return nil
	}
	if err := SetLayout(n, lay); err != nil {
		return err
	}
	n.Meta = MetaValue(n.Meta).(map[string]any)
	return nil
}

// tensorHasPruned reports whether the tensor t of the layout, such as
// "2.weight" or "fc1.bias", has a pruned entry in n.
func tensorHasPruned(n *nn.Network, lay Layout, t string) bool {
	for l := range n.NumLayers() {
		if t != lay.MaskedKey(l, "weight") && t != lay.MaskedKey(l, "bias") {
			continue
		}
		ly := n.Layer(l)
		start, end := n.Offset(l), n.Offset(l)+ly.Out*ly.In
		if t == lay.MaskedKey(l, "bias") {
			start, end = end, n.Offset(l+1)
		}
		for q := start; q < end; q++ {
			if !n.IsLive(q) {
				return true
			}
		}
	}
	return false
}
