package hessian

import (
	"context"
	"fmt"
	"sort"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// Curvature is a symmetric curvature matrix C of the training loss over Dim
// parameters, as a product: MulVecTo sets dst = C v. It panics on data that
// do not fit the network (see Problem.Check); the dense and diagonal fast
// paths return an error.
type Curvature interface {
	Dim() int
	MulVecTo(dst, v []float64)
}

// Denser is a curvature that builds its dense matrix into dst (Dim×Dim)
// faster than Dim products with unit vectors.
type Denser interface {
	Curvature
	DenseTo(ctx context.Context, dst *mat.SymDense) error
}

// Diagonaler is a curvature that writes its diagonal to dst without the
// dense matrix.
type Diagonaler interface {
	Curvature
	DiagTo(ctx context.Context, dst []float64) error
}

// Problem is a network with its samples, the loss E = Σₙ ℓₙ over the rows
// of X and Y, and Params, the ascending indices a curvature covers (nil: all).
type Problem struct {
	Net *nn.Network
	nn.Data
	Params []int

	// Workspaces and caches, guarded by ropMu: of the Hessian-vector
	// products, and the Becker–LeCun diagonals (full and LM).
	rop *ropWork
	bl  [2]*blCache
}

// Live returns the problem over the network's live (unpruned) parameters.
func Live(net *nn.Network, X, Y *mat.Dense) *Problem {
	return &Problem{Net: net, Data: nn.Data{X: X, Y: Y}, Params: net.LiveIndices()}
}

// All returns the problem over all parameters, pruned ones included.
func All(net *nn.Network, X, Y *mat.Dense) *Problem {
	return &Problem{Net: net, Data: nn.Data{X: X, Y: Y}}
}

// Dim returns the number of parameters covered.
func (p *Problem) Dim() int {
	if p.Params == nil {
		return p.Net.NumParams()
	}
	return len(p.Params)
}

// Check returns an error when the data do not fit the network or Params is
// not ascending parameter indices.
func (p *Problem) Check() error {
	if err := p.Net.Check(p.X, p.Y); err != nil {
		return err
	}
	if p.Params != nil {
		W := p.Net.NumParams()
		if !sort.IntsAreSorted(p.Params) {
			return fmt.Errorf("hessian: Params not in ascending order")
		}
		for i, q := range p.Params {
			if q < 0 || q >= W || (i > 0 && p.Params[i-1] == q) {
				return fmt.Errorf("hessian: Params[%d]=%d out of range or repeated", i, q)
			}
		}
	}
	return nil
}

func (p *Problem) all() bool { return p.Params == nil || len(p.Params) == p.Net.NumParams() }

// scatter writes the covered vector v into the full parameter vector full.
func (p *Problem) scatter(full, v []float64) {
	if p.all() {
		copy(full, v)
		return
	}
	clear(full)
	for i, q := range p.Params {
		full[q] = v[i]
	}
}

// gather reads the covered entries of full into dst.
func (p *Problem) gather(dst, full []float64) {
	if p.all() {
		copy(dst, full)
		return
	}
	for i, q := range p.Params {
		dst[i] = full[q]
	}
}

// compact turns a full W×W upper-triangular buffer (stride W) into the
// covered k×k symmetric matrix in place and returns it.
func (p *Problem) compact(buf []float64) *mat.SymDense {
	W := p.Net.NumParams()
	if p.all() {
		return mat.NewSymDense(W, buf[:W*W])
	}
	k := len(p.Params)
	for a, qa := range p.Params {
		for b := a; b < k; b++ {
			buf[a*k+b] = buf[qa*W+p.Params[b]]
		}
	}
	// Target index a*k+b ≤ source index qa*W+qb, and rows are filled in
	// increasing order, so no source is overwritten before it is read.
	return mat.NewSymDense(k, buf[:k*k])
}

// Dense returns the dense matrix of c, by its fast path or Dim products with
// unit vectors, after CheckMemory.
func Dense(ctx context.Context, c Curvature, limit int64) (*mat.SymDense, error) {
	n := c.Dim()
	if err := CheckMemory("dense curvature", n, limit); err != nil {
		return nil, err
	}
	dst := mat.NewSymDense(n, nil)
	if d, ok := c.(Denser); ok {
		return dst, d.DenseTo(ctx, dst)
	}
	err := columns(ctx, c, func(j int, col []float64) {
		for i := 0; i < j; i++ {
			dst.SetSym(i, j, 0.5*(col[i]+dst.At(i, j)))
		}
		dst.SetSym(j, j, col[j])
		for i := j + 1; i < n; i++ {
			dst.SetSym(j, i, col[i])
		}
	})
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// Diag returns the diagonal of c, by its fast path or Dim products with unit
// vectors.
func Diag(ctx context.Context, c Curvature) ([]float64, error) {
	n := c.Dim()
	dst := make([]float64, n)
	if d, ok := c.(Diagonaler); ok {
		return dst, d.DiagTo(ctx, dst)
	}
	err := columns(ctx, c, func(j int, col []float64) { dst[j] = col[j] })
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// columns calls fn with each column C e_j of c, checking ctx every 64
// columns.
func columns(ctx context.Context, c Curvature, fn func(j int, col []float64)) error {
	n := c.Dim()
	v := make([]float64, n)
	col := make([]float64, n)
	for j := 0; j < n; j++ {
		if j%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		v[j] = 1
		c.MulVecTo(col, v)
		v[j] = 0
		fn(j, col)
	}
	return nil
}

// sumParts adds parts[1:] to parts[0] in order and returns parts[0].
func sumParts(parts [][]float64) []float64 {
	out := parts[0]
	for _, p := range parts[1:] {
		for q, x := range p {
			out[q] += x
		}
	}
	return out
}
