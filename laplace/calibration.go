package laplace

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// ClassMetrics returns the accuracy of the probabilities P and their mean
// negative log-likelihood per sample: class indices Y when ce is true,
// else binary targets of each output, thresholded at 0.5.
func ClassMetrics(P, Y *mat.Dense, ce bool) (acc, nll float64) {
	N, K := P.Dims()
	const floor = 1e-300
	for i := range N {
		row := P.RawRowView(i)
		if ce {
			c := int(Y.At(i, 0))
			best := 0
			for k := range K {
				if row[k] > row[best] {
					best = k
				}
			}
			if best == c {
				acc++
			}
			nll -= math.Log(math.Max(row[c], floor))
			continue
		}
		ok := true
		for k := range K {
			y := Y.At(i, k)
			if (row[k] >= 0.5) != (y >= 0.5) {
				ok = false
			}
			nll -= y*math.Log(math.Max(row[k], floor)) + (1-y)*math.Log(math.Max(1-row[k], floor))
		}
		if ok {
			acc++
		}
	}
	return acc / float64(N), nll / float64(N)
}

// Reliability is a reliability diagram: for each of ten bins of the
// predicted probability (the confidence of the predicted class for ce),
// the number of predictions N, the sum of their probabilities Conf and the
// number that came true Hit.
type Reliability struct{ N, Conf, Hit [10]float64 }

// ReliabilityOf returns the reliability diagram of the class probabilities
// P (one row a sample) against the targets Y: class indices when ce is
// true, else binary targets of each output.
func ReliabilityOf(P, Y *mat.Dense, ce bool) *Reliability {
	var b Reliability
	N, K := P.Dims()
	add := func(p float64, hit bool) {
		j := min(9, int(p*10))
		b.N[j]++
		b.Conf[j] += p
		if hit {
			b.Hit[j]++
		}
	}
	for i := range N {
		row := P.RawRowView(i)
		if ce {
			best := 0
			for k := range K {
				if row[k] > row[best] {
					best = k
				}
			}
			add(row[best], best == int(Y.At(i, 0)))
			continue
		}
		for k := range K {
			add(row[k], Y.At(i, k) >= 0.5)
		}
	}
	return &b
}

// ECE returns the expected calibration error
//
//	Σ_b (n_b/n)·|conf_b − acc_b|,
//
// with conf_b and acc_b the mean probability and the fraction true in bin b.
func (b *Reliability) ECE() float64 {
	var total, e float64
	for j := range b.N {
		total += b.N[j]
		if b.N[j] > 0 {
			e += math.Abs(b.Conf[j] - b.Hit[j])
		}
	}
	return e / total
}
