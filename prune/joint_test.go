package prune

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
)

// scoresOf returns the saliencies and predictions of a fresh scorer of sal
// on p with env.
func scoresOf(t *testing.T, sal Saliency, p *hessian.Problem, env *Env) (Scorer, []float64) {
	t.Helper()
	sc, err := sal.Begin(context.Background(), p, env)
	if err != nil {
		t.Fatal(err)
	}
	w := gatherAt(p.Net.RawParams(), p.Params)
	s, pred := make([]float64, len(w)), make([]float64, len(w))
	if err := sc.Score(s, pred, w); err != nil {
		t.Fatal(err)
	}
	return sc, s
}

// The trained objective's penalty μ reaches block and Woodbury OBS as it
// reaches OBS: one block of every parameter with μ is OBS on C + μI, and
// the Woodbury form's λ is its damping plus μ.
func TestDecayInBlockAndWoodburyOBS(t *testing.T) {
	const mu = 0.37
	for _, c := range obsCases(t) {
		env := &Env{Decay: mu}
		_, want := scoresOf(t, OBS{Curvature: GaussNewton, Damping: 1e-3, FixedDamping: true}, c.p, env)
		_, got := scoresOf(t, BlockOBS{Curvature: GaussNewton, Block: c.p.Dim(), Damping: 1e-3, FixedDamping: true}, c.p, env)
		_, without := scoresOf(t, BlockOBS{Curvature: GaussNewton, Block: c.p.Dim(), Damping: 1e-3, FixedDamping: true}, c.p, nil)
		for i := range want {
			if math.Abs(got[i]-want[i]) > equalityTol*math.Max(1, math.Abs(want[i])) {
				t.Fatalf("%s: block OBS with decay, position %d: %v, OBS %v", c.name, i, got[i], want[i])
			}
		}
		if floatsClose(got, without) {
			t.Errorf("%s: the decay does not change block OBS", c.name)
		}
		N, _ := c.p.X.Dims()
		sc, wd := scoresOf(t, WoodburyOBS{Samples: N, Damping: 0.5}, c.p, env)
		_, ref := scoresOf(t, WoodburyOBS{Samples: N, Damping: 0.5 + mu}, c.p, nil)
		if !floatsClose(wd, ref) {
			t.Errorf("%s: Woodbury OBS with decay μ differs from λ + μ", c.name)
		}
		if d := sc.(interface{ Damping() float64 }).Damping(); math.Abs(d-0.5) > 1e-15 {
			t.Errorf("%s: Woodbury damping %v, want 0.5 without the decay", c.name, d)
		}
	}
}

func floatsClose(a, b []float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > equalityTol*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

func TestJointSettingsValidate(t *testing.T) {
	for _, c := range []struct {
		s    Settings
		want string
	}{
		{Settings{Joint: true}, "removes sets"},
		{Settings{Joint: true, Method: OBS{}}, "removes sets"},
		{Settings{Joint: true, Method: OBD{}}, "removes sets"},
		{Settings{Joint: true, Method: WoodburyOBS{}, Budget: 1}, "budget"},
		{Settings{Joint: true, Method: BlockOBS{}, RoundBudget: 1}, "budget"},
		{Settings{Joint: true, Method: BlockOBS{}, ErrorRise: NoRise}, "error-rise"},
		{Settings{Joint: true, Method: WoodburyOBS{}, RebuildEvery: 3}, "rebuilds"},
		{Settings{Method: WoodburyOBS{}, Objective: GradientObjective}, "gradient objective"},
	} {
		err := c.s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %q", c.s, err, c.want)
		}
	}
	for _, s := range []Settings{{Joint: true, Method: WoodburyOBS{}}, {Joint: true, Method: BlockOBS{Rows: true}}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// A joint round removes its set with the multi-weight update: its
// predicted ΔE is OBSSet's on the block-diagonal inverse, and the network
// after it is the start plus OBSSet's update.
func TestRunJointRoundIsOBSSet(t *testing.T) {
	c := obsCases(t)[2]
	p := c.p
	net := p.Net
	W := p.Dim()
	k := W / 3
	sal := BlockOBS{Curvature: GaussNewton, Block: W, Damping: 1e-2, FixedDamping: true}
	res, err := Run(context.Background(), net, nn.Splits{Train: nn.Data{X: p.X, Y: p.Y}}, &Settings{
		Method: sal, Joint: true, PerRound: k, MaxRounds: 1, Objective: LossObjective, NoAudit: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rd := res.Rounds[0]
	if !rd.Joint || rd.Removed != k || rd.Memory != sal.MemoryBytes(p) {
		t.Fatalf("round %+v", rd)
	}
	hinv, _, err := OBS{Curvature: GaussNewton, Damping: 1e-2, FixedDamping: true}.Inverse(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[int]int{}
	for i, q := range p.Params {
		pos[q] = i
	}
	var S []int
	for _, st := range res.History {
		S = append(S, pos[st.Index])
		if !math.IsNaN(st.Predicted) {
			t.Errorf("step %d has a prediction %v of its own", st.Step, st.Predicted)
		}
	}
	w := gatherAt(net.RawParams(), p.Params)
	delta, want, err := OBSSet(hinv, w, S)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rd.Predicted-want) > 1e-9*math.Abs(want) {
		t.Errorf("predicted ΔE %v, OBSSet %v", rd.Predicted, want)
	}
	got := res.Net.RawParams()
	for i, q := range p.Params {
		if v := w[i] + delta[i]; math.Abs(got[q]-v) > 1e-9*math.Max(1, math.Abs(v)) {
			t.Fatalf("parameter %d: %v, OBSSet gives %v", q, got[q], v)
		}
	}
}

func TestLowRankDefaults(t *testing.T) {
	for _, c := range []struct {
		s        Settings
		fraction float64
		joint    bool
	}{
		{Settings{Method: WoodburyOBS{}}, DefaultWoodburyFraction, true},
		{Settings{Method: &WoodburyOBS{}, PerRound: 7}, 0, true},
		{Settings{Method: WoodburyOBS{Greedy: true}}, DefaultWoodburyFraction, false},
		{Settings{Method: WoodburyOBS{}, Budget: 1}, DefaultWoodburyFraction, false},
		{Settings{Method: WoodburyOBS{}, ErrorRise: NoRise}, DefaultWoodburyFraction, false},
		{Settings{Method: BlockOBS{Block: 4}}, DefaultFraction, false},
	} {
		got := c.s.withDefaults()
		if got.Fraction != c.fraction || got.Joint != c.joint {
			t.Errorf("%+v: fraction %v, joint %v; want %v, %v", c.s, got.Fraction, got.Joint, c.fraction, c.joint)
		}
	}
}
