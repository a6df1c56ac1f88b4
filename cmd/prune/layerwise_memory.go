package main

import (
	"fmt"

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
