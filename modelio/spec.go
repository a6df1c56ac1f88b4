package modelio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secondorder/prune/nn"
)

// Spec gives what a state_dict does not hold: the activation after each
// Linear layer and the loss. Empty fields are not given.
type Spec struct {
	// Activations names the activations, comma-separated as in
	// "tanh,sigmoid": one per Linear layer, or one for all of them.
	Activations string

	// Loss names the loss: mse, bce or ce. With ce or bce, a linear last
	// activation stands for the logits of the loss (see nn.Logits).
	Loss string

	// Layers, when not empty, names the Linear modules of the state_dict in
	// the order of the network's layers, such as fc1, fc2, fc3; by default
	// they are taken in file order.
	Layers []string
}

// ErrNoSpec is matched, with errors.Is, by the error for an archive whose
// activations or loss are given neither in the Spec nor in the spec file.
var ErrNoSpec = errors.New("activations or loss not given")

// noSpecError is the error for a missing part of the spec.
type noSpecError struct {
	what    string // "activations" or "loss"
	layers  string // such as "2 Linear layers (modules 0, 2)"
	n       int    // number of layers
	sidecar string // path of the spec file, or ""
}

func (e *noSpecError) Error() string {
	s := fmt.Sprintf("no %s given for the %s", e.what, e.layers)
	if e.sidecar == "" {
		return s
	}
	ex := slices.Repeat([]string{`"relu"`}, e.n)
	ex[e.n-1] = `"linear"`
	return fmt.Sprintf(`%s; give them in the spec or in %s, such as {"activations": [%s], "loss": "ce"} for a classifier trained with CrossEntropyLoss on its logits`, s, e.sidecar, strings.Join(ex, ", "))
}

func (e *noSpecError) Is(target error) bool { return target == ErrNoSpec }

// SpecPath returns the path of the spec file of the archive at path: the
// path with its extension replaced by ".spec.json", so that model.npz has
// model.spec.json.
func SpecPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".spec.json"
}

// maxSpecSize is the largest spec file, in bytes, that reading accepts.
const maxSpecSize = 16 << 20

// sidecar is the content of a spec file.
type sidecar struct {
	acts   []string // nil when absent
	loss   string   // "" when absent
	layers []string // nil when absent
	meta   map[string]any
	sum    string // model_sha256: the SHA-256 of the archive, hex; "" when absent
}

// readSidecar reads the spec file at path. It returns nil and no error when
// there is no such file.
func readSidecar(path string) (*sidecar, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSpecSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxSpecSize)
	}
	sc, err := parseSidecar(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// parseSidecar parses the JSON object of a spec file.
func parseSidecar(data []byte) (*sidecar, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty file, want a JSON object")
		}
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if top == nil {
		return nil, errors.New("null, want a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	var sc sidecar
	for _, k := range slices.Sorted(maps.Keys(top)) {
		raw := top[k]
		switch k {
		case "activations":
			if err := json.Unmarshal(raw, &sc.acts); err != nil || len(sc.acts) == 0 {
				return nil, fmt.Errorf("activations: want an array of names such as [\"tanh\", \"sigmoid\"]")
			}
			for i, a := range sc.acts {
				if _, err := nn.ParseActivation(a); err != nil {
					return nil, fmt.Errorf("activations[%d]: %v", i, err)
				}
			}
		case "loss":
			if err := json.Unmarshal(raw, &sc.loss); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
				return nil, fmt.Errorf("loss: want a name: mse, bce or ce")
			}
			if _, err := nn.ParseLoss(sc.loss); err != nil {
				return nil, fmt.Errorf("loss: %v", err)
			}
		case "layers":
			if err := json.Unmarshal(raw, &sc.layers); err != nil || len(sc.layers) == 0 {
				return nil, fmt.Errorf("layers: want an array of module names such as [\"fc1\", \"fc2\"]")
			}
		case "meta":
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&sc.meta); err != nil {
				return nil, fmt.Errorf("meta: want an object: %v", err)
			}
		case "model_sha256":
			if err := json.Unmarshal(raw, &sc.sum); err != nil || !isSHA256(sc.sum) {
				return nil, errors.New("model_sha256: want the SHA-256 of the .npz archive in 64 hexadecimal digits")
			}
		default:
			return nil, fmt.Errorf("unknown field %q; want activations, loss, layers, meta and model_sha256", k)
		}
	}
	return &sc, nil
}

// writeSidecar writes the spec file of n to w: its activations and loss,
// its Meta but for the layout, which the archive itself gives, and, when
// sum is not empty, the SHA-256 of the archive it describes.
func writeSidecar(w io.Writer, n *nn.Network, sum string) error {
	var b bytes.Buffer
	b.WriteString("{\n  \"activations\": [")
	for l, ly := range n.Layers() {
		if l > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"` + ly.Act.String() + `"`)
	}
	b.WriteString("],\n  \"loss\": \"" + n.Loss().String() + `"`)
	if sum != "" {
		b.WriteString(",\n  \"model_sha256\": \"" + sum + `"`)
	}
	meta := maps.Clone(n.Meta)
	delete(meta, MetaKey)
	if len(meta) > 0 {
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("  ", "  ")
		b.WriteString(",\n  \"meta\": ")
		if err := enc.Encode(meta); err != nil {
			return fmt.Errorf("meta: %v", err)
		}
		b.Truncate(b.Len() - 1) // the encoder's newline
	}
	b.WriteString("\n}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// resolve returns the activations and the loss of the layers of modules
// mods from spec, else from sc (which may be nil). sidecar, when not empty,
// names the spec file in errors.
// layers describes the nl layers in errors.
func resolve(spec *Spec, sc *sidecar, layers string, nl int, sidecar string) ([]nn.Activation, nn.Loss, error) {
	if spec == nil {
		spec = &Spec{}
	}
	var names []string
	from := "spec"
	switch {
	case spec.Activations != "":
		names = strings.Split(spec.Activations, ",")
	case sc != nil && sc.acts != nil:
		names, from = sc.acts, sidecar
	default:
		return nil, 0, &noSpecError{what: "activations", layers: layers, n: nl, sidecar: sidecar}
	}
	if len(names) != 1 && len(names) != nl {
		return nil, 0, fmt.Errorf("%s: %d activations (%s) for the %s", from, len(names), strings.Join(names, ","), layers)
	}
	acts := make([]nn.Activation, nl)
	for l := range acts {
		name := names[0]
		if len(names) > 1 {
			name = names[l]
		}
		a, err := nn.ParseActivation(strings.TrimSpace(name))
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v", from, err)
		}
		acts[l] = a
	}

	name, from := spec.Loss, "spec"
	if name == "" && sc != nil {
		name, from = sc.loss, sidecar
	}
	if name == "" {
		return nil, 0, &noSpecError{what: "loss", layers: layers, n: nl, sidecar: sidecar}
	}
	loss, err := nn.ParseLoss(strings.TrimSpace(name))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", from, err)
	}
	return acts, loss, nil
}

// describeLayers returns a description such as "2 Linear layers (modules 0, 2)".
func describeLayers(mods []int) string {
	s := make([]string, len(mods))
	for i, m := range mods {
		s[i] = fmt.Sprint(m)
	}
	if len(mods) == 1 {
		return "1 Linear layer (module " + s[0] + ")"
	}
	return fmt.Sprintf("%d Linear layers (modules %s)", len(mods), strings.Join(s, ", "))
}
