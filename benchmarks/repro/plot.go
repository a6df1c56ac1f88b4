package repro

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/secondorder/prune/internal/chart"
)

// The charts of the benchmarks are drawn by package chart; these are the
// short names the benchmarks use for it.

// newPlot returns a plot in the common style (chart.New).
func newPlot(title, x, y string) *plot.Plot { return chart.New(title, x, y) }

// addLine adds a line in the style of series i (chart.AddLine).
func addLine(p *plot.Plot, name string, i int, xs, ys []float64) error {
	return chart.AddLine(p, name, i, xs, ys)
}

// addPoints adds points in the style of series i (chart.AddPoints).
func addPoints(p *plot.Plot, name string, i int, xs, ys []float64) error {
	return chart.AddPoints(p, name, i, xs, ys)
}

// renderPNG frames every plot of the grid (chart.Frame) and draws the grid
// to PNG (chart.Render).
func renderPNG(grid [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	for _, row := range grid {
		chart.Frame(row...)
	}
	return chart.Render(grid, w, h)
}
