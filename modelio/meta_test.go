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
