package prune

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
)

// stateFormat is the format of a State written as JSON.
const stateFormat = "prune-state/1"

// State is the state of a run after a complete round, all Run needs to
// continue it to the result of the uninterrupted run (see Settings.Resume):
// the network, rounds and removals done, the error-rise reference, the
// predicted ΔE kept, the metrics of the network given and of Net, the history
// (a caller may keep only its later part), the states of the settings'
// random sources (Retrain.Src, then the method's) and the reason the run
// ended, if it did. Its JSON has null for NaN and infinities.
type State struct {
	Net                  *nn.Network
	Rounds, Steps        int
	Reference, Predicted float64
	Start, Current       Eval
	History              []Step
	RoundList            []Round
	Issues               []Issue
	Sources              [][]byte
	Stopped              string
}

// sources returns the random sources of the settings whose state a State
// keeps.
func (s *Settings) sources() []rand.Source {
	var src []rand.Source
	if s.Retrain != nil {
		src = append(src, s.Retrain.Src)
	}
	switch m := s.Method.(type) {
	case OBD:
		src = append(src, m.Src)
	case WoodburyOBS:
		src = append(src, m.Src)
	case BlockOBS:
		src = append(src, m.Src)
	}
	return src
}

// state returns the state of the runner after its last complete round.
func (r *runner) state() (*State, error) {
	st := &State{
		Net: r.net, Rounds: r.round, Steps: r.step, Reference: r.ref, Predicted: r.totalPred,
		Start: r.res.Start, Current: r.cur,
		History: r.res.History, RoundList: r.res.Rounds, Issues: r.res.Health.Issues,
		Stopped: r.res.Stopped,
	}
	for _, src := range r.cfg.sources() {
		var b []byte
		if m, ok := src.(encoding.BinaryMarshaler); ok {
			var err error
			if b, err = m.MarshalBinary(); err != nil {
				return nil, fmt.Errorf("prune: state of a random source: %w", err)
			}
		}
		st.Sources = append(st.Sources, b)
	}
	return st, nil
}

// resume sets the runner to the state st.
func (r *runner) resume(st *State) error {
	if st.Net == nil {
		return errors.New("prune: the state to resume has no network")
	}
	if st.Net.NumParams() != r.W {
		return fmt.Errorf("prune: the state to resume has %d parameters, the network %d", st.Net.NumParams(), r.W)
	}
	if err := st.Net.CheckFinite(); err != nil {
		return fmt.Errorf("prune: the state to resume: %w", err)
	}
	srcs := r.cfg.sources()
	if len(st.Sources) != len(srcs) {
		return fmt.Errorf("prune: the state to resume holds %d random sources, the settings have %d", len(st.Sources), len(srcs))
	}
	for i, src := range srcs {
		if st.Sources[i] == nil {
			continue
		}
		u, ok := src.(encoding.BinaryUnmarshaler)
		if !ok {
			return fmt.Errorf("prune: random source %d of the settings cannot take the state resumed", i)
		}
		if err := u.UnmarshalBinary(st.Sources[i]); err != nil {
			return fmt.Errorf("prune: random source %d: %w", i, err)
		}
	}
	r.net = st.Net.Clone()
	r.live = r.net.NumLive()
	r.round, r.step = st.Rounds, st.Steps
	r.ref, r.totalPred = st.Reference, st.Predicted
	r.cur = st.Current
	r.res = &Result{
		Net: r.net, Start: st.Start, Stopped: st.Stopped,
		History: slices.Clone(st.History), Rounds: slices.Clone(st.RoundList),
		Health: Health{Issues: slices.Clone(st.Issues)},
	}
	return nil
}

// jf is a float64 written as null when it is not finite.
type jf float64

func (v jf) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(v))
}

func (v *jf) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = jf(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*v = jf(f)
	return nil
}

// historyJSON is the history by columns, the names left out: they
// follow from the indices.
type historyJSON struct {
	Step, Round, Index  []int
	Saliency, Predicted []jf
	Real, Loss, Error   []jf
	Live                []int
	Undone              []int // the positions of the undone removals
}

type roundJSON struct {
	Round, Removed, Live     int
	Predicted, Real, Damping jf
	Decay                    jf
	Rebuilds                 int
	Joint                    bool  `json:",omitempty"`
	Memory                   int64 `json:",omitempty"`
	Pruned, Retrained        Eval
	Retrain                  *nn.TrainResult `json:",omitempty"`
}

type issueJSON struct {
	Round, Step, Index int
	Kind               string
	Lambda             jf
	Message            string
}

type stateJSON struct {
	Format               string
	Net                  json.RawMessage
	Rounds, Steps        int
	Reference, Predicted jf
	Start, Current       Eval
	History              historyJSON
	RoundList            []roundJSON
	Issues               []issueJSON
	Sources              [][]byte
	Stopped              string `json:",omitempty"`
}

// MarshalJSON writes the state as JSON, the network in the model format
// of modelio.WriteJSON.
func (st *State) MarshalJSON() ([]byte, error) {
	var net bytes.Buffer
	if err := modelio.WriteJSON(&net, st.Net); err != nil {
		return nil, err
	}
	j := stateJSON{
		Format: stateFormat, Net: net.Bytes(), Rounds: st.Rounds, Steps: st.Steps,
		Reference: jf(st.Reference), Predicted: jf(st.Predicted), Start: st.Start, Current: st.Current,
		Sources: st.Sources, Stopped: st.Stopped,
		RoundList: make([]roundJSON, len(st.RoundList)), Issues: make([]issueJSON, len(st.Issues)),
	}
	h := &j.History
	n := len(st.History)
	h.Step, h.Round, h.Index, h.Live = make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	h.Saliency, h.Predicted, h.Real, h.Loss, h.Error = make([]jf, n), make([]jf, n), make([]jf, n), make([]jf, n), make([]jf, n)
	h.Undone = []int{}
	for i, s := range st.History {
		h.Step[i], h.Round[i], h.Index[i], h.Live[i] = s.Step, s.Round, s.Index, s.Live
		h.Saliency[i], h.Predicted[i], h.Real[i], h.Loss[i], h.Error[i] = jf(s.Saliency), jf(s.Predicted), jf(s.Real), jf(s.Loss), jf(s.Error)
		if s.Undone {
			h.Undone = append(h.Undone, i)
		}
	}
	for i, r := range st.RoundList {
		j.RoundList[i] = roundJSON{r.Round, r.Removed, r.Live, jf(r.Predicted), jf(r.Real), jf(r.Damping), jf(r.Decay), r.Rebuilds, r.Joint, r.Memory, r.Pruned, r.Retrained, r.Retrain}
	}
	for i, is := range st.Issues {
		j.Issues[i] = issueJSON{is.Round, is.Step, is.Index, is.Kind, jf(is.Lambda), is.Message}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a state written by MarshalJSON.
func (st *State) UnmarshalJSON(b []byte) error {
	var j stateJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("prune: state: %w", err)
	}
	if j.Format != stateFormat {
		return fmt.Errorf("prune: state has format %q, want %q", j.Format, stateFormat)
	}
	net, err := modelio.ReadJSON(bytes.NewReader(j.Net))
	if err != nil {
		return fmt.Errorf("prune: state: network: %w", err)
	}
	if j.Rounds < 0 || j.Steps < 0 || len(j.RoundList) != j.Rounds {
		return fmt.Errorf("prune: state: %d rounds and %d steps", j.Rounds, j.Steps)
	}
	*st = State{
		Net: net, Rounds: j.Rounds, Steps: j.Steps, Reference: float64(j.Reference), Predicted: float64(j.Predicted),
		Start: j.Start, Current: j.Current, Sources: j.Sources, Stopped: j.Stopped,
		RoundList: make([]Round, len(j.RoundList)), Issues: make([]Issue, len(j.Issues)),
	}
	h := j.History
	n := len(h.Index)
	for _, c := range []int{len(h.Step), len(h.Round), len(h.Live), len(h.Saliency), len(h.Predicted), len(h.Real), len(h.Loss), len(h.Error)} {
		if c != n {
			return errors.New("prune: state: the columns of the history differ in length")
		}
	}
	st.History = make([]Step, n)
	for i := range st.History {
		q := h.Index[i]
		if q < 0 || q >= net.NumParams() {
			return fmt.Errorf("prune: state: removal %d of parameter %d, outside the network", i+1, q)
		}
		st.History[i] = Step{Step: h.Step[i], Round: h.Round[i], Index: q, Name: net.ParamAt(q).String(),
			Saliency: float64(h.Saliency[i]), Predicted: float64(h.Predicted[i]), Real: float64(h.Real[i]),
			Loss: float64(h.Loss[i]), Error: float64(h.Error[i]), Live: h.Live[i]}
	}
	for _, i := range h.Undone {
		if i < 0 || i >= n {
			return fmt.Errorf("prune: state: undone removal %d outside the history", i)
		}
		st.History[i].Undone = true
	}
	for i, r := range j.RoundList {
		st.RoundList[i] = Round{Round: r.Round, Removed: r.Removed, Live: r.Live, Predicted: float64(r.Predicted), Real: float64(r.Real),
			Decay: float64(r.Decay), Damping: float64(r.Damping), Rebuilds: r.Rebuilds, Joint: r.Joint, Memory: r.Memory, Pruned: r.Pruned, Retrained: r.Retrained, Retrain: r.Retrain}
	}
	for i, is := range j.Issues {
		st.Issues[i] = Issue{Round: is.Round, Step: is.Step, Kind: is.Kind, Index: is.Index, Lambda: float64(is.Lambda), Message: is.Message}
	}
	return nil
}
