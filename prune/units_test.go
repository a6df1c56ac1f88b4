package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

func randomData(n, in, out int, seed uint64) (*mat.Dense, *mat.Dense) {
	rng := rand.New(rand.NewPCG(seed, seed+9))
	X := mat.NewDense(n, in, nil)
	Y := mat.NewDense(n, out, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < in; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
		for j := 0; j < out; j++ {
			Y.Set(i, j, rng.NormFloat64())
		}
	}
	return X, Y
}

func TestRemoveUnits(t *testing.T) {
	net := randomNet(t, []int{5, 4, 3, 2}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Linear}, nn.MSE, 81)
	net.Prune(net.WeightIndex(0, 2, 1))
	net.Prune(net.WeightIndex(1, 0, 2))
	net.Prune(net.BiasIndex(0, 0))
	net.Meta = map[string]any{"seed": 81}
	before := net.ParamsTo(nil)

	for _, tc := range []struct {
		layer int
		units []int
		arch  string
	}{
		{0, []int{3, 1}, "5-2-3-2"},
		{1, []int{1}, "5-4-2-2"},
		{0, nil, "5-4-3-2"},
	} {
		got, err := RemoveUnits(net, tc.layer, tc.units)
		if err != nil {
			t.Fatal(err)
		}
		if got.Arch() != tc.arch {
			t.Fatalf("remove %v from layer %d: arch %s, want %s", tc.units, tc.layer, got.Arch(), tc.arch)
		}
		want := 0
		for _, ly := range got.Layers() {
			want += ly.NumParams()
		}
		if got.NumParams() != want {
			t.Fatalf("%d parameters, want %d", got.NumParams(), want)
		}
		keep := []int{}
		for u := 0; u < net.Layer(tc.layer).Out; u++ {
			if !slices.Contains(tc.units, u) {
				keep = append(keep, u)
			}
		}
		// Every parameter of the smaller network is its original.
		for l, ly := range got.Layers() {
			for j := 0; j < ly.Out; j++ {
				sj := j
				if l == tc.layer {
					sj = keep[j]
				}
				for i := 0; i < ly.In; i++ {
					si := i
					if l == tc.layer+1 {
						si = keep[i]
					}
					q, qs := got.WeightIndex(l, j, i), net.WeightIndex(l, sj, si)
					if got.RawParams()[q] != before[qs] || got.IsLive(q) != net.IsLive(qs) {
						t.Fatalf("%v differs from %v", got.ParamAt(q), net.ParamAt(qs))
					}
				}
				q, qs := got.BiasIndex(l, j), net.BiasIndex(l, sj)
				if got.RawParams()[q] != before[qs] || got.IsLive(q) != net.IsLive(qs) {
					t.Fatalf("%v differs from %v", got.ParamAt(q), net.ParamAt(qs))
				}
			}
		}
		if got.Meta["seed"] != 81 {
			t.Error("meta not carried over")
		}
	}
	// Removing units whose outgoing weights are zero leaves the outputs.
	zero := net.Clone()
	W := zero.Weights(1)
	for k := 0; k < 3; k++ {
		W.Set(k, 2, 0)
	}
	X, _ := randomData(20, 5, 2, 83)
	small, err := RemoveUnits(zero, 0, []int{2})
	if err != nil {
		t.Fatal(err)
	}
	if !mat.EqualApprox(small.Forward(X), zero.Forward(X), 1e-12) {
		t.Error("outputs changed")
	}

	for _, tc := range []struct {
		layer int
		units []int
	}{
		{2, []int{0}}, {-1, []int{0}}, {0, []int{4}}, {0, []int{-1}}, {0, []int{1, 1}}, {1, []int{0, 1, 2}},
	} {
		if _, err := RemoveUnits(net, tc.layer, tc.units); err == nil {
			t.Errorf("no error removing %v from layer %d", tc.units, tc.layer)
		}
	}
	if !slices.Equal(net.ParamsTo(nil), before) || net.Arch() != "5-4-3-2" {
		t.Fatal("RemoveUnits modified its input")
	}
}

// deadNet returns a network with three dead hidden units: unit 1 of layer
// 0 has pruned incoming weights and a bias (constant output), unit 3 of
// layer 0 has zero outgoing weights, and unit 2 of layer 1 has zero
// incoming weights and a positive bias (constant relu output).
func deadNet(t *testing.T) *nn.Network {
	net := randomNet(t, []int{6, 5, 4, 3}, []nn.Activation{nn.Tanh, nn.ReLU, nn.Softmax}, nn.CE, 91)
	for i := 0; i < 6; i++ {
		net.Prune(net.WeightIndex(0, 1, i))
	}
	net.Bias(0)[1] = 0.7
	W1 := net.Weights(1)
	for k := 0; k < 4; k++ {
		W1.Set(k, 3, 0)
	}
	for i := 0; i < 5; i++ {
		W1.Set(2, i, 0)
	}
	net.Bias(1)[2] = 0.4
	return net
}

func TestPruneUnitsDead(t *testing.T) {
	net := deadNet(t)
	X, _ := randomData(40, 6, 1, 93)
	Y := mat.NewDense(40, 1, nil)
	for i := 0; i < 40; i++ {
		Y.Set(i, 0, float64(i%3))
	}
	small, rem, err := PruneUnits(context.Background(), net, X, Y, &UnitSettings{Remove: 3})
	if err != nil {
		t.Fatal(err)
	}
	if small.Arch() != "6-3-3-3" {
		t.Fatalf("arch %s, want 6-3-3-3", small.Arch())
	}
	want := [][2]int{{0, 1}, {0, 3}, {1, 2}}
	for i, r := range rem {
		if [2]int{r.Layer, r.Original} != want[i] {
			t.Errorf("removal %d: layer %d unit %d, want %v", i, r.Layer, r.Original, want[i])
		}
		if r.Saliency != 0 || math.Abs(r.Real) > 1e-12 {
			t.Errorf("removal %d: saliency %v, real ΔE %v", i, r.Saliency, r.Real)
		}
		if r.Params != small.NumParams() && i == len(rem)-1 {
			t.Errorf("params %d, network %d", r.Params, small.NumParams())
		}
	}
	// The outputs are those of the dense network on any input.
	X2, _ := randomData(30, 6, 1, 95)
	for _, x := range []*mat.Dense{X, X2} {
		a, b := small.Forward(x), net.Forward(x)
		r, c := a.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				if d := math.Abs(a.At(i, j) - b.At(i, j)); d > 1e-12 {
					t.Fatalf("output (%d,%d) changed by %v", i, j, d)
				}
			}
		}
	}
	// The masks of the remaining parameters are carried over.
	checkPrunedZero(t, small)
	if small.NumLive() != small.NumParams() {
		// The pruned incoming weights left with their unit.
		t.Errorf("%d of %d live", small.NumLive(), small.NumParams())
	}
	// OBS: a unit whose outgoing weights are all pruned costs nothing.
	cut := randomNet(t, []int{6, 5, 4, 3}, []nn.Activation{nn.Tanh, nn.ReLU, nn.Softmax}, nn.CE, 97)
	for k := 0; k < 4; k++ {
		cut.Prune(cut.WeightIndex(1, k, 3))
	}
	for _, next := range []bool{false, true} {
		small, rem, err := PruneUnits(context.Background(), cut, X, Y, &UnitSettings{
			Saliency: UnitOBS, NextLayer: next, OBS: OBS{Curvature: GaussNewton}, Remove: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r := rem[0]; r.Layer != 0 || r.Original != 3 || r.Saliency != 0 || math.Abs(r.Real) > 1e-12 {
			t.Errorf("NextLayer %v: removed %+v", next, r)
		}
		if !mat.EqualApprox(small.Forward(X2), cut.Forward(X2), 1e-12) {
			t.Errorf("NextLayer %v: outputs changed", next)
		}
	}
	if _, err := AbsorbUnits(net, X, 2, []int{0}); err == nil {
		t.Error("no error absorbing an output unit")
	}
}

// lsNet returns a network 4-5-2 (tanh, linear, mse) whose output layer
// minimises E given the hidden outputs on X, Y.
func lsNet(t *testing.T, X, Y *mat.Dense) *nn.Network {
	net := randomNet(t, []int{4, 5, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE, 101)
	n, _ := X.Dims()
	H, _ := layerOutput(context.Background(), net.Layer(0), net.RawParams()[:net.Offset(1)], X)
	Z := mat.NewDense(n, 6, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < 5; j++ {
			Z.Set(i, j, H.At(i, j))
		}
		Z.Set(i, 5, 1)
	}
	var B mat.Dense // 6×2
	if err := B.Solve(Z, Y); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 2; k++ {
		for j := 0; j < 5; j++ {
			net.Weights(1).Set(k, j, B.At(j, k))
		}
		net.Bias(1)[k] = B.At(5, k)
	}
	return net
}

func TestUnitOBSQuadratic(t *testing.T) {
	X, Y := randomData(50, 4, 2, 103)
	net := lsNet(t, X, Y)
	obs, remO, err := PruneUnits(context.Background(), net, X, Y, &UnitSettings{
		Saliency: UnitOBS, NextLayer: true, OBS: OBS{Curvature: Exact, Damping: NoDamping}, Remove: 3})
	if err != nil {
		t.Fatal(err)
	}
	if obs.Arch() != "4-2-2" || len(remO) != 3 {
		t.Fatalf("arch %s after %d removals", obs.Arch(), len(remO))
	}
	for i, r := range remO {
		if !(r.Predicted >= 0) || math.Abs(r.Predicted-r.Real) > 1e-8*(1+r.Real) {
			t.Errorf("OBS removal %d: predicted ΔE %v, real %v", i, r.Predicted, r.Real)
		}
	}
	_, remV, err := PruneUnits(context.Background(), net, X, Y, &UnitSettings{Remove: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := remV[0]; math.Abs(r.Predicted-r.Real) > 1e-8*(1+r.Real) {
		t.Errorf("variance removal: predicted ΔE %v, real %v", r.Predicted, r.Real)
	}
	// OBS compensates with the whole next layer, mean replacement with its
	// bias only.
	if remO[0].Real > remV[0].Real*(1+1e-12) {
		t.Errorf("OBS ΔE %v above mean replacement's %v", remO[0].Real, remV[0].Real)
	}
	t.Logf("first removal: OBS unit %d ΔE %.6g, variance unit %d ΔE %.6g", remO[0].Original, remO[0].Real, remV[0].Original, remV[0].Real)
}

func TestPruneUnitsRules(t *testing.T) {
	net := randomNet(t, []int{4, 6, 5, 1}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Linear}, nn.MSE, 111)
	X, Y := randomData(60, 4, 1, 113)
	before := net.ParamsTo(nil)
	E0 := net.Objective(X, Y)
	for _, sal := range []UnitSaliency{UnitVariance, UnitOBS} {
		for _, scope := range []bool{false, true} {
			s := &UnitSettings{Saliency: sal, NextLayer: scope, OBS: OBS{Curvature: GaussNewton}}
			small, rem, err := PruneUnits(context.Background(), net, X, Y, s)
			if err != nil {
				t.Fatal(err)
			}
			// Without Remove or a budget, down to one unit per layer.
			if small.Arch() != "4-1-1-1" || len(rem) != 9 {
				t.Fatalf("%v: arch %s after %d removals", sal, small.Arch(), len(rem))
			}
			seen := map[[2]int]bool{}
			sum := 0.0
			for _, r := range rem {
				key := [2]int{r.Layer, r.Original}
				if seen[key] {
					t.Fatalf("%v: unit %v removed twice", sal, key)
				}
				seen[key] = true
				sum += r.Real
				if sal == UnitOBS && !(r.Predicted >= 0) {
					t.Errorf("%v: predicted ΔE %v", sal, r.Predicted)
				}
			}
			if E := small.Objective(X, Y); math.Abs(E-E0-sum) > 1e-9*(E0+E) {
				t.Errorf("%v: real ΔE sum %v, E rose by %v", sal, sum, E-E0)
			}

			budget := 0.05 * E0
			small, rem, err = PruneUnits(context.Background(), net, X, Y, &UnitSettings{
				Saliency: sal, NextLayer: scope, MaxLossRise: budget, Layers: []int{1}, MinUnits: 2})
			if err != nil {
				t.Fatal(err)
			}
			if rise := small.Objective(X, Y) - E0; rise > budget {
				t.Errorf("%v: loss rose by %v, budget %v", sal, rise, budget)
			}
			if small.Layer(0).Out != 6 || small.Layer(1).Out < 2 {
				t.Errorf("%v: arch %s with only layer 1 eligible and 2 units kept", sal, small.Arch())
			}
			if small.Layer(1).Out > 2 {
				// Stopped by the budget: the next removal would exceed it.
				if _, more, _ := PruneUnits(context.Background(), small, X, Y, &UnitSettings{
					Saliency: sal, NextLayer: scope, Remove: 1, Layers: []int{1}}); len(more) == 1 &&
					small.Objective(X, Y)+more[0].Real-E0 <= budget {
					t.Errorf("%v: stopped with budget left", sal)
				}
			}
		}
	}
	if !slices.Equal(net.ParamsTo(nil), before) {
		t.Fatal("PruneUnits modified its input")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := PruneUnits(ctx, net, X, Y, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func ExampleRemoveUnits() {
	net, _ := nn.New([]int{4, 6, 3}, []nn.Activation{nn.ReLU, nn.Linear}, nn.MSE)
	net.Init(rand.NewPCG(1, 2))
	small, err := RemoveUnits(net, 0, []int{1, 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(net.Arch(), net.NumParams(), "→", small.Arch(), small.NumParams())
	// Output:
	// 4-6-3 51 → 4-4-3 35
}

// TestPruneUnitsBadSettings is the repro of PruneUnits panicking on bad
// settings: each now gives an error from Validate and from PruneUnits.
func TestPruneUnitsBadSettings(t *testing.T) {
	net := randomNet(t, []int{4, 6, 5, 1}, []nn.Activation{nn.Tanh, nn.Tanh, nn.Linear}, nn.MSE, 111)
	X, Y := randomData(20, 4, 1, 113)
	for _, s := range []UnitSettings{
		{Saliency: UnitSaliency(9)}, {Saliency: -1},
		{Remove: -1}, {MinUnits: -2}, {MaxLossRise: -1}, {MaxLossRise: math.NaN()},
		{Layers: []int{2}}, {Layers: []int{-1}},
		{Saliency: UnitOBS, OBS: OBS{Curvature: Curvature(99)}},
		{Saliency: UnitOBS, OBS: OBS{Damping: math.Inf(1)}},
	} {
		if err := s.Validate(net); err == nil {
			t.Errorf("Validate(%+v) = nil", s)
		}
		if _, _, err := PruneUnits(context.Background(), net, X, Y, &s); err == nil {
			t.Errorf("PruneUnits with %+v: no error", s)
		}
	}
}
