package chart

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is a named series of a Panel, drawn by AddSeries in the style of
// series Style, dashed when Dashed is set; with Disks its finite points are
// large translucent red disks over the others.
type Series struct {
	Name   string
	X, Y   []float64
	Style  int
	Dashed bool
	Disks  bool
}

// Panel is one plot of a figure, with the legend at the top left.
type Panel struct {
	Title, X, Y string
	Series      []Series
	// InvertX makes the x axis decrease from left to right.
	InvertX bool
	// XMin, XMax and YMin, YMax fix an axis range when max > min.
	XMin, XMax, YMin, YMax float64
}

// Column draws the panels one above the other, framed by Frame, on a w × h
// PNG image.
func Column(panels []Panel, w, h vg.Length) ([]byte, error) {
	plots := make([]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := newLeft(pn.Title, pn.X, pn.Y, pn.InvertX)
		for _, s := range pn.Series {
			if err := addTo(p, s); err != nil {
				return nil, err
			}
		}
		if pn.XMax > pn.XMin {
			p.X.Min, p.X.Max = pn.XMin, pn.XMax
		}
		if pn.YMax > pn.YMin {
			p.Y.Min, p.Y.Max = pn.YMin, pn.YMax
		}
		plots[i] = p
	}
	return column(plots, w, h)
}

func addTo(p *plot.Plot, s Series) error {
	if !s.Disks {
		return AddSeries(p, s.Name, s.Style, s.X, s.Y, s.Dashed)
	}
	pts := Finite(s.X, s.Y)
	if len(pts) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	// Red, translucent, so that the curve shows through.
	sc.Color = color.NRGBA{R: 214, G: 39, B: 40, A: 150}
	sc.Shape = draw.CircleGlyph{}
	sc.Radius = vg.Points(5.5)
	p.Add(sc)
	p.Legend.Add(s.Name, sc)
	return nil
}

// newLeft returns a plot in the style of New with the legend at the top
// left, its x axis inverted when inverted is set.
func newLeft(title, x, y string, inverted bool) *plot.Plot {
	p := New(title, x, y)
	p.Legend.Left = true
	if inverted {
		p.X.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	}
	return p
}

// column frames the plots and renders them one above the other.
func column(plots []*plot.Plot, w, h vg.Length) ([]byte, error) {
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		Frame(p)
		grid[i] = []*plot.Plot{p}
	}
	return Render(grid, w, h)
}

// Delta draws predicted against real values (ΔE of removals) with the line
// of equality, on symmetric log axes when one value dwarfs the others. It
// returns nil when no pair is finite.
func Delta(title, xLabel, yLabel string, predicted, real []float64, w, h vg.Length) ([]byte, error) {
	pts := Finite(predicted, real)
	if len(pts) == 0 {
		return nil, nil
	}
	p := newLeft(title, xLabel, yLabel, false)
	var all []float64
	for _, pt := range pts {
		all = append(all, pt.X, pt.Y)
	}
	if c := WideSpread(all); c > 0 {
		SymLog(&p.X, c)
		SymLog(&p.Y, c)
		p.Title.Text += fmt.Sprintf("\n(symmetric log axes, linear within ±%g)", c)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		lo = math.Min(lo, math.Min(pt.X, pt.Y))
		hi = math.Max(hi, math.Max(pt.X, pt.Y))
	}
	FixRange(&lo, &hi)
	eq, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return nil, err
	}
	eq.Color = color.Gray{Y: 128}
	eq.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	p.Add(eq)
	p.Legend.Add("real = predicted", eq)
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.Color = Color(0)
	s.Radius = vg.Points(2.5)
	if len(pts) > 2000 {
		s.Radius = vg.Points(1)
	}
	p.Add(s)
	p.Legend.Add("removals", s)
	return column([]*plot.Plot{p}, w, h)
}

// Band is a regression's predictive band: the mean at X with a ±2·SD band,
// and the data as points.
type Band struct {
	Title, BandLabel, MeanLabel string
	X, Mean, SD                 []float64
	// Data are drawn as points, the first in black, the others in red.
	Data []Series
	// Note is a legend entry without a mark.
	Note string
}

// BandChart draws b on a w × h PNG image.
func BandChart(b Band, w, h vg.Length) ([]byte, error) {
	pl := newLeft(b.Title, "x", "y", false)
	pl.Legend.Top = false
	n := len(b.X)
	band := make(plotter.XYs, 0, 2*n)
	for i := range n {
		band = append(band, plotter.XY{X: b.X[i], Y: b.Mean[i] + 2*b.SD[i]})
	}
	for i := n - 1; i >= 0; i-- {
		band = append(band, plotter.XY{X: b.X[i], Y: b.Mean[i] - 2*b.SD[i]})
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return nil, err
	}
	poly.Color = color.NRGBA{R: 120, G: 160, B: 230, A: 110}
	poly.LineStyle.Width = 0
	pl.Add(poly)
	pl.Legend.Add(b.BandLabel, poly)
	mline, err := plotter.NewLine(Finite(b.X, b.Mean))
	if err != nil {
		return nil, err
	}
	mline.Color = color.RGBA{R: 20, G: 60, B: 170, A: 255}
	mline.Width = vg.Points(1.5)
	pl.Add(mline)
	pl.Legend.Add(b.MeanLabel, mline)
	for i, d := range b.Data {
		pts := make(plotter.XYs, len(d.X))
		for j := range pts {
			pts[j] = plotter.XY{X: d.X[j], Y: d.Y[j]}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Radius = vg.Points(1.6)
		sc.Color = color.Black
		if i > 0 {
			sc.Color = color.RGBA{R: 220, G: 80, B: 30, A: 255}
		}
		pl.Add(sc)
		pl.Legend.Add(d.Name, sc)
	}
	if b.Note != "" {
		pl.Legend.Add(b.Note)
	}
	return column([]*plot.Plot{pl}, w, h)
}
