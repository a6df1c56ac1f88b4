package prune

import (
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/parallel"
	"github.com/secondorder/prune/nn"
)

// Defaults of Settings.AuditRows and Settings.AuditRemovals.
const (
	DefaultAuditRows     = 1024
	DefaultAuditRemovals = 1000
)

// AuditAll as Settings.AuditRows or Settings.AuditRemovals audits every
// training row or every removal.
const AuditAll = -1

// auditor measures the real ΔE of removals on a fixed, seeded subsample of
// the training rows.
//
// For a scorer that moves other parameters (OBS) a removal is measured as
// the loss on the subsample after it minus the loss before it, each from a
// forward pass. For a scorer that only zeroes the removed parameter
// (magnitude, OBD) the subsample's forward pass is kept and a removal's
// effect is propagated from the one unit it changes: through the changed
// rows of that unit, a rank-one update of the next layer and the changed
// rows of the layers after it.
type auditor struct {
	net   *nn.Network
	X, Y  *mat.Dense
	rows  int
	all   bool    // the subsample is the whole training split
	scale float64 // N / rows

	t       *nn.Trace
	synced  bool
	dz      []float64
	changed []int
	rowLoss []float64
	// What try restores: the touched entries of the parameter's layer
	// (rows saveRows) and the changed rows of the layers after it.
	saving       bool
	save, saveUp []float64
	saveRows     []int
	E            float64 // loss of the subsample at the cached trace
}

// newAuditor returns the auditor of the training split d with at most rows
// rows (AuditAll: all), drawn with seed.
func newAuditor(net *nn.Network, d nn.Data, rows int, seed uint64) *auditor {
	N, _ := d.X.Dims()
	a := &auditor{net: net, X: d.X, Y: d.Y, rows: N, all: true, scale: 1}
	if rows != AuditAll && rows < N {
		rng := rand.New(rand.NewPCG(seed, 0x61756469742d726f)) // "audit-ro"
		idx := rng.Perm(N)[:rows]
		slices.Sort(idx)
		_, cx := d.X.Dims()
		_, cy := d.Y.Dims()
		X := mat.NewDense(rows, cx, nil)
		Y := mat.NewDense(rows, cy, nil)
		for r, i := range idx {
			X.SetRow(r, d.X.RawRowView(i))
			Y.SetRow(r, d.Y.RawRowView(i))
		}
		a.X, a.Y, a.rows, a.all = X, Y, rows, false
		a.scale = float64(N) / float64(rows)
	}
	return a
}

// loss returns the loss of the subsample from a forward pass at the
// current parameters, without the cached trace.
func (a *auditor) loss() float64 { return a.net.Evaluate(a.X, a.Y).Loss }

// sync runs the forward pass of the subsample at the current parameters
// into the cached trace and returns its loss.
func (a *auditor) sync() float64 {
	if a.t == nil {
		a.t = a.net.NewTrace(a.rows)
		a.dz = make([]float64, a.rows)
		a.changed = make([]int, 0, a.rows)
		a.rowLoss = make([]float64, a.rows)
	}
	a.net.ForwardTrace(a.t, a.X)
	for r := range a.rowLoss {
		a.rowLoss[r] = a.net.SampleLoss(a.t, a.Y, r)
	}
	a.synced = true
	a.E = a.sum()
	return a.E
}

// sum adds the per-row losses in the block order of nn.Network.Evaluate.
func (a *auditor) sum() float64 {
	var E float64
	for _, chunks := range parallel.Blocks(a.rows) {
		var s float64
		for _, ch := range chunks {
			for r := ch[0]; r < ch[1]; r++ {
				s += a.rowLoss[r]
			}
		}
		E += s
	}
	return E
}

// change updates the cached trace after parameter q changed by d (the
// network already holds the new value) and returns the new loss of the
// subsample.
func (a *auditor) change(q int, d float64) float64 {
	net := a.net
	p := net.ParamAt(q)
	L := p.Layer
	ly := net.Layer(L)
	t := a.t
	in := t.X
	if L > 0 {
		in = t.Z[L-1]
	}
	A, Z := t.A[L].RawMatrix(), t.Z[L].RawMatrix()
	j := p.Row
	a.changed = a.changed[:0]
	last := L == net.NumLayers()-1
	for r := 0; r < a.rows; r++ {
		delta := d
		if !p.Bias {
			delta = d * in.At(r, p.Col)
		}
		if delta == 0 {
			continue
		}
		if a.saving {
			a.saveRows = append(a.saveRows, r)
			if ly.Act == nn.Softmax {
				a.save = append(a.save, A.Data[r*A.Stride:r*A.Stride+ly.Out]...)
			} else {
				a.save = append(a.save, A.Data[r*A.Stride+j], Z.Data[r*Z.Stride+j])
			}
		}
		A.Data[r*A.Stride+j] += delta
		if ly.Act == nn.Softmax {
			// Softmax is the output of ce only, whose loss reads the
			// pre-activations: the outputs are not kept up to date.
			a.changed = append(a.changed, r)
			continue
		}
		z := ly.Act.Eval(A.Data[r*A.Stride+j])
		a.dz[r] = z - Z.Data[r*Z.Stride+j]
		Z.Data[r*Z.Stride+j] = z
		if a.dz[r] != 0 || last {
			a.changed = append(a.changed, r)
		}
	}
	if a.saving {
		// What the layers after L and the losses of the changed rows
		// hold now.
		for _, r := range a.changed {
			for l := L + 1; l < net.NumLayers(); l++ {
				Al, Zl := t.A[l].RawMatrix(), t.Z[l].RawMatrix()
				a.saveUp = append(a.saveUp, Al.Data[r*Al.Stride:r*Al.Stride+Al.Cols]...)
				a.saveUp = append(a.saveUp, Zl.Data[r*Zl.Stride:r*Zl.Stride+Zl.Cols]...)
			}
			a.saveUp = append(a.saveUp, a.rowLoss[r])
		}
	}
	if !last && len(a.changed) > 0 {
		// The next layer: a rank-one update of the changed rows.
		nl := net.Layer(L + 1)
		W := net.Weights(L + 1).RawMatrix()
		A1, Z1 := t.A[L+1].RawMatrix(), t.Z[L+1].RawMatrix()
		for _, r := range a.changed {
			row := A1.Data[r*A1.Stride : r*A1.Stride+nl.Out]
			f := a.dz[r]
			for k := range row {
				row[k] += f * W.Data[k*W.Stride+j]
			}
			activate(Z1.Data[r*Z1.Stride:r*Z1.Stride+nl.Out], row, nl.Act)
		}
		// The layers after it: the changed rows recomputed.
		for l := L + 2; l < net.NumLayers(); l++ {
			nl := net.Layer(l)
			W := net.Weights(l).RawMatrix()
			b := net.Bias(l)
			Zp := t.Z[l-1].RawMatrix()
			Al, Zl := t.A[l].RawMatrix(), t.Z[l].RawMatrix()
			for _, r := range a.changed {
				x := Zp.Data[r*Zp.Stride : r*Zp.Stride+nl.In]
				row := Al.Data[r*Al.Stride : r*Al.Stride+nl.Out]
				for k := range row {
					row[k] = b[k] + floats.Dot(W.Data[k*W.Stride:k*W.Stride+nl.In], x)
				}
				activate(Zl.Data[r*Zl.Stride:r*Zl.Stride+nl.Out], row, nl.Act)
			}
		}
	}
	for _, r := range a.changed {
		a.rowLoss[r] = net.SampleLoss(t, a.Y, r)
	}
	a.E = a.sum()
	return a.E
}

// try returns the loss of the subsample with parameter q changed by d,
// leaving the network and the cached trace as they were: change saves
// what it overwrites, the touched entries of unit j of the parameter's
// layer and the changed rows of the layers after it, and try puts them
// back.
func (a *auditor) try(q int, d float64) float64 {
	net := a.net
	p := net.ParamAt(q)
	L := p.Layer
	t := a.t
	a.save, a.saveRows, a.saveUp = a.save[:0], a.saveRows[:0], a.saveUp[:0]
	E0 := a.E

	theta := net.RawParams()
	old := theta[q]
	theta[q] = old + d
	a.saving = true
	E := a.change(q, d)
	a.saving = false
	theta[q] = old

	A, Z := t.A[L].RawMatrix(), t.Z[L].RawMatrix()
	k := 0
	for _, r := range a.saveRows {
		if net.Layer(L).Act == nn.Softmax {
			k += copy(A.Data[r*A.Stride:r*A.Stride+A.Cols], a.save[k:])
			continue
		}
		A.Data[r*A.Stride+p.Row], Z.Data[r*Z.Stride+p.Row] = a.save[k], a.save[k+1]
		k += 2
	}
	k = 0
	for _, r := range a.changed {
		for l := L + 1; l < net.NumLayers(); l++ {
			Al, Zl := t.A[l].RawMatrix(), t.Z[l].RawMatrix()
			k += copy(Al.Data[r*Al.Stride:r*Al.Stride+Al.Cols], a.saveUp[k:])
			k += copy(Zl.Data[r*Zl.Stride:r*Zl.Stride+Zl.Cols], a.saveUp[k:])
		}
		a.rowLoss[r] = a.saveUp[k]
		k++
	}
	a.E = E0
	return E
}

// activate writes f(a) to z; for Softmax, the output of ce only, whose
// loss reads the pre-activations, it writes nothing.
func activate(z, a []float64, f nn.Activation) {
	if f == nn.Softmax {
		return
	}
	for k, v := range a {
		z[k] = f.Eval(v)
	}
}

// auditSample returns which of the first k removals of round are audited:
// nil for all of them, else a set of at most n drawn with seed.
func auditSample(k, n int, seed uint64, round int) []bool {
	if n == AuditAll || k <= n {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x61756469742d7265^uint64(round))) // "audit-re"
	set := make([]bool, k)
	for _, i := range rng.Perm(k)[:n] {
		set[i] = true
	}
	return set
}
