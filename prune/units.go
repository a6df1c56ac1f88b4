package prune

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// RemoveUnits returns a copy of net without the given units of hidden layer
// layer (rows of W_layer and b_layer, columns of W_layer+1), keeping the
// mask and Meta. It returns an error for a layer that is not hidden and for
// units out of range, repeated or all of the layer's.
func RemoveUnits(net *nn.Network, layer int, units []int) (*nn.Network, error) {
	keep, err := keptUnits(net, layer, units)
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		return net.Clone(), nil
	}
	layers := net.Layers()
	layers[layer].Out = len(keep)
	layers[layer+1].In = len(keep)
	res, err := nn.FromLayers(layers, net.Loss())
	if err != nil {
		return nil, err
	}
	src := net.RawParams()
	dst := res.RawParams()
	srcMask := net.Mask()
	mask := make([]bool, len(dst))
	put := func(qd, qs int) {
		dst[qd] = src[qs]
		mask[qd] = srcMask[qs]
	}
	for l, ly := range layers {
		for j := 0; j < ly.Out; j++ {
			sj := j
			if l == layer {
				sj = keep[j]
			}
			for i := 0; i < ly.In; i++ {
				si := i
				if l == layer+1 {
					si = keep[i]
				}
				put(res.WeightIndex(l, j, i), net.WeightIndex(l, sj, si))
			}
			put(res.BiasIndex(l, j), net.BiasIndex(l, sj))
		}
	}
	if net.HasMask() {
		res.SetMask(mask)
	}
	if net.Meta != nil {
		res.Meta = make(map[string]any, len(net.Meta))
		for k, v := range net.Meta {
			res.Meta[k] = v
		}
	}
	return res, nil
}

// keptUnits checks the units to remove from hidden layer layer and returns
// the units that remain, in order.
func keptUnits(net *nn.Network, layer int, units []int) ([]int, error) {
	L := net.NumLayers()
	if layer < 0 || layer >= L-1 {
		return nil, fmt.Errorf("prune: layer %d is not a hidden layer of %s (hidden layers are 0…%d)", layer, net.Arch(), L-2)
	}
	out := net.Layer(layer).Out
	drop := make([]bool, out)
	for _, u := range units {
		if u < 0 || u >= out {
			return nil, fmt.Errorf("prune: unit %d out of range: layer %d has %d units", u, layer, out)
		}
		if drop[u] {
			return nil, fmt.Errorf("prune: unit %d of layer %d listed twice", u, layer)
		}
		drop[u] = true
	}
	if len(units) == out {
		return nil, fmt.Errorf("prune: removing all %d units of layer %d; at least one must remain", out, layer)
	}
	keep := make([]int, 0, out-len(units))
	for u, d := range drop {
		if !d {
			keep = append(keep, u)
		}
	}
	return keep, nil
}

// AbsorbUnits is RemoveUnits after folding the mean output of each removed
// unit over the rows of X into the next layer's biases (made live):
//
//	b_{l+1} ← b_{l+1} + Σ_u W_{l+1}[:, u] z̄_u,    z̄_u = (1/N) Σₙ z_{u,n},
//
// the least squared change of the next layer's pre-activations over X.
func AbsorbUnits(net *nn.Network, X *mat.Dense, layer int, units []int) (*nn.Network, error) {
	if err := net.Check(X, nil); err != nil {
		return nil, err
	}
	if _, err := keptUnits(net, layer, units); err != nil {
		return nil, err
	}
	mean := unitMeans(net, X, layer)
	tmp := net.Clone()
	W := tmp.Weights(layer + 1)
	b := tmp.Bias(layer + 1)
	for k := range b {
		var shift float64
		for _, u := range units {
			shift += W.At(k, u) * mean[u]
		}
		if shift == 0 {
			continue
		}
		q := tmp.BiasIndex(layer+1, k)
		if !tmp.IsLive(q) {
			m := tmp.Mask()
			m[q] = true
			tmp.SetMask(m)
		}
		b[k] += shift
	}
	return RemoveUnits(tmp, layer, units)
}

// unitMeans returns the mean output of each unit of layer l over the rows
// of X. The means are formed about the first sample's outputs, so that a
// unit with the same output on every sample gets exactly that output.
func unitMeans(net *nn.Network, X *mat.Dense, l int) []float64 {
	n, _ := X.Dims()
	t := net.NewTrace(min(n, parallel.ChunkRows))
	var first, sum []float64
	for lo := 0; lo < n; lo += parallel.ChunkRows {
		hi := min(lo+parallel.ChunkRows, n)
		net.ForwardTrace(t, X.Slice(lo, hi, 0, net.Inputs()).(*mat.Dense))
		Z := t.Z[l]
		if first == nil {
			first = slices.Clone(Z.RawRowView(0))
			sum = make([]float64, len(first))
		}
		for r := 0; r < hi-lo; r++ {
			for u, v := range Z.RawRowView(r) {
				sum[u] += v - first[u]
			}
		}
	}
	for u := range sum {
		sum[u] = first[u] + sum[u]/float64(n)
	}
	return sum
}

// UnitSaliency selects how PruneUnits ranks hidden units. UnitVariance
// scores unit u of layer l by the change of the next layer's
// pre-activations when z_u is replaced by its mean,
//
//	s_u = ½ ‖W_{l+1}[:, u]‖² Σₙ (z_{u,n} − z̄_u)²,
//
// and removes it with AbsorbUnits; s_u is the prediction when layer l+1 is
// a linear output layer with the squared error (exact at its minimum given
// the hidden outputs), otherwise NaN. UnitOBS removes the unit's live
// outgoing weights, column u of W_{l+1}, as one set by OBSSet on the
// inverse curvature of UnitSettings.OBS, rebuilt after every removal, with
// the prediction L_S.
type UnitSaliency int

// The unit saliencies.
const (
	UnitVariance UnitSaliency = iota
	UnitOBS
)

var unitSaliencyNames = [...]string{UnitVariance: "variance", UnitOBS: "obs"}

// String returns variance or obs.
func (s UnitSaliency) String() string {
	if s < 0 || int(s) >= len(unitSaliencyNames) {
		return fmt.Sprintf("UnitSaliency(%d)", int(s))
	}
	return unitSaliencyNames[s]
}

// UnitSettings holds the settings of PruneUnits; a nil *UnitSettings, and
// any zero field, selects the default. OBS is the curvature and damping of
// UnitOBS; NextLayer restricts them to the next layer's live parameters
// (then exact for a linear output layer with the squared error at its
// minimum). Layers lists the hidden layers that may lose units (nil: all).
// PruneUnits stops after Remove units (0: no limit), before a removal that
// would raise E on X, Y by more than MaxLossRise (when positive), or when
// every layer has MinUnits units (default 1). MaxBytes is as in Env;
// Progress, when not nil, receives every removal.
type UnitSettings struct {
	Saliency    UnitSaliency
	OBS         OBS
	NextLayer   bool
	Layers      []int
	Remove      int
	MaxLossRise float64
	MinUnits    int
	MaxBytes    int64
	Progress    func(r UnitRemoval)
}

// Validate returns an error for the first setting of s that is invalid
// for the network net. A nil s is valid.
func (s *UnitSettings) Validate(net *nn.Network) error {
	if s == nil {
		return nil
	}
	if s.Saliency < UnitVariance || s.Saliency > UnitOBS {
		return fmt.Errorf("prune: unknown unit saliency %v", s.Saliency)
	}
	switch {
	case s.Remove < 0:
		return fmt.Errorf("prune: %d units to remove is negative", s.Remove)
	case s.MinUnits < 0:
		return fmt.Errorf("prune: minimum of %d units per layer is negative", s.MinUnits)
	case !(s.MaxLossRise >= 0):
		return fmt.Errorf("prune: largest loss rise %v is not a number ≥ 0", s.MaxLossRise)
	}
	for _, l := range s.Layers {
		if l < 0 || l >= net.NumLayers()-1 {
			return fmt.Errorf("prune: layer %d is not a hidden layer of %s", l, net.Arch())
		}
	}
	if s.Saliency == UnitOBS {
		if err := s.OBS.Validate(); err != nil {
			return fmt.Errorf("prune: unit OBS: %w", err)
		}
	}
	return nil
}

// UnitRemoval records the removal of one hidden unit by PruneUnits: its
// layer, its index in the network it left and in the input network, its
// saliency, the predicted (or NaN) and real increase of E, and E and the
// number of parameters after it.
type UnitRemoval struct {
	Layer, Unit, Original           int
	Saliency, Predicted, Real, Loss float64
	Params                          int
}

// PruneUnits removes hidden units from a copy of net one at a time, the
// unit of least saliency (ties to the lowest layer, then unit), until a
// rule of s holds, and returns the smaller network and the removals, also
// on an error (invalid settings or data, a done ctx, a failed curvature).
//
// References:
//
//	B. Hassibi, D. G. Stork and G. J. Wolff, Optimal Brain Surgeon and
//	  general network pruning, IEEE ICNN, 1993.
//	M. C. Mozer and P. Smolensky, Skeletonization: a technique for
//	  trimming the fat from a network via relevance assessment, NIPS 1,
//	  1989.
func PruneUnits(ctx context.Context, net *nn.Network, X, Y *mat.Dense, s *UnitSettings) (*nn.Network, []UnitRemoval, error) {
	var set UnitSettings
	if s != nil {
		set = *s
	}
	if err := set.Validate(net); err != nil {
		return nil, nil, err
	}
	L := net.NumLayers()
	if set.MinUnits == 0 {
		set.MinUnits = 1
	}
	eligible := make([]bool, L)
	if set.Layers == nil {
		for l := 0; l < L-1; l++ {
			eligible[l] = true
		}
	}
	for _, l := range set.Layers {
		eligible[l] = true
	}
	if err := net.Check(X, Y); err != nil {
		return nil, nil, err
	}

	cur := net.Clone()
	ids := make([][]int, L)
	for l := range ids {
		ids[l] = make([]int, net.Layer(l).Out)
		for u := range ids[l] {
			ids[l][u] = u
		}
	}
	E0 := cur.Objective(X, Y)
	E := E0
	var removals []UnitRemoval
	for set.Remove == 0 || len(removals) < set.Remove {
		if err := ctx.Err(); err != nil {
			return cur, removals, err
		}
		var (
			best  unitCandidate
			found bool
		)
		consider := func(c unitCandidate) {
			if !found || c.sal < best.sal {
				best, found = c, true
			}
		}
		var err error
		switch set.Saliency {
		case UnitVariance:
			varianceCandidates(cur, X, eligible, set.MinUnits, consider)
		case UnitOBS:
			err = set.obsCandidates(ctx, cur, X, Y, eligible, consider)
		}
		if err != nil {
			return cur, removals, err
		}
		if !found {
			break
		}
		var next *nn.Network
		switch set.Saliency {
		case UnitVariance:
			next, err = AbsorbUnits(cur, X, best.layer, []int{best.unit})
		case UnitOBS:
			tmp := cur.Clone()
			theta := tmp.RawParams()
			for i, q := range best.params {
				theta[q] += best.delta[i]
			}
			tmp.ApplyMask()
			next, err = RemoveUnits(tmp, best.layer, []int{best.unit})
		}
		if err != nil {
			return cur, removals, err
		}
		En := next.Objective(X, Y)
		if set.MaxLossRise > 0 && !(En-E0 <= set.MaxLossRise) {
			break
		}
		r := UnitRemoval{
			Layer: best.layer, Unit: best.unit, Original: ids[best.layer][best.unit],
			Saliency: best.sal, Predicted: best.pred, Real: En - E, Loss: En, Params: next.NumParams(),
		}
		removals = append(removals, r)
		ids[best.layer] = slices.Delete(ids[best.layer], best.unit, best.unit+1)
		cur, E = next, En
		if set.Progress != nil {
			set.Progress(r)
		}
	}
	return cur, removals, nil
}

// unitCandidate is a unit that may be removed, with its saliency and, for
// OBS, the update of the parameters params.
type unitCandidate struct {
	layer, unit int
	sal, pred   float64
	params      []int
	delta       []float64
}

// varianceCandidates offers every eligible unit with its UnitVariance
// saliency.
func varianceCandidates(net *nn.Network, X *mat.Dense, eligible []bool, minUnits int, consider func(unitCandidate)) {
	n, _ := X.Dims()
	L := net.NumLayers()
	t := net.NewTrace(n)
	net.ForwardTrace(t, X)
	for l := 0; l < L-1; l++ {
		ly := net.Layer(l)
		if !eligible[l] || ly.Out <= minUnits {
			continue
		}
		exact := l+1 == L-1 && net.Loss() == nn.MSE && net.Layer(l+1).Act == nn.Linear
		Z := t.Z[l]
		W := net.Weights(l + 1)
		for u := 0; u < ly.Out; u++ {
			// Deviations from the first sample, so that a constant
			// output has exactly zero variance.
			z0 := Z.At(0, u)
			var mean float64
			for r := 0; r < n; r++ {
				mean += Z.At(r, u) - z0
			}
			mean /= float64(n)
			var ss float64
			for r := 0; r < n; r++ {
				d := Z.At(r, u) - z0 - mean
				ss += d * d
			}
			var w2 float64
			for k := 0; k < net.Layer(l+1).Out; k++ {
				w2 += W.At(k, u) * W.At(k, u)
			}
			s := 0.5 * w2 * ss
			pred := math.NaN()
			if exact {
				pred = s
			}
			consider(unitCandidate{layer: l, unit: u, sal: s, pred: pred})
		}
	}
}

// obsCandidates offers every eligible unit with its UnitOBS saliency and
// update.
func (s *UnitSettings) obsCandidates(ctx context.Context, net *nn.Network, X, Y *mat.Dense, eligible []bool, consider func(unitCandidate)) error {
	L := net.NumLayers()
	env := &Env{MaxBytes: s.MaxBytes}
	var (
		p    *hessian.Problem
		hinv *mat.SymDense
		pos  map[int]int
	)
	build := func(params []int) error {
		p = &hessian.Problem{Net: net, Data: nn.Data{X: X, Y: Y}, Params: params}
		if len(params) == 0 {
			hinv, pos = nil, nil
			return nil
		}
		var err error
		hinv, _, err = s.OBS.Inverse(ctx, p, env)
		if err != nil {
			return err
		}
		pos = make(map[int]int, len(params))
		for i, q := range params {
			pos[q] = i
		}
		return nil
	}
	if !s.NextLayer {
		if err := build(net.LiveIndices()); err != nil {
			return err
		}
	}
	for l := 0; l < L-1; l++ {
		if !eligible[l] || net.Layer(l).Out <= s.MinUnits {
			continue
		}
		if s.NextLayer {
			var params []int
			for q := net.Offset(l + 1); q < net.Offset(l+2); q++ {
				if net.IsLive(q) {
					params = append(params, q)
				}
			}
			if err := build(params); err != nil {
				return err
			}
		}
		w := make([]float64, len(p.Params))
		theta := net.RawParams()
		for i, q := range p.Params {
			w[i] = theta[q]
		}
		next := net.Layer(l + 1)
		for u := 0; u < net.Layer(l).Out; u++ {
			var S []int
			for k := 0; k < next.Out; k++ {
				if i, ok := pos[net.WeightIndex(l+1, k, u)]; ok {
					S = append(S, i)
				}
			}
			if len(S) == 0 {
				// The unit's outgoing weights are all pruned.
				consider(unitCandidate{layer: l, unit: u})
				continue
			}
			delta, sal, err := OBSSet(hinv, w, S)
			if err != nil {
				return fmt.Errorf("unit %d of layer %d: %w", u, l, err)
			}
			consider(unitCandidate{layer: l, unit: u, sal: sal, pred: sal, params: p.Params, delta: delta})
		}
	}
	return nil
}
