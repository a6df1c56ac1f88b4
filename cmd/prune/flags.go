package main

import (
	"encoding"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"
)

// fieldFlags names the flags of the settings fields whose flag is not the
// field's name in kebab case (FullSpectrum: full-spectrum); an empty name
// means a field that no flag sets directly.
var fieldFlags = map[string]string{
	"MaxBytes":     "max-memory",
	"Name":         "data", // of datasets.Spec
	"MNISTDir":     "mnist-dir",
	"MaxCSVBytes":  "max-csv-size",
	"Optimize":     "optimize-hyper",
	"MemoryLimit":  "max-memory",
	"TargetLive":   "target-weights",
	"Sparsity":     "target-sparsity",
	"ErrorRise":    "stop-error-rise",
	"BatchSize":    "batch",
	"LearningRate": "lr",
	"Log":          "",
	"Progress":     "",
}

// flagOf returns the flag of the settings field named field.
func flagOf(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	var b strings.Builder
	for i, r := range field {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// decodeFlags sets each field of the struct that dst points to whose flag
// the command has (given or not) to the flag's value, a string through the
// field's UnmarshalText where it has one.
func decodeFlags(c *cli.Context, dst any) error {
	v := reflect.ValueOf(dst).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := flagOf(v.Type().Field(i).Name)
		if name == "" || c.Value(name) == nil {
			continue
		}
		f := v.Field(i)
		x := reflect.ValueOf(c.Value(name))
		if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok && x.Kind() == reflect.String {
			if err := u.UnmarshalText([]byte(x.String())); err != nil {
				return flagValueError(name, x.String(), err)
			}
		} else if x.IsValid() && x.Type().ConvertibleTo(f.Type()) && (f.Kind() == reflect.String) == (x.Kind() == reflect.String) {
			f.Set(x.Convert(f.Type()))
		}
	}
	return nil
}

// copyFields sets each field of the struct that dst points to to the field
// of the struct src with the same name and type, if any.
func copyFields(dst, src any) {
	d, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src)
	for i := 0; i < d.NumField(); i++ {
		if f := sv.FieldByName(d.Type().Field(i).Name); f.IsValid() && f.Type() == d.Field(i).Type() {
			d.Field(i).Set(f)
		}
	}
}

// settingsField matches a settings field named in a library's message.
var settingsField = regexp.MustCompile(`Settings\.([A-Z][A-Za-z]*)`)

// flagWords returns err with the settings fields its message names
// ("Settings.Damping") replaced by their flags (--damping): a usage error
// for an invalid setting, err itself when it names no field.
func flagWords(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var fe interface{ SettingsField() string }
	field := errors.As(err, &fe)
	if !settingsField.MatchString(msg) {
		// A message naming its field by name alone ("datasets: N -1: …")
		// becomes one naming the flag ("--n -1: …").
		if f := ""; field {
			f = fe.SettingsField()
			if _, rest, ok := strings.Cut(msg, f+" "); ok {
				return &usageError{Flag: flagOf(f), Msg: "--" + flagOf(f) + " " + rest}
			}
		}
		return err
	}
	if field {
		// The package's prefix goes: the message starts with the flag.
		msg = msg[settingsField.FindStringIndex(msg)[0]:]
	}
	msg = settingsField.ReplaceAllStringFunc(msg, func(s string) string { return "--" + flagOf(s[len("Settings."):]) })
	if field {
		return &usageError{Flag: flagOf(fe.SettingsField()), Msg: msg}
	}
	return errors.New(msg)
}

// libraryError returns err, an error of a library's Validate method, as a
// usage error: naming the flag of the field it names (flagWords), else with
// the library's message.
func libraryError(err error) error {
	var ue *usageError
	if fe := flagWords(err); errors.As(fe, &ue) {
		return fe
	}
	return &usageError{Msg: strings.TrimPrefix(trimPackagePrefix(err.Error()), "prune: ")}
}
