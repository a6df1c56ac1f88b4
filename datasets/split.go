package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// Streams of the PCG generators seeded with Options.Seed. Each random
// choice uses its own stream so that changing one choice leaves the others
// unchanged.
const (
	streamValid      = 0x76616c6964     // validation hold-out
	streamMonksTrain = 0x6d6f6e6b730000 // MONK's training draw, plus the problem number
	streamMonksNoise = 0x6d6f6e6b736e00 // MONK's label noise, plus the problem number
	streamSineTrain  = 0x73696e6574     // sine training set
	streamSineTest   = 0x73696e6574 + 1 // sine test set
)

// holdOut returns the number of samples held out from n for fraction frac.
func holdOut(frac float64, n int) int {
	return int(math.Round(frac * float64(n)))
}

// SplitRandom divides the samples of s at random into two new sets: b
// holds round(frac·n) samples chosen with src and a holds the others. Both
// keep the order the samples have in s. SplitRandom panics if frac is not
// in (0, 1) or if either part would be empty.
func splitRandom(s nn.Data, frac float64, src rand.Source) (a, b *nn.Data) {
	if !(frac > 0 && frac < 1) {
		panic(fmt.Sprintf("datasets: split fraction %v not in (0, 1)", frac))
	}
	n := s.Len()
	k := holdOut(frac, n)
	if k < 1 || k >= n {
		panic(fmt.Sprintf("datasets: split fraction %v of %d samples leaves an empty part", frac, n))
	}
	perm := rand.New(src).Perm(n)
	held := perm[:k]
	slices.Sort(held)
	kept := perm[k:]
	slices.Sort(kept)
	return s.Subset(kept), s.Subset(held)
}

// Standardizer standardizes the input columns of sets with fixed
// statistics, usually those of a training set.
type Standardizer struct {
	// Mean and Std hold the mean and standard deviation of each input
	// column. Std is never zero.
	Mean, Std []float64
}

// NewStandardizer returns a Standardizer holding the mean and the
// (unbiased) standard deviation of each input column of s. A column whose
// standard deviation is zero or undefined gets standard deviation 1, so
// that it is only centered.
func NewStandardizer(s nn.Data) *Standardizer {
	n, c := s.X.Dims()
	z := &Standardizer{Mean: make([]float64, c), Std: make([]float64, c)}
	col := make([]float64, n)
	for j := range c {
		mat.Col(col, j, s.X)
		m, sd := stat.MeanStdDev(col, nil)
		if n < 2 || sd == 0 || math.IsNaN(sd) {
			sd = 1
		}
		z.Mean[j], z.Std[j] = m, sd
	}
	return z
}

// Apply returns a new set whose inputs are those of s with each column
// shifted by Mean and divided by Std. The targets are copied unchanged.
// Apply panics if s has a different number of inputs.
func (z *Standardizer) Apply(s nn.Data) *nn.Data {
	n, c := s.X.Dims()
	if c != len(z.Mean) {
		panic(fmt.Sprintf("datasets: standardizer for %d inputs applied to %d", len(z.Mean), c))
	}
	x := mat.NewDense(n, c, nil)
	for i := range n {
		dst, src := x.RawRowView(i), s.X.RawRowView(i)
		for j, v := range src {
			dst[j] = (v - z.Mean[j]) / z.Std[j]
		}
	}
	return &nn.Data{Name: s.Name, X: x, Y: mat.DenseCopyOf(s.Y), Classes: s.Classes}
}
