package modelio

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"

	"github.com/secondorder/prune/nn"
)

// TrainerKey is the key of a model's metadata under which the trainer's
// settings are recorded (see Trainer).
const TrainerKey = "trainer"

// Trainer is the record of a trainer's settings in a model's metadata,
// with the defaults of nn.TrainSettings filled in for the settings that
// were not given and the settings the optimizer ignores left out.
type Trainer struct {
	Optimizer    string  `json:"optimizer"`
	Epochs       int     `json:"epochs"`
	Batch        int     `json:"batch,omitempty"`
	LearningRate float64 `json:"lr,omitempty"`
	Momentum     float64 `json:"momentum,omitempty"`
	Beta1        float64 `json:"beta1,omitempty"`
	Beta2        float64 `json:"beta2,omitempty"`
	Epsilon      float64 `json:"epsilon,omitempty"`
	WeightDecay  float64 `json:"weight_decay"`
	Schedule     string  `json:"schedule,omitempty"`
	StepEvery    int     `json:"step_every,omitempty"`
	StepGamma    float64 `json:"step_gamma,omitempty"`
	Patience     int     `json:"patience"`
	Tolerance    float64 `json:"tolerance"`
}

// TrainerOf returns the record of the settings s.
func TrainerOf(s nn.TrainSettings) Trainer {
	r := Trainer{Optimizer: s.Optimizer.String(), Epochs: s.Epochs, WeightDecay: s.WeightDecay, Patience: s.Patience, Tolerance: s.Tolerance}
	if r.Epochs == 0 {
		r.Epochs = nn.DefaultEpochs
		if s.Optimizer == nn.LBFGS {
			r.Epochs = nn.DefaultLBFGSEpochs
		}
	}
	if s.Optimizer == nn.LBFGS {
		return r
	}
	r.Batch = cmp.Or(s.BatchSize, nn.DefaultBatchSize)
	r.Schedule = s.Schedule.String()
	if s.Schedule == nn.StepLR {
		r.StepEvery = cmp.Or(s.StepEvery, max(1, r.Epochs/4))
		r.StepGamma = cmp.Or(s.StepGamma, nn.DefaultStepGamma)
	}
	if s.Optimizer == nn.SGD {
		r.LearningRate = cmp.Or(s.LearningRate, nn.DefaultSGDRate)
		switch s.Momentum {
		case 0:
			r.Momentum = nn.DefaultMomentum
		case nn.NoMomentum:
			r.Momentum = 0
		default:
			r.Momentum = s.Momentum
		}
		return r
	}
	r.LearningRate = cmp.Or(s.LearningRate, nn.DefaultAdamRate)
	r.Beta1 = cmp.Or(s.Beta1, nn.DefaultBeta1)
	r.Beta2 = cmp.Or(s.Beta2, nn.DefaultBeta2)
	r.Epsilon = cmp.Or(s.Epsilon, nn.DefaultEpsilon)
	return r
}

// Settings returns the trainer settings of the record, or an error for an
// optimizer or schedule nn does not know and for invalid settings.
func (r Trainer) Settings() (nn.TrainSettings, error) {
	var s nn.TrainSettings
	opt, err := nn.ParseOptimizer(r.Optimizer)
	if err != nil {
		return s, err
	}
	s.Optimizer = opt
	if r.Schedule != "" {
		if s.Schedule, err = nn.ParseSchedule(r.Schedule); err != nil {
			return s, err
		}
	}
	s.Epochs, s.BatchSize, s.LearningRate = r.Epochs, r.Batch, r.LearningRate
	s.Momentum = r.Momentum
	if opt == nn.SGD && r.Momentum == 0 {
		s.Momentum = nn.NoMomentum
	}
	s.Beta1, s.Beta2, s.Epsilon = r.Beta1, r.Beta2, r.Epsilon
	s.WeightDecay, s.StepEvery, s.StepGamma = r.WeightDecay, r.StepEvery, r.StepGamma
	s.Patience, s.Tolerance = r.Patience, r.Tolerance
	return s, s.Validate()
}

// DecodeMeta decodes the value of meta under key into the value dst
// points to, and reports whether there was one and it decoded.
func DecodeMeta(meta map[string]any, key string, dst any) bool {
	v, ok := meta[key]
	if !ok {
		return false
	}
	b, err := json.Marshal(v)
	return err == nil && json.Unmarshal(b, dst) == nil
}

// MetaValue returns v as the plain JSON values (maps, slices, strings,
// json.Numbers, bools) that reading a model file gives for its metadata,
// so that metadata are the same before and after a round trip. It panics
// on a value that does not encode as JSON.
func MetaValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("modelio: metadata value %T: %v", v, err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		panic(fmt.Sprintf("modelio: metadata value %T: %v", v, err))
	}
	return out
}
