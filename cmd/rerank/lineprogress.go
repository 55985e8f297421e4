package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, where progress bars redraw
// in place; into a file or a pipe they would pile up as one long line of
// carriage returns.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// lineEvery is how often progress is printed as plain lines into a file
// or a pipe, as rerank train does.
const lineEvery = 10 * time.Second

// lineProgress is the progress of a long step written as plain lines,
// each ending in a newline: at most one every `every`, and one when the
// step completes.
type lineProgress struct {
	w           io.Writer
	label, unit string
	every       time.Duration
	now         func() time.Time

	mu          sync.Mutex
	start, last time.Time
	done, total int
	said        bool // the completing line is written
}

func newLineProgress(w io.Writer, label, unit string) *lineProgress {
	return &lineProgress{w: w, label: label, unit: unit, every: lineEvery, now: time.Now}
}

// set records done of total, printing a line when one is due.
func (p *lineProgress) set(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if p.start.IsZero() {
		p.start, p.last = t, t
	}
	p.done, p.total = done, total
	if done >= total {
		p.finishLocked(t)
		return
	}
	if t.Sub(p.last) >= p.every {
		p.last = t
		p.line(t)
	}
}

// finish writes the completing line if set has not.
func (p *lineProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.start.IsZero() {
		p.finishLocked(p.now())
	}
}

func (p *lineProgress) finishLocked(t time.Time) {
	if !p.said {
		p.said = true
		p.line(t)
	}
}

func (p *lineProgress) line(t time.Time) {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	rate := ""
	if s := t.Sub(p.start).Seconds(); s > 0 {
		rate = fmt.Sprintf(", %.1f %s/s", float64(p.done)/s, p.unit)
	}
	fmt.Fprintf(p.w, "%s %d/%d %s (%.0f%%)%s, %s\n", p.label, p.done, p.total, p.unit, pct, rate, t.Sub(p.start).Round(time.Second))
}
