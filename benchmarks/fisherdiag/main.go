// Command fisherdiag compares the curvatures of global OBS on a network
// small enough for dense W×W matrices: the exact Hessian H, the
// Gauss–Newton matrix G and the empirical Fisher matrix F of the summed
// cross-entropy over the same N training images, and F in its Woodbury
// form from m of them (scaled by N/m). For each it prints the mean
// diagonal, and the OBS predicted against the real ΔE of single removals
// and of joint removals of 50 and 90 % of the weights, E measured on the
// same N images.
//
//	go run ./benchmarks/fisherdiag [-sizes 784,8,6,10 -n 1000 -m 100]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/benchmarks/repro"
	"github.com/secondorder/prune/datasets"
	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

func main() {
	sizesF := flag.String("sizes", "784,8,6,10", "layer sizes (ReLU, softmax, no biases)")
	n := flag.Int("n", 1000, "N, the training images of E and of the dense curvatures")
	trainN := flag.Int("train-n", 10000, "images the network is trained on")
	epochs := flag.Int("epochs", 10, "training epochs")
	m := flag.Int("m", 100, "gradients of the Woodbury Fisher")
	rel := flag.Float64("rel", 1e-2, "damping relative to each matrix's mean diagonal")
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*sizesF, ",") {
		v, err := strconv.Atoi(s)
		if err != nil {
			log.Fatal(err)
		}
		sizes = append(sizes, v)
	}
	if err := run(sizes, *n, *trainN, *epochs, *m, *rel); err != nil {
		log.Fatal(err)
	}
}

type curv struct {
	name   string
	c      *mat.SymDense // damped
	lambda float64
	meanD  float64
}

func run(sizes []int, N, trainN, epochs, m int, rel float64) error {
	ctx := context.Background()
	data, err := datasets.LoadMNIST("", max(trainN, N), 0)
	if err != nil {
		return err
	}
	net, err := repro.TrainMLPNet(ctx, nn.Data{X: data.Train.X, Y: data.Train.Y}, sizes, epochs, 1, nil)
	if err != nil {
		return err
	}
	_, xc := data.Train.X.Dims()
	_, yc := data.Train.Y.Dims()
	X := mat.DenseCopyOf(data.Train.X.Slice(0, N, 0, xc))
	Y := mat.DenseCopyOf(data.Train.Y.Slice(0, N, 0, yc))
	p := hessian.Live(net, X, Y)
	W := p.Dim()
	E0 := net.Objective(X, Y)
	fmt.Printf("network %v, W = %d, E on N = %d images %.4g, training accuracy there %.2f %%\n", sizes, W, N, E0, 100*net.Evaluate(X, Y).Accuracy)
	var cs []curv
	for _, c := range []struct {
		name string
		c    hessian.Curvature
	}{{"exact H", hessian.Exact{P: p}}, {"Gauss–Newton G", hessian.GaussNewton{P: p}}, {"empirical Fisher F", hessian.Fisher{P: p}}} {
		d, err := hessian.Dense(ctx, c.c, -1)
		if err != nil {
			return err
		}
		var tr float64
		for i := 0; i < W; i++ {
			tr += d.At(i, i)
		}
		lam := rel * tr / float64(W)
		for i := 0; i < W; i++ {
			d.SetSym(i, i, d.At(i, i)+lam)
		}
		cs = append(cs, curv{c.name, d, lam, tr / float64(W)})
	}
	// The Woodbury Fisher of m of the N images, scaled by N/m, at the
	// dense F's λ.
	wb := prune.WoodburyOBS{Samples: m, Damping: cs[2].lambda, Src: rand.NewPCG(1, 23)}
	lr, err := wb.LowRank(ctx, p, nil)
	if err != nil {
		return err
	}
	fmt.Printf("\n| curvature | mean diagonal | λ | mean diag / G's |\n|---|--:|--:|--:|\n")
	for _, c := range cs {
		fmt.Printf("| %s | %.4g | %.4g | %.3g |\n", c.name, c.meanD, c.lambda, c.meanD/cs[1].meanD)
	}
	w := make([]float64, W)
	raw := net.RawParams()
	for i, q := range p.Params {
		w[i] = raw[q]
	}
	realE := func(delta []float64, S []int) (float64, float64) {
		out := net.Clone()
		r := out.RawParams()
		for i, q := range p.Params {
			r[q] = w[i] + delta[i]
		}
		for _, i := range S {
			r[p.Params[i]] = 0
			out.Prune(p.Params[i])
		}
		return out.Objective(X, Y) - E0, out.Evaluate(X, Y).Accuracy
	}
	// Inverses.
	invs := make([]*mat.SymDense, len(cs))
	for i, c := range cs {
		var ch mat.Cholesky
		if !ch.Factorize(c.c) {
			// The exact H of a ReLU network is indefinite: OBS needs a
			// positive definite curvature, so it is left out below.
			fmt.Printf("\n%s + λI is not positive definite: left out of the OBS comparisons.\n", c.name)
			continue
		}
		invs[i] = mat.NewSymDense(W, nil)
		if err := ch.InverseTo(invs[i]); err != nil {
			return err
		}
	}
	// Single removals: 30 weights spread over the magnitudes.
	rng := rand.New(rand.NewPCG(7, 7))
	picks := rng.Perm(W)[:30]
	fmt.Printf("\nSingle removals (30 weights drawn at random): median of real/predicted ΔE; real ΔE of zeroing without update, median over the same weights.\n\n")
	fmt.Printf("| curvature | median real / predicted | median predicted | median real (OBS update) | median real (no update) |\n|---|--:|--:|--:|--:|\n")
	zeroReal := make([]float64, 0)
	for _, q := range picks {
		d := make([]float64, W)
		r, _ := realE(d, []int{q})
		zeroReal = append(zeroReal, r)
	}
	type row struct {
		name string
		col  func(q int, dst []float64) float64 // writes C⁻¹e_q, returns [C⁻¹]_qq
	}
	rows := []row{}
	for i, c := range cs {
		inv := invs[i]
		if inv == nil {
			continue
		}
		rows = append(rows, row{c.name, func(q int, dst []float64) float64 {
			for j := 0; j < W; j++ {
				dst[j] = inv.At(j, q)
			}
			return inv.At(q, q)
		}})
	}
	rows = append(rows, row{fmt.Sprintf("Woodbury F, m = %d", m), func(q int, dst []float64) float64 {
		lr.InverseColumnTo(dst, q)
		return lr.InverseDiag(q)
	}})
	for _, rw := range rows {
		var ratio, preds, reals []float64
		col := make([]float64, W)
		for _, q := range picks {
			d := rw.col(q, col)
			pred := w[q] * w[q] / (2 * d)
			delta := make([]float64, W)
			for j := range delta {
				delta[j] = -w[q] / d * col[j]
			}
			r, _ := realE(delta, []int{q})
			ratio = append(ratio, r/pred)
			preds = append(preds, pred)
			reals = append(reals, r)
		}
		fmt.Printf("| %s | %.3g | %.3g | %.3g | %.3g |\n", rw.name, median(ratio), median(preds), median(reals), median(zeroReal))
	}
	// Joint removals of 50 and 90 %, S chosen by each curvature's OBS
	// saliency.
	fmt.Printf("\nJoint removals: S the weights of least w²/(2[C⁻¹]_qq), δ = −C⁻¹_{:,S}([C⁻¹]_SS)⁻¹w_S; E and accuracy on the N images (dense accuracy %.2f %%).\n\n", 100*net.Evaluate(X, Y).Accuracy)
	fmt.Printf("| curvature | sparsity | predicted ΔE | real ΔE | ΔE of zeroing S | accuracy | accuracy, zeroing S |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, sp := range []float64{0.5, 0.9} {
		k := int(math.Round(sp * float64(W)))
		for ci, c := range cs {
			inv := invs[ci]
			if inv == nil {
				continue
			}
			order := make([]int, W)
			for i := range order {
				order[i] = i
			}
			sal := make([]float64, W)
			for i := range sal {
				sal[i] = w[i] * w[i] / (2 * inv.At(i, i))
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sal[a], sal[b]) })
			S := slices.Clone(order[:k])
			slices.Sort(S)
			R := slices.Clone(order[k:])
			slices.Sort(R)
			// δ_R = −C_RR⁻¹ C_RS w_S; predicted = ½ w_Sᵀ(C_SS w_S + C_SR δ_R).
			crr := mat.NewSymDense(len(R), nil)
			for a, i := range R {
				for b := a; b < len(R); b++ {
					crr.SetSym(a, b, c.c.At(i, R[b]))
				}
			}
			v := mat.NewVecDense(len(R), nil)
			for a, i := range R {
				var s float64
				for _, j := range S {
					s += c.c.At(i, j) * w[j]
				}
				v.SetVec(a, s)
			}
			var ch mat.Cholesky
			if !ch.Factorize(crr) {
				return fmt.Errorf("C_RR not positive definite")
			}
			dr := mat.NewVecDense(len(R), nil)
			if err := ch.SolveVecTo(dr, v); err != nil {
				return err
			}
			delta := make([]float64, W)
			for a, i := range R {
				delta[i] = -dr.AtVec(a)
			}
			var pred float64
			for _, i := range S {
				for _, j := range S {
					pred += w[i] * c.c.At(i, j) * w[j]
				}
			}
			pred += -2 * mat.Dot(v, dr)
			pred += 0
			// ½(w_Sᵀ C_SS w_S + 2 w_Sᵀ C_SR δ_R + δ_Rᵀ C_RR δ_R) with δ_R = −C_RR⁻¹v: = ½(w_SᵀC_SS w_S − vᵀC_RR⁻¹v).
			pred = 0.5 * (pred + mat.Dot(v, dr))
			r, acc := realE(delta, S)
			z, zacc := realE(make([]float64, W), S)
			fmt.Printf("| %s | %g | %.4g | %.4g | %.4g | %.2f | %.2f |\n", c.name, sp, pred, r, z, 100*acc, 100*zacc)
		}
		// The Woodbury F of m gradients.
		sc, err := wb.Begin(ctx, p, &prune.Env{})
		if err != nil {
			return err
		}
		ww := slices.Clone(w)
		removed, pred, err := prune.RemoveMany(ctx, sc, ww, nil, k, 1)
		if err != nil {
			return err
		}
		delta := make([]float64, W)
		for i := range delta {
			delta[i] = ww[i] - w[i]
		}
		r, acc := realE(delta, removed)
		z, zacc := realE(make([]float64, W), removed)
		fmt.Printf("| Woodbury F, m = %d | %g | %.4g | %.4g | %.4g | %.2f | %.2f |\n", m, sp, pred, r, z, 100*acc, 100*zacc)
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}
