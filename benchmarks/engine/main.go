// Command engine measures prune.Run on LeNet-300-100 and the full MNIST
// training set: global magnitude pruning and OBD on the Levenberg–Marquardt
// diagonal to 90 % sparsity, with the per-removal audit at its defaults,
// the pruning time only (loading and training excluded). Where
// /usr/bin/python3 has torch it also times
// torch.nn.utils.prune.global_unstructured (L1Unstructured) on the same
// weights and reports the ratio and how many pruned parameters agree.
//
//	go run ./benchmarks/engine [-epochs 2 -seed 1 -o results/engine.md]
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/internal/atomicfile"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/modelio"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// config is one timed run of prune.Run.
type config struct {
	key      string
	name     string
	method   prune.Saliency
	fraction float64 // 0: the default
	obj      prune.Objective
}

func main() {
	var (
		epochs   = flag.Int("epochs", 2, "training epochs (Adam) of the network")
		seed     = flag.Uint64("seed", 1, "seed of initialisation and shuffling")
		modelIn  = flag.String("model", "", "load this model instead of training one")
		modelOut = flag.String("save-model", "", "save the trained model to this file")
		sparsity = flag.Float64("sparsity", 0.9, "target sparsity")
		only     = flag.String("configs", "", "comma-separated configurations to run: magnitude, obd, magnitude-1, obd-1, obd-loss, obd-1-loss, obd-exact, obd-gn (default all)")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the pruning to this file")
		reps     = flag.Int("torch-reps", 5, "timed runs of the PyTorch call (median)")
		outPath  = flag.String("o", "results/engine.md", "Markdown output file (empty: standard output only)")
		mnistDir = flag.String("mnist-dir", "", "directory of the MNIST IDX files (default: the Go module cache)")
	)
	flag.Parse()
	ctx := context.Background()
	data, err := datasets.Load("mnist", &datasets.Options{MNISTDir: *mnistDir})
	if err != nil {
		log.Fatal(err)
	}
	train := data.Train
	test := data.Test

	var net *nn.Network
	if *modelIn != "" {
		if net, err = modelio.Load(*modelIn, nil); err != nil {
			log.Fatal(err)
		}
	} else {
		net, err = nn.New([]int{784, 300, 100, 10}, []nn.Activation{nn.ReLU, nn.ReLU, nn.Softmax}, nn.CE)
		if err != nil {
			log.Fatal(err)
		}
		net.Init(rand.NewPCG(*seed, *seed))
		log.Printf("training %s on %d images, %d epochs", net.Arch(), data.Train.Len(), *epochs)
		if _, err := nn.Train(ctx, net, train, nn.Data{}, &nn.TrainSettings{
			Epochs: *epochs, LearningRate: 1e-3, BatchSize: 128, Src: rand.NewPCG(*seed, *seed+1),
		}); err != nil {
			log.Fatal(err)
		}
		net.Meta = map[string]any{"data": "mnist", "epochs": *epochs, "seed": *seed, "trainer": "adam"}
		if *modelOut != "" {
			if err := modelio.Save(*modelOut, net); err != nil {
				log.Fatal(err)
			}
		}
	}
	dense := net.Evaluate(test.X, test.Y)
	W := net.NumParams()
	count := W - (W - int(math.Ceil(*sparsity*float64(W))))

	configs := []config{
		{"magnitude", "magnitude", prune.Magnitude{}, 0, 0},
		{"obd", "obd diag-lm", prune.OBD{Curvature: prune.LevenbergMarquardt}, 0, 0},
		{"magnitude-1", "magnitude, one round", prune.Magnitude{}, *sparsity, 0},
		{"obd-1", "obd diag-lm, one round", prune.OBD{Curvature: prune.LevenbergMarquardt}, *sparsity, 0},
		{"obd-loss", "obd diag-lm, --objective loss", prune.OBD{Curvature: prune.LevenbergMarquardt}, 0, prune.LossObjective},
		{"obd-1-loss", "obd diag-lm, one round, --objective loss", prune.OBD{Curvature: prune.LevenbergMarquardt}, *sparsity, prune.LossObjective},
		{"obd-exact", "obd exact diagonal", prune.OBD{Curvature: prune.Exact}, 0, 0},
		{"obd-gn", "obd gn", prune.OBD{Curvature: prune.GaussNewton}, 0, 0},
	}
	if *only != "" {
		keep := map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			keep[strings.TrimSpace(s)] = true
		}
		var c []config
		for _, cf := range configs {
			if keep[cf.key] {
				c = append(c, cf)
			}
		}
		configs = c
	}

	type row struct {
		cfg     config
		time    time.Duration
		cpu     time.Duration // user and system time of the process
		rounds  int
		audited int
		testErr float64
		pruned  map[int]bool
	}
	var rows []row
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, cf := range configs {
		s := &prune.Settings{Method: cf.method, Sparsity: *sparsity, Fraction: cf.fraction, Objective: cf.obj}
		c0 := cpuTime()
		t0 := time.Now()
		res, err := prune.Run(ctx, net, nn.Splits{Train: train, Test: test}, s)
		el := time.Since(t0)
		cpu := cpuTime() - c0
		if err != nil {
			log.Fatalf("%s: %v", cf.name, err)
		}
		r := row{cfg: cf, time: el, cpu: cpu, rounds: len(res.Rounds), pruned: map[int]bool{}}
		for _, st := range res.History {
			if !math.IsNaN(st.Real) {
				r.audited++
			}
		}
		for q := 0; q < W; q++ {
			if !res.Net.IsLive(q) {
				r.pruned[q] = true
			}
		}
		r.testErr = 1 - res.Net.Evaluate(test.X, test.Y).Accuracy
		log.Printf("%s: %.2f s (CPU %.2f s), %d rounds, %d removals audited, test error %.2f %%", cf.name, el.Seconds(), cpu.Seconds(), r.rounds, r.audited, 100*r.testErr)
		rows = append(rows, r)
	}

	torch, terr := runTorch(net, count, *reps)
	if terr != nil {
		log.Printf("PyTorch comparison skipped: %v", terr)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Pruning engine speed: LeNet-300-100 on the full MNIST training set\n\n")
	fmt.Fprintf(&b, "Command: `go run ./benchmarks/engine %s`\n\n", strings.Join(os.Args[1:], " "))
	if *modelIn != "" {
		fmt.Fprintf(&b, "- model: %s\n", *modelIn)
	} else {
		fmt.Fprintf(&b, "- model: %s, ReLU, softmax/CE, trained with Adam (rate 0.001, batch 128) for %d epochs on the %d training images, seed %d\n", net.Arch(), *epochs, data.Train.Len(), *seed)
	}
	fmt.Fprintf(&b, "- %d parameters (weights and biases, all prunable); target sparsity %g: %d removals; dense test error %.2f %%\n", W, *sparsity, count, 100*(1-dense.Accuracy))
	fmt.Fprintf(&b, "- `prune.Run` on the %d training images and the %d test images (evaluated after every round), the audit at its defaults (%d rows, %d removals per round); the time is that of `prune.Run` alone, loading and training excluded\n",
		data.Train.Len(), data.Test.Len(), prune.DefaultAuditRows, prune.DefaultAuditRemovals)
	fmt.Fprintf(&b, "- %s, BLAS %s, GOMAXPROCS %d, %d CPUs (%s), %s/%s", runtime.Version(), blasimpl.Name(), runtime.GOMAXPROCS(0), runtime.NumCPU(), benchtime.CPUModel(), runtime.GOOS, runtime.GOARCH)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "; the machine is shared, load average at the end %s", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	b.WriteString("\n\n| configuration | rounds | removals audited | pruning time | CPU time | test error | time / PyTorch | pruned set equal to PyTorch's |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		ratio, agree := "", ""
		if terr == nil {
			ratio = fmt.Sprintf("%.0f×", r.time.Seconds()/torch.Seconds)
			same := 0
			for _, q := range torch.Pruned {
				if r.pruned[q] {
					same++
				}
			}
			agree = fmt.Sprintf("%.2f %%", 100*float64(same)/float64(len(torch.Pruned)))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.2f s | %.2f s | %.2f %% | %s | %s |\n", r.cfg.name, r.rounds, r.audited, r.time.Seconds(), r.cpu.Seconds(), 100*r.testErr, ratio, agree)
	}
	if terr == nil {
		fmt.Fprintf(&b, "\nPyTorch %s (%d threads): `torch.nn.utils.prune.global_unstructured` with `L1Unstructured`, amount %d, over the weights and biases of the same network in float64: median of %d runs %.4f s. *rounds* is the number of rounds: by default each removes 10 %% of the live parameters; *one round* removes all %d at once as PyTorch does. The last column is the fraction of PyTorch's pruned parameters that the run pruned too.\n",
			torch.Version, torch.Threads, count, *reps, torch.Seconds, count)
	} else {
		fmt.Fprintf(&b, "\nPyTorch comparison not run: %v\n", terr)
	}
	fmt.Print(b.String())
	if *outPath != "" {
		if err := atomicfile.WriteBytes(*outPath, []byte(b.String())); err != nil {
			log.Fatal(err)
		}
	}
}

// cpuTime returns the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// torchResult is the output of torch_prune.py.
type torchResult struct {
	Seconds float64 `json:"seconds"`
	Threads int     `json:"threads"`
	Version string  `json:"version"`
	Pruned  []int   `json:"pruned"`
}

// runTorch times PyTorch's global magnitude pruning of net's parameters.
func runTorch(net *nn.Network, count, reps int) (*torchResult, error) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		return nil, fmt.Errorf("%s cannot import torch", python)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "torch_prune.py")
	dir, err := os.MkdirTemp("", "engine")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "params.f64")
	buf := make([]byte, 8*net.NumParams())
	for i, v := range net.RawParams() {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		return nil, err
	}
	sizes := make([]string, 0, net.NumLayers()+1)
	for _, s := range net.Sizes() {
		sizes = append(sizes, fmt.Sprint(s))
	}
	out, err := exec.Command(python, script, path, strings.Join(sizes, ","), fmt.Sprint(count), fmt.Sprint(reps)).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", python, script, err)
	}
	var r torchResult
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%s output: %v", script, err)
	}
	return &r, nil
}
