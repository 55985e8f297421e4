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
	// Test and Correction are the significance test and multiple-
	// comparison correction of Comparisons, whose family is the whole
	// table: every model against the baseline on every metric.
	Test       Test       `json:"test,omitempty"`
	Correction Correction `json:"correction,omitempty"`
}

// Evaluated is one run's Result under the label it is shown with.
type Evaluated struct {
	Label  string
	Result *Result
}

// NewTable lays out evaluated runs for WriteTable, WriteJSON and
// report.Write: one row per run, in order, with metrics as the columns,
// and every other run compared with the one labelled baseline on each
// metric (no comparisons when baseline is empty). The comparisons' p-values
// are adjusted together, as one family, by opts.Correction (Holm by
// default): with several models and metrics, a raw p < 0.05 somewhere is
// likely by chance alone.
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
	o := opts.withDefaults()
	t.Test, t.Correction = o.Test, o.Correction
	if err := AdjustPValues(t.Comparisons, o.Correction); err != nil {
		return nil, err
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
		adj := r.Adjusted()
		fmt.Fprintf(&b, "\n%-*s  %-10s  %8s  %-19s  %8s", labelW, "vs "+r.Baseline, "metric", "diff", "95% CI", "p")
		if adj {
			fmt.Fprintf(&b, "  %8s", "p "+string(r.Correction))
		}
		b.WriteString("  win/tie/loss\n")
		for _, c := range r.Comparisons {
			fmt.Fprintf(&b, "%-*s  %-10s  %+8.4f  [%+.4f, %+.4f]  %8.4f", labelW, c.Model, c.Metric,
				c.MeanDiff, c.CILow, c.CIHigh, c.PValue)
			if adj {
				fmt.Fprintf(&b, "  %8.4f", c.PAdjusted)
			}
			fmt.Fprintf(&b, "  %d/%d/%d%s\n", c.Wins, c.Ties, c.Losses, Significance(c.P()))
		}
		fmt.Fprintf(&b, "%s\n", r.TestNote())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Adjusted reports whether the comparisons carry adjusted p-values beside
// the raw ones (a correction other than none).
func (r *Table) Adjusted() bool {
	return r.Correction != "" && r.Correction != CorrectionNone
}

// TestNote says in one sentence which test and correction the p-values
// come from, for tables and reports.
func (r *Table) TestNote() string {
	test := "two-sided paired randomization test"
	if r.Test == TestT {
		test = "two-sided paired t-test (df = queries - 1)"
	}
	if !r.Adjusted() {
		return "p: " + test + ", not corrected for multiple comparisons; * p < 0.05, ** p < 0.01."
	}
	name := string(r.Correction)
	if r.Correction == CorrectionHolm {
		name = "Holm–Bonferroni"
	}
	return fmt.Sprintf("p: %s; p %s: adjusted by %s over the table's %d comparisons (every model against %s on every metric); * and ** (p < 0.05, 0.01) judge the adjusted p.",
		test, r.Correction, name, len(r.Comparisons), r.Baseline)
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
