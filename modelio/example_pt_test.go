package modelio_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/secondorder/prune/modelio"
)

// A state_dict that torch.save wrote, of a module with Linear layers fc1
// and fc2, read as a classifier trained with CrossEntropyLoss on its
// logits, and written back as a plain state_dict that the unpruned module
// loads.
func Example_pt() {
	n, err := modelio.Load(filepath.Join("testdata", "fc.pt"), &modelio.Spec{Activations: "relu,linear", Loss: "ce"})
	if err != nil {
		log.Fatal(err)
	}
	lay, err := modelio.LayoutOf(n)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("architecture:", n.Arch(), "loss:", n.Loss(), "output:", n.Layer(1).Act)
	fmt.Println("modules:", lay.Names, "dtype:", lay.DType)

	// Prune one weight, and write the pruned tensors under their own keys.
	live := make([]bool, n.NumParams())
	for q := range live {
		live[q] = q != 0
	}
	n.SetMask(live)
	lay.Masks = modelio.MasksPlain
	if err := modelio.SetLayout(n, lay); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "pruned.pt")
	if err := modelio.Save(out, n); err != nil {
		log.Fatal(err)
	}
	back, err := modelio.Load(out, nil) // the spec file pruned.spec.json gives relu, softmax, ce
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back:", back.Arch(), "W0[0][0] =", back.RawParams()[0], "live:", back.NumLive(), "of", back.NumParams())
	// Output:
	// architecture: 4-3-2 loss: ce output: softmax
	// modules: [fc1 fc2] dtype: float32
	// read back: 4-3-2 W0[0][0] = 0 live: 23 of 23
}
