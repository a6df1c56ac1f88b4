package repro

import (
	"bytes"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// pngDPI is the resolution of the charts.
const pngDPI = 96

// renderPNG draws the plots on a grid of rows × cols tiles, row by row
// (nil entries are left empty), and returns the PNG image.
func renderPNG(plots [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	rows := len(plots)
	cols := 0
	for _, r := range plots {
		cols = max(cols, len(r))
	}
	t := draw.Tiles{
		Rows: rows, Cols: cols,
		PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2,
	}
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
		copy(grid[i], plots[i])
	}
	canvases := plot.Align(grid, t, dc)
	for i := range grid {
		for j, p := range grid[i] {
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

// newPlot returns a plot with a title and axis labels and a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.X.Tick.Marker = shortTicks{}
	p.Y.Tick.Marker = shortTicks{}
	return p
}

// shortTicks are gonum/plot's default ticks labelled without trailing
// zeros: 25 rather than 25.00.
type shortTicks struct{}

func (shortTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 6, 64)
		}
	}
	return ts
}

// redColor marks the highlighted points of a chart.
var redColor = color.RGBA{R: 214, G: 39, B: 40, A: 255}

// palette10 holds ten distinguishable colors (the "tab10" palette).
var palette10 = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

// seriesColor returns the color of series i; series ten apart share a
// color and are told apart by their dashes (addLine).
func seriesColor(i int) color.Color { return palette10[i%len(palette10)] }

// addLine adds a line through the points to p, with the color and dashes
// of series i, and a legend entry.
func addLine(p *plot.Plot, name string, i int, xs, ys []float64) error {
	pts := make(plotter.XYs, 0, len(xs))
	for k := range xs {
		if math.IsNaN(ys[k]) || math.IsInf(ys[k], 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: xs[k], Y: ys[k]})
	}
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = seriesColor(i)
	l.Dashes = plotutil.Dashes(i / len(palette10))
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// addPoints adds a scatter of the points to p with the color and glyph of
// series i, and a legend entry when name is not empty.
func addPoints(p *plot.Plot, name string, i int, xs, ys []float64) error {
	pts := make(plotter.XYs, 0, len(xs))
	for k := range xs {
		if math.IsNaN(xs[k]) || math.IsNaN(ys[k]) || math.IsInf(xs[k], 0) || math.IsInf(ys[k], 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: xs[k], Y: ys[k]})
	}
	if len(pts) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	s.Color = seriesColor(i)
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(2.5)
	p.Add(s)
	if name != "" {
		p.Legend.Add(name, s)
	}
	return nil
}

// logTicks are the ticks of a logarithmic axis labelled at powers of ten.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
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

// setLogY makes the y axis of p logarithmic.
func setLogY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
}

// setLogX makes the x axis of p logarithmic.
func setLogX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
}

// clampPositive replaces the values ≤ floor by floor, for a logarithmic
// axis.
func clampPositive(v []float64, floor float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x
		if !(x > floor) && !math.IsNaN(x) {
			out[i] = floor
		}
	}
	return out
}
