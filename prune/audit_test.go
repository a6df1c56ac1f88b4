package prune_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// auditCase returns a 4-6-5-k network of the given hidden activation and
// loss with random data of N rows.
func auditCase(t *testing.T, hidden nn.Activation, loss nn.Loss, N int, seed uint64) (*nn.Network, nn.Data) {
	t.Helper()
	out, k := nn.Linear, 3
	switch loss {
	case nn.BCE:
		out = nn.Sigmoid
	case nn.CE:
		out = nn.Softmax
	}
	net, err := nn.New([]int{4, 6, 5, k}, []nn.Activation{hidden, hidden, out}, loss)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(seed, seed+1))
	rng := rand.New(rand.NewPCG(seed, 77))
	for l := 0; l < net.NumLayers(); l++ {
		for j := range net.Bias(l) {
			net.Bias(l)[j] = 0.3 * rng.NormFloat64()
		}
	}
	X := mat.NewDense(N, 4, nil)
	Y := mat.NewDense(N, loss.TargetCols(k), nil)
	for n := 0; n < N; n++ {
		for j := 0; j < 4; j++ {
			X.Set(n, j, rng.NormFloat64())
		}
		switch loss {
		case nn.CE:
			Y.Set(n, 0, float64(rng.IntN(k)))
		case nn.BCE:
			for j := 0; j < k; j++ {
				Y.Set(n, j, float64(rng.IntN(2)))
			}
		default:
			for j := 0; j < k; j++ {
				Y.Set(n, j, rng.NormFloat64())
			}
		}
	}
	return net, nn.Data{X: X, Y: Y}
}

// The incremental audit of magnitude and OBD removals gives the loss
// differences of full forward passes, for every activation and loss.
func TestAuditMatchesForwardPasses(t *testing.T) {
	for _, hidden := range []nn.Activation{nn.Tanh, nn.ReLU, nn.Sigmoid, nn.Linear} {
		for _, loss := range []nn.Loss{nn.MSE, nn.BCE, nn.CE} {
			for _, method := range []prune.Saliency{prune.Magnitude{}, prune.OBD{Curvature: prune.GaussNewton}} {
				name := fmt.Sprintf("%v/%v/%T", hidden, loss, method)
				net, d := auditCase(t, hidden, loss, 300, 3)
				res, err := prune.Run(context.Background(), net, nn.Splits{Train: d}, &prune.Settings{
					Method: method, PerRound: 20, Sparsity: 0.6,
					AuditRows: prune.AuditAll, AuditRemovals: prune.AuditAll,
				})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				replay := net.Clone()
				E := replay.Objective(d.X, d.Y)
				for _, st := range res.History {
					replay.Prune(st.Index)
					after := replay.Objective(d.X, d.Y)
					if math.Abs(st.Real-(after-E)) > 1e-9*(1+math.Abs(E)) || math.Abs(st.Loss-after) > 1e-9*(1+math.Abs(E)) {
						t.Errorf("%s: step %d: real ΔE %.15g loss %.15g, forward passes %.15g and %.15g", name, st.Step, st.Real, st.Loss, after-E, after)
						break
					}
					E = after
				}
			}
		}
	}
}

// When a round's removals are sampled, magnitude and OBD removals are each
// measured alone from the round's start, and only the sample is measured.
func TestAuditSampledRemovals(t *testing.T) {
	net, d := auditCase(t, nn.ReLU, nn.CE, 200, 5)
	res, err := prune.Run(context.Background(), net, nn.Splits{Train: d}, &prune.Settings{
		Method: prune.OBD{Curvature: prune.LevenbergMarquardt}, PerRound: 20, MaxRounds: 2,
		AuditRows: prune.AuditAll, AuditRemovals: 15,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := net.Clone()
	E0 := start.Objective(d.X, d.Y)
	audited := map[int]int{}
	for _, st := range res.History {
		if math.IsNaN(st.Real) {
			continue
		}
		audited[st.Round]++
		if !math.IsNaN(st.Loss) {
			t.Errorf("step %d: a sampled audit reports the loss %v", st.Step, st.Loss)
		}
		if st.Round != 1 {
			continue
		}
		alone := start.Clone()
		alone.Prune(st.Index)
		if want := alone.Objective(d.X, d.Y) - E0; math.Abs(st.Real-want) > 1e-9*(1+E0) {
			t.Errorf("step %d: real ΔE %.15g, alone from the round's start %.15g", st.Step, st.Real, want)
		}
	}
	if audited[1] != 15 || audited[2] != 15 {
		t.Errorf("audited per round %v, want 15 each", audited)
	}
	// Every round's real ΔE is that of the whole split.
	for _, rd := range res.Rounds {
		if want := rd.Pruned.Train.Loss - E0; math.Abs(rd.Real-want) > 1e-12*(1+E0) {
			t.Errorf("round %d: real ΔE %v, want %v", rd.Round, rd.Real, want)
		}
		E0 = rd.Pruned.Train.Loss
	}

	// NoAudit measures no removal; a subsample scales by N/m.
	res, err = prune.Run(context.Background(), net, nn.Splits{Train: d}, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 20, MaxRounds: 1, NoAudit: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.History {
		if !math.IsNaN(st.Real) {
			t.Fatalf("NoAudit: step %d has real ΔE %v", st.Step, st.Real)
		}
	}
	res, err = prune.Run(context.Background(), net, nn.Splits{Train: d}, &prune.Settings{
		Method: prune.OBS{}, PerRound: 3, MaxRounds: 1, AuditRows: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.History {
		if math.IsNaN(st.Real) || !math.IsNaN(st.Loss) {
			t.Errorf("OBS on a subsample: step %d real %v loss %v", st.Step, st.Real, st.Loss)
		}
	}
}

// With a saliency that moves no other parameter, the error-rise rule is
// checked after the round's removals and the longest prefix that keeps it
// is found by bisection.
func TestRunErrorRiseBisects(t *testing.T) {
	net, data := regressionMLP(t, 8)
	d := data.Train
	start := net.Evaluate(d.X, d.Y).MeanLoss
	const rise = 0.01
	res, err := prune.Run(context.Background(), net, data, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 12, ErrorRise: rise,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != prune.StoppedErrorRise {
		t.Fatalf("stopped %q", res.Stopped)
	}
	last := res.History[len(res.History)-1]
	got := res.Net.Evaluate(d.X, d.Y).MeanLoss
	if !last.Undone || !(last.Error-start > rise) || got-start > rise || res.Net.NumLive() != last.Live || !res.Net.IsLive(last.Index) {
		t.Fatalf("last step %+v, result mean loss %g from %g, %d live", last, got, start, res.Net.NumLive())
	}
	more := res.Net.Clone()
	more.Prune(last.Index)
	if e := more.Evaluate(d.X, d.Y).MeanLoss; !(e-start > rise) {
		t.Errorf("removing the undone %s as well gives %g, within the rise", last.Name, e-start)
	}
	kept := 0
	for _, rd := range res.Rounds {
		kept += rd.Removed
	}
	if kept != net.NumLive()-res.Net.NumLive() || len(res.History) != kept+1 {
		t.Errorf("rounds kept %d, history %d, pruned %d", kept, len(res.History), net.NumLive()-res.Net.NumLive())
	}
}

// With RetrainRescues the error-rise rule waits for retraining, and a
// round whose retrained network breaks it is undone from its start.
func TestRunRetrainRescues(t *testing.T) {
	net, data := regressionMLP(t, 14)
	d := data.Train
	start := net.Evaluate(d.X, d.Y).MeanLoss
	const rise = 0.02
	res, err := prune.Run(context.Background(), net, nn.Splits{Train: d}, &prune.Settings{
		Method: prune.OBD{}, PerRound: 2, ErrorRise: rise, RetrainRescues: true,
		Retrain: &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != prune.StoppedErrorRise {
		t.Fatalf("stopped %q", res.Stopped)
	}
	last := res.Rounds[len(res.Rounds)-1]
	if last.Removed != 0 || last.Retrained != last.Pruned {
		t.Errorf("last round %+v: want it undone", last)
	}
	kept := 0
	for _, st := range res.History {
		if st.Undone != (st.Round == last.Round) {
			t.Errorf("step %d of round %d undone %v", st.Step, st.Round, st.Undone)
		}
		if !st.Undone {
			kept++
		}
	}
	if got := res.Net.Evaluate(d.X, d.Y).MeanLoss; got-start > rise || net.NumLive()-res.Net.NumLive() != kept {
		t.Errorf("result mean loss %g from %g, %d pruned, %d kept", got, start, net.NumLive()-res.Net.NumLive(), kept)
	}
	if len(res.Rounds) > 1 {
		if prev := res.Rounds[len(res.Rounds)-2]; res.Net.Evaluate(d.X, d.Y) != prev.Retrained.Train {
			t.Errorf("the result is not the network retrained in the round before the last")
		}
	}
}

func TestIsClassification(t *testing.T) {
	for _, tc := range []struct {
		loss nn.Loss
		y    []float64
		cols int
		want bool
	}{
		{nn.CE, []float64{0, 2, 1}, 1, true},
		{nn.BCE, []float64{0.3, 1, 0}, 1, true},
		{nn.MSE, []float64{0, 1, 1}, 1, true},
		{nn.MSE, []float64{1, 0, 0, 1}, 2, true},
		{nn.MSE, []float64{1, 1, 0, 1}, 2, false},
		{nn.MSE, []float64{0.5, 1, 0}, 1, false},
	} {
		net, _ := auditCase(t, nn.Tanh, tc.loss, 3, 1)
		Y := mat.NewDense(len(tc.y)/tc.cols, tc.cols, tc.y)
		if got := prune.IsClassification(net, Y); got != tc.want {
			t.Errorf("%v %v: %v, want %v", tc.loss, tc.y, got, tc.want)
		}
	}
}

// A program's stopping rule is asked after the removals and after the
// retraining of every round.
func TestRunStoppers(t *testing.T) {
	net, data := regressionMLP(t, 15)
	var seen []bool
	res, err := prune.Run(context.Background(), net, data, &prune.Settings{
		Method: prune.Magnitude{}, PerRound: 2, Retrain: &nn.TrainSettings{Optimizer: nn.LBFGS, Epochs: 5},
		Stoppers: []prune.Stopper{prune.StopFunc(func(s *prune.Status) (bool, string) {
			seen = append(seen, s.Retrained)
			return s.Retrained && s.Now.Train.MeanLoss > 1.2*s.Start.Train.MeanLoss || s.Live <= 16, "my-rule"
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "my-rule" || len(seen) < 2 || seen[0] || !seen[1] {
		t.Errorf("stopped %q, rule asked %v", res.Stopped, seen)
	}
}
