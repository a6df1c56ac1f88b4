package runreport

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"gonum.org/v1/gonum/mat"
)

func testReport() *Report {
	m := nn.Metrics{N: 4, MeanLoss: 0.5, Loss: 2, Accuracy: 0.75}
	r := &Report{Format: ReportFormat, Method: "OBS", Stopped: "target", Params: 10, LiveBefore: 10, LiveAfter: 8,
		Start: Eval{Train: m}, Final: Eval{Train: m}, Manifest: Manifest{Settings: Settings{Model: "m.json", Objective: "trained", ObjectiveDecay: 0.01}}}
	r.Rounds = []Round{{Round: 1, Live: 9, Pruned: Eval{Train: m}, Damping: 1e-3}, {Round: 2, Live: 8, Pruned: Eval{Train: m}, Damping: 0.1}}
	r.History = []Step{
		{Step: 1, Round: 1, Live: 9, Loss: 1, Predicted: 0.5, Real: 0.4, Name: "W0[0][0]"},
		{Step: 2, Round: 2, Live: 8, Loss: 1, Predicted: 0.5, Real: 0.6, Name: "W0[0][1]", Undone: true},
	}
	return r
}

// TestReportWrite checks that Write gives the report's files, with dE.png
// only when some removal has a predicted ΔE, and removes an earlier one.
func TestReportWrite(t *testing.T) {
	dir := t.TempDir()
	for _, predicted := range []bool{true, false} {
		r := testReport()
		if !predicted {
			for i := range r.History {
				r.History[i].Predicted = Num(math.NaN())
			}
		}
		var set atomicfile.Set
		paths, err := r.Write(&set, dir)
		if err == nil {
			err = set.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if predicted {
			want = 4
		}
		if len(paths) != want || len(r.Files) != want {
			t.Fatalf("predicted %v: paths %v, files %v", predicted, paths, r.Files)
		}
		_, err = os.Stat(filepath.Join(dir, DeltaFile))
		if (err == nil) != predicted {
			t.Errorf("predicted %v: dE.png: %v", predicted, err)
		}
		var back Report
		if err := json.Unmarshal(mustRead(t, filepath.Join(dir, ReportFile)), &back); err != nil || back.Removals != 2 || back.LiveAfter != 8 {
			t.Errorf("report.json: %v, %+v", err, back)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckpointRoundTrip checks that an encoded checkpoint decodes to the
// same bytes and that bad ones are refused with a reason.
func TestCheckpointRoundTrip(t *testing.T) {
	net, err := nn.New([]int{2, 2, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	ck := Checkpoint{Format: CheckpointFormat, Manifest: Manifest{Settings: Settings{Model: "m.json"}}, State: RunState{LiveBefore: 9},
		Engine: &prune.State{Net: net, Rounds: 1, Steps: 1, History: []prune.Step{{Step: 1, Round: 1, Live: 8}},
			RoundList: []prune.Round{{Round: 1, Removed: 1, Live: 8}}}}
	b, err := ck.Encode(false)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Encode(false)
	if !bytes.Equal(b, again) {
		t.Errorf("decoded checkpoint encodes to\n%s\nwant\n%s", again, b)
	}
	ck.Engine.Stopped = "nonsense"
	odd, _ := ck.Encode(false)
	for _, bad := range []string{`{"format":"prune-checkpoint/1"}`, `{"format":"x"}`, `{"format":"` + CheckpointFormat + `"}`, `[`,
		string(odd), string(b) + "{}"} {
		if _, err := DecodeCheckpoint([]byte(bad)); err == nil {
			t.Errorf("%.60s… decoded without error", bad)
		}
	}
}

// TestSummary checks the counts, the damping range and the text of a summary.
func TestSummary(t *testing.T) {
	s := testReport().Summarize("rep", []string{"p.json"})
	if s.Removals != 2 || s.Undone != 1 || s.Rounds != 2 || s.Damping == nil || s.Damping.Min != 1e-3 || s.Damping.Max != 0.1 || s.Objective != "trained" {
		t.Fatalf("summary %+v", s)
	}
	var b strings.Builder
	s.WriteText(&b, "none")
	for _, want := range []string{"pruned m.json with OBS", "10 → 8 of 10 parameters live in 2 rounds (2 removals, 1 undone)",
		"before    10         0.5     75.00%", "damping: λ from 0.001 to 0.1", "objective: trained (weight decay λ = 0.01)", "health: none", "wrote p.json"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestMemoryNeed checks the planned bytes of dense OBS against the two
// W×W matrices and the build buffer it holds, and the refusal's text.
func TestMemoryNeed(t *testing.T) {
	net, err := nn.New([]int{3, 4, 2}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	X, Y := mat.NewDense(5, 3, nil), mat.NewDense(5, 2, nil)
	w := int64(net.NumParams())
	need, what := MemoryNeed(prune.OBS{}, "exact", net, X, Y)
	if need < 2*8*w*w || !strings.Contains(what, "exact Hessian over 26 live parameters") {
		t.Errorf("need %d (W = %d), %q", need, w, what)
	}
	if need, what := MemoryNeed(prune.Magnitude{}, "", net, X, Y); need != 0 || what != "" {
		t.Errorf("magnitude: %d, %q", need, what)
	}
	if s := OverLimit(what, 2048, 1024); !strings.Contains(s, "needs about 2") || !strings.Contains(s, "limit of 1") {
		t.Errorf("OverLimit: %q", s)
	}
}

// TestReportOfProvenance checks the report of a result and that the
// model's provenance keeps the inputs by content and drops their paths.
func TestReportOfProvenance(t *testing.T) {
	net, err := nn.New([]int{2, 2, 1}, []nn.Activation{nn.Tanh, nn.Linear}, nn.MSE)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(rand.NewPCG(1, 2))
	res := &prune.Result{Net: net, Stopped: "target", History: []prune.Step{{Step: 1, Round: 1, Live: 8}, {Step: 2, Round: 1, Live: 7}},
		Rounds: []prune.Round{{Round: 1, Removed: 2, Live: 7}}}
	r := ReportOf(res, false, false)
	if r.Params != 9 || r.LiveAfter != 9 || r.Removals != 2 || len(r.Rounds) != 1 || r.Stopped != "target" || r.Format != ReportFormat {
		t.Fatalf("report %+v", r)
	}
	r.Manifest = Manifest{Inputs: []Input{{Role: "model", Path: "/tmp/m.json", Bytes: 3, SHA256: "abc"}},
		Settings: Settings{Model: "/tmp/m.json", Output: "p.json", Report: "rep", Flags: map[string]string{"model": "/tmp/m.json", "per-round": "1"}}}
	p := r.Provenance("v1")
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "/tmp/m.json") || strings.Contains(string(b), "p.json") || !strings.Contains(string(b), `"sha256":"abc"`) ||
		!strings.Contains(string(b), `"per-round":"1"`) || p["removals"] != 2 || p["version"] != "v1" {
		t.Errorf("provenance %s", b)
	}
}
