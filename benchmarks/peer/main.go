// Command peer is the toolkit's side of the PyTorch peer benchmark
// (benchmarks/peer/peer.py): it reads a network and data written by the
// script, times the curvature computations on them and prints the times
// as one JSON object. Run the script, not this program:
//
//	/usr/bin/python3 benchmarks/peer/peer.py
//
// The directory given with -dir holds spec.json ({"sizes": [...], "n": N})
// and the little-endian float64 files theta.bin (the parameters in the
// toolkit's order: per layer W, out × in row-major, then b), x.bin (N × in)
// and y.bin (N × 1). The network has tanh hidden layers, a linear output
// and the summed squared error E = Σₙ ½‖ŷ−y‖². With -write the exact
// Hessian and the Gauss–Newton matrix are written to h.bin and g.bin
// (W × W, row-major) for the script to compare with PyTorch's.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/benchtime"
	"github.com/secondorder/prune/internal/blasimpl"
	"github.com/secondorder/prune/nn"
)

type spec struct {
	Sizes []int `json:"sizes"`
	N     int   `json:"n"`
}

// output is the JSON the program prints: seconds per computation.
type output struct {
	BLAS       string             `json:"blas"`
	Core       string             `json:"core"`
	Warning    string             `json:"warning,omitempty"`
	Go         string             `json:"go"`
	GOMAXPROCS int                `json:"gomaxprocs"`
	DGEMM      float64            `json:"dgemm_gflops,omitempty"`
	W          int                `json:"w"`
	Seconds    map[string]float64 `json:"seconds"`
	Runs       map[string]int     `json:"runs"`
}

func main() {
	dir := flag.String("dir", "", "directory with spec.json, theta.bin, x.bin and y.bin")
	reps := flag.Int("reps", 3, "timed runs per computation (the median is reported)")
	inverse := flag.Bool("inverse", true, "time the damped inverse (G + λI)⁻¹")
	lambda := flag.Float64("lambda", 1e-2, "damping λ of the inverse")
	write := flag.Bool("write", false, "write the exact H and the Gauss–Newton G to h.bin and g.bin")
	dgemm := flag.Bool("dgemm", false, "measure the DGEMM rate")
	only := flag.String("only", "", "time only this computation (exact, gn, hv, grad, inverse)")
	flag.Parse()
	if err := run(*dir, *reps, *inverse, *lambda, *write, *dgemm, *only); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func readBin(path string, n int) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 8*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d (%d float64)", path, len(b), 8*n, n)
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

func writeBin(path string, m *mat.SymDense) error {
	n := m.SymmetricDim()
	b := make([]byte, 8*n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			binary.LittleEndian.PutUint64(b[8*(i*n+j):], math.Float64bits(m.At(i, j)))
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run(dir string, reps int, inverse bool, lambda float64, write, dgemm bool, only string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	sb, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return err
	}
	var sp spec
	if err := json.Unmarshal(sb, &sp); err != nil {
		return fmt.Errorf("spec.json: %v", err)
	}
	if len(sp.Sizes) < 2 || sp.N <= 0 {
		return fmt.Errorf("spec.json: want at least two sizes and a positive n")
	}
	acts := make([]nn.Activation, len(sp.Sizes)-1)
	for i := range acts {
		acts[i] = nn.Tanh
	}
	acts[len(acts)-1] = nn.Linear
	net, err := nn.New(sp.Sizes, acts, nn.MSE)
	if err != nil {
		return err
	}
	W := net.NumParams()
	theta, err := readBin(filepath.Join(dir, "theta.bin"), W)
	if err != nil {
		return err
	}
	copy(net.RawParams(), theta)
	in, out := sp.Sizes[0], sp.Sizes[len(sp.Sizes)-1]
	xs, err := readBin(filepath.Join(dir, "x.bin"), sp.N*in)
	if err != nil {
		return err
	}
	ys, err := readBin(filepath.Join(dir, "y.bin"), sp.N*out)
	if err != nil {
		return err
	}
	X, Y := mat.NewDense(sp.N, in, xs), mat.NewDense(sp.N, out, ys)
	pr := hessian.All(net, X, Y)
	if err := pr.Check(); err != nil {
		return err
	}
	ctx := context.Background()
	res := output{
		BLAS: blasimpl.Name(), Core: blasimpl.Core(), Warning: blasimpl.Warning(),
		Go: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), W: W,
		Seconds: map[string]float64{}, Runs: map[string]int{},
	}
	if dgemm {
		res.DGEMM = benchtime.DGEMMRate(reps)
	}
	H := mat.NewSymDense(W, nil)
	G := mat.NewSymDense(W, nil)
	inv := mat.NewSymDense(W, nil)
	g := make([]float64, W)
	v := make([]float64, W)
	hv := make([]float64, W)
	for i := range v {
		v[i] = math.Sin(float64(i))
	}
	comps := []struct {
		name string
		fn   func() error
	}{
		{"grad", func() error { net.Gradient(g, X, Y); return nil }},
		{"hv", func() error { hessian.Exact{P: pr}.MulVecTo(hv, v); return nil }},
		{"exact", func() error { return hessian.Exact{P: pr}.DenseTo(ctx, H) }},
		{"gn", func() error { return hessian.GaussNewton{P: pr}.DenseTo(ctx, G) }},
	}
	if inverse {
		comps = append(comps, struct {
			name string
			fn   func() error
		}{"inverse", func() error { return hessian.DampedInverse(inv, G, lambda) }})
	}
	for _, c := range comps {
		if only != "" && c.name != only && !(only == "inverse" && c.name == "gn") {
			continue
		}
		r, err := benchtime.Measure(c.fn, reps, 20*time.Second)
		if err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		res.Seconds[c.name] = r.D.Seconds()
		res.Runs[c.name] = r.Runs
	}
	if write {
		if err := writeBin(filepath.Join(dir, "h.bin"), H); err != nil {
			return err
		}
		if err := writeBin(filepath.Join(dir, "g.bin"), G); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(res)
}
