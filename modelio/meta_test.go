package modelio

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/secondorder/prune/nn"
)

func TestTrainerRoundTrip(t *testing.T) {
	for _, s := range []nn.TrainSettings{
		{},
		{Optimizer: nn.SGD, Momentum: nn.NoMomentum, WeightDecay: 1e-4, Schedule: nn.StepLR, Epochs: 8},
		{Optimizer: nn.SGD, Momentum: 0.5, LearningRate: 0.2, Patience: 3},
		{Optimizer: nn.LBFGS, WeightDecay: 0.01, Tolerance: 1e-6},
	} {
		r := TrainerOf(s)
		meta := map[string]any{TrainerKey: MetaValue(r)}
		var back Trainer
		if !DecodeMeta(meta, TrainerKey, &back) || back != r {
			t.Fatalf("%+v: decoded %+v, want %+v", s, back, r)
		}
		got, err := back.Settings()
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		// The settings of the record give the same record: the defaults
		// filled in are those the trainer uses.
		if again := TrainerOf(got); again != r {
			t.Errorf("%+v: record of the recorded settings %+v, want %+v", s, again, r)
		}
	}
	if r := TrainerOf(nn.TrainSettings{}); r.Epochs != nn.DefaultEpochs || r.LearningRate != nn.DefaultAdamRate || r.Batch != nn.DefaultBatchSize {
		t.Errorf("defaults not filled in: %+v", r)
	}
	if _, err := (Trainer{Optimizer: "lm"}).Settings(); err == nil {
		t.Error("an optimizer nn does not know gave no error")
	}
	if DecodeMeta(map[string]any{}, TrainerKey, &Trainer{}) {
		t.Error("DecodeMeta of a missing key reported success")
	}
}

func TestMetaValue(t *testing.T) {
	got := MetaValue(map[string]any{"a": 1.5, "b": []int{1}})
	want := map[string]any{"a": json.Number("1.5"), "b": []any{json.Number("1")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MetaValue = %#v, want %#v", got, want)
	}
}

func TestDescribe(t *testing.T) {
	n, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		t.Fatal(err)
	}
	info := Describe("m.json", n)
	if info.Format != Format || info.Arch != "2-3-1" || info.Loss != "bce" || info.Params != 13 || info.Live != 13 || info.Sparsity != 0 {
		t.Errorf("Describe = %+v", info)
	}
	if len(info.Layers) != 2 || info.Layers[0] != (LayerInfo{In: 2, Out: 3, Activation: "tanh", Weights: 6, Biases: 3, LiveWeights: 6, LiveBiases: 3}) {
		t.Errorf("layers %+v", info.Layers)
	}
	n.Prune(0)
	if p := Describe("m.json", n); p.Live != 12 || p.Pruned != 1 || p.Layers[0].LiveWeights != 5 || p.Sparsity != 1.0/13 {
		t.Errorf("Describe of a pruned network = %+v", p)
	}
	for path, want := range map[string]string{"m.json": Format, "m.npz": NPZFormat, "m.pt": "PyTorch state_dict (.pt)"} {
		if got := FormatOf(path); got != want {
			t.Errorf("FormatOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestSetMasksSimplifyLayout(t *testing.T) {
	n, err := nn.New([]int{2, 3, 1}, []nn.Activation{nn.Tanh, nn.Sigmoid}, nn.BCE)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetMasks(n, "sparse"); err == nil {
		t.Error("an unknown mask form gave no error")
	}
	if err := SetMasks(n, ""); err != nil || n.Meta != nil {
		t.Errorf("an empty form changed the network: %v, %v", err, n.Meta)
	}
	if err := SetMasks(n, MasksPlain); err != nil {
		t.Fatal(err)
	}
	if lay, err := LayoutOf(n); err != nil || lay.Masks != MasksPlain {
		t.Fatalf("layout %+v, %v", lay, err)
	}
	// A layout that differs from the default stays; the default one goes.
	if err := SimplifyLayout(n); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Meta[MetaKey]; !ok {
		t.Error("SimplifyLayout dropped a layout with a mask form")
	}
	if err := SetLayout(n, DefaultLayout(n)); err != nil {
		t.Fatal(err)
	}
	if err := SimplifyLayout(n); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Meta[MetaKey]; ok {
		t.Error("SimplifyLayout kept the default layout")
	}
}
