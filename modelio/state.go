package modelio

import (
	"fmt"
	"io"

	"github.com/secondorder/prune/nn"
)

// outTensor is one tensor to write: its key, dtype, shape and values in C
// order.
type outTensor struct {
	key    string
	dtype  string
	shape  []int
	values []float64
}

// stateTensors returns the tensors of the state_dict of n named and typed
// by lay, which writable has checked: for each layer in order, the weight
// and then the bias, each as one tensor or, in the torch.nn.utils.prune
// form, as NAME_orig and NAME_mask (see Layout.Masks). Masks have the dtype
// of the parameters, as the masks of torch.nn.utils.prune do.
func stateTensors(n *nn.Network, lay Layout) []outTensor {
	var out []outTensor
	theta := n.RawParams()
	for l, ly := range n.Layers() {
		off := n.Offset(l)
		boff := off + ly.Out*ly.In
		for _, t := range []struct {
			name       string
			start, end int
			shape      []int
		}{
			{weight, off, boff, []int{ly.Out, ly.In}},
			{bias, boff, n.Offset(l + 1), []int{ly.Out}},
		} {
			masked := false
			if lay.Masks != MasksPlain {
				masked = lay.masked(l, t.name)
				for q := t.start; q < t.end && !masked; q++ {
					masked = !n.IsLive(q)
				}
			}
			v := theta[t.start:t.end]
			if !masked {
				out = append(out, outTensor{lay.Key(l, t.name), lay.DType, t.shape, v})
				continue
			}
			m := make([]float64, t.end-t.start)
			for q := range m {
				if n.IsLive(t.start + q) {
					m[q] = 1
				}
			}
			out = append(out,
				outTensor{lay.Key(l, t.name+orig), lay.DType, t.shape, v},
				outTensor{lay.Key(l, t.name+mask), lay.DType, t.shape, m})
		}
	}
	return out
}

// masked reports whether tensor t ("weight" or "bias") of layer l is listed
// in lay.Masked.
func (lay Layout) masked(l int, t string) bool {
	k := lay.MaskedKey(l, t)
	for _, m := range lay.Masked {
		if m == k {
			return true
		}
	}
	return false
}

// WritePT writes n to w as a .pt file that torch.load reads: the zip
// format of torch.save holding the state_dict, named and typed by
// LayoutOf(n) as Write does. It returns an error, having written nothing,
// when Write would.
func WritePT(w io.Writer, n *nn.Network) error {
	lay, err := writable(n)
	if err != nil {
		return err
	}
	return writePT(w, stateTensors(n, lay))
}

// WriteSafetensors writes n to w as a .safetensors file, named and typed by
// LayoutOf(n) as Write does. It returns an error, having written nothing,
// when Write would.
func WriteSafetensors(w io.Writer, n *nn.Network) error {
	lay, err := writable(n)
	if err != nil {
		return err
	}
	return writeSafetensors(w, stateTensors(n, lay))
}

// ReadPT reads a network from the .pt file of size bytes in r, written by
// torch.save of a state_dict (see the package documentation). spec gives
// the activations and the loss; name names the file in errors.
func ReadPT(r io.ReaderAt, size int64, name string, spec *Spec) (*nn.Network, error) {
	return readTensors(r, size, name, spec, readPT)
}

// ReadSafetensors reads a network from the .safetensors file of size bytes
// in r (see the package documentation). spec gives the activations and the
// loss; name names the file in errors.
func ReadSafetensors(r io.ReaderAt, size int64, name string, spec *Spec) (*nn.Network, error) {
	return readTensors(r, size, name, spec, readSafetensors)
}

func readTensors(r io.ReaderAt, size int64, name string, spec *Spec, read func(io.ReaderAt, int64) ([]*tensor, error)) (*nn.Network, error) {
	ts, err := read(r, size)
	if err == nil {
		var n *nn.Network
		if n, err = fromTensors(ts, spec, nil, ""); err == nil {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", name, err)
}
