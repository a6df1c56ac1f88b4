package datasets

import (
	"errors"
	"reflect"
	"testing"
)

func TestSpecRecordRoundTrip(t *testing.T) {
	s := Spec{Name: "sine", Options: Options{Seed: 1<<63 + 5, ValidFraction: 0.25, N: 50, Standardize: true, MaxCSVBytes: 7}}
	meta := map[string]any{}
	s.Record(meta)
	got := Recorded(meta)
	want := s
	want.MaxCSVBytes = 0 // a limit, not recorded
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("Recorded = %+v, want %+v", got, want)
	}
	if Recorded(map[string]any{MetaKey: "mnist"}) != nil || Recorded(nil) != nil {
		t.Error("Recorded of no recorded object is not nil")
	}
}

func TestSpecWithRecorded(t *testing.T) {
	rec := &Spec{Name: "sine", Options: Options{Seed: 3, N: 50, Standardize: true}}
	flags := Spec{Name: "sine", Options: Options{Seed: 7, N: 9, MaxCSVBytes: 11}}
	given := func(f string) bool { return f == "Seed" }
	got := flags.WithRecorded(rec, given)
	want := Spec{Name: "sine", Options: Options{Seed: 7, N: 50, Standardize: true, MaxCSVBytes: 11}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithRecorded = %+v, want %+v", got, want)
	}
	other := Spec{Name: "xor", Options: Options{Seed: 1}}
	if got := other.WithRecorded(rec, func(f string) bool { return f == "Name" }); !reflect.DeepEqual(got, other) {
		t.Errorf("another name given: %+v, want %+v", got, other)
	}
	if got := flags.WithRecorded(nil, given); !reflect.DeepEqual(got, flags) {
		t.Errorf("nothing recorded: %+v, want %+v", got, flags)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, c := range []struct {
		s     Spec
		field string
	}{
		{Spec{Name: "xor"}, ""},
		{Spec{Name: "xor", Options: Options{ValidFraction: 1}}, "ValidFraction"},
		{Spec{Name: "xor", Options: Options{Targets: -1}}, "Targets"},
		{Spec{Name: "xor", Options: Options{N: -1}}, "N"},
		{Spec{Name: "xor", Options: Options{TestN: -1}}, "TestN"},
		{Spec{Name: "parity99"}, "Name"},
		{Spec{Name: ""}, "Name"},
		{Spec{Name: "xor", Options: Options{Test: "t.csv"}}, "Test"},
		{Spec{Name: "a.csv", Options: Options{Test: "t.csv"}}, ""},
	} {
		err := c.s.Validate()
		var fe *FieldError
		if c.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.s, err)
			}
			continue
		}
		if !errors.As(err, &fe) || fe.SettingsField() != c.field {
			t.Errorf("%+v: error %v, want one about %s", c.s, err, c.field)
		}
	}
	if got := (&Spec{Name: "a.csv", Options: Options{Test: "t.csv"}}).Inputs(); !reflect.DeepEqual(got, []string{"a.csv", "t.csv"}) {
		t.Errorf("Inputs = %v", got)
	}
	if got := (&Spec{Name: "xor"}).Inputs(); got != nil {
		t.Errorf("Inputs of xor = %v", got)
	}
}
