package prune_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// describeResult returns every field of res as text: the network's
// parameters and mask bit for bit, the history, the rounds with their
// retraining, the metrics, the stop and the issues.
func describeResult(res *prune.Result) string {
	var b strings.Builder
	for q, v := range res.Net.ParamsTo(nil) {
		fmt.Fprintf(&b, "%d:%x:%v ", q, math.Float64bits(v), res.Net.IsLive(q))
	}
	fmt.Fprintf(&b, "\nstart %+v\nfinal %+v\nhistory %+v\nstopped %q\nhealth %+v\n", res.Start, res.Final, res.History, res.Stopped, res.Health)
	for _, rd := range res.Rounds {
		tr := rd.Retrain
		rd.Retrain = nil
		fmt.Fprintf(&b, "round %+v\n", rd)
		if tr != nil {
			fmt.Fprintf(&b, "retrain %+v\n", *tr)
		}
	}
	return b.String()
}

// A layer-wise run with retraining stopped after the pruning, by an error
// of OnState or by ctx, and resumed from the JSON of its State gives the
// Result of the uninterrupted run, whatever GOMAXPROCS each part runs with.
func TestLayerwiseRunResume(t *testing.T) {
	net, d := regressionMLP(t, 19)
	retrain := func() *nn.TrainSettings {
		return &nn.TrainSettings{Optimizer: nn.SGD, Epochs: 4, BatchSize: 8, LearningRate: 0.01, Src: rand.NewPCG(21, 22)}
	}
	settings := func() *prune.LayerwiseSettings { return &prune.LayerwiseSettings{Sparsity: 0.5} }
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))

	var want, wantState string
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		ls := settings()
		var states []string
		ls.OnState = func(st *prune.State, rep prune.LayerwiseReport) error {
			if len(rep.Layers) != net.NumLayers() {
				t.Errorf("GOMAXPROCS %d: state %d with a report of %d layers", procs, len(states)+1, len(rep.Layers))
			}
			b, err := json.Marshal(st)
			states = append(states, string(b))
			return err
		}
		res, _, err := prune.LayerwiseRun(context.Background(), net, d, ls, retrain())
		if err != nil {
			t.Fatalf("GOMAXPROCS %d: %v", procs, err)
		}
		if len(states) != 2 || res.Stopped != prune.StoppedTarget || len(res.Rounds) != 1 || res.Rounds[0].Retrain == nil {
			t.Fatalf("GOMAXPROCS %d: %d states, stopped %q, rounds %+v", procs, len(states), res.Stopped, res.Rounds)
		}
		if want == "" {
			want, wantState = describeResult(res), states[1]
		} else if got := describeResult(res); got != want {
			t.Errorf("GOMAXPROCS %d: the uninterrupted run differs from GOMAXPROCS 1:\n%s\nwant\n%s", procs, got, want)
		}
	}

	stop := errors.New("stop")
	for _, how := range []string{"hook", "ctx"} {
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			ctx, cancel := context.WithCancel(context.Background())
			var saved []byte
			ls := settings()
			ls.OnState = func(st *prune.State, _ prune.LayerwiseReport) error {
				if saved != nil {
					t.Errorf("%s, GOMAXPROCS %d: a second state after the interruption", how, procs)
				}
				var err error
				if saved, err = json.Marshal(st); err != nil {
					return err
				}
				if how == "ctx" {
					cancel()
					return nil
				}
				return stop
			}
			res, _, err := prune.LayerwiseRun(ctx, net, d, ls, retrain())
			cancel()
			wantErr, wantStop := stop, prune.StoppedFailed
			if how == "ctx" {
				wantErr, wantStop = context.Canceled, prune.StoppedCanceled
			}
			if !errors.Is(err, wantErr) || saved == nil || res == nil || res.Stopped != wantStop || len(res.Rounds) != 1 || res.Rounds[0].Retrain != nil {
				t.Fatalf("%s, GOMAXPROCS %d: interrupted run: error %v, result %+v", how, procs, err, res)
			}

			// Resumed from the JSON of the state with the other GOMAXPROCS.
			runtime.GOMAXPROCS(3 - procs)
			var st prune.State
			if err := json.Unmarshal(saved, &st); err != nil {
				t.Fatal(err)
			}
			ls = settings()
			ls.Resume = &st
			var last string
			ls.OnState = func(st *prune.State, rep prune.LayerwiseReport) error {
				b, err := json.Marshal(st)
				last = string(b)
				return err
			}
			res, rep, err := prune.LayerwiseRun(context.Background(), net, d, ls, retrain())
			if err != nil {
				t.Fatalf("%s, GOMAXPROCS %d: resumed: %v", how, procs, err)
			}
			if len(rep.Layers) != 0 {
				t.Errorf("%s, GOMAXPROCS %d: the resumed run pruned again (%d layers)", how, procs, len(rep.Layers))
			}
			if got := describeResult(res); got != want {
				t.Errorf("%s, GOMAXPROCS %d: the resumed run ends elsewhere:\n%s\nwant\n%s", how, procs, got, want)
			}
			if last != wantState {
				t.Errorf("%s, GOMAXPROCS %d: the resumed run's last state differs from the uninterrupted run's", how, procs)
			}
		}
	}
}

// LayerwiseSettings.Resume that cannot be continued is an error naming the
// field: a state of another run, and a state stopped before its retraining
// given no retraining settings.
func TestLayerwiseResumeNamesField(t *testing.T) {
	net, d := regressionMLP(t, 19)
	ls := &prune.LayerwiseSettings{Sparsity: 0.5}
	var saved *prune.State
	ls.OnState = func(st *prune.State, _ prune.LayerwiseReport) error {
		if saved == nil {
			saved = st
		}
		return nil
	}
	retrain := &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 3}
	if _, _, err := prune.LayerwiseRun(context.Background(), net, d, ls, retrain); err != nil || saved == nil {
		t.Fatalf("error %v, state %v", err, saved)
	}
	// A state of Run after two rounds.
	var runState *prune.State
	if _, err := prune.Run(context.Background(), net, d, &prune.Settings{PerRound: 2, MaxRounds: 2, OnState: func(st *prune.State) error {
		runState = st
		return nil
	}}); err != nil || runState == nil || runState.Rounds != 2 {
		t.Fatalf("Run: error %v, state %+v", err, runState)
	}
	other := regressionMLPWith(t, 4)
	for _, c := range []struct {
		name    string
		net     *nn.Network
		resume  *prune.State
		retrain *nn.TrainSettings
		field   bool
	}{
		{"no retraining", net, saved, nil, true},
		{"a state of Run", net, runState, retrain, true},
		{"a state without a network", net, &prune.State{Rounds: 1, RoundList: make([]prune.Round, 1)}, retrain, true},
		{"another network", other, saved, retrain, false},
	} {
		s := &prune.LayerwiseSettings{Sparsity: 0.5, Resume: c.resume}
		res, _, err := prune.LayerwiseRun(context.Background(), c.net, d, s, c.retrain)
		var fe interface{ SettingsField() string }
		if !c.field {
			if res != nil || err == nil || !strings.Contains(err.Error(), "parameters") {
				t.Errorf("%s: result %v, error %v", c.name, res, err)
			}
			continue
		}
		if res != nil || !errors.As(err, &fe) || fe.SettingsField() != "Resume" || !strings.Contains(err.Error(), "LayerwiseSettings.Resume") {
			t.Errorf("%s: result %v, error %v; want one naming LayerwiseSettings.Resume", c.name, res, err)
		}
	}
	// Validate sees the state of another run without the data.
	if err := (&prune.LayerwiseSettings{Resume: runState}).Validate(net.NumLayers()); err == nil {
		t.Error("Validate took a state of Run")
	}
}
