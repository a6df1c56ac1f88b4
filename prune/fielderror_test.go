package prune

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// Every invalid setting is reported as an error naming its field, in its
// message and by SettingsField.
func TestValidateNamesField(t *testing.T) {
	for _, c := range []struct {
		v     interface{ Validate() error }
		field string
	}{
		{&Settings{PerRound: -1}, "PerRound"},
		{&Settings{Fraction: 1.5}, "Fraction"},
		{&Settings{Sparsity: 1}, "Sparsity"},
		{&Settings{ErrorRise: math.NaN()}, "ErrorRise"},
		{&Settings{Budget: 1, Method: Magnitude{}}, "Budget"},
		{&Settings{Joint: true, Method: OBS{}}, "Joint"},
		{&Settings{Method: OBS{Damping: -2}}, "Damping"},
		{&Settings{Retrain: &nn.TrainSettings{BatchSize: -1}}, "BatchSize"},
		{OBS{Alpha: math.Inf(1)}, "Alpha"},
		{OBD{Probes: -1}, "Probes"},
		{WoodburyOBS{Samples: -1}, "Samples"},
		{BlockOBS{Curvature: Exact, Block: -1}, "Block"},
		{layerwise{&LayerwiseSettings{Damping: -1}}, "Damping"},
		{layerwise{&LayerwiseSettings{LayerSparsity: []float64{0.5}}}, "LayerSparsity"},
	} {
		err := c.v.Validate()
		var fe interface{ SettingsField() string }
		if !errors.As(err, &fe) || fe.SettingsField() != c.field || !strings.Contains(err.Error(), "."+c.field) {
			t.Errorf("%+v: error %v, want one naming %s", c.v, err, c.field)
		}
	}
}

type layerwise struct{ s *LayerwiseSettings }

func (l layerwise) Validate() error { return l.s.Validate(2) }

// OBS.MemoryBytes is the bound its round checks: one byte less is refused
// before anything is allocated, the bound itself is enough.
func TestOBSMemoryBytes(t *testing.T) {
	c := obsCases(t)[0]
	for _, o := range []OBS{{Curvature: Exact}, {Curvature: GaussNewton}, {Curvature: Recursive}} {
		_, _, err := o.Inverse(context.Background(), c.p, &Env{MaxBytes: o.MemoryBytes(c.p) - 1})
		var me *hessian.MemoryError
		if !errors.As(err, &me) || me.Bytes != o.MemoryBytes(c.p) {
			t.Errorf("%v: limit below MemoryBytes %d: error %v", o.Curvature, o.MemoryBytes(c.p), err)
		}
		if _, _, err := o.Inverse(context.Background(), c.p, &Env{MaxBytes: o.MemoryBytes(c.p)}); err != nil {
			t.Errorf("%v: limit at MemoryBytes: %v", o.Curvature, err)
		}
	}
}
