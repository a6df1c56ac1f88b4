package runreport

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/secondorder/prune/datasets"
)

func TestHashInputs(t *testing.T) {
	dir := t.TempDir()
	model, csv := filepath.Join(dir, "m.json"), filepath.Join(dir, "d.csv")
	for path, body := range map[string]string{model: "{}", csv: "1,2\n"} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := HashInputs(model, datasets.Spec{Name: csv})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("1,2\n"))
	if len(in) != 2 || in[0].Role != "model" || in[0].Bytes != 2 || in[1].Role != "data" || in[1].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("HashInputs = %+v", in)
	}
	if in, err := HashInputs(model, datasets.Spec{Name: "xor"}); err != nil || len(in) != 1 {
		t.Errorf("a built-in data set: %+v, %v", in, err)
	}
	if _, err := HashInputs(filepath.Join(dir, "none.json"), datasets.Spec{Name: "xor"}); err == nil {
		t.Error("a missing model gave no error")
	}
	// The spec file of a state_dict is optional.
	npz := filepath.Join(dir, "m.npz")
	if err := os.WriteFile(npz, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if in, err := HashInputs(npz, datasets.Spec{Name: "xor"}); err != nil || len(in) != 1 {
		t.Errorf("a state_dict without a spec file: %+v, %v", in, err)
	}
}
