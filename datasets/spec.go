package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/secondorder/prune/nn"
)

// MetaKey is the key of a model's metadata under which Record keeps the
// data set the model was trained on.
const MetaKey = "data"

// Spec names a data set and the options it is drawn with. Recorded in a
// model's metadata (Record), it lets a later program draw the same splits
// (Recorded, WithRecorded).
type Spec struct {
	Name string `json:"name"`
	Options
}

// FieldError is an invalid field of a Spec: Field names it, Msg gives the
// value and the reason.
type FieldError struct {
	Field, Msg string
}

// Error returns the message with the field's name.
func (e *FieldError) Error() string { return "datasets: " + e.Field + " " + e.Msg }

// SettingsField returns the name of the field at fault.
func (e *FieldError) SettingsField() string { return e.Field }

// Validate returns a *FieldError for the first invalid field of s: an
// unknown name, an option out of range, or a test file for a data set that
// is not a CSV file. An empty name is an error too.
func (s *Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{field, fmt.Sprintf(format, args...)}
	}
	switch {
	case !(s.ValidFraction >= 0 && s.ValidFraction < 1):
		return bad("ValidFraction", "%v: not in [0, 1)", s.ValidFraction)
	case s.Targets < 0:
		return bad("Targets", "%d: must not be negative", s.Targets)
	case s.N < 0:
		return bad("N", "%d: must not be negative", s.N)
	case s.TestN < 0:
		return bad("TestN", "%d: must not be negative", s.TestN)
	}
	kind, _, err := Parse(s.Name)
	if err != nil {
		return bad("Name", "%q: %s", s.Name, err.Error()[len("datasets: "):])
	}
	if s.Test != "" && kind != "csv" {
		return bad("Test", "%q: applies to a CSV data set; an .npz data file holds its test set as X_test and y_test", s.Test)
	}
	return nil
}

// Kind returns the kind of data set s names, as Parse does, or "" for a
// name Parse refuses.
func (s *Spec) Kind() string {
	kind, _, _ := Parse(s.Name)
	return kind
}

// Inputs returns the files s reads: the CSV or array file and a CSV test
// file; none for a built-in data set.
func (s *Spec) Inputs() []string {
	switch s.Kind() {
	case "csv":
		if s.Test != "" {
			return []string{s.Name, s.Test}
		}
		return []string{s.Name}
	case "arrays":
		return []string{s.Name}
	}
	return nil
}

// Load loads the data set; see Load.
func (s *Spec) Load() (*nn.Splits, error) {
	o := s.Options
	return Load(s.Name, &o)
}

// Record records s in meta under MetaKey as a plain JSON object, as a
// model file holds it.
func (s *Spec) Record(meta map[string]any) {
	b, err := json.Marshal(s)
	if err != nil {
		panic("datasets: " + err.Error()) // a Spec always encodes
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		panic("datasets: " + err.Error())
	}
	meta[MetaKey] = v
}

// Recorded returns the data set recorded in meta under MetaKey, or nil
// when there is none or it cannot be read.
func Recorded(meta map[string]any) *Spec {
	v, ok := meta[MetaKey]
	if !ok {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var s Spec
	if json.Unmarshal(b, &s) != nil || s.Name == "" {
		return nil
	}
	return &s
}

// WithRecorded returns rec, a recorded data set, with the fields for which
// given reports true taken from s, so that the splits are drawn as they
// were recorded except where the caller chose otherwise. MaxCSVBytes, a
// limit rather than part of the data's definition, is always that of s. A
// nil rec, or a name given that differs from the recorded one, gives s.
func (s Spec) WithRecorded(rec *Spec, given func(field string) bool) Spec {
	if rec == nil || given("Name") && s.Name != rec.Name {
		return s
	}
	out := *rec
	out.MaxCSVBytes = s.MaxCSVBytes
	if given("Name") {
		out.Name = s.Name
	}
	sv, ov := reflect.ValueOf(s.Options), reflect.ValueOf(&out.Options).Elem()
	for i := 0; i < sv.NumField(); i++ {
		if given(sv.Type().Field(i).Name) {
			ov.Field(i).Set(sv.Field(i))
		}
	}
	return out
}
