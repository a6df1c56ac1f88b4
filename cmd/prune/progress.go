package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/secondorder/prune/nn"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// barRecorder is an nn.Recorder that shows a progress bar over the epochs,
// with the latest training loss, on a terminal.
type barRecorder struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// Record advances the bar to the epoch of p and shows its losses.
func (r *barRecorder) Record(p nn.Progress) {
	if r.bar == nil {
		r.bar = progressbar.NewOptions(max(p.Epochs, 1),
			progressbar.OptionSetWriter(r.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	desc := fmt.Sprintf("train loss %-10.4g", p.TrainLoss)
	if p.ValidLoss != 0 && !math.IsNaN(p.ValidLoss) {
		desc += fmt.Sprintf(" valid loss %-10.4g", p.ValidLoss)
	}
	_ = r.bar.Set(p.Epoch)
	r.bar.Describe(desc)
}

// close removes the bar from the terminal. It does nothing for a nil
// recorder or one that recorded nothing.
func (r *barRecorder) close() {
	if r == nil || r.bar == nil {
		return
	}
	_ = r.bar.Clear()
}
