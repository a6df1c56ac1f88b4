package chart_test

import (
	"bytes"
	"fmt"

	"github.com/secondorder/prune/internal/chart"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

func Example() {
	p := chart.New("loss against parameters left", "live parameters", "mean loss")
	xs := []float64{10, 9, 8, 7}
	if err := chart.AddSeries(p, "after each removal", 0, xs, []float64{0.1, 0.1, 0.15, 0.4}, false); err != nil {
		fmt.Println(err)
		return
	}
	chart.Frame(p)
	png, err := chart.Render([][]*plot.Plot{{p}}, 12*vg.Centimeter, 9*vg.Centimeter)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(bytes.HasPrefix(png, []byte("\x89PNG")))
	// Output: true
}
