package main

import (
	"errors"
	"testing"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/curvreport"
	"github.com/secondorder/prune/laplace"
	"github.com/urfave/cli/v2"
)

func TestFlagOf(t *testing.T) {
	for field, flag := range map[string]string{"FullSpectrum": "full-spectrum", "Eigen": "eigen", "ProbeSeed": "probe-seed",
		"MaxBytes": "max-memory", "MNISTDir": "mnist-dir", "TestN": "test-n", "Name": "data", "Log": ""} {
		if got := flagOf(field); got != flag {
			t.Errorf("flagOf(%s) = %q, want %q", field, got, flag)
		}
	}
}

func TestFlagWords(t *testing.T) {
	err := flagWords((&curvreport.Settings{Kind: "exact", Damping: 1}).Validate())
	var ue *usageError
	if !errors.As(err, &ue) || ue.Flag != "damping" || ue.Msg != "--damping applies only with --inverse" {
		t.Errorf("field error: %#v", err)
	}
	err = flagWords(errors.New("curvreport: Settings.Inverse: failed; retry with Settings.Damping 0.1"))
	if errors.As(err, &ue) || err.Error() != "curvreport: --inverse: failed; retry with --damping 0.1" {
		t.Errorf("other error: %#v", err)
	}
	// A field error that names its field by name alone, as datasets'.
	err = flagWords((&datasets.Spec{Name: "xor", Options: datasets.Options{TestN: -2}}).Validate())
	if !errors.As(err, &ue) || ue.Flag != "test-n" || ue.Msg != "--test-n -2: must not be negative" {
		t.Errorf("datasets field error: %#v", err)
	}
	plain := errors.New("no settings named")
	if flagWords(plain) != plain || flagWords(nil) != nil {
		t.Errorf("an error naming no setting changed")
	}
}

// decodeFlags sets the fields whose flags the command has, given or not,
// through UnmarshalText for a string flag and a field that has it.
func TestDecodeFlags(t *testing.T) {
	var got laplace.Settings
	var pred laplace.PredictSettings
	var decodeErr error
	app := &cli.App{Name: "x", Commands: []*cli.Command{{
		Name: "c",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "curvature", Value: "gn"},
			&cli.Float64Flag{Name: "alpha"},
			&cli.BoolFlag{Name: "all"},
			&cli.IntFlag{Name: "samples", Value: 7},
			&cli.StringFlag{Name: "method"},
		},
		Action: func(c *cli.Context) error {
			if err := decodeFlags(c, &got); err != nil {
				return err
			}
			decodeErr = decodeFlags(c, &pred)
			return nil
		},
	}}}
	if err := app.Run([]string{"x", "c", "--curvature", "Exact", "--alpha", "0.5", "--all", "--method", "mc"}); err != nil {
		t.Fatal(err)
	}
	if got.Curvature != laplace.Exact || got.Alpha != 0.5 || !got.All || got.Beta != 0 || pred.Samples != 7 || pred.Method != laplace.MonteCarlo || decodeErr != nil {
		t.Errorf("decoded %+v, %+v (%v)", got, pred, decodeErr)
	}
	err := app.Run([]string{"x", "c", "--curvature", "full"})
	var ue *usageError
	if !errors.As(err, &ue) || ue.Flag != "curvature" {
		t.Errorf("bad --curvature: %v", err)
	}
}
