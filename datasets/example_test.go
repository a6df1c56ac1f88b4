package datasets_test

import (
	"fmt"
	"log"

	"github.com/secondorder/prune/datasets"
)

func ExampleLoad() {
	s, err := datasets.Load("xor", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d samples, inputs %d, targets %d, loss %s\n",
		s.Train.Name, s.Train.Len(), s.Train.Inputs(), s.Train.Targets(), s.Loss)
	for i := range s.Train.Len() {
		fmt.Println(s.Train.X.RawRowView(i), "→", s.Train.Y.At(i, 0))
	}
	_, err = s.Split("valid")
	fmt.Println(err)

	// Output:
	// xor/train: 4 samples, inputs 2, targets 1, loss mse
	// [0 0] → 0
	// [0 1] → 1
	// [1 0] → 1
	// [1 1] → 0
	// xor has no validation split (request one with a validation fraction)
}

func ExampleMonks() {
	s := datasets.Monks(3, 1)
	fmt.Println(s.Info)
	fmt.Println(s.Train.Len(), "training and", s.Test.Len(), "test examples of", s.Train.Inputs(), "inputs")
	fmt.Println(datasets.MonksRule(3, [6]int{1, 2, 1, 1, 3, 2}))

	// Output:
	// MONK-3: (a5 = 3 and a4 = 1) or (a5 ≠ 4 and a2 ≠ 3), 5 % training label noise; 122 training examples, all 432 as test set, 17 one-hot inputs
	// 122 training and 432 test examples of 17 inputs
	// true
}
