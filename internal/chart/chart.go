// Package chart draws the toolkit's PNG charts with gonum/plot: the report
// charts of the prune command and the charts of the benchmarks.
//
// New makes a plot in the common style, AddSeries, AddLine and AddPoints
// add data with the colour, glyph and dashes of a series number, LogX,
// LogY and SymLog choose logarithmic axes, Frame leaves room around the
// data and for the legend, and Render draws a grid of plots to PNG. Render
// never panics: axis ranges gonum/plot cannot draw (empty, not finite, or
// too narrow for their magnitude, such as a loss that stays at 1e18) are
// widened first, and a drawing that fails anyway is an error.
package chart

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DPI is the resolution of the charts.
const DPI = 96

// Palette holds ten distinguishable colours (the "tab10" palette).
var Palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

// Red marks highlighted points.
var Red color.Color = Palette[3]

// Color returns the colour of series i. Series len(Palette) apart share a
// colour; their lines are told apart by their dashes.
func Color(i int) color.Color { return Palette[i%len(Palette)] }

// Dashes returns the dashes of the lines of series i: solid for the first
// len(Palette) series, then dashed patterns.
func Dashes(i int) []vg.Length { return plotutil.Dashes(i / len(Palette)) }

// New returns a plot with a title, axis labels, a grid, the legend at the
// top, and tick labels without trailing zeros.
func New(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.X.Tick.Marker = Ticks{}
	p.Y.Tick.Marker = Ticks{}
	return p
}

// Ticks are gonum/plot's default ticks labelled without trailing zeros:
// 25 rather than 25.00.
type Ticks struct{}

// Ticks implements plot.Ticker.
func (Ticks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 6, 64)
		}
	}
	return ts
}

// Finite returns the points (xs[i], ys[i]) whose coordinates are finite.
func Finite(xs, ys []float64) plotter.XYs {
	pts := make(plotter.XYs, 0, len(xs))
	for i := range xs {
		if math.IsNaN(xs[i]) || math.IsInf(xs[i], 0) || math.IsNaN(ys[i]) || math.IsInf(ys[i], 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: xs[i], Y: ys[i]})
	}
	return pts
}

// FewPoints is the largest number of points of a series that AddSeries
// draws as points only: a line between a few measurements would suggest
// values between them that were not measured.
const FewPoints = 12

// AddSeries adds the finite points of a series to p in the style of series
// i, with a legend entry: as a line with markers, or as markers alone when
// there are at most FewPoints. The line is dashed when dashed is set. It
// adds nothing when no point is finite.
func AddSeries(p *plot.Plot, name string, i int, xs, ys []float64, dashed bool) error {
	pts := Finite(xs, ys)
	if len(pts) == 0 {
		return nil
	}
	if len(pts) <= FewPoints {
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		s.Color = Color(i)
		s.Shape = plotutil.Shape(i)
		s.Radius = vg.Points(3.5)
		p.Add(s)
		p.Legend.Add(name, s)
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color = Color(i)
	l.Width = vg.Points(1.2)
	l.Dashes = Dashes(i)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	}
	s.Color = Color(i)
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(2)
	if len(pts) > 60 {
		s.Radius = vg.Points(1)
	}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// AddLine adds a line through the finite points to p, with the colour and
// dashes of series i, and a legend entry. It adds nothing when no point is
// finite.
func AddLine(p *plot.Plot, name string, i int, xs, ys []float64) error {
	pts := Finite(xs, ys)
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = Color(i)
	l.Dashes = Dashes(i)
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// AddPoints adds the finite points to p with the colour and glyph of
// series i, and a legend entry when name is not empty. It adds nothing
// when no point is finite.
func AddPoints(p *plot.Plot, name string, i int, xs, ys []float64) error {
	pts := Finite(xs, ys)
	if len(pts) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	s.Color = Color(i)
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(2.5)
	p.Add(s)
	if name != "" {
		p.Legend.Add(name, s)
	}
	return nil
}

// Render draws the plots on a grid of tiles, row by row, nil entries and
// short rows left empty, on a white w × h image, and returns it as PNG.
// It first makes every axis range drawable (see FixRange); a drawing that
// fails anyway, such as a logarithmic axis over values that are not
// positive, is an error, not a panic.
func Render(grid [][]*plot.Plot, w, h vg.Length) (png []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			png, err = nil, fmt.Errorf("cannot draw the chart: %v", r)
		}
	}()
	rows, cols := len(grid), 0
	for _, r := range grid {
		cols = max(cols, len(r))
	}
	if rows == 0 || cols == 0 {
		return nil, fmt.Errorf("cannot draw the chart: no plots")
	}
	tiles := make([][]*plot.Plot, rows)
	for i := range tiles {
		tiles[i] = make([]*plot.Plot, cols)
		copy(tiles[i], grid[i])
		for _, p := range tiles[i] {
			if p != nil {
				FixRange(&p.X.Min, &p.X.Max)
				FixRange(&p.Y.Min, &p.Y.Max)
			}
		}
	}
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	t := draw.Tiles{
		Rows: rows, Cols: cols,
		PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4,
	}
	canvases := plot.Align(tiles, t, dc)
	for i := range tiles {
		for j, p := range tiles[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// FixRange makes [*lo, *hi] a range that gonum/plot draws: finite, and
// wider than the rounding of its magnitude. A range that is not finite or
// is reversed becomes [0, 1]; a range too narrow is widened by 5 % of its
// magnitude on each side.
func FixRange(lo, hi *float64) {
	if math.IsNaN(*lo) || math.IsInf(*lo, 0) || math.IsNaN(*hi) || math.IsInf(*hi, 0) || *lo > *hi {
		*lo, *hi = 0, 1
		return
	}
	m := math.Max(math.Abs(*lo), math.Abs(*hi))
	if *hi-*lo > 1e-9*m && *hi-*lo > 1e-300 {
		return
	}
	d := 0.05 * m
	if d == 0 || math.IsInf(m+d, 0) {
		d = 1
	}
	if math.IsInf(m+d, 0) || m > math.MaxFloat64/4 {
		*lo, *hi = -math.MaxFloat64/4, math.MaxFloat64/4
		return
	}
	*lo, *hi = *lo-d, *hi+d
}

// Frame prepares the plots, once their data are added and any axis range
// is set, so that no marker at the end of the data is cut by the edge of
// the plot and a legend at the top covers none of the data: it widens
// linear axes by 3 % of their range (x on both sides, y below) and raises
// the top of the y axis (see LegendRoom) so that the data fill the lower
// 1 − LegendFraction of a plot whose legend is at the top.
// Nil plots are skipped.
func Frame(plots ...*plot.Plot) {
	for _, p := range plots {
		if p == nil {
			continue
		}
		FixRange(&p.X.Min, &p.X.Max)
		FixRange(&p.Y.Min, &p.Y.Max)
		margin(&p.X, true)
		margin(&p.Y, false)
		LegendRoom(p)
		FixRange(&p.Y.Min, &p.Y.Max)
	}
}

// margin widens the linear axis ax by 3 % of its range below, and above
// too when both is set.
func margin(ax *plot.Axis, both bool) {
	switch sc := ax.Scale.(type) {
	case plot.LinearScale:
	case plot.InvertedScale:
		if _, ok := sc.Normalizer.(plot.LinearScale); !ok {
			return
		}
	default:
		return
	}
	d := 0.03 * (ax.Max - ax.Min)
	if math.IsInf(d, 0) || math.IsInf(ax.Min-d, 0) || math.IsInf(ax.Max+d, 0) {
		return
	}
	ax.Min -= d
	if both {
		ax.Max += d
	}
}

// LegendFraction is the part of the height of a plot above its data that
// Frame leaves for a legend at the top.
const LegendFraction = 0.22

// LegendRoom raises the top of the y axis of p, when its legend is at the
// top, so that the data fill the lower 1−LegendFraction of the plot in the
// axis' scale and the legend covers none of them. It changes linear,
// logarithmic and symmetric logarithmic axes.
func LegendRoom(p *plot.Plot) {
	if !p.Legend.Top {
		return
	}
	lo, hi := p.Y.Min, p.Y.Max
	if s, ok := p.Y.Scale.(SymLogScale); ok {
		a, b := s.f(lo), s.f(hi)
		p.Y.Max = s.inv(a + (b-a)/(1-LegendFraction))
		return
	}
	if _, ok := p.Y.Scale.(plot.LogScale); ok {
		if lo > 0 && hi > lo {
			a, b := math.Log10(lo), math.Log10(hi)
			if top := math.Pow(10, a+(b-a)/(1-LegendFraction)); !math.IsInf(top, 0) {
				p.Y.Max = top
			}
		}
		return
	}
	if _, ok := p.Y.Scale.(plot.LinearScale); ok || p.Y.Scale == nil {
		p.Y.Max = lo + (hi-lo)/(1-LegendFraction)
	}
}

// SymLogScale is the symmetric logarithmic scale of an axis: linear within
// ±C, logarithmic beyond,
//
//	f(x) = sign(x) · log₁₀(1 + |x|/C),
//
// so that values of both signs spanning many decades, and zero, share one
// axis. C must be positive.
type SymLogScale struct{ C float64 }

func (s SymLogScale) f(x float64) float64 {
	return math.Copysign(math.Log10(1+math.Abs(x)/s.C), x)
}

func (s SymLogScale) inv(y float64) float64 {
	return math.Copysign(s.C*(math.Pow(10, math.Abs(y))-1), y)
}

// Normalize implements plot.Normalizer.
func (s SymLogScale) Normalize(min, max, x float64) float64 {
	a, b := s.f(min), s.f(max)
	if b == a {
		return 0.5
	}
	return (s.f(x) - a) / (b - a)
}

// SymLogTicks marks 0 and ±C·10^k on a symmetric logarithmic axis, every
// other decade when there are many.
type SymLogTicks struct{ C float64 }

// Ticks implements plot.Ticker.
func (t SymLogTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	top := math.Max(math.Abs(lo), math.Abs(hi))
	decades := int(math.Ceil(math.Log10(math.Max(top/t.C, 1)))) + 1
	step := max(1, (decades+5)/6)
	add := func(v float64, label bool) {
		if v >= lo && v <= hi {
			tk := plot.Tick{Value: v}
			if label {
				tk.Label = strconv.FormatFloat(v, 'g', 3, 64)
			}
			ticks = append(ticks, tk)
		}
	}
	add(0, true)
	for k := 0; k <= decades && k < 400; k++ {
		// ±C sit close to 0: labelled only on an axis of few decades.
		label := k%step == 0 && (k > 0 || decades <= 4)
		v := t.C * math.Pow(10, float64(k))
		add(v, label)
		add(-v, label)
	}
	slices.SortFunc(ticks, func(a, b plot.Tick) int { return cmp.Compare(a.Value, b.Value) })
	return ticks
}

// SymLog makes the axis symmetric logarithmic, linear within ±c.
func SymLog(ax *plot.Axis, c float64) {
	ax.Scale = SymLogScale{c}
	ax.Tick.Marker = SymLogTicks{c}
}

// WideSpread returns the linear range c of a symmetric logarithmic axis for
// the values v when the largest exceeds the median a hundredfold (one
// outlier among small values, say), and 0 when a linear axis shows them
// well. Zeros and infinities are left out.
func WideSpread(v []float64) float64 {
	var abs []float64
	top := 0.0
	for _, x := range v {
		if a := math.Abs(x); a > 0 && !math.IsInf(a, 0) {
			abs = append(abs, a)
			top = math.Max(top, a)
		}
	}
	if len(abs) < 2 {
		return 0
	}
	slices.Sort(abs)
	med := abs[len(abs)/2]
	if top <= 100*med {
		return 0
	}
	// The linear part holds the smaller half of the values.
	return math.Pow(10, math.Floor(math.Log10(med)))
}

// LogTicks are the ticks of a logarithmic axis labelled at powers of ten,
// and at 2 and 5 times them on a range of few decades. A range too narrow
// for two such labels gets the evenly spaced ticks of Ticks.
type LogTicks struct{}

// Ticks implements plot.Ticker.
func (LogTicks) Ticks(min, max float64) []plot.Tick {
	ticks := logTicks(min, max)
	labels := 0
	for _, t := range ticks {
		if t.Label != "" {
			labels++
		}
	}
	if labels < 2 && min > 0 && max > min {
		return Ticks{}.Ticks(min, max)
	}
	return ticks
}

func logTicks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	if !(min > 0) || !(max > 0) {
		return ticks
	}
	lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
	// Wide ranges label every second or third power of ten and leave out
	// the minor ticks.
	step := math.Max(1, math.Ceil((hi-lo)/8))
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, e)
		if v >= min*(1-1e-9) && v <= max*(1+1e-9) {
			t := plot.Tick{Value: v}
			if math.Mod(e, step) == 0 {
				t.Label = formatPow10(e)
			}
			ticks = append(ticks, t)
		}
		if step > 1 {
			continue
		}
		for k := 2.0; k < 10; k++ {
			if m := k * v; m > min && m < max {
				t := plot.Tick{Value: m}
				// Narrow ranges label 2 and 5 too.
				if hi-lo <= 2 && (k == 2 || k == 5) {
					t.Label = strconv.FormatFloat(m, 'g', 3, 64)
				}
				ticks = append(ticks, t)
			}
		}
	}
	return ticks
}

func formatPow10(e float64) string {
	switch e {
	case 0:
		return "1"
	case 1:
		return "10"
	case -1:
		return "0.1"
	}
	return "1e" + strconv.Itoa(int(e))
}

// LogX makes the x axis of p logarithmic.
func LogX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = LogTicks{}
}

// LogY makes the y axis of p logarithmic.
func LogY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = LogTicks{}
}

// AtLeast returns a copy of v with the values ≤ floor replaced by floor,
// for a logarithmic axis; NaNs are kept.
func AtLeast(v []float64, floor float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x
		if !(x > floor) && !math.IsNaN(x) {
			out[i] = floor
		}
	}
	return out
}
