package runreport

import (
	"fmt"
	"runtime"

	"github.com/secondorder/prune/hessian"
	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
	"gonum.org/v1/gonum/mat"
)

// MatrixNames names the dense curvatures of OBS in descriptions, and
// DiagonalNames the diagonals of OBD.
var (
	MatrixNames   = map[string]string{"exact": "exact Hessian", "gn": "Gauss–Newton matrix", "fisher": "Fisher matrix"}
	DiagonalNames = map[string]string{"exact": "exact diagonal", "gn": "Gauss–Newton diagonal", "fisher": "Fisher diagonal",
		"diag-bl": "Becker–LeCun diagonal", "diag-lm": "Levenberg–Marquardt diagonal"}
)

// MemoryNeed returns the bytes a round of the saliency s on the curvature
// named curv holds at once on net and the training data X, Y, and what
// they hold; zero where the library has no plan.
func MemoryNeed(s prune.Saliency, curv string, net *nn.Network, X, Y *mat.Dense) (int64, string) {
	p := &hessian.Problem{Net: net, Data: nn.Data{X: X, Y: Y}, Params: net.LiveIndices()}
	need, ok := prune.PlannedBytes(s, p)
	if !ok {
		return 0, ""
	}
	live, total := p.Dim(), net.NumParams()
	switch s := s.(type) {
	case prune.WoodburyOBS:
		k, _ := hessian.KindNamed(curv)
		return need, fmt.Sprintf("Woodbury OBS on the %s of rank %d over %d live parameters", k.Desc, k.LowRankRows(p, cmpOr(s.Samples, prune.DefaultWoodburySamples)), live)
	case prune.BlockOBS:
		return need, fmt.Sprintf("block OBS on %d blocks over %d live parameters", len(s.Blocks(p)), live)
	}
	switch curv {
	case "recursive":
		return need, fmt.Sprintf("the OBS recursive inverse over %d live parameters", live)
	case "exact":
		return need, fmt.Sprintf("OBS on the exact Hessian over %d live parameters (the matrix, its inverse and a %d×%d build buffer)", live, total, total)
	}
	return need, fmt.Sprintf("OBS on the %s over %d live parameters (the matrix and its inverse)", MatrixNames[curv], live)
}

// LayerwiseMemoryNeed returns the bytes layer-wise pruning by m holds at
// once on net with GOMAXPROCS workers, and what they hold.
func LayerwiseMemoryNeed(net *nn.Network, m prune.LayerwiseMethod) (int64, string) {
	workers := runtime.GOMAXPROCS(0)
	need, l := prune.LayerwiseMemory(net, &prune.LayerwiseSettings{Method: m}, workers)
	if l < 0 {
		return 0, ""
	}
	d := net.Layer(l).In + 1
	return need, fmt.Sprintf("layer-wise OBS on layer %d: %d×%d layer Hessian, its inverse and a copy per worker (%d workers)", l, d, d, workers)
}

// OverLimit returns the sentence that what needs need bytes, above limit.
func OverLimit(what string, need, limit int64) string {
	return fmt.Sprintf("%s needs about %s, above the limit of %s", what, sysmem.FormatBytes(need), LimitText(limit))
}

// LimitText returns the memory limit for messages, with its source when it
// is the default limit.
func LimitText(limit int64) string {
	if limit == hessian.DefaultMemoryLimit() {
		return fmt.Sprintf("%s (%s)", sysmem.FormatBytes(limit), hessian.DefaultMemoryLimitSource())
	}
	return sysmem.FormatBytes(limit)
}

// cmpOr returns v, or def when v is zero.
func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
