// Package progress shows how long work is going on a terminal: done and total, rate and
// time left. Off a terminal, or for machine-readable output, it shows nothing.
package progress

import (
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Bar is a progress bar, or nothing at all; its methods are safe for concurrent use.
type Bar struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// Terminal tells whether a writer is a terminal (docker's streams know).
type Terminal interface {
	io.Writer
	IsTerminal() bool
}

// New returns a bar on w for total units (bytes when bytes is set; -1 when the total is not
// known), or a silent one when w is not a terminal or quiet is set.
func New(w Terminal, quiet bool, description string, total int64, bytes bool) *Bar {
	if quiet || !w.IsTerminal() {
		return &Bar{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("packs"))
	}
	return &Bar{bar: progressbar.NewOptions64(total, opts...)}
}

// Set moves the bar to done of total.
func (b *Bar) Set(done, total int64) {
	if b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if total != 0 && total != b.bar.GetMax64() {
		b.bar.ChangeMax64(total)
	}
	_ = b.bar.Set64(done)
}

// Done removes the bar.
func (b *Bar) Done() {
	if b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.bar.Finish()
}
