package lm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/secondorder/prune/nn"
)

// Train trains n on the training data by Levenberg–Marquardt steps on
//
//	J(θ) = E(θ)/N + ½ λ ‖θ‖²,
//
// the objective of nn.Train, over the live parameters, and returns a
// summary of the run in nn's terms: an epoch is one accepted step. Pruned
// parameters stay exactly zero. Train stops after Epochs steps, when the
// training mean loss is below Tolerance, when the validation loss has not
// improved for Patience steps (the best parameters are then restored, as in
// nn.Train), or when no step lowers J (Stopped nn.StoppedConverged). A nil
// valid.X means there is no validation data. When ctx is done Train returns
// the partial result, Stopped nn.StoppedCanceled and ctx.Err(); n holds the
// last accepted parameters.
func Train(ctx context.Context, n *nn.Network, train, valid nn.Data, s *Settings) (nn.TrainResult, error) {
	if err := s.Validate(); err != nil {
		return nn.TrainResult{}, fmt.Errorf("training settings: %w", err)
	}
	if train.X == nil || train.Y == nil {
		return nn.TrainResult{}, errors.New("training data: no inputs or targets")
	}
	if err := n.Check(train.X, train.Y); err != nil {
		return nn.TrainResult{}, fmt.Errorf("training data: %w", err)
	}
	hasValid := valid.X != nil
	if hasValid {
		if err := n.Check(valid.X, valid.Y); err != nil {
			return nn.TrainResult{}, fmt.Errorf("validation data: %w", err)
		}
	}
	cfg := s.withDefaults()
	if cfg.Patience > 0 && !hasValid {
		return nn.TrainResult{}, errors.New("training settings: early stopping (patience) needs validation data")
	}
	n.ApplyMask()
	if err := n.CheckFinite(); err != nil {
		return nn.TrainResult{}, fmt.Errorf("initial parameters: %w", err)
	}
	N, _ := train.X.Dims()
	var decay []float64
	if cfg.WeightDecay > 0 {
		decay = make([]float64, n.NumParams())
		for q := range decay {
			decay[q] = cfg.WeightDecay
		}
	}
	o := &Objective{Net: n, X: train.X, Y: train.Y, Scale: 1 / float64(N), Decay: decay}

	out := nn.TrainResult{}
	bestLoss, bestEpoch := math.Inf(1), 0
	var best []float64
	if hasValid {
		if v := n.Evaluate(valid.X, valid.Y).MeanLoss; v < bestLoss {
			bestLoss = v
		}
		if cfg.Patience > 0 {
			best = n.ParamsTo(nil)
		}
	}
	r := newRun(o, &cfg)
	after := func(res *Result) (bool, error) {
		e := res.Steps
		r.setParams(r.x)
		tm := n.Evaluate(train.X, train.Y)
		out.Epochs = e
		p := nn.Progress{
			Epoch: e, Epochs: cfg.Epochs,
			TrainLoss: tm.MeanLoss, TrainAccuracy: tm.Accuracy,
			ValidLoss: math.NaN(), ValidAccuracy: math.NaN(),
		}
		if hasValid {
			vm := n.Evaluate(valid.X, valid.Y)
			p.ValidLoss, p.ValidAccuracy = vm.MeanLoss, vm.Accuracy
			if vm.MeanLoss < bestLoss {
				p.Best = true
				bestLoss, bestEpoch = vm.MeanLoss, e
				if best != nil {
					n.ParamsTo(best)
				}
			}
		}
		if cfg.Recorder != nil {
			cfg.Recorder.Record(p)
		}
		switch {
		case cfg.Tolerance > 0 && tm.MeanLoss < cfg.Tolerance:
			out.Stopped = nn.StoppedTolerance
			return true, nil
		case cfg.Patience > 0 && e-bestEpoch >= cfg.Patience:
			out.Stopped = nn.StoppedEarly
			return true, nil
		}
		return false, nil
	}
	res, err := r.minimize(ctx, after)
	out.Epochs = res.Steps
	if out.Stopped == "" {
		out.Stopped = res.Stopped
	}
	if errors.Is(err, ErrNotFinite) {
		out.Stopped = nn.StoppedDiverged
		err = fmt.Errorf("%w: %v", nn.ErrDiverged, err)
	}
	if best != nil {
		n.SetParams(best)
	}
	if !hasValid {
		bestEpoch = out.Epochs
	}
	out.BestEpoch = bestEpoch
	out.Train = n.Evaluate(train.X, train.Y)
	if hasValid {
		out.Valid = n.Evaluate(valid.X, valid.Y)
	}
	return out, err
}
