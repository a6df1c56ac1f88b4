package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

const (
	sineN     = 200 // default number of sine training samples
	sineTestN = 200 // default number of sine test samples
	sineNoise = 0.1 // standard deviation of the sine noise

	spiralsN = 194 // default number of spiral training points
)

// Sine returns a noisy one-dimensional regression problem: x is uniform in
// [-π, π] and y = sin(x) + ε with ε drawn from N(0, 0.1²). The training
// set has n samples and the test set testN samples, drawn the same way from
// a separate stream of the seed; zero sizes mean 200. Samples are in
// ascending order of x. Sine returns an error for negative sizes.
func Sine(n, testN int, seed uint64) (*nn.Splits, error) {
	if n < 0 || testN < 0 {
		return nil, fmt.Errorf("datasets: negative sine sample count")
	}
	if n == 0 {
		n = sineN
	}
	if testN == 0 {
		testN = sineTestN
	}
	return &nn.Splits{
		Train: *sine("sine/train", n, rand.NewPCG(seed, streamSineTrain)),
		Test:  *sine("sine/test", testN, rand.NewPCG(seed, streamSineTest)),
		Loss:  "mse",
		Info:  fmt.Sprintf("y = sin(x) + N(0, %g²) noise, x uniform in [-π, π]; %d training and %d test samples", sineNoise, n, testN),
	}, nil
}

func sine(name string, n int, src rand.Source) *nn.Data {
	rnd := rand.New(src)
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = math.Pi * (2*rnd.Float64() - 1)
	}
	// Sorting the inputs does not change the distribution of the set and
	// makes plots of predictions against x simple.
	slices.Sort(xs)
	y := mat.NewDense(n, 1, nil)
	for i, x := range xs {
		y.Set(i, 0, math.Sin(x)+sineNoise*rnd.NormFloat64())
	}
	return &nn.Data{Name: name, X: mat.NewDense(n, 1, xs), Y: y}
}

// Spirals returns the two-spirals problem of Lang and Witbrock (1988).
// Each spiral has m = n/2 points; point i of the first spiral lies at
// angle φ = tπ/16 and radius r = 6.5(104 − t)/104 with t = 96i/(m−1), at
// (r sin φ, r cos φ), and has target 1; the second spiral is the first
// turned by half a turn, at (−r sin φ, −r cos φ), with target 0. With the
// default n = 194 these are the 97 points per spiral of the benchmark,
// about three turns with coordinates in [-6.5, 6.5]. The test set holds
// the points halfway along each spiral between consecutive training
// points, 2(m−1) in all. The points of the two spirals alternate.
// Spirals returns an error if n is odd, negative or less than 4.
func Spirals(n int) (*nn.Splits, error) {
	if n == 0 {
		n = spiralsN
	}
	if n < 4 || n%2 != 0 {
		return nil, fmt.Errorf("datasets: spirals needs an even number of points ≥ 4, not %d", n)
	}
	m := n / 2
	step := 96 / float64(m-1)
	train := spirals("spirals/train", m, 0, step)
	test := spirals("spirals/test", m-1, step/2, step)
	return &nn.Splits{
		Train: *train,
		Test:  *test,
		Loss:  "bce",
		Info:  fmt.Sprintf("two interleaved spirals (Lang & Witbrock); %d training points, test set of the %d midpoints", 2*m, 2*(m-1)),
	}, nil
}

// spirals returns m points per spiral at t = t0 + i·step.
func spirals(name string, m int, t0, step float64) *nn.Data {
	x := mat.NewDense(2*m, 2, nil)
	y := mat.NewDense(2*m, 1, nil)
	for i := range m {
		t := t0 + float64(i)*step
		phi := t * math.Pi / 16
		r := 6.5 * (104 - t) / 104
		sx, sy := r*math.Sin(phi), r*math.Cos(phi)
		x.SetRow(2*i, []float64{sx, sy})
		y.Set(2*i, 0, 1)
		x.SetRow(2*i+1, []float64{-sx, -sy})
	}
	return &nn.Data{Name: name, X: x, Y: y}
}
