package main

import (
	"errors"
	"fmt"
	"github.com/secondorder/prune/internal/sysmem"
	"math"

	"github.com/secondorder/prune/hessian"

	"github.com/secondorder/prune/nn"
	"github.com/secondorder/prune/prune"
)

// layerwiseMethod returns the layer-wise method of --method with
// --layerwise.
func layerwiseMethod(method string) prune.LayerwiseMethod {
	switch method {
	case "obd":
		return prune.LayerwiseOBD
	case "magnitude":
		return prune.LayerwiseMagnitude
	}
	return prune.LayerwiseAuto
}

// layerwiseMemoryNeed returns the bytes of the dense matrices of
// --layerwise with --method method on net, from prune.LayerwiseMemory, and
// a description; zero for magnitude and OBD, which hold none.
func layerwiseMemoryNeed(method string, net *nn.Network, workers int) (int64, string) {
	need, l := prune.LayerwiseMemory(net, &prune.LayerwiseSettings{Method: layerwiseMethod(method)}, workers)
	if l < 0 {
		return 0, ""
	}
	d := net.Layer(l).In + 1
	return need, fmt.Sprintf("layer-wise OBS on layer %d: %d×%d layer Hessian, its inverse and a copy per worker (%d workers)", l, d, d, workers)
}

// memoryFlagError returns the reason for a --max-memory value that
// sysmem.ParseBytes refused: too large for a size that overflows, or the
// expected form.
func memoryFlagError(err error) error {
	if errors.Is(err, sysmem.ErrBytesTooLarge) {
		return fmt.Errorf("too large: the largest size is %s (or use off for no limit)", sysmem.FormatBytes(math.MaxInt64))
	}
	return errors.New("want a number of bytes with an optional K, M, G or T suffix, or off")
}

// limitText returns the memory limit for messages, with its source when
// it is the default limit.
func limitText(limit int64) string {
	if limit == hessian.DefaultMemoryLimit() {
		return fmt.Sprintf("%s (%s)", sysmem.FormatBytes(limit), hessian.DefaultMemoryLimitSource())
	}
	return sysmem.FormatBytes(limit)
}

// lanczosMemoryAdvice is the advice of a matrix kind refused with
// --lanczos, which builds the matrix all the same.
const lanczosMemoryAdvice = "--lanczos on a matrix kind still builds the matrix; use a vector kind (diag, diag-bl, diag-lm, hutchinson), " +
	"whose --eigen runs Lanczos on Hessian-vector products without it, layer-wise OBS, or raise the limit (--max-memory)"
