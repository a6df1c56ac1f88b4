package datasets

import (
	"fmt"
	"math/bits"

	"github.com/secondorder/prune/nn"
	"gonum.org/v1/gonum/mat"
)

// Parity returns all 2^n patterns of n bits with target 1 when the number
// of ones is odd and 0 otherwise. The inputs of row i are the binary digits
// of i, most significant first, each 0 or 1. Parity(2) is XOR. Parity
// panics if n is not in 1..20.
func Parity(n int) *nn.Data {
	if n < 1 || n > 20 {
		panic(fmt.Sprintf("datasets: parity size %d out of range 1..20", n))
	}
	rows := 1 << n
	x := mat.NewDense(rows, n, nil)
	y := mat.NewDense(rows, 1, nil)
	for i := range rows {
		row := x.RawRowView(i)
		for j := range n {
			row[j] = float64(i >> (n - 1 - j) & 1)
		}
		y.Set(i, 0, float64(bits.OnesCount(uint(i))&1))
	}
	return &nn.Data{Name: fmt.Sprintf("parity%d", n), X: x, Y: y}
}

// parity returns the splits of the parity%d data set.
func parity(n int) *nn.Splits {
	train := Parity(n)
	test := train.Subset(seq(train.Len()))
	train.Name = fmt.Sprintf("parity%d/train", n)
	test.Name = fmt.Sprintf("parity%d/test", n)
	return &nn.Splits{
		Train: *train,
		Test:  *test,
		Loss:  "mse",
		Info:  fmt.Sprintf("%d-bit parity; all %d patterns are both training and test set", n, 1<<n),
	}
}

// seq returns 0, 1, …, n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
