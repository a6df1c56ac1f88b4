package modelio

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
)

func setNet(t *testing.T, acts []nn.Activation, seed uint64) *nn.Network {
	t.Helper()
	n, err := nn.New([]int{3, 4, 2}, acts, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	n.Init(rand.NewPCG(seed, seed))
	return n
}

// TestSaveMixedSet is the repro of an .npz model whose weights came from
// one write and whose spec file from another, which read as a valid model:
// the spec file records the archive's SHA-256 and Load refuses the pair.
func TestSaveMixedSet(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.npz"), filepath.Join(dir, "b", "b.npz")
	os.Mkdir(filepath.Dir(b), 0o755)
	na := setNet(t, []nn.Activation{nn.Tanh, nn.Linear}, 1)
	nb := setNet(t, []nn.Activation{nn.Sigmoid, nn.Sigmoid}, 2)
	if err := Save(a, na); err != nil {
		t.Fatal(err)
	}
	if err := Save(b, nb); err != nil {
		t.Fatal(err)
	}
	got, err := Load(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameNet(t, got, na)
	spec, _ := os.ReadFile(SpecPath(a))
	if !strings.Contains(string(spec), `"model_sha256": "`) {
		t.Fatalf("spec file without the model's SHA-256:\n%s", spec)
	}
	// The new weights renamed, the old spec file left: what a commit
	// interrupted between the renames leaves.
	data, _ := os.ReadFile(b)
	if err := os.WriteFile(a, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(a, nil); err == nil || !strings.Contains(err.Error(), "not written together") {
		t.Errorf("mixed set: error %v", err)
	}
	// A spec file without the field, as written by hand, still works.
	if err := os.WriteFile(SpecPath(a), []byte(`{"activations": ["sigmoid", "sigmoid"], "loss": "mse"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(a, nil); err != nil {
		t.Errorf("spec without model_sha256: %v", err)
	}
	if err := os.WriteFile(SpecPath(a), []byte(`{"activations": ["sigmoid", "sigmoid"], "loss": "mse", "model_sha256": "xyz"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(a, nil); err == nil || !strings.Contains(err.Error(), "model_sha256") {
		t.Errorf("bad model_sha256: %v", err)
	}
}
