package eval

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// ModelResult is one evaluated run as written to JSON: a row of a Table.
type ModelResult struct {
	Label    string                        `json:"label"`
	Metrics  map[string]float64            `json:"metrics"`
	PerQuery map[string]map[string]float64 `json:"per_query"`
	// Latency is the model's scoring cost; nil for a first-stage run.
	Latency *Latency `json:"latency,omitempty"`
}

// Table is the machine-readable outcome of an evaluation: the models (or
// first-stage runs) with mean and per-query metrics, and their comparisons
// with the baseline. It is the format of `rerank eval --json` and of the
// report's results.json. NewTable builds one.
type Table struct {
	// Metrics lists the metric names in display order.
	Metrics     []string      `json:"metric_names,omitempty"`
	Baseline    string        `json:"baseline,omitempty"`
	Models      []ModelResult `json:"models"`
	Comparisons []Comparison  `json:"comparisons"`
}

// Results is Table's former name.
//
// Deprecated: use Table.
type Results = Table

// Evaluated is one run's Result under the label it is shown with.
type Evaluated struct {
	Label  string
	Result *Result
}

// NewTable lays out evaluated runs for WriteTable, WriteJSON and
// report.Write: one row per run, in order, with metrics as the columns,
// and every other run compared with the one labelled baseline on each
// metric (no comparisons when baseline is empty).
func NewTable(metrics []Metric, runs []Evaluated, baseline string, opts CompareOptions) (*Table, error) {
	t := &Table{Baseline: baseline, Comparisons: []Comparison{}}
	for _, m := range metrics {
		t.Metrics = append(t.Metrics, m.String())
	}
	var base *Result
	labels := make([]string, len(runs))
	for i, r := range runs {
		if r.Result == nil {
			return nil, fmt.Errorf("run %q has no result", r.Label)
		}
		if slices.Contains(labels[:i], r.Label) {
			return nil, fmt.Errorf("two runs are labelled %q: give each its own label", r.Label)
		}
		labels[i] = r.Label
		if r.Label == baseline {
			base = r.Result
		}
		t.Models = append(t.Models, NewModelResult(r.Label, r.Result))
	}
	if baseline == "" {
		return t, nil
	}
	if base == nil {
		return nil, fmt.Errorf("baseline %q is not one of the runs (%s)", baseline, strings.Join(labels, ", "))
	}
	for _, r := range runs {
		if r.Label == baseline {
			continue
		}
		cs, err := CompareResults(baseline, base, r.Label, r.Result, opts)
		if err != nil {
			return nil, err
		}
		t.Comparisons = append(t.Comparisons, cs...)
	}
	return t, nil
}

// SetLatency records the scoring cost of the run labelled label (see
// Rerank's RerankOptions.Latency); it reports whether the table has that
// run.
func (r *Table) SetLatency(label string, l *Latency) bool {
	m, ok := r.Model(label)
	if ok {
		m.Latency = l
	}
	return ok
}

// NewModelResult converts a Result for output under label.
func NewModelResult(label string, r *Result) ModelResult {
	return ModelResult{Label: label, Metrics: r.Mean, PerQuery: r.PerQuery}
}

// Model returns the result with the given label.
func (r *Table) Model(label string) (*ModelResult, bool) {
	for i := range r.Models {
		if r.Models[i].Label == label {
			return &r.Models[i], true
		}
	}
	return nil, false
}

// MetricNames returns r.Metrics, or the sorted union of the models' metric
// names when it is empty: the columns of WriteTable and of reports.
func (r *Table) MetricNames() []string {
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
// metric (and its scoring latency when a model has one), then one row per comparison with its mean difference, 95%
// interval, p-value and win/tie/loss counts.
func WriteTable(w io.Writer, r *Table) error {
	names := r.MetricNames()
	labelW := len("model")
	for _, m := range r.Models {
		labelW = max(labelW, len(m.Label))
	}
	if len(r.Comparisons) > 0 {
		labelW = max(labelW, len("vs "+r.Baseline))
	}
	timed := false
	for _, m := range r.Models {
		timed = timed || m.Latency != nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", labelW, "model")
	for _, n := range names {
		fmt.Fprintf(&b, "  %10s", n)
	}
	if timed {
		fmt.Fprintf(&b, "  %10s  %10s", "ms/query", "pairs/s")
	}
	b.WriteString("\n")
	for _, m := range r.Models {
		fmt.Fprintf(&b, "%-*s", labelW, m.Label)
		for _, n := range names {
			fmt.Fprintf(&b, "  %10.4f", m.Metrics[n])
		}
		switch {
		case m.Latency != nil:
			fmt.Fprintf(&b, "  %10.1f  %10.0f", m.Latency.MsPerQuery(), m.Latency.PairsPerSecond())
		case timed:
			fmt.Fprintf(&b, "  %10s  %10s", "-", "-")
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
