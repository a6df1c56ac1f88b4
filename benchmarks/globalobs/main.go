// Command globalobs measures global Optimal Brain Surgeon past the W² wall
// on LeNet-300-100 (784-300-100-10, 266 610 parameters) on MNIST: one-shot
// pruning of the weights, without retraining, by Woodbury OBS on the
// empirical Fisher of m gradients (prune.WoodburyOBS) and by block OBS
// (prune.BlockOBS), both through the library call prune.OneShot, with
// magnitude pruning as the reference. For each it reports the memory the
// curvature plans before allocating, the peak Go heap, the time, the test
// accuracy and the predicted against the real ΔE.
//
// It trains the network with Adam on the first -n training images, or
// loads it with -model (and saves the trained one with -save), and writes
// a Markdown table to -o and to standard output.
//
//	go run ./benchmarks/globalobs [-n 60000 -epochs 3 -samples 1000 -blocks 1000 -sparsity 0.95 -o results/globalobs.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/internal/heappeak"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

func main() {
	var (
		n        = flag.Int("n", 60000, "number of MNIST training images")
		testN    = flag.Int("test-n", 10000, "number of MNIST test images")
		epochs   = flag.Int("epochs", 3, "training epochs (Adam)")
		seed     = flag.Uint64("seed", 1, "seed of initialisation, shuffling and the Fisher samples")
		modelIn  = flag.String("model", "", "load this model instead of training one")
		modelOut = flag.String("save", "", "save the trained model to this file")
		samples  = flag.Int("samples", 1000, "m, the gradients of the empirical Fisher")
		blocks   = flag.String("blocks", "1000", "comma-separated block sizes of block OBS (empty: none)")
		sparsity = flag.Float64("sparsity", 0.95, "fraction of the weights removed")
		rounds   = flag.Int("rounds", 1, "curvature builds per pruning (prune.OneShotSettings.Rounds)")
		maxMem   = flag.String("max-memory", "", "memory limit of a curvature, such as 4G (default: half the machine)")
		out      = flag.String("o", "", "also write the Markdown table to this file")
	)
	flag.Parse()
	if err := run(*n, *testN, *epochs, *seed, *modelIn, *modelOut, *samples, *blocks, *sparsity, *rounds, *maxMem, *out); err != nil {
		log.Fatal(err)
	}
}

type row struct {
	name            string
	planned, peak   int64
	seconds, acc    float64
	pred, real, lam float64
}

func run(n, testN, epochs int, seed uint64, modelIn, modelOut string, samples int, blockList string, sparsity float64, rounds int, maxMem, outPath string) error {
	ctx := context.Background()
	if !(sparsity > 0 && sparsity < 1) {
		return fmt.Errorf("-sparsity %v: want a fraction in (0, 1)", sparsity)
	}
	var limit int64
	if maxMem != "" {
		var err error
		if limit, err = sysmem.ParseBytes(maxMem); err != nil {
			return fmt.Errorf("-max-memory: %w", err)
		}
	}
	var bs []int
	for _, f := range strings.Split(blockList, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		B, err := strconv.Atoi(f)
		if err != nil || B < 1 {
			return fmt.Errorf("-blocks: %q is not a positive block size", f)
		}
		bs = append(bs, B)
	}
	data, err := datasets.LoadMNIST("", n, testN)
	if err != nil {
		return err
	}
	train := data.Train
	test := data.Test
	var net *nn.Network
	if modelIn != "" {
		if net, err = modelio.Load(modelIn, nil); err != nil {
			return err
		}
	} else {
		net, err = nn.New([]int{784, 300, 100, 10}, []nn.Activation{nn.ReLU, nn.ReLU, nn.Softmax}, nn.CE)
		if err != nil {
			return err
		}
		net.Init(rand.NewPCG(seed, 1))
		t0 := time.Now()
		if _, err := nn.Train(ctx, net, train, nn.Data{}, &nn.TrainSettings{
			Optimizer: nn.Adam, Epochs: epochs, BatchSize: 128, LearningRate: 1e-3, Schedule: nn.CosineLR,
			Src: rand.NewPCG(seed, 2),
		}); err != nil {
			return err
		}
		log.Printf("trained %s in %s", net.Arch(), time.Since(t0).Round(time.Second))
		if modelOut != "" {
			if err := modelio.Save(modelOut, net); err != nil {
				return err
			}
		}
	}
	dense := net.Evaluate(test.X, test.Y)
	var weights []int
	for q := 0; q < net.NumParams(); q++ {
		if !net.ParamAt(q).Bias && net.IsLive(q) {
			weights = append(weights, q)
		}
	}
	k := int(math.Round(sparsity * float64(len(weights))))
	log.Printf("%s, %d parameters (%d weights), dense test accuracy %.2f %%; removing %d weights", net.Arch(), net.NumParams(), len(weights), 100*dense.Accuracy, k)
	E0 := net.Objective(train.X, train.Y)

	var rows []row
	// Magnitude: the k weights of least |w|.
	{
		hp := heappeak.Start()
		t0 := time.Now()
		order := slices.Clone(weights)
		th := net.RawParams()
		slices.SortStableFunc(order, func(a, b int) int {
			switch x, y := math.Abs(th[a]), math.Abs(th[b]); {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		})
		mag := net.Clone()
		for _, q := range order[:k] {
			mag.Prune(q)
		}
		r := row{name: "magnitude (global)", seconds: time.Since(t0).Seconds(), peak: hp.Stop(), pred: math.NaN(), lam: math.NaN()}
		r.acc = mag.Evaluate(test.X, test.Y).Accuracy
		r.real = mag.Objective(train.X, train.Y) - E0
		rows = append(rows, r)
	}
	type method struct {
		name string
		sal  prune.Saliency
	}
	src := func() rand.Source { return rand.NewPCG(seed, 3) }
	ms := []method{{fmt.Sprintf("Woodbury OBS (empirical Fisher, m = %d)", samples), prune.WoodburyOBS{Samples: samples, Src: src()}}}
	for _, B := range bs {
		ms = append(ms, method{fmt.Sprintf("block OBS (empirical Fisher, m = %d, B = %d)", samples, B),
			prune.BlockOBS{Curvature: prune.Fisher, Block: B, Samples: samples, Src: src(), FixedDamping: true}})
	}
	var lambda float64
	for _, m := range ms {
		if b, ok := m.sal.(prune.BlockOBS); ok && lambda > 0 {
			// The damping of the Woodbury run, so both invert F + λI.
			b.Damping = lambda
			m.sal = b
		}
		hp := heappeak.Start()
		t0 := time.Now()
		pruned, rs, err := prune.OneShot(ctx, net, train.X, train.Y, m.sal, k, &prune.OneShotSettings{Rounds: rounds, Params: weights, MaxBytes: limit})
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		r := row{name: m.name, seconds: time.Since(t0).Seconds(), peak: hp.Stop(), lam: rs[0].Damping}
		for _, rd := range rs {
			r.pred += rd.Predicted
			r.real += rd.Real
			r.planned = max(r.planned, rd.Planned)
		}
		if lambda == 0 {
			lambda = r.lam
		}
		r.acc = pruned.Evaluate(test.X, test.Y).Accuracy
		rows = append(rows, r)
		log.Printf("%s: %.2f %%, %.1f s, plan %s, peak heap %s", m.name, 100*r.acc, r.seconds, sysmem.FormatBytes(r.planned), sysmem.FormatBytes(r.peak))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Global OBS on LeNet-300-100 past the W² wall\n\n")
	fmt.Fprintf(&b, "Command: `go run ./benchmarks/globalobs %s`.\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "%s, %d parameters (%d weights), on %d MNIST training and %d test images; ", net.Arch(), net.NumParams(), len(weights), data.Train.Len(), data.Test.Len())
	if modelIn != "" {
		fmt.Fprintf(&b, "model %s; ", filepath.Base(modelIn))
	} else {
		fmt.Fprintf(&b, "trained here with Adam, %d epochs, seed %d; ", epochs, seed)
	}
	fmt.Fprintf(&b, "dense test accuracy **%.2f %%**. One-shot, no retraining: %d of the weights (%g %%) removed, biases kept, in %d round(s) of one curvature build each (`prune.OneShot`), the set chosen by OBS saliency and removed jointly with the multi-weight OBS update. A dense W×W inverse would need %s.\n\n",
		100*dense.Accuracy, k, 100*sparsity, rounds, sysmem.FormatBytes(hessian.DenseBytes(net.NumParams())))
	fmt.Fprintf(&b, "| method | plan | peak heap | time (s) | test accuracy %% | ΔE predicted | ΔE real | λ |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		plan := ""
		if r.planned > 0 {
			plan = sysmem.FormatBytes(r.planned)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.2f | %.4g | %.4g | %.4g |\n", r.name, plan, sysmem.FormatBytes(r.peak), r.seconds, 100*r.acc, r.pred, r.real, r.lam)
	}
	fmt.Fprintf(&b, "\nPlan: the memory the curvature reports before allocating (`MemoryBytes`). Peak heap: the largest Go heap above its size before the method, sampled every 20 ms. Time: the whole pruning (curvature builds, scoring, removals), the objective evaluations of `prune.OneShot` included. ΔE: E = Σₙ ℓₙ over the training images. Go %s, %s, GOMAXPROCS %d; the machine was shared with other jobs.\n",
		runtime.Version(), blasimpl.Name(), runtime.GOMAXPROCS(0))
	fmt.Print(b.String())
	if outPath != "" {
		return atomicfile.WriteBytes(outPath, []byte(b.String()))
	}
	return nil
}
