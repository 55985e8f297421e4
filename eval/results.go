package eval

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ModelResult is one evaluated run as written to JSON.
type ModelResult struct {
	Label    string                        `json:"label"`
	Metrics  map[string]float64            `json:"metrics"`
	PerQuery map[string]map[string]float64 `json:"per_query"`
}

// Results is the machine-readable outcome of an evaluation: the models (or
// first-stage runs) with mean and per-query metrics, and their comparisons
// with the baseline. It is the format of `rerank eval --json` and of the
// report's results.json.
type Results struct {
	// Metrics lists the metric names in display order.
	Metrics     []string      `json:"metric_names,omitempty"`
	Baseline    string        `json:"baseline,omitempty"`
	Models      []ModelResult `json:"models"`
	Comparisons []Comparison  `json:"comparisons"`
}

// NewModelResult converts a Result for output under label.
func NewModelResult(label string, r *Result) ModelResult {
	return ModelResult{Label: label, Metrics: r.Mean, PerQuery: r.PerQuery}
}

// Model returns the result with the given label.
func (r *Results) Model(label string) (*ModelResult, bool) {
	for i := range r.Models {
		if r.Models[i].Label == label {
			return &r.Models[i], true
		}
	}
	return nil, false
}

// MetricNames returns r.Metrics, or the sorted union of the models' metric
// names when it is empty: the columns of WriteTable and of reports.
func (r *Results) MetricNames() []string {
	if len(r.Metrics) > 0 {
		return r.Metrics
	}
	set := map[string]bool{}
	for _, m := range r.Models {
		for k := range m.Metrics {
			set[k] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteTable writes a plain-text table: one row per model with every
// metric, then one row per comparison with its mean difference, 95%
// interval, p-value and win/tie/loss counts.
func WriteTable(w io.Writer, r *Results) error {
	names := r.MetricNames()
	labelW := len("model")
	for _, m := range r.Models {
		labelW = max(labelW, len(m.Label))
	}
	if len(r.Comparisons) > 0 {
		labelW = max(labelW, len("vs "+r.Baseline))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", labelW, "model")
	for _, n := range names {
		fmt.Fprintf(&b, "  %10s", n)
	}
	b.WriteString("\n")
	for _, m := range r.Models {
		fmt.Fprintf(&b, "%-*s", labelW, m.Label)
		for _, n := range names {
			fmt.Fprintf(&b, "  %10.4f", m.Metrics[n])
		}
		b.WriteString("\n")
	}
	if len(r.Comparisons) > 0 {
		fmt.Fprintf(&b, "\n%-*s  %-10s  %8s  %-19s  %8s  %s\n", labelW, "vs "+r.Baseline, "metric", "diff", "95% CI", "p", "win/tie/loss")
		for _, c := range r.Comparisons {
			fmt.Fprintf(&b, "%-*s  %-10s  %+8.4f  [%+.4f, %+.4f]  %8.4f  %d/%d/%d%s\n", labelW, c.Model, c.Metric,
				c.MeanDiff, c.CILow, c.CIHigh, c.PValue, c.Wins, c.Ties, c.Losses, Significance(c.PValue))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Significance marks p-values below 0.05 (" *") and 0.01 (" **"), as
// WriteTable and reports print them.
func Significance(p float64) string {
	switch {
	case p < 0.01:
		return " **"
	case p < 0.05:
		return " *"
	}
	return ""
}
