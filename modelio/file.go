package modelio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/nn"
)

// Extensions lists the model file extensions: prune-mlp/1, then the
// formats of a PyTorch state_dict.
var Extensions = []string{".json", ".npz", ".pt", ".pth", ".safetensors"}

// formats describes Extensions in errors.
const formats = ".json (prune-mlp/1), or .npz, .pt, .pth or .safetensors (PyTorch state_dict)"

// format returns the model format of path from its extension, in any case:
// ".json" (prune-mlp/1), ".npz", ".pt" (also for .pth) or ".safetensors".
func format(path string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".json", ".npz", ".pt", ".safetensors":
		return ext, nil
	case ".pth":
		return ".pt", nil
	case "":
		return "", fmt.Errorf("%s: no file extension to tell the model format; want %s", path, formats)
	}
	return "", fmt.Errorf("%s: unknown model file extension %q; want %s", path, filepath.Ext(path), formats)
}

// IsStateDict reports whether path names a state_dict file (.npz, .pt,
// .pth or .safetensors), which has a spec file next to it.
func IsStateDict(path string) bool {
	ext, err := format(path)
	return err == nil && ext != ".json"
}

// Load reads a network from the model file at path, in the format its
// extension names: .json for a prune-mlp/1 file (ReadJSON); for a PyTorch
// state_dict, .npz (Read), .pt or .pth (ReadPT) and .safetensors
// (ReadSafetensors).
//
// For a state_dict, the activations and the loss come from spec, and
// those that spec leaves empty from the spec file SpecPath(path) when it
// exists; the spec file's meta object becomes the network's Meta. A
// prune-mlp/1 file holds its own activations and loss: spec may repeat them
// but not differ from them. spec may be nil.
//
// Errors about the content name path.
func Load(path string, spec *Spec) (*nn.Network, error) {
	ext, err := format(path)
	if err != nil {
		return nil, err
	}
	if ext == ".json" {
		n, err := loadJSON(path)
		if err != nil {
			return nil, err
		}
		if err := agree(n, spec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return n, nil
	}
	side := SpecPath(path)
	sc, err := readSidecar(side)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: a directory, not a model file", path)
	}
	var n *nn.Network
	switch ext {
	case ".npz":
		n, err = read(f, st.Size(), spec, sc, side)
	case ".pt", ".safetensors":
		rd := readPT
		if ext == ".safetensors" {
			rd = readSafetensors
		}
		var ts []*tensor
		if ts, err = rd(f, st.Size()); err == nil {
			n, err = fromTensors(ts, spec, sc, side)
		}
	}
	if err != nil {
		return nil, named(path, err)
	}
	if err := checkModelSum(f, st.Size(), sc, side); err != nil {
		return nil, named(path, err)
	}
	return n, nil
}

// agree returns an error when spec gives activations or a loss that differ
// from those of n.
func agree(n *nn.Network, spec *Spec) error {
	if spec == nil {
		return nil
	}
	if spec.Activations != "" {
		acts, err := nn.ParseActivations(spec.Activations, n.NumLayers())
		if err != nil {
			return fmt.Errorf("spec: %v", err)
		}
		var have []nn.Activation
		for _, ly := range n.Layers() {
			have = append(have, ly.Act)
		}
		if !slices.Equal(acts, have) {
			return fmt.Errorf("spec activations %s differ from the model's %s; a .json model holds its own", joinActs(acts), joinActs(have))
		}
	}
	if spec.Loss != "" {
		loss, err := nn.ParseLoss(strings.TrimSpace(spec.Loss))
		if err != nil {
			return fmt.Errorf("spec: %v", err)
		}
		if loss != n.Loss() {
			return fmt.Errorf("spec loss %s differs from the model's %s; a .json model holds its own", loss, n.Loss())
		}
	}
	return nil
}

func joinActs(acts []nn.Activation) string {
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Save writes n to the model file at path, in the format its extension
// names: .json for a prune-mlp/1 file (WriteJSON); for a PyTorch state_dict,
// .npz (Write), .pt or .pth (WritePT) and .safetensors (WriteSafetensors).
// For a state_dict it then writes the spec file SpecPath(path),
// which holds the activations, the loss and Meta, so that Load(path, nil)
// reads n back.
//
// The files are written as a set (see SaveSet): both are written in full
// before either replaces the old one, and the spec file records the
// archive's SHA-256, which Load checks, so that an archive and a spec file
// from different writes are never read as a model. Nothing is written when
// n cannot be, for instance when a parameter is NaN or ±Inf.
func Save(path string, n *nn.Network) error {
	ext, err := format(path)
	if err != nil {
		return err
	}
	if ext == ".json" {
		return saveJSON(path, n)
	}
	var s atomicfile.Set
	defer s.Abort()
	if err := SaveSet(&s, path, n); err != nil {
		return err
	}
	return named(path, s.Commit())
}

// named prefixes err with path unless it already names a file.
func named(path string, err error) error {
	var pe *os.PathError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
