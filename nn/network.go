package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Layer describes one fully connected layer: In inputs, Out units and the
// activation of its units.
type Layer struct {
	In, Out int
	Act     Activation
}

// NumParams returns the number of parameters of the layer, Out·In weights
// and Out biases.
func (l Layer) NumParams() int { return l.Out*l.In + l.Out }

// Network is a fully connected feed-forward network with a loss.
//
// Its parameters are stored in one flat vector in the canonical order (see
// the package documentation); Weights and Bias return views into it.
// A mask marks each parameter live or pruned; a pruned parameter is exactly
// zero and every method that changes parameters keeps it so.
type Network struct {
	layers []Layer
	loss   Loss
	theta  []float64
	offs   []int  // offset of layer l's W in theta
	mask   []bool // nil: all live

	// Meta holds free-form provenance: data, seed, trainer, metrics.
	// It is written to and read from the model file; numbers read from a
	// file come back as json.Number, so that integers such as seeds keep
	// every digit.
	Meta map[string]any
}

// New returns a network with the given layer sizes (inputs, hidden…, outputs),
// one activation per layer and a loss, with all parameters zero and no mask.
// It returns an error when the sizes, activations and loss do not fit together:
// softmax only on the output layer and only with CE, CE only with a softmax
// or linear output, BCE only with a sigmoid or linear output (see Logits).
func New(sizes []int, acts []Activation, loss Loss) (*Network, error) {
	if len(sizes) < 2 {
		return nil, fmt.Errorf("architecture needs at least 2 sizes (inputs and outputs), got %d", len(sizes))
	}
	if len(acts) != len(sizes)-1 {
		return nil, fmt.Errorf("%d activations for %d layers", len(acts), len(sizes)-1)
	}
	layers := make([]Layer, len(acts))
	for l := range layers {
		layers[l] = Layer{In: sizes[l], Out: sizes[l+1], Act: acts[l]}
	}
	return FromLayers(layers, loss)
}

// FromLayers returns a network with the given layers and loss, all parameters
// zero. It checks the layers as New does, and gives a linear output layer
// under CE or BCE the activation of the loss (see Logits).
func FromLayers(layers []Layer, loss Loss) (*Network, error) {
	layers = Logits(layers, loss)
	if err := checkLayers(layers, loss); err != nil {
		return nil, err
	}
	n := &Network{layers: layers, loss: loss}
	n.offs = make([]int, len(layers)+1)
	for l, ly := range layers {
		n.offs[l+1] = n.offs[l] + ly.NumParams()
	}
	n.theta = make([]float64, n.offs[len(layers)])
	return n, nil
}

func checkLayers(layers []Layer, loss Loss) error {
	if len(layers) == 0 {
		return errors.New("network has no layers")
	}
	if loss < MSE || loss > CE {
		return fmt.Errorf("unknown loss %v", loss)
	}
	for l, ly := range layers {
		if ly.In < 1 || ly.Out < 1 {
			return fmt.Errorf("layer %d: sizes must be positive, got in=%d out=%d", l, ly.In, ly.Out)
		}
		if ly.Act < Linear || ly.Act > Softmax {
			return fmt.Errorf("layer %d: unknown activation %v", l, ly.Act)
		}
		if l > 0 && ly.In != layers[l-1].Out {
			return fmt.Errorf("layer %d: in=%d does not match layer %d out=%d", l, ly.In, l-1, layers[l-1].Out)
		}
		last := l == len(layers)-1
		if ly.Act == Softmax && !last {
			return fmt.Errorf("layer %d: softmax is allowed only on the output layer", l)
		}
		if last {
			want, fixed := loss.OutputActivation()
			if fixed && ly.Act != want {
				return &ActLossError{fmt.Sprintf("loss %v needs a %v output layer or a linear one (logits), got %v", loss, want, ly.Act)}
			}
			if !fixed && ly.Act == Softmax {
				return &ActLossError{fmt.Sprintf("a softmax output layer needs loss ce, got %v", loss)}
			}
		}
	}
	return nil
}

// ParseArch parses an architecture such as "17-3-1" into layer sizes.
func ParseArch(s string) ([]int, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 2 {
		return nil, fmt.Errorf("architecture %q: want sizes separated by '-', e.g. 17-3-1", s)
	}
	sizes := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("architecture %q: size %q is not a positive integer", s, p)
		}
		sizes[i] = v
	}
	return sizes, nil
}

// ParseActivations parses a comma-separated list of activations. A single
// name is repeated for every layer; otherwise there must be one per layer.
func ParseActivations(s string, layers int) ([]Activation, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != layers {
		return nil, fmt.Errorf("activations %q: want 1 or %d names, got %d", s, layers, len(parts))
	}
	acts := make([]Activation, layers)
	for l := range acts {
		p := parts[0]
		if len(parts) > 1 {
			p = parts[l]
		}
		a, err := ParseActivation(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		acts[l] = a
	}
	return acts, nil
}

// Layers returns a copy of the layer descriptions.
func (n *Network) Layers() []Layer { return append([]Layer(nil), n.layers...) }

// NumLayers returns the number of layers (weight matrices).
func (n *Network) NumLayers() int { return len(n.layers) }

// Layer returns the description of layer l.
func (n *Network) Layer(l int) Layer { return n.layers[l] }

// Loss returns the network's loss.
func (n *Network) Loss() Loss { return n.loss }

// Inputs returns the number of inputs.
func (n *Network) Inputs() int { return n.layers[0].In }

// Outputs returns the number of outputs.
func (n *Network) Outputs() int { return n.layers[len(n.layers)-1].Out }

// Sizes returns the layer sizes: inputs, hidden…, outputs.
func (n *Network) Sizes() []int {
	s := []int{n.layers[0].In}
	for _, l := range n.layers {
		s = append(s, l.Out)
	}
	return s
}

// Arch returns the architecture as a string such as "17-3-1".
func (n *Network) Arch() string {
	var b strings.Builder
	for i, s := range n.Sizes() {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(s))
	}
	return b.String()
}

// NumParams returns the number of parameters, W, including pruned ones.
func (n *Network) NumParams() int { return len(n.theta) }

// Offset returns the index in the flat parameter vector of the first weight
// of layer l; its biases start at Offset(l) + Out·In. Offset(NumLayers())
// is NumParams().
func (n *Network) Offset(l int) int { return n.offs[l] }

// WeightIndex returns the flat index of W_l[j][i].
func (n *Network) WeightIndex(l, j, i int) int {
	ly := n.layers[l]
	if j < 0 || j >= ly.Out || i < 0 || i >= ly.In {
		panic("nn: weight index out of range")
	}
	return n.offs[l] + j*ly.In + i
}

// BiasIndex returns the flat index of b_l[j].
func (n *Network) BiasIndex(l, j int) int {
	ly := n.layers[l]
	if j < 0 || j >= ly.Out {
		panic("nn: bias index out of range")
	}
	return n.offs[l] + ly.Out*ly.In + j
}

// Param describes the parameter at one flat index.
type Param struct {
	Layer int
	Bias  bool // true for b[Row], false for W[Row][Col]
	Row   int  // unit
	Col   int  // input (weights only)
}

// String returns a name such as "W1[2][0]" or "b0[1]".
func (p Param) String() string {
	if p.Bias {
		return fmt.Sprintf("b%d[%d]", p.Layer, p.Row)
	}
	return fmt.Sprintf("W%d[%d][%d]", p.Layer, p.Row, p.Col)
}

// ParamAt returns the description of parameter q.
func (n *Network) ParamAt(q int) Param {
	if q < 0 || q >= len(n.theta) {
		panic("nn: parameter index out of range")
	}
	l := 0
	for q >= n.offs[l+1] {
		l++
	}
	r := q - n.offs[l]
	ly := n.layers[l]
	if r < ly.Out*ly.In {
		return Param{Layer: l, Row: r / ly.In, Col: r % ly.In}
	}
	return Param{Layer: l, Bias: true, Row: r - ly.Out*ly.In}
}

// Weights returns a view of W_l (Out×In); writing to it changes the network.
// Writes must leave pruned parameters at zero.
func (n *Network) Weights(l int) *mat.Dense {
	ly := n.layers[l]
	return mat.NewDense(ly.Out, ly.In, n.theta[n.offs[l]:n.offs[l]+ly.Out*ly.In:n.offs[l]+ly.Out*ly.In])
}

// Bias returns a view of b_l; writing to it changes the network.
// Writes must leave pruned parameters at zero.
func (n *Network) Bias(l int) []float64 {
	ly := n.layers[l]
	s := n.offs[l] + ly.Out*ly.In
	return n.theta[s : s+ly.Out : s+ly.Out]
}

// RawParams returns the flat parameter vector itself, not a copy. It is for
// code that updates parameters in place; such code must keep pruned
// parameters at zero (see ApplyMask).
func (n *Network) RawParams() []float64 { return n.theta }

// ParamsTo copies the flat parameter vector to dst, allocating if dst is nil,
// and returns it.
func (n *Network) ParamsTo(dst []float64) []float64 {
	if dst == nil {
		dst = make([]float64, len(n.theta))
	}
	if len(dst) != len(n.theta) {
		panic("nn: ParamsTo length mismatch")
	}
	copy(dst, n.theta)
	return dst
}

// SetParams sets the flat parameter vector from src; pruned parameters are
// set to zero whatever src holds.
func (n *Network) SetParams(src []float64) {
	if len(src) != len(n.theta) {
		panic("nn: SetParams length mismatch")
	}
	copy(n.theta, src)
	n.ApplyMask()
}

// ApplyMask sets every pruned parameter to zero.
func (n *Network) ApplyMask() {
	if n.mask == nil {
		return
	}
	for q, live := range n.mask {
		if !live {
			n.theta[q] = 0
		}
	}
}

// HasMask reports whether any parameter is pruned.
func (n *Network) HasMask() bool {
	for _, live := range n.mask {
		if !live {
			return true
		}
	}
	return false
}

// Mask returns a copy of the mask: true for a live parameter, false for a
// pruned one.
func (n *Network) Mask() []bool {
	m := make([]bool, len(n.theta))
	if n.mask == nil {
		for q := range m {
			m[q] = true
		}
		return m
	}
	copy(m, n.mask)
	return m
}

// SetMask sets the mask (true = live) and zeroes the pruned parameters.
// A nil mask makes every parameter live.
func (n *Network) SetMask(m []bool) {
	if m == nil {
		n.mask = nil
		return
	}
	if len(m) != len(n.theta) {
		panic("nn: SetMask length mismatch")
	}
	n.mask = append(n.mask[:0], m...)
	n.ApplyMask()
}

// IsLive reports whether parameter q is live.
func (n *Network) IsLive(q int) bool { return n.mask == nil || n.mask[q] }

// Prune marks parameter q pruned and sets it to zero.
func (n *Network) Prune(q int) {
	if n.mask == nil {
		n.mask = make([]bool, len(n.theta))
		for i := range n.mask {
			n.mask[i] = true
		}
	}
	n.mask[q] = false
	n.theta[q] = 0
}

// NumLive returns the number of live parameters.
func (n *Network) NumLive() int {
	if n.mask == nil {
		return len(n.theta)
	}
	c := 0
	for _, live := range n.mask {
		if live {
			c++
		}
	}
	return c
}

// LiveIndices returns the flat indices of the live parameters in ascending
// order.
func (n *Network) LiveIndices() []int {
	idx := make([]int, 0, len(n.theta))
	for q := range n.theta {
		if n.IsLive(q) {
			idx = append(idx, q)
		}
	}
	return idx
}

// LayerLive returns the number of live weights and biases of layer l.
func (n *Network) LayerLive(l int) (weights, biases int) {
	ly := n.layers[l]
	for q := n.offs[l]; q < n.offs[l+1]; q++ {
		if !n.IsLive(q) {
			continue
		}
		if q-n.offs[l] < ly.Out*ly.In {
			weights++
		} else {
			biases++
		}
	}
	return weights, biases
}

// Clone returns a copy of the network and its mask that shares nothing with
// it, and a copy of the top level of its metadata (nested values are shared).
func (n *Network) Clone() *Network {
	c := &Network{
		layers: append([]Layer(nil), n.layers...),
		loss:   n.loss,
		theta:  append([]float64(nil), n.theta...),
		offs:   append([]int(nil), n.offs...),
	}
	if n.mask != nil {
		c.mask = append([]bool(nil), n.mask...)
	}
	if n.Meta != nil {
		c.Meta = make(map[string]any, len(n.Meta))
		for k, v := range n.Meta {
			c.Meta[k] = v
		}
	}
	return c
}

// Init sets the weights to random values drawn from src and the biases to
// zero: Glorot (Xavier) uniform, U(−r, r) with r = √(6/(in+out)), for tanh,
// sigmoid, linear and softmax layers, and He normal, N(0, 2/in), for relu
// layers. Pruned parameters stay zero.
func (n *Network) Init(src rand.Source) {
	rng := rand.New(src)
	for l, ly := range n.layers {
		w := n.theta[n.offs[l] : n.offs[l]+ly.Out*ly.In]
		if ly.Act == ReLU {
			sd := math.Sqrt(2 / float64(ly.In))
			for i := range w {
				w[i] = sd * rng.NormFloat64()
			}
		} else {
			r := math.Sqrt(6 / float64(ly.In+ly.Out))
			for i := range w {
				w[i] = r * (2*rng.Float64() - 1)
			}
		}
		clear(n.Bias(l))
	}
	n.ApplyMask()
}

// CheckFinite returns an error naming the first parameter that is NaN or ±Inf.
func (n *Network) CheckFinite() error {
	for q, v := range n.theta {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("parameter %d (%v) is %v", q, n.ParamAt(q), v)
		}
	}
	return nil
}
