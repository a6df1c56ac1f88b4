package runreport

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/prune/nn"
)

// TestCompactHistory checks that the history of a large layer-wise run is
// listed as a sample with a summary by round and layer that accounts for
// every removal, and in full when asked.
func TestCompactHistory(t *testing.T) {
	var steps []Step
	sizes := []int{235200, 30000, 1000}
	live := 266200
	for l, k := range sizes {
		for i := range k {
			live--
			steps = append(steps, Step{Step: len(steps) + 1, Round: 1, Name: fmt.Sprintf("W%d[%d][%d]", l, i/100, i%100),
				Saliency: Num(float64(i)), Predicted: Num(math.NaN()), Real: Num(math.NaN()), Loss: Num(math.NaN()), Live: live})
		}
	}
	steps[5].Undone = true
	kept, sample, groups := Compact(steps, nil, false)
	if len(kept) > HistoryCap || sample == nil || sample.Of != len(steps) || sample.Kept != len(kept) {
		t.Fatalf("%d kept of %d, sample %+v", len(kept), len(steps), sample)
	}
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3", len(groups))
	}
	total := 0
	for l, g := range groups {
		total += g.Removed + g.Undone
		want := sizes[l]
		if l == 0 {
			want--
		}
		if g.Layer != l || g.Removed != want || g.Weights != want || g.SaliencyMin != 0 || g.SaliencyMax != Num(float64(sizes[l]-1)) || !math.IsNaN(float64(g.Predicted)) {
			t.Errorf("group %d: %+v", l, g)
		}
	}
	if total != len(steps) {
		t.Errorf("groups account for %d removals of %d", total, len(steps))
	}
	// The first and last removal of each layer, and the undone one, are
	// listed.
	has := map[int]bool{}
	for _, s := range kept {
		has[s.Step] = true
	}
	for _, st := range []int{1, 6, 235200, 235201, 265200, 265201, 266200} {
		if !has[st] {
			t.Errorf("step %d not listed", st)
		}
	}
	b, err := CSV(kept)
	if err != nil || len(b) > 200<<10 {
		t.Errorf("history.csv of the sample: %d bytes, %v", len(b), err)
	}
	if all, s, g := Compact(steps, nil, true); len(all) != len(steps) || s != nil || g != nil {
		t.Errorf("full: %d listed", len(all))
	}
	if all, s, g := Compact(steps[:HistoryCap], nil, false); len(all) != HistoryCap || s != nil || g != nil {
		t.Errorf("a small run: %d of %d listed", len(all), HistoryCap)
	}
}

func TestSalienciesOf(t *testing.T) {
	net, err := nn.New([]int{2, 2}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	sal := []float64{4, math.NaN(), 1, 3, 2, math.NaN()}
	s := SalienciesOf(sal, net, true)
	if s.Params != 6 || s.Scored != 4 || s.Pruned != 2 || s.Min != 1 || s.Max != 4 || s.Median != 2.5 || len(s.All) != 4 || s.All[1].Index != 2 {
		t.Errorf("%+v", s)
	}
	if s.Smallest[0].Index != 2 || s.Smallest[0].Name != net.ParamAt(2).String() || s.Smallest[3].Saliency != 4 {
		t.Errorf("smallest %+v", s.Smallest)
	}
	if s := SalienciesOf(sal[:5], net, false); s.Median != 2.5 || s.All != nil {
		t.Errorf("five parameters, all false: %+v", s)
	}
	if s := SalienciesOf([]float64{5, 1, 3}, net, false); s.Median != 3 {
		t.Errorf("median of 5, 1, 3: %v", s.Median)
	}
}

// TestSaliencySummaryText checks the text of the saliency command: the
// damping and objective lines only where they apply, and the list asked for.
func TestSaliencySummaryText(t *testing.T) {
	net, err := nn.New([]int{2, 1}, []nn.Activation{nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	sal := []float64{0.3, math.NaN(), 0.1}
	for _, all := range []bool{false, true} {
		s := SaliencySummary{Method: "magnitude", Model: "m.json", Data: "d", Damping: Num(math.NaN()), Saliencies: SalienciesOf(sal, net, all)}
		var b strings.Builder
		if err := s.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		text := b.String()
		title := "smallest:"
		if all {
			title = "all, in canonical order:"
		}
		if strings.Contains(text, "damping") || strings.Contains(text, "objective") || !strings.Contains(text, title) ||
			!strings.Contains(text, "3 (2 scored, 1 pruned: NaN)") || strings.Contains(text, "W0[0][1]") {
			t.Errorf("all %v:\n%s", all, text)
		}
		if first := strings.Index(text, "W0[0][0]") < strings.Index(text, "b0[0]"); first != all {
			t.Errorf("all %v: order of the list:\n%s", all, text)
		}
	}
	s := SaliencySummary{Damping: 0.01, Objective: "trained", Decay: 2}
	var b strings.Builder
	s.WriteText(&b)
	if !strings.Contains(b.String(), "damping  λ = 0.01") && !strings.Contains(b.String(), "λ = 0.01") || !strings.Contains(b.String(), "trained (λN = 2)") {
		t.Errorf("text:\n%s", b.String())
	}
}
