package prune_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/prune"
)

// infSaliency scores every parameter +Inf.
type infSaliency struct{}

func (infSaliency) Need() prune.Need { return prune.NeedNone }

func (infSaliency) Begin(ctx context.Context, p *hessian.Problem, env *prune.Env) (prune.Scorer, error) {
	return infScorer{}, nil
}

type infScorer struct{}

func (infScorer) Score(sal, pred, w []float64) error {
	for i := range sal {
		sal[i], pred[i] = math.Inf(1), math.Inf(1)
	}
	return nil
}

func (infScorer) Remove(i int, w []float64) error {
	w[i] = 0
	return nil
}

// Removing a parameter of saliency +Inf is a health issue.
func TestRunInfiniteSaliencyIsAnIssue(t *testing.T) {
	net, d := regressionMLP(t, 12)
	res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: infSaliency{}, PerRound: 2, MaxRounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, is := range res.Health.Issues {
		if is.Kind == prune.IssueNotFinite && strings.Contains(is.Message, "+Inf") {
			n++
		}
	}
	if res.Health.OK() || n != 2 {
		t.Errorf("health %+v, want 2 infinite-saliency issues", res.Health)
	}
}

// A damping above the escalation's cap is lowered, and said so.
func TestOBSDampingLowered(t *testing.T) {
	net, d := regressionMLP(t, 13)
	res, err := prune.Run(context.Background(), net, d, &prune.Settings{Method: prune.OBS{Damping: 1e308}, PerRound: 1, MaxRounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Health.Issues) != 1 {
		t.Fatalf("issues %+v", res.Health.Issues)
	}
	is := res.Health.Issues[0]
	if is.Kind != prune.IssueDamping || !strings.Contains(is.Message, "lowered") || strings.Contains(is.Message, "raised") || !(is.Lambda < 1e308) || res.Rounds[0].Damping != is.Lambda {
		t.Errorf("issue %+v, round damping %v", is, res.Rounds[0].Damping)
	}
}
