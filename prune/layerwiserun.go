package prune

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/secondorder/prune/nn"
)

// LayerwiseRun prunes a copy of net in one shot with Layerwise on the
// training inputs of data and, when retrain is not nil, retrains it once
// with the mask fixed (nn.Train on the training and validation data). It
// returns a Result as Run's, with one round and one Step per parameter
// removed (in index order, saliency and prediction NaN), and the layer-wise
// report. A retraining that fails is undone, reported as an IssueDiverged
// and returned as the error with the pruned network (Stopped StoppedFailed);
// when ctx is done, Stopped is StoppedCanceled.
func LayerwiseRun(ctx context.Context, net *nn.Network, data nn.Splits, ls *LayerwiseSettings, retrain *nn.TrainSettings) (*Result, LayerwiseReport, error) {
	var none LayerwiseReport
	if err := retrain.Validate(); err != nil {
		return nil, none, fmt.Errorf("prune: retraining: %w", err)
	}
	var s Settings
	if err := checkSplits(net, data, &s); err != nil {
		return nil, none, err
	}
	r := &runner{data: data, net: net, hasValid: data.Valid.X != nil, hasTest: data.Test.X != nil}
	start, err := evalContext(ctx, r)
	if err != nil {
		return nil, none, err
	}
	res := &Result{Start: start}
	train := data.Train
	pruned, rep, err := Layerwise(ctx, net, train.X, ls)
	if err != nil {
		return nil, rep, err
	}
	if err := pruned.CheckFinite(); err != nil {
		return nil, rep, fmt.Errorf("prune: layer-wise pruning: %w", err)
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
	r.net = pruned
	prunedEval, err := evalContext(ctx, r)
	if err != nil {
		return nil, rep, err
	}
	rd := Round{Round: 1, Removed: len(res.History), Live: live, Predicted: math.NaN(), Damping: math.NaN(), Pruned: prunedEval}
	rd.Real = rd.Pruned.Train.Loss - res.Start.Train.Loss
	rd.Retrained = rd.Pruned
	res.Stopped = StoppedTarget
	if retrain != nil {
		prev := pruned.ParamsTo(nil)
		tr, err := nn.Train(ctx, pruned, train, data.Valid, retrain)
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
	res.Rounds = append(res.Rounds, rd)
	res.Final = rd.Retrained
	return res, rep, nil
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
