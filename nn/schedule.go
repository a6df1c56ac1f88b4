package nn

import (
	"fmt"
	"math"
)

// Schedule is a learning-rate schedule of the minibatch trainers.
type Schedule int

// The schedules. With base rate η₀, the rate used during epoch e = 1, …, E is
//
//	ConstantLR: η_e = η₀
//	StepLR:     η_e = η₀ γ^⌊(e−1)/k⌋
//	CosineLR:   η_e = η₀ · ½(1 + cos(π (e−1)/E))
//
// where γ is TrainSettings.StepGamma and k is TrainSettings.StepEvery.
// The cosine schedule starts at η₀ and would reach zero after the last epoch.
const (
	ConstantLR Schedule = iota
	StepLR
	CosineLR
)

var scheduleNames = [...]string{ConstantLR: "constant", StepLR: "step", CosineLR: "cosine"}

// String returns the name used on the command line: constant, step or cosine.
func (s Schedule) String() string {
	if s < 0 || int(s) >= len(scheduleNames) {
		return fmt.Sprintf("Schedule(%d)", int(s))
	}
	return scheduleNames[s]
}

// ParseSchedule returns the schedule with the given name: constant, step or
// cosine.
func ParseSchedule(s string) (Schedule, error) {
	for i, name := range scheduleNames {
		if name == s {
			return Schedule(i), nil
		}
	}
	return 0, fmt.Errorf("unknown learning-rate schedule %q (want constant, step or cosine)", s)
}

// rate returns the learning rate of epoch e (1-based) of epochs for the base
// rate base, the step period every and the step factor gamma.
func (s Schedule) rate(base float64, e, epochs, every int, gamma float64) float64 {
	switch s {
	case ConstantLR:
		return base
	case StepLR:
		return base * math.Pow(gamma, float64((e-1)/every))
	case CosineLR:
		return base * 0.5 * (1 + math.Cos(math.Pi*float64(e-1)/float64(epochs)))
	}
	panic("nn: unknown schedule " + s.String())
}
