package chart

import (
	"bytes"
	"image/png"
	"math"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// TestFixRange checks the widening of the ranges gonum/plot cannot draw.
func TestFixRange(t *testing.T) {
	for _, c := range [][2]float64{{1e18, 1e18}, {1e18, 1e18 + 256}, {0, 0}, {-5, -5}, {math.Inf(-1), 1}, {math.NaN(), 0}, {2, 1}, {math.MaxFloat64, math.MaxFloat64}} {
		lo, hi := c[0], c[1]
		FixRange(&lo, &hi)
		if !(hi > lo) || math.IsInf(hi-lo, 0) || hi-lo < 1e-9*math.Max(math.Abs(lo), math.Abs(hi)) {
			t.Errorf("FixRange(%v, %v) = %v, %v", c[0], c[1], lo, hi)
		}
	}
	lo, hi := 1.0, 3.0
	FixRange(&lo, &hi)
	if lo != 1 || hi != 3 {
		t.Errorf("FixRange(1, 3) = %v, %v", lo, hi)
	}
}

// TestSymlog checks the symmetric logarithmic scale and when it
// is chosen.
func TestSymlog(t *testing.T) {
	s := SymLogScale{C: 0.01}
	prev := math.Inf(-1)
	for _, x := range []float64{-1e6, -3, -0.01, -1e-5, 0, 1e-5, 0.01, 3, 1e6} {
		if got := s.inv(s.f(x)); math.Abs(got-x) > 1e-9*math.Max(1, math.Abs(x)) {
			t.Errorf("inv(f(%v)) = %v", x, got)
		}
		if y := s.Normalize(-1e6, 1e6, x); !(y > prev) {
			t.Errorf("Normalize(%v) = %v, not above %v", x, y, prev)
		} else {
			prev = y
		}
	}
	if c := WideSpread([]float64{0.1, 0.2, 0.3, 0.25, 5000}); c != 0.1 {
		t.Errorf("an outlier among small ΔE: linear range %v, want 0.1", c)
	}
	if c := WideSpread([]float64{0.1, 0.2, 0.3, 0.25, 5}); c != 0 {
		t.Errorf("ΔE of one decade: symmetric log axes with c = %v, want linear axes", c)
	}
	ticks := SymLogTicks{C: 0.1}.Ticks(-5000, 5000)
	if len(ticks) < 5 || len(ticks) > 16 {
		t.Errorf("%d ticks: %v", len(ticks), ticks)
	}
	var _ plot.Normalizer = s
}

// TestLegendRoom checks that the top of the y axis leaves the legend a band
// above the data, on linear and symmetric logarithmic axes (and
// logarithmic ones, in TestFrame).
func TestLegendRoom(t *testing.T) {
	p := New("t", "x", "y")
	p.Y.Min, p.Y.Max = 2, 10
	LegendRoom(p)
	if got := p.Y.Scale.Normalize(p.Y.Min, p.Y.Max, 10); math.Abs(got-(1-LegendFraction)) > 1e-12 {
		t.Errorf("linear: the data reach %v of the height", got)
	}
	p = New("t", "x", "y")
	p.Y.Scale = SymLogScale{C: 1}
	p.Y.Min, p.Y.Max = -3, 1e5
	LegendRoom(p)
	if got := p.Y.Scale.Normalize(p.Y.Min, p.Y.Max, 1e5); math.Abs(got-(1-LegendFraction)) > 1e-9 {
		t.Errorf("symlog: the data reach %v of the height", got)
	}
}

// TestRenderDegenerate checks that data of any magnitude, or none, give a
// PNG image of the requested size, and that a drawing gonum/plot refuses
// is an error, not a panic.
func TestRenderDegenerate(t *testing.T) {
	for _, v := range []float64{0, -5, 1e18, 1e300, math.MaxFloat64, -math.MaxFloat64, math.Inf(1), math.NaN()} {
		p := New("t", "x", "y")
		if err := AddSeries(p, "a", 0, []float64{1, 1}, []float64{v, v}, false); err != nil {
			t.Fatal(err)
		}
		q := New("empty", "x", "y")
		Frame(p, q, nil)
		b, err := Render([][]*plot.Plot{{p, nil}, {q}}, 10*vg.Centimeter, 8*vg.Centimeter)
		if err != nil {
			t.Errorf("value %v: %v", v, err)
			continue
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("value %v: %v", v, err)
		}
		if got := img.Bounds().Dx(); got != int(math.Round(10/2.54*DPI)) {
			t.Errorf("value %v: width %d pixels", v, got)
		}
	}
	p := New("log", "x", "y")
	if err := AddPoints(p, "", 0, []float64{1, 2}, []float64{0, 1}); err != nil {
		t.Fatal(err)
	}
	LogY(p)
	if _, err := Render([][]*plot.Plot{{p}}, 10*vg.Centimeter, 8*vg.Centimeter); err == nil || !strings.Contains(err.Error(), "cannot draw the chart") {
		t.Errorf("log axis over 0: error %v", err)
	}
	if _, err := Render(nil, 10*vg.Centimeter, 8*vg.Centimeter); err == nil {
		t.Error("no plots: no error")
	}
}

// legendItems returns the types of the thumbnails of each legend entry of
// p, read by reflection since gonum/plot does not export them.
func legendItems(p *plot.Plot) []string {
	var items []string
	entries := reflect.ValueOf(&p.Legend).Elem().FieldByName("entries")
	for i := range entries.Len() {
		thumbs := entries.Index(i).FieldByName("thumbs")
		var types []string
		for k := range thumbs.Len() {
			types = append(types, thumbs.Index(k).Elem().Type().String())
		}
		items = append(items, strings.Join(types, "+"))
	}
	return items
}

// TestAddSeries checks that a few points are drawn as points and more as a
// line with points, that points that are not finite are left out, and
// that a series of none adds nothing.
func TestAddSeries(t *testing.T) {
	xs := make([]float64, FewPoints+1)
	ys := make([]float64, FewPoints+1)
	for i := range xs {
		xs[i], ys[i] = float64(i), float64(i*i)
	}
	ys[0] = math.NaN()
	p := New("t", "x", "y")
	if err := AddSeries(p, "few", 0, xs, ys, false); err != nil { // FewPoints finite
		t.Fatal(err)
	}
	ys[0] = 0
	if err := AddSeries(p, "many", 1, xs, ys, true); err != nil {
		t.Fatal(err)
	}
	if err := AddSeries(p, "none", 2, []float64{1}, []float64{math.Inf(1)}, false); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(legendItems(p), ", "), "*plotter.Scatter, *plotter.Line+*plotter.Scatter"; got != want {
		t.Errorf("legend thumbnails %s, want %s: points, then a line with points", got, want)
	}
	if p.Y.Max != float64(FewPoints*FewPoints) || p.X.Min != 0 {
		t.Errorf("data range x from %v, y to %v", p.X.Min, p.Y.Max)
	}
	if pts := Finite([]float64{1, math.NaN(), 3}, []float64{1, 2, math.Inf(-1)}); len(pts) != 1 || (pts[0] != plotter.XY{X: 1, Y: 1}) {
		t.Errorf("Finite = %v", pts)
	}
	if Color(3) != Red || Color(13) != Color(3) || len(Dashes(3)) != 0 || len(Dashes(13)) == 0 {
		t.Error("series 13 is not series 3 dashed")
	}
}

// TestFrame checks the margins Frame leaves around the data.
func TestFrame(t *testing.T) {
	p := New("t", "x", "y")
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 100, 0, 78
	Frame(p)
	if p.X.Min != -3 || p.X.Max != 103 || p.Y.Min != -78*0.03 {
		t.Errorf("x %v…%v, y from %v", p.X.Min, p.X.Max, p.Y.Min)
	}
	if got := p.Y.Scale.Normalize(p.Y.Min, p.Y.Max, 78); math.Abs(got-(1-LegendFraction)) > 1e-12 {
		t.Errorf("the data reach %v of the height", got)
	}
	p = New("t", "x", "y")
	LogY(p)
	p.Y.Min, p.Y.Max = 1, 100
	Frame(p)
	if got := p.Y.Scale.Normalize(p.Y.Min, p.Y.Max, 100); p.Y.Min != 1 || math.Abs(got-(1-LegendFraction)) > 1e-12 {
		t.Errorf("log axis: from %v, the data reach %v of the height", p.Y.Min, got)
	}
	p.Legend.Top = false
	p.Y.Min, p.Y.Max = 1, 100
	Frame(p)
	if p.Y.Min != 1 || p.Y.Max != 100 {
		t.Errorf("log axis, legend below: changed to %v…%v", p.Y.Min, p.Y.Max)
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(ts []plot.Tick) []string {
		var l []string
		for _, tk := range ts {
			if tk.Label != "" {
				l = append(l, tk.Label)
			}
		}
		return l
	}
	if got := strings.Join(labels(LogTicks{}.Ticks(1, 100)), " "); got != "1 2 5 10 20 50 1e2" {
		t.Errorf("ticks of 1…100 labelled %q", got)
	}
	if got := labels(LogTicks{}.Ticks(1e-30, 1e30)); len(got) < 4 || len(got) > 12 {
		t.Errorf("ticks of 1e-30…1e30 labelled %q", got)
	}
	if got := strings.Join(labels(LogTicks{}.Ticks(2.1, 2.9)), " "); got != "2.2 2.4 2.6 2.8" {
		t.Errorf("ticks of 2.1…2.9 labelled %q", got)
	}
	if got := (LogTicks{}).Ticks(0, 1); len(got) != 0 {
		t.Errorf("ticks of a range from 0: %v", got)
	}
	if got := strings.Join(labels(Ticks{}.Ticks(0, 100)), " "); got != "0 50 100" {
		t.Errorf("linear ticks labelled %q", got)
	}
	if got := AtLeast([]float64{-1, 0, 1e-20, 2, math.NaN()}, 1e-12); got[0] != 1e-12 || got[1] != 1e-12 || got[2] != 1e-12 || got[3] != 2 || !math.IsNaN(got[4]) {
		t.Errorf("AtLeast = %v", got)
	}
}
