package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/secondorder/prune/nn"
)

// LayerwiseRun prunes a copy of net with Layerwise on the training inputs of
// data and, when retrain is not nil, retrains it once with the mask fixed
// (nn.Train on the training and validation data). Its Result has one round,
// one Step per parameter removed (in index order, no saliency or
// prediction), and Stopped StoppedCanceled when ctx is done. A retraining
// that fails is undone, reported as an IssueDiverged and returned as the
// error with the pruned network (StoppedFailed). ls.OnState and ls.Resume
// checkpoint and resume the run (see LayerwiseSettings).
func LayerwiseRun(ctx context.Context, net *nn.Network, data nn.Splits, ls *LayerwiseSettings, retrain *nn.TrainSettings) (*Result, LayerwiseReport, error) {
	var none LayerwiseReport
	if err := ls.Validate(net.NumLayers()); err != nil {
		return nil, none, err
	}
	var resume *State
	var onState func(*State, LayerwiseReport) error
	if ls != nil {
		resume, onState = ls.Resume, ls.OnState
	}
	if resume != nil && resume.Stopped == "" && retrain == nil {
		return nil, none, fieldErrorf("LayerwiseSettings", "Resume", "holds a run stopped before its retraining, and the retraining settings are nil")
	}
	if err := retrain.Validate(); err != nil {
		return nil, none, fmt.Errorf("prune: retraining: %w", err)
	}
	var s Settings
	if err := checkSplits(net, data, &s); err != nil {
		return nil, none, err
	}
	s.Retrain = retrain
	r := &runner{cfg: s, data: data, net: net, hasValid: data.Valid.X != nil, hasTest: data.Test.X != nil}
	var res *Result
	var rep LayerwiseReport
	var rd Round
	if resume != nil {
		if err := r.resumeLayerwise(resume, net); err != nil {
			return nil, none, err
		}
		res, rd = r.res, r.res.Rounds[0]
		res.Rounds = res.Rounds[:0]
		if res.Stopped != "" {
			res.Rounds, res.Final = append(res.Rounds, rd), resume.Current
			return res, none, nil
		}
	} else {
		var err error
		if res, rep, rd, err = r.layerwisePrune(ctx, net, ls); err != nil {
			return res, rep, err
		}
	}
	pruned := res.Net
	r.net = pruned
	hand := func() error {
		if onState == nil {
			return nil
		}
		st, err := r.state()
		if err == nil {
			st.Current, st.RoundList, st.Stopped = rd.Retrained, append(slices.Clone(res.Rounds), rd), res.Stopped
			err = onState(st, rep)
		}
		if err != nil {
			return fmt.Errorf("prune: layer-wise state: %w", err)
		}
		return nil
	}
	res.Stopped = StoppedTarget
	if retrain != nil {
		if resume == nil {
			res.Stopped = ""
			err := hand()
			res.Stopped = StoppedTarget
			if err != nil {
				res.Rounds, res.Final, res.Stopped = append(res.Rounds, rd), rd.Pruned, StoppedFailed
				return res, rep, err
			}
		}
		prev := pruned.ParamsTo(nil)
		tr, err := nn.Train(ctx, pruned, data.Train, data.Valid, retrain)
		if err == nil {
			err = pruned.CheckFinite()
		}
		if b, a := maxAbs(prev), maxAbs(pruned.RawParams()); err == nil && a > blowUp*math.Max(1, b) {
			err = fmt.Errorf("it blew the weights up (largest |θ| from %.3g to %.3g): %w", b, a, nn.ErrDiverged)
		}
		if err != nil {
			pruned.SetParams(prev)
			res.Rounds = append(res.Rounds, rd)
			res.Final = rd.Pruned
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				res.Stopped = StoppedCanceled
				return res, rep, err
			}
			res.Stopped = StoppedFailed
			res.Health.Issues = append(res.Health.Issues, Issue{Round: 1, Kind: IssueDiverged, Index: -1, Lambda: math.NaN(),
				Message: fmt.Sprintf("retraining after layer-wise pruning failed and was undone: %v; lower the learning rate (--lr)", err)})
			return res, rep, fmt.Errorf("prune: retraining: %w", err)
		}
		rd.Retrain = &tr
		rd.Retrained = r.eval()
	}
	err := hand()
	res.Rounds = append(res.Rounds, rd)
	res.Final = rd.Retrained
	return res, rep, err
}

// layerwisePrune evaluates net, prunes a copy of it with Layerwise and
// returns the result so far (no round yet) and the round of the pruning.
func (r *runner) layerwisePrune(ctx context.Context, net *nn.Network, ls *LayerwiseSettings) (*Result, LayerwiseReport, Round, error) {
	start, err := evalContext(ctx, r)
	if err != nil {
		return nil, LayerwiseReport{}, Round{}, err
	}
	res := &Result{Start: start}
	pruned, rep, err := Layerwise(ctx, net, r.data.Train.X, ls)
	if err != nil {
		return nil, rep, Round{}, err
	}
	if err := pruned.CheckFinite(); err != nil {
		return nil, rep, Round{}, fmt.Errorf("prune: layer-wise pruning: %w", err)
	}
	res.Net = pruned
	live := pruned.NumLive()
	for q := 0; q < pruned.NumParams(); q++ {
		if net.IsLive(q) && !pruned.IsLive(q) {
			res.History = append(res.History, Step{
				Step: len(res.History) + 1, Round: 1, Index: q, Name: pruned.ParamAt(q).String(),
				Saliency: math.NaN(), Predicted: math.NaN(), Real: math.NaN(), Loss: math.NaN(), Error: math.NaN(), Live: live,
			})
		}
	}
	r.net, r.res = pruned, res
	r.round, r.step = 1, len(res.History)
	prunedEval, err := evalContext(ctx, r)
	if err != nil {
		return nil, rep, Round{}, err
	}
	rd := Round{Round: 1, Removed: len(res.History), Live: live, Predicted: math.NaN(), Damping: math.NaN(), Pruned: prunedEval}
	rd.Real = rd.Pruned.Train.Loss - res.Start.Train.Loss
	rd.Retrained = rd.Pruned
	return res, rep, rd, nil
}

// resumeLayerwise sets the runner to st, a State of LayerwiseRun.
func (r *runner) resumeLayerwise(st *State, net *nn.Network) error {
	r.W = net.NumParams()
	return r.resume(st)
}

// evalContext is r.eval that checks ctx between blocks of samples and
// returns ctx.Err() when ctx is done first.
func evalContext(ctx context.Context, r *runner) (Eval, error) {
	var e Eval
	var err error
	if e.Train, err = r.net.EvaluateContext(ctx, r.data.Train.X, r.data.Train.Y); err != nil {
		return Eval{}, err
	}
	if r.hasValid {
		if e.Valid, err = r.net.EvaluateContext(ctx, r.data.Valid.X, r.data.Valid.Y); err != nil {
			return Eval{}, err
		}
	}
	if r.hasTest {
		if e.Test, err = r.net.EvaluateContext(ctx, r.data.Test.X, r.data.Test.Y); err != nil {
			return Eval{}, err
		}
	}
	return e, nil
}
