package main

import (
	"context"

	"github.com/secondorder/prune/lm"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

// optimizerLM is the value of --optimizer that selects Levenberg–Marquardt
// training (package lm) instead of one of nn's optimizers.
const optimizerLM = "lm"

// trainWith trains n with Levenberg–Marquardt when useLM is set and with
// nn.Train otherwise. Levenberg–Marquardt uses the epochs (its steps), the
// weight decay, the tolerance, the patience and the recorder of s.
func trainWith(ctx context.Context, useLM bool, n *nn.Network, train, valid nn.Data, s *nn.TrainSettings) (nn.TrainResult, error) {
	if !useLM {
		return nn.Train(ctx, n, train, valid, s)
	}
	return lm.Train(ctx, n, train, valid, &lm.Settings{
		Epochs: s.Epochs, WeightDecay: s.WeightDecay, Tolerance: s.Tolerance, Patience: s.Patience, Recorder: s.Recorder,
	})
}

// trainerRecordFor is modelio.TrainerOf for nn's optimizers and the
// Levenberg–Marquardt record otherwise.
func trainerRecordFor(useLM bool, s nn.TrainSettings) modelio.Trainer {
	if !useLM {
		return modelio.TrainerOf(s)
	}
	epochs := s.Epochs
	if epochs == 0 {
		epochs = lm.DefaultEpochs
	}
	return modelio.Trainer{Optimizer: optimizerLM, Epochs: epochs, WeightDecay: s.WeightDecay, Patience: s.Patience, Tolerance: s.Tolerance}
}
