// Command layerwise measures one-shot layer-wise pruning of a 784-300-100-10
// network on MNIST: magnitude pruning, layer-wise Optimal Brain Damage and
// layer-wise Optimal Brain Surgeon (OBC and SparseGPT), without retraining.
//
// It trains the network with Adam on the first -n training images, or loads
// it with -model, prunes copies of it to each sparsity with each method,
// using the first -calib training images as calibration inputs, and writes
// a Markdown table of the test accuracy and pruning time to -o and to
// standard output.
//
//	go run ./benchmarks/layerwise [-n 20000 -epochs 5 -seed 1 -o results/layerwise.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// method is one pruning configuration of the table.
type method struct {
	name     string
	settings prune.LayerwiseSettings
}

var methods = map[string]method{
	"magnitude":     {"magnitude, layer threshold", prune.LayerwiseSettings{Method: prune.LayerwiseMagnitude, PerLayer: true}},
	"magnitude-row": {"magnitude, per row", prune.LayerwiseSettings{Method: prune.LayerwiseMagnitude}},
	"obd":           {"OBD (w²·[H_l]_qq), layer threshold", prune.LayerwiseSettings{Method: prune.LayerwiseOBD, PerLayer: true}},
	"obd-row":       {"OBD (w²·[H_l]_qq), per row", prune.LayerwiseSettings{Method: prune.LayerwiseOBD}},
	"auto":          {"L-OBS auto, per row", prune.LayerwiseSettings{}},
	"auto-layer":    {"L-OBS auto, per-layer allocation", prune.LayerwiseSettings{PerLayer: true}},
	"sparsegpt":     {"L-OBS SparseGPT, all layers", prune.LayerwiseSettings{Method: prune.LayerwiseSparseGPT}},
	"obc":           {"L-OBS OBC (exact greedy), all layers", prune.LayerwiseSettings{Method: prune.LayerwiseOBC}},
}

func main() {
	var (
		n         = flag.Int("n", 20000, "number of MNIST training images for training")
		testN     = flag.Int("test-n", 10000, "number of MNIST test images")
		calib     = flag.Int("calib", 2048, "number of training images used as calibration inputs")
		epochs    = flag.Int("epochs", 5, "training epochs (Adam)")
		rate      = flag.Float64("lr", 0.001, "Adam learning rate")
		batch     = flag.Int("batch", 64, "minibatch size")
		act       = flag.String("act", "relu", "hidden activation: relu or tanh")
		seed      = flag.Uint64("seed", 1, "seed of initialisation and shuffling")
		modelIn   = flag.String("model", "", "load this model instead of training one")
		modelOut  = flag.String("save-model", "", "save the trained model to this file")
		spList    = flag.String("sparsity", "0.5,0.8,0.9,0.95", "comma-separated sparsities")
		methList  = flag.String("methods", "magnitude,obd,sparsegpt,auto,auto-layer", "comma-separated methods: "+methodNames())
		damping   = flag.Float64("damping", 0, "relative damping of the layer Hessians (0: the default 0.01)")
		outPath   = flag.String("o", "results/layerwise.md", "Markdown output file (empty: standard output only)")
		mnistDir  = flag.String("mnist-dir", "", "directory of the MNIST IDX files (default: the Go module cache)")
		quietFlag = flag.Bool("q", false, "do not log progress to standard error")
	)
	flag.Parse()
	logf := func(format string, args ...any) {
		if !*quietFlag {
			log.Printf(format, args...)
		}
	}
	sparsities, err := parseFloats(*spList)
	if err != nil {
		log.Fatal(err)
	}
	var ms []method
	for _, name := range strings.Split(*methList, ",") {
		m, ok := methods[strings.TrimSpace(name)]
		if !ok {
			log.Fatalf("unknown method %q (want %s)", name, methodNames())
		}
		m.settings.Damping = *damping
		ms = append(ms, m)
	}

	ctx := context.Background()
	data, err := datasets.Load("mnist", &datasets.Options{N: max(*n, *calib), TestN: *testN, MNISTDir: *mnistDir})
	if err != nil {
		log.Fatal(err)
	}
	train := data.Train
	if train.Len() > *n {
		train = *train.Subset(seq(*n))
	}
	calX := data.Train.Subset(seq(*calib)).X

	var net *nn.Network
	var trainTime time.Duration
	if *modelIn != "" {
		if net, err = modelio.Load(*modelIn, nil); err != nil {
			log.Fatal(err)
		}
	} else {
		a, err := nn.ParseActivation(*act)
		if err != nil {
			log.Fatal(err)
		}
		net, err = nn.New([]int{784, 300, 100, 10}, []nn.Activation{a, a, nn.Softmax}, nn.CE)
		if err != nil {
			log.Fatal(err)
		}
		net.Init(rand.NewPCG(*seed, *seed))
		logf("training %s (%s) on %d images, %d epochs", net.Arch(), *act, train.Len(), *epochs)
		t0 := time.Now()
		_, err = nn.Train(ctx, net, train, nn.Data{}, &nn.TrainSettings{
			Epochs: *epochs, LearningRate: *rate, BatchSize: *batch, Src: rand.NewPCG(*seed, *seed+1),
			Recorder: recorder(func(p nn.Progress) {
				logf("epoch %d/%d: train loss %.4f, accuracy %.4f", p.Epoch, p.Epochs, p.TrainLoss, p.TrainAccuracy)
			}),
		})
		if err != nil {
			log.Fatal(err)
		}
		trainTime = time.Since(t0)
		net.Meta = map[string]any{"data": "mnist", "n": *n, "epochs": *epochs, "seed": *seed, "trainer": "adam"}
		if *modelOut != "" {
			if err := modelio.Save(*modelOut, net); err != nil {
				log.Fatal(err)
			}
		}
	}
	dense := net.Evaluate(data.Test.X, data.Test.Y)
	logf("dense test accuracy %.4f", dense.Accuracy)

	type cell struct {
		acc  float64
		time time.Duration
	}
	res := make([][]cell, len(ms))
	chosen := make([]string, len(ms)) // the methods used per layer
	for i, m := range ms {
		res[i] = make([]cell, len(sparsities))
		for k, sp := range sparsities {
			s := m.settings
			s.Sparsity = sp
			t0 := time.Now()
			pruned, rep, err := prune.Layerwise(ctx, net, calX, &s)
			if err != nil {
				log.Fatalf("%s at %.2f: %v", m.name, sp, err)
			}
			el := time.Since(t0)
			acc := pruned.Evaluate(data.Test.X, data.Test.Y).Accuracy
			res[i][k] = cell{acc, el}
			var layers, used []string
			for _, lr := range rep.Layers {
				layers = append(layers, fmt.Sprintf("%v %.2fs", lr.Method, lr.Time.Seconds()))
				used = append(used, lr.Method.String())
			}
			chosen[i] = strings.Join(used, ", ")
			logf("%-40s sparsity %.2f: accuracy %.4f, %.2fs (%s)", m.name, sp, acc, el.Seconds(), strings.Join(layers, ", "))
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# One-shot layer-wise pruning of MNIST %s\n\n", net.Arch())
	fmt.Fprintf(&b, "Command: `go run ./benchmarks/layerwise %s`\n\n", strings.Join(os.Args[1:], " "))
	if *modelIn != "" {
		fmt.Fprintf(&b, "- model: %s\n", *modelIn)
	} else {
		fmt.Fprintf(&b, "- model: %s, %s hidden units, softmax/CE, trained with Adam (rate %g, batch %d) for %d epochs on the first %d training images in %.1f s, seed %d\n",
			net.Arch(), *act, *rate, *batch, *epochs, train.Len(), trainTime.Seconds(), *seed)
	}
	fmt.Fprintf(&b, "- parameters: %d (weights and biases); biases are kept, the sparsity is the fraction of each layer's weights removed\n", net.NumParams())
	fmt.Fprintf(&b, "- calibration inputs: the first %d training images; test set: the first %d test images\n", *calib, data.Test.Len())
	fmt.Fprintf(&b, "- no retraining after pruning; dense test accuracy %.2f %%\n", 100*dense.Accuracy)
	fmt.Fprintf(&b, "- %s, BLAS %s, GOMAXPROCS %d, %d CPUs, %s/%s", runtime.Version(), blasimpl.Name(), runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other processes make the times longer; the load average tells.
		fmt.Fprintf(&b, "; load average at the end %s", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	b.WriteString("\n\n")
	b.WriteString("Test accuracy (pruning time) per sparsity:\n\n| method |")
	for _, sp := range sparsities {
		fmt.Fprintf(&b, " %g %% |", 100*sp)
	}
	b.WriteString("\n|---|")
	for range sparsities {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, m := range ms {
		fmt.Fprintf(&b, "| %s |", m.name)
		for _, c := range res[i] {
			fmt.Fprintf(&b, " %.2f %% (%.2f s) |", 100*c.acc, c.time.Seconds())
		}
		b.WriteString("\n")
	}
	b.WriteString("\nMethod used on each layer:\n\n")
	for i, m := range ms {
		fmt.Fprintf(&b, "- %s: %s\n", m.name, chosen[i])
	}
	fmt.Print(b.String())
	if *outPath != "" {
		if err := os.MkdirAll(filepath.Dir(*outPath), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*outPath, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type recorder func(nn.Progress)

func (r recorder) Record(p nn.Progress) { r(p) }

func parseFloats(s string) ([]float64, error) {
	var v []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(x >= 0 && x <= 1) {
			return nil, fmt.Errorf("sparsity %q is not a number in [0, 1]", f)
		}
		v = append(v, x)
	}
	return v, nil
}

func methodNames() string {
	return "magnitude, magnitude-row, obd, obd-row, auto, auto-layer, sparsegpt, obc"
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
