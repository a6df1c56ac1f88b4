package modelio

import (
	"path/filepath"
	"strings"

	"github.com/secondorder/prune/nn"
)

// LayerInfo describes one layer of a model.
type LayerInfo struct {
	// Module names the Linear module of a state_dict, such as fc1 or net.0.
	Module      string `json:"module,omitempty"`
	In          int    `json:"in"`
	Out         int    `json:"out"`
	Activation  string `json:"activation"`
	Weights     int    `json:"weights"`
	Biases      int    `json:"biases"`
	LiveWeights int    `json:"live_weights"`
	LiveBiases  int    `json:"live_biases"`
}

// Info describes a model file: its format, layers, sizes and metadata.
type Info struct {
	Model  string `json:"model"`
	Format string `json:"format"`
	DType  string `json:"dtype,omitempty"` // of a state_dict
	// Unknown lists what a state_dict without a spec leaves unknown,
	// "activations" and "loss"; Describe leaves it empty.
	Unknown  []string       `json:"unknown,omitempty"`
	Arch     string         `json:"arch"`
	Loss     string         `json:"loss"`
	Layers   []LayerInfo    `json:"layers"`
	Params   int            `json:"params"`
	Live     int            `json:"live"`
	Pruned   int            `json:"pruned"`
	Sparsity float64        `json:"sparsity"` // fraction of parameters pruned
	Meta     map[string]any `json:"meta,omitempty"`
}

// NPZFormat is the format FormatOf gives for a PyTorch .npz model.
const NPZFormat = "PyTorch state_dict (.npz)"

// FormatOf returns the format of the model file at path, by its
// extension: Format, NPZFormat, or the like for .pt and .safetensors.
func FormatOf(path string) string {
	if !IsStateDict(path) {
		return Format
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".npz" {
		return NPZFormat
	}
	return "PyTorch state_dict (" + ext + ")"
}

// Describe returns the description of the network n read from path.
func Describe(path string, n *nn.Network) Info {
	info := Info{
		Model:  path,
		Format: FormatOf(path),
		Arch:   n.Arch(),
		Loss:   n.Loss().String(),
		Params: n.NumParams(),
		Live:   n.NumLive(),
		Meta:   n.Meta,
	}
	lay, err := LayoutOf(n)
	_, fromDict := n.Meta[MetaKey]
	if err == nil && fromDict {
		info.DType = lay.DType
	}
	for l, ly := range n.Layers() {
		w, b := n.LayerLive(l)
		mod := ""
		if err == nil && fromDict {
			mod = strings.TrimSuffix(lay.Key(l, "weight"), "weight")
			mod = strings.TrimSuffix(mod, ".")
		}
		info.Layers = append(info.Layers, LayerInfo{
			Module: mod,
			In:     ly.In, Out: ly.Out, Activation: ly.Act.String(),
			Weights: ly.In * ly.Out, Biases: ly.Out,
			LiveWeights: w, LiveBiases: b,
		})
	}
	info.Pruned = info.Params - info.Live
	if info.Params > 0 {
		info.Sparsity = float64(info.Pruned) / float64(info.Params)
	}
	return info
}
