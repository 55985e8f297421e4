package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rerank-go/rerank/train"
)

// trainProgress shows train's progress (it implements train.Progress): on
// a terminal a bar redrawn in place; elsewhere (a log file, a pipe) a
// plain line every few seconds. Every message ends with a newline, and
// the bar's line is ended before anything else is written.
type trainProgress struct {
	w      io.Writer
	tty    bool
	every  time.Duration    // between plain lines
	status func() string    // device status (GPU memory), or nil
	now    func() time.Time // the clock (tests set it)

	bar        *progressbar.ProgressBar
	started    bool
	start      time.Time
	startStep  int // steps done before this process started
	pairs      int // pairs since the first step
	lastLine   time.Time
	onBarLine  bool // the bar is drawn and its line not ended
	lastStatus string
}

// newTrainProgress writes to w; it draws a bar only when w is a terminal.
func newTrainProgress(w io.Writer, status func() string) *trainProgress {
	return &trainProgress{w: w, tty: isTerminal(w), every: lineEvery, status: status, now: time.Now}
}

// Message prints one line, ending the bar's line first.
func (p *trainProgress) Message(msg string) {
	p.endBarLine()
	fmt.Fprintln(p.w, train.FormatFields(strings.TrimRight(msg, "\n"), trainFlag))
}

// Step shows a finished step: step, loss, learning rate, pairs per
// second, ETA and memory.
func (p *trainProgress) Step(s train.StepInfo) {
	t := p.now()
	if !p.started {
		p.started, p.start, p.startStep, p.lastLine = true, t, s.Step-1, t
		if p.tty {
			p.bar = progressbar.NewOptions(s.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription("train"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetElapsedTime(true),
				progressbar.OptionSetWidth(20),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionShowDescriptionAtLineEnd(),
				progressbar.OptionSetItsString("steps"),
			)
			_ = p.bar.Set(p.startStep)
		}
	}
	// Rates are measured from the end of the first step (its start is
	// not known here): its pairs do not count.
	if s.Step > p.startStep+1 {
		p.pairs += s.Pairs
	}
	el := t.Sub(p.start).Seconds()
	pps, eta := 0.0, ""
	if done := s.Step - p.startStep - 1; el > 0 && done > 0 {
		pps = float64(p.pairs) / el
		eta = time.Duration(float64(s.Total-s.Step) * el / float64(done) * float64(time.Second)).Round(time.Second).String()
	}
	status := ""
	if p.status != nil {
		if st := p.status(); st != "" {
			status = " " + st
		}
	}
	if p.tty {
		p.bar.Describe(fmt.Sprintf("loss %.4f lr %.2e %.1f pairs/s mem %s%s", s.Loss, s.LR, pps, memString(), status))
		_ = p.bar.Set(s.Step)
		p.onBarLine = true
		return
	}
	if t.Sub(p.lastLine) < p.every && s.Step != s.Total && s.Step != p.startStep+1 {
		return
	}
	p.lastLine = t
	rate := "" // unknown at the first step
	if eta != "" {
		rate = fmt.Sprintf(" %.1f pairs/s eta %s", pps, eta)
	}
	fmt.Fprintf(p.w, "step %d/%d epoch %d loss %.4f lr %.2e%s mem %s%s\n",
		s.Step, s.Total, s.Epoch, s.Loss, s.LR, rate, memString(), status)
}

// endBarLine ends the bar's line so that what follows starts on its own.
func (p *trainProgress) endBarLine() {
	if p.onBarLine {
		fmt.Fprintln(p.w)
		p.onBarLine = false
	}
}

// done ends the output: after it, an error or a summary starts on a new
// line.
func (p *trainProgress) done() { p.endBarLine() }

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

// trainFlagOf maps the JSON names of train.Args to the flags of rerank
// train where they differ from the kebab-cased name.
var trainFlagOf = map[string]string{
	"model_name_or_path":     "model",
	"resume_from_checkpoint": "resume",
	"target_modules":         "lora-target-modules",
}

// trainFlag is the flag of a train.Args field, with its dashes.
func trainFlag(field string) string {
	if f, ok := trainFlagOf[field]; ok {
		return "--" + f
	}
	return "--" + strings.ReplaceAll(field, "_", "-")
}

// trainField is the train.Args JSON name of a flag name (with or without
// dashes) or of a JSON name, or "" when there is none.
func trainField(name string) string {
	name = strings.TrimLeft(strings.TrimSpace(name), "-")
	for _, f := range reflect.VisibleFields(reflect.TypeOf(train.Args{})) {
		field, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if field == name || trainFlag(field) == "--"+name {
			return field
		}
	}
	return ""
}

// flagError is an error of package train whose fields are shown as the
// flags a user types.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// withFlagNames rewrites the field names in err's message (train.FieldError
// and its kin) as flag names, keeping err for errors.Is and errors.As.
func withFlagNames(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			parts = append(parts, withFlagNames(e).Error())
		}
		return &flagError{msg: strings.Join(parts, "\n"), err: err}
	}
	var ff train.FieldFormatter
	if !errors.As(err, &ff) {
		return err
	}
	return &flagError{msg: strings.Replace(err.Error(), ff.Error(), ff.Format(trainFlag), 1), err: err}
}

// warningsOnly is the Progress of `rerank train --quiet`: no bar and no
// step lines, but the run's warnings (messages starting "warning:", such
// as train's health checks) still reach the user.
type warningsOnly struct{ w io.Writer }

func (p warningsOnly) Message(msg string) {
	if strings.HasPrefix(msg, "warning:") {
		fmt.Fprintln(p.w, train.FormatFields(strings.TrimRight(msg, "\n"), trainFlag))
	}
}

func (warningsOnly) Step(train.StepInfo) {}
