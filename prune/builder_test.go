package prune_test

import (
	"context"
	"math"
	"testing"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/prune"
)

// onlyProducts hides every fast path of a curvature but its products.
type onlyProducts struct{ c hessian.Curvature }

func (o onlyProducts) Dim() int                  { return o.c.Dim() }
func (o onlyProducts) MulVecTo(dst, v []float64) { o.c.MulVecTo(dst, v) }

// OBS and OBD take a curvature of the program's own and give what the
// named kind gives.
func TestSaliencyBuilders(t *testing.T) {
	net, X, Y := maskedMLP(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		named, by prune.Saliency
	}{
		{"obs", prune.OBS{Curvature: prune.GaussNewton, Damping: 0.01, FixedDamping: true},
			prune.OBS{Builder: func(p *hessian.Problem) hessian.Curvature { return onlyProducts{hessian.GaussNewton{P: p}} }, Damping: 0.01, FixedDamping: true}},
		{"obd", prune.OBD{Curvature: prune.GaussNewton},
			prune.OBD{Builder: func(p *hessian.Problem) hessian.Curvature { return onlyProducts{hessian.GaussNewton{P: p}} }}},
	} {
		a, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: tc.named})
		if err != nil {
			t.Fatal(err)
		}
		b, err := prune.Scores(ctx, net, X, Y, &prune.Settings{Method: tc.by})
		if err != nil {
			t.Fatal(err)
		}
		for q := range a {
			if math.IsNaN(a[q]) != math.IsNaN(b[q]) || math.Abs(a[q]-b[q]) > 1e-9*(1+math.Abs(a[q])) {
				t.Errorf("%s: parameter %d: named %v, built %v", tc.name, q, a[q], b[q])
			}
		}
	}
	// A curvature without the fast path a method needs is an error from
	// Validate, not a panic.
	for _, s := range []prune.Saliency{prune.OBS{Curvature: prune.LevenbergMarquardt}, prune.OBD{Curvature: prune.Recursive}, prune.OBD{Curvature: 99}} {
		if err := (&prune.Settings{Method: s}).Validate(); err == nil {
			t.Errorf("%+v is valid", s)
		}
	}
}

// The registry's kinds: the dense ones are Densers, and the diagonal of
// every exact kind is that of its dense matrix.
func TestKindRegistry(t *testing.T) {
	net, X, Y := maskedMLP(t)
	ctx := context.Background()
	p := hessian.Live(net, X, Y)
	for _, k := range hessian.Kinds() {
		if k.InverseOnly {
			if k.New != nil || k.Dense || k.Diagonal {
				t.Errorf("%s: an inverse-only kind with a builder or fast paths", k.Name)
			}
			continue
		}
		if k.LowRank {
			// The planner's memory of a low-rank kind is that of its
			// Woodbury OBS.
			N, _ := X.Dims()
			o := prune.WoodburyOBS{GaussNewton: k.Name == "gn-lowrank", Samples: N}
			if k.New != nil || k.Dense || k.Diagonal || k.LowRankMemory(p, N) != o.MemoryBytes(p) {
				t.Errorf("%s: a low-rank kind with a builder or fast paths, or memory %d, Woodbury OBS %d", k.Name, k.LowRankMemory(p, N), o.MemoryBytes(p))
			}
			continue
		}
		c := k.New(p, hessian.KindOptions{Probes: 5})
		if _, ok := c.(hessian.Denser); ok != k.Dense {
			t.Errorf("%s: Denser %v, Dense %v", k.Name, ok, k.Dense)
		}
		if !k.Diagonal {
			continue
		}
		d := make([]float64, p.Dim())
		if err := k.DiagTo(ctx, p, hessian.KindOptions{Probes: 5}, d); err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		if !k.Dense {
			continue
		}
		H, err := hessian.Dense(ctx, c, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range d {
			if math.Abs(v-H.At(i, i)) > 1e-9*(1+math.Abs(v)) {
				t.Errorf("%s: diagonal %d is %v, dense %v", k.Name, i, v, H.At(i, i))
			}
		}
	}
	if _, err := hessian.KindNamed("bogus"); err == nil {
		t.Error("kind bogus found")
	}
	for _, c := range []prune.Curvature{prune.Exact, prune.GaussNewton, prune.Fisher, prune.Recursive, prune.BeckerLeCun, prune.LevenbergMarquardt, prune.Hutchinson} {
		if k, err := c.Kind(); err != nil || k.Name != c.String() {
			t.Errorf("curvature %v: kind %q, %v", c, k.Name, err)
		}
	}
}
