package train

import (
	"encoding/json"
	"fmt"
	"os"
)

// Progress receives a run's progress as it happens; Run calls it from its
// own goroutine. The library draws nothing: cmd/rerank turns these calls
// into a progress bar on a terminal and into plain lines in a log.
type Progress interface {
	// Message reports an event in words: one line, without a newline.
	// It names training arguments as {field} (JSON names); FormatFields
	// renders them.
	Message(msg string)
	// Step reports a finished optimizer step.
	Step(s StepInfo)
}

// metricsLog appends the records of metrics.jsonl.
type metricsLog struct{ f *os.File }

// newMetricsLog appends to metrics.jsonl at path ("" writes no file).
func newMetricsLog(path string) (*metricsLog, error) {
	p := &metricsLog{}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("metrics log: %w", err)
		}
		p.f = f
	}
	return p, nil
}

func (p *metricsLog) write(rec map[string]any) error {
	if p.f == nil {
		return nil
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	if _, err := p.f.Write(append(js, '\n')); err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	return nil
}

func (p *metricsLog) close() {
	if p.f != nil {
		p.f.Close()
	}
}
