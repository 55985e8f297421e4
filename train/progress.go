package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressLog writes metrics.jsonl and draws the progress bar.
type progressLog struct {
	f      *os.File
	w      io.Writer
	bar    *progressbar.ProgressBar
	status func() string // device status for the bar, or nil
}

// newProgressLog appends to metrics.jsonl at path ("" writes no file).
func newProgressLog(path string, w io.Writer, total, done int) (*progressLog, error) {
	p := &progressLog{w: w}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("metrics log: %w", err)
		}
		p.f = f
	}
	if w != nil {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("train"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetItsString("steps"),
		)
		if done > 0 {
			_ = p.bar.Set(done)
		}
	}
	return p, nil
}

// tick advances the bar by one step, showing loss, learning rate, pairs
// per second since the last log line, and resident memory.
func (p *progressLog) tick(loss, lr float64, pairs int, since time.Time) {
	if p.bar == nil {
		return
	}
	pps := float64(pairs) / max(1e-9, time.Since(since).Seconds())
	desc := fmt.Sprintf("loss %.4f lr %.2e %.1f pairs/s mem %s", loss, lr, pps, memString())
	if p.status != nil {
		if s := p.status(); s != "" {
			desc += " " + s
		}
	}
	p.bar.Describe(desc)
	_ = p.bar.Add(1)
}

// pause clears the bar line before other output.
func (p *progressLog) pause() {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
}

func (p *progressLog) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

func (p *progressLog) write(rec map[string]any) error {
	if p.f == nil {
		return nil
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := p.f.Write(append(js, '\n')); err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	return nil
}

func (p *progressLog) close() {
	if p.f != nil {
		p.f.Close()
	}
}

// memString is the process's resident memory (Linux), else the Go
// runtime's.
func memString() string {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return fmtBytes(pages * int64(os.Getpagesize()))
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmtBytes(int64(ms.Sys))
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
