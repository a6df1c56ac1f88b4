package runreport

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/modelio"
)

// Input is an input file of a run and the SHA-256 of its bytes, as a
// run's manifest records it.
type Input struct {
	Role   string `json:"role"`
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// HashInputs returns the inputs of a run of the model file model on the
// data set data with their SHA-256: the model file, the spec file of a
// state_dict model when it exists, a CSV data file and the UCI MONK's files.
func HashInputs(model string, data datasets.Spec) ([]Input, error) {
	var files []Input
	add := func(role, path string, optional bool) error {
		f, err := HashFile(role, path)
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		files = append(files, f)
		return nil
	}
	if err := add("model", model, false); err != nil {
		return nil, err
	}
	if modelio.IsStateDict(model) {
		if err := add("model-spec", modelio.SpecPath(model), true); err != nil {
			return nil, err
		}
	}
	if data.Kind() == "csv" {
		if err := add("data", data.Name, false); err != nil {
			return nil, err
		}
	}
	if kind, k, _ := datasets.Parse(data.Name); kind == "monks" && data.MonksDir != "" {
		for _, split := range []string{"train", "test"} {
			name := fmt.Sprintf("monks-%d.%s", k, split)
			if err := add("data-"+split, filepath.Join(data.MonksDir, name), false); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// HashFile returns the size and SHA-256 of the file at path, an input of
// the role given.
func HashFile(role, path string) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return Input{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Input{}, fmt.Errorf("%s: %v", path, err)
	}
	return Input{Role: role, Path: path, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
