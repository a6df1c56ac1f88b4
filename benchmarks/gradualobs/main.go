// Command gradualobs prunes MLPNet 784-40-20-10 (ReLU, no biases; trained
// as `prune bench mlpnet` trains it, seed 1, or loaded with -model) one-shot,
// without retraining, by global Woodbury OBS in rounds (prune.OneShot): every
// round a new low-rank curvature of fresh samples, the round's weights of
// least OBS saliency removed jointly. It prints each round's predicted and
// real ΔE (E = Σₙ ℓₙ over the 60 000 training images), the damping and the
// test accuracy.
//
// With -method rows it prunes by prune.BlockOBS instead, one exact block of
// -curvature per unit (-block N: one per layer of at most N weights), ranked
// globally, -hard of the -samples images those of largest loss; -gradient
// adds the gradient term to every round's update. At its start it prints the
// share of the output curvature that the images of largest curvature hold.
//
//	go run ./benchmarks/gradualobs [-sparsity 0.95 -rounds 32 -samples 200 -hard 0 -rel 0.01 -schedule linear]
//	go run ./benchmarks/gradualobs -method rows -block 1000 -curvature gn -rounds 32 -samples 4000 -hard 3000 -schedule geo -damp 10
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/secondorder/prune/benchmarks/repro"
	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

func main() {
	model := flag.String("model", "", "load the dense network from this file, or train it and save it there when missing")
	seed := flag.Uint64("seed", 1, "seed of the training and of the samples")
	sp := flag.Float64("sparsity", 0.95, "fraction of the weights removed")
	rounds := flag.Int("rounds", 32, "rounds (curvature builds)")
	samples := flag.Int("samples", 200, "m: gradients (or Gauss–Newton samples) per round")
	hard := flag.Int("hard", 0, "of the m samples, those of largest loss (prune.WoodburyOBS.Hard, prune.BlockOBS.Hard)")
	rel := flag.Float64("rel", 0, "damping relative to the mean diagonal (0: the default)")
	damp := flag.Float64("damp", 0, "absolute damping (0: relative)")
	gn := flag.Bool("gn", false, "Gauss–Newton rows instead of the empirical Fisher")
	sampled := flag.Bool("sampled-labels", false, "targets drawn from the network (prune.WoodburyOBS.SampledLabels)")
	batch := flag.Int("batch", 0, "samples summed into one gradient")
	holdout := flag.Bool("holdout", false, "also evaluate each round's update on the curvature of independent samples")
	schedule := flag.String("schedule", "linear", "linear (equal shares), geo (equal fractions of the live weights) or cubic")
	method := flag.String("method", "woodbury", "woodbury (global Woodbury OBS) or rows (prune.BlockOBS, one exact block per unit, ranked globally)")
	curv := flag.String("curvature", "gn", "curvature of -method rows: gn, fisher or exact")
	block := flag.Int("block", 0, "with -method rows, a layer of at most this many weights is one block (prune.BlockOBS.Block)")
	grad := flag.Bool("gradient", false, "include the gradient term gᵀδ in every round's update (prune.OneShotSettings.Gradient; -method rows)")
	flag.Parse()
	var sal saliency = prune.WoodburyOBS{Samples: *samples, Hard: *hard, Damping: *damp, RelativeDamping: *rel, GaussNewton: *gn, SampledLabels: *sampled, Batch: *batch}
	switch *method {
	case "woodbury":
	case "rows":
		c, err := prune.ParseCurvature(*curv)
		if err != nil {
			log.Fatalf("-curvature: %v", err)
		}
		sal = prune.BlockOBS{Rows: true, Block: *block, Curvature: c, Samples: *samples, Hard: *hard, Damping: *damp}
	default:
		log.Fatalf("-method %q: want woodbury or rows", *method)
	}
	if err := run(*model, *seed, *sp, *rounds, *schedule, *holdout, *grad, sal); err != nil {
		log.Fatal(err)
	}
}

type saliency = prune.Saliency

func run(model string, seed uint64, sp float64, rounds int, schedule string, holdout, grad bool, sal saliency) error {
	ctx := context.Background()
	data, err := datasets.LoadMNIST("", 0, 0)
	if err != nil {
		return err
	}
	train := nn.Data{X: data.Train.X, Y: data.Train.Y}
	var net *nn.Network
	if _, err := os.Stat(model); model != "" && err == nil {
		if net, err = modelio.Load(model, nil); err != nil {
			return err
		}
	} else {
		if net, err = repro.TrainMLPNet(ctx, train, []int{784, 40, 20, 10}, 30, seed, nil); err != nil {
			return err
		}
		if model != "" {
			if err := modelio.Save(model, net); err != nil {
				return err
			}
		}
	}
	fmt.Printf("dense test accuracy %.2f %%\n", 100*net.Evaluate(data.Test.X, data.Test.Y).Accuracy)
	printCurvatureMass(net, train)
	nw, _ := net.LayerLive(0)
	for l := 1; l < net.NumLayers(); l++ {
		k, _ := net.LayerLive(l)
		nw += k
	}
	k := int(math.Round(sp * float64(nw)))
	cur, done, t0 := net, 0, time.Now()
	for r := 0; r < rounds; r++ {
		f := float64(r+1) / float64(rounds)
		target := k * (r + 1) / rounds
		switch schedule {
		case "geo":
			target = int(math.Round(float64(nw) * (1 - math.Pow(1-sp, f))))
		case "cubic":
			target = int(math.Round(float64(k) * (1 - math.Pow(1-f, 3))))
		}
		if r == rounds-1 {
			target = k
		}
		if target <= done {
			continue
		}
		src := rand.NewPCG(seed, 100+uint64(r))
		s := sal
		switch o := sal.(type) {
		case prune.WoodburyOBS:
			o.Src = src
			s = o
		case prune.BlockOBS:
			o.Src = src
			s = o
		}
		out, rs, err := prune.OneShot(ctx, cur, train.X, train.Y, s, target-done, &prune.OneShotSettings{Gradient: grad})
		if err != nil {
			return err
		}
		// The first-order term gᵀδ the OBS model leaves out, and the real
		// ΔE of the same set zeroed without the update.
		g := make([]float64, cur.NumParams())
		E0 := cur.Gradient(g, train.X, train.Y)
		var gd float64
		zero := cur.Clone()
		for q, v := range out.RawParams() {
			gd += g[q] * (v - cur.RawParams()[q])
			if !out.IsLive(q) && cur.IsLive(q) {
				zero.Prune(q)
			}
		}
		zeroDE := zero.Objective(train.X, train.Y) - E0
		// The quadratic model of the update on the empirical Fisher F' of
		// 1000 other images drawn at random: ½δᵀF'δ.
		held := math.NaN()
		if w, ok := s.(prune.WoodburyOBS); ok && holdout {
			p := hessian.Live(cur, train.X, train.Y)
			h := w
			h.Hard, h.Samples, h.Src = 0, 1000, rand.NewPCG(seed+1000, 100+uint64(r))
			lr, err := h.LowRank(ctx, p, nil)
			if err != nil {
				return err
			}
			d := make([]float64, p.Dim())
			for i, q := range p.Params {
				d[i] = out.RawParams()[q] - cur.RawParams()[q]
			}
			fd := make([]float64, len(d))
			lr.MulVecTo(fd, d)
			held = 0
			for i := range d {
				held += d[i] * fd[i] / 2
			}
		}
		cur, done = out, target
		fmt.Printf("round %d: %d removed, sparsity %.4f, ΔE predicted %.4g real %.4g, gᵀδ %.4g, real ΔE without update %.4g, ½δᵀF'δ on 1000 other images %.4g, λ %.4g, test accuracy %.2f %% (%s)\n",
			r+1, rs[0].Removed, float64(done)/float64(nw), rs[0].Predicted, rs[0].Real, gd, zeroDE, held, rs[0].Damping,
			100*cur.Evaluate(data.Test.X, data.Test.Y).Accuracy, time.Since(t0).Round(time.Second))
	}
	fmt.Printf("final: sparsity %.4f, test accuracy %.2f %%\n", float64(done)/float64(nw), 100*cur.Evaluate(data.Test.X, data.Test.Y).Accuracy)
	return nil
}

// printCurvatureMass prints the share of the output curvature, the trace
// 1 − Σ_c p_c² of the softmax cross-entropy's Hessian in the outputs, summed
// over the training images, that the images of largest trace hold: how few
// images the Gauss–Newton matrix of a trained classifier comes from.
func printCurvatureMass(net *nn.Network, train nn.Data) {
	out := net.Forward(train.X)
	N, C := out.Dims()
	tr := make([]float64, N)
	var total float64
	for n := range tr {
		tr[n] = 1
		for c := 0; c < C; c++ {
			tr[n] -= out.At(n, c) * out.At(n, c)
		}
		total += tr[n]
	}
	slices.SortFunc(tr, func(a, b float64) int { return cmp.Compare(b, a) })
	fmt.Print("output curvature 1 − Σp² held by the images of largest trace:")
	var acc float64
	for i, v := range tr {
		acc += v
		if k := i + 1; k == 1000 || k == 2000 || k == 5000 || k == 10000 {
			fmt.Printf(" %d: %.1f %%", k, 100*acc/total)
		}
	}
	fmt.Println()
}
