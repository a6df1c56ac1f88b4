package prune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/secondorder/prune/prune"
)

// FuzzStateJSON decodes crafted states as a resumed run does. Nothing may
// panic, and a state that decodes is written back to the same bytes when
// decoded and written again.
func FuzzStateJSON(f *testing.F) {
	net, d := regressionMLP(f, 16)
	s := &prune.Settings{PerRound: 3, TargetLive: 8}
	s.OnState = func(st *prune.State) error {
		b, err := json.Marshal(st)
		if err == nil {
			f.Add(b)
		}
		return err
	}
	if _, err := prune.Run(context.Background(), net, d, s); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"Format":"prune-state/1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st prune.State
		if err := json.Unmarshal(data, &st); err != nil {
			return
		}
		again, err := json.Marshal(&st)
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		var st2 prune.State
		if err := json.Unmarshal(again, &st2); err != nil {
			t.Fatalf("an encoded state does not decode: %v\n%s", err, again)
		}
		third, err := json.Marshal(&st2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("the state changes when written again: %v", err)
		}
	})
}

// LayerwiseRun given a cancelled context returns its error and no result,
// before any pruning.
func TestLayerwiseRunCanceledBeforePruning(t *testing.T) {
	net, d := regressionMLP(t, 18)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, _, err := prune.LayerwiseRun(ctx, net, d, &prune.LayerwiseSettings{Sparsity: 0.5}, nil)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("cancelled: result %v, error %v", res, err)
	}
}
