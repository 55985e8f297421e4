package eval

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// DatasetSpec is one BEIR collection of a multi-dataset evaluation with
// its first-stage candidates.
type DatasetSpec struct {
	// Name labels the dataset in reports and prefixes its query ids in
	// pooled results: the directory's base name, made unique.
	Name string
	// Dir is the BEIR directory (corpus.jsonl, queries.jsonl, qrels/).
	Dir string
	// Candidates is the candidates file.
	Candidates string
}

// DefaultCandidates is where a BEIR directory laid out like the shared
// collections keeps the BM25 candidates of a split.
func DefaultCandidates(dir, split string) string {
	return filepath.Join(dir, "bm25", split+".top100.jsonl")
}

// isCollection reports whether dir holds a BEIR corpus.
func isCollection(dir string) bool {
	for _, f := range []string{"corpus.jsonl", "corpus.jsonl.gz"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// FindDatasets resolves BEIR directories into datasets. Each path is a
// BEIR collection (a directory with corpus.jsonl) or a directory of them
// (every subdirectory holding corpus.jsonl, in name order). candidates
// gives one candidates file per collection, in the same order; when it is
// empty, each collection's DefaultCandidates(dir, split) is used and must
// exist. Errors name the path at fault.
func FindDatasets(paths []string, split string, candidates []string) ([]DatasetSpec, error) {
	if len(paths) == 0 {
		return nil, errors.New("no BEIR directory given")
	}
	var specs []DatasetSpec
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("empty BEIR directory path")
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("BEIR directory %s: %w", p, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("BEIR directory %s: not a directory", p)
		}
		if isCollection(p) {
			specs = append(specs, DatasetSpec{Dir: p})
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("BEIR directory %s: %w", p, err)
		}
		n := 0
		for _, e := range entries { // ReadDir sorts by name
			sub := filepath.Join(p, e.Name())
			if e.IsDir() && isCollection(sub) {
				specs = append(specs, DatasetSpec{Dir: sub})
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("BEIR directory %s: no corpus.jsonl in it or in any of its subdirectories (want a BEIR collection or a directory of them)", p)
		}
	}
	switch {
	case len(candidates) == 0:
		for i := range specs {
			c := DefaultCandidates(specs[i].Dir, split)
			if _, err := os.Stat(c); err != nil {
				return nil, fmt.Errorf("collection %s has no candidates for split %q: %w (give --candidates, or write BM25's with: rerank retrieve --beir %s --split %s --output %s)",
					specs[i].Dir, split, err, specs[i].Dir, split, c)
			}
			specs[i].Candidates = c
		}
	case len(candidates) == len(specs):
		for i := range specs {
			if candidates[i] == "" {
				return nil, fmt.Errorf("empty candidates path for collection %s", specs[i].Dir)
			}
			specs[i].Candidates = candidates[i]
		}
	default:
		dirs := make([]string, len(specs))
		for i, s := range specs {
			dirs[i] = s.Dir
		}
		return nil, fmt.Errorf("%d candidates files for %d collections (%s): give one per collection, in the same order, or none to use each collection's bm25/%s.top100.jsonl",
			len(candidates), len(specs), strings.Join(dirs, ", "), split)
	}
	used := map[string]bool{}
	for i := range specs {
		name := filepath.Base(filepath.Clean(specs[i].Dir))
		out := name
		for k := 2; used[out]; k++ {
			out = fmt.Sprintf("%s#%d", name, k)
		}
		used[out] = true
		specs[i].Name = out
	}
	return specs, nil
}

// NamedTable is the Table of one dataset.
type NamedTable struct {
	Name  string `json:"name"`
	Table *Table `json:"results"`
}

// PoolSep separates the dataset name from the query id in pooled results.
const PoolSep = "/"

// PoolResults merges the results of one run on several datasets into one
// Result over all their queries, each query id prefixed with its
// dataset's name and PoolSep so that ids stay distinct. Means are taken
// over the pooled queries (every query weighs the same). names and results
// are parallel; every result must have the same metrics.
func PoolResults(names []string, results []*Result) (*Result, error) {
	if len(names) != len(results) || len(results) == 0 {
		return nil, fmt.Errorf("pool: %d names for %d results", len(names), len(results))
	}
	out := &Result{Metrics: results[0].Metrics, Mean: map[string]float64{}, PerQuery: map[string]map[string]float64{}}
	for i, r := range results {
		if r == nil {
			return nil, fmt.Errorf("pool: dataset %q has no result", names[i])
		}
		if len(r.Metrics) != len(out.Metrics) {
			return nil, fmt.Errorf("pool: dataset %q has %d metrics, %q %d", names[i], len(r.Metrics), names[0], len(out.Metrics))
		}
		for j, m := range r.Metrics {
			if m != out.Metrics[j] {
				return nil, fmt.Errorf("pool: dataset %q has metric %s where %q has %s", names[i], m, names[0], out.Metrics[j])
			}
		}
		// Sorted, so that the error names the same duplicate every run.
		for _, q := range slices.Sorted(maps.Keys(r.PerQuery)) {
			v := r.PerQuery[q]
			id := names[i] + PoolSep + q
			if _, dup := out.PerQuery[id]; dup {
				return nil, fmt.Errorf("pool: query id %q occurs twice (two datasets named %q?)", id, names[i])
			}
			out.PerQuery[id] = v
		}
		for _, q := range r.Missing {
			out.Missing = append(out.Missing, names[i]+PoolSep+q)
		}
	}
	for q := range out.PerQuery {
		out.QueryIDs = append(out.QueryIDs, q)
	}
	sort.Strings(out.QueryIDs)
	for _, m := range out.Metrics {
		s := 0.0
		for _, q := range out.QueryIDs {
			s += out.PerQuery[q][m.String()]
		}
		if n := len(out.QueryIDs); n > 0 {
			s /= float64(n)
		}
		out.Mean[m.String()] = s
	}
	return out, nil
}

// Summary is a BEIR-style table of one metric: datasets as rows, models
// as columns, with the macro average over datasets and the mean over the
// pooled queries.
type Summary struct {
	Metric   string       `json:"metric"`
	Baseline string       `json:"baseline,omitempty"`
	Models   []string     `json:"models"`
	Rows     []SummaryRow `json:"rows"`
	// Macro is the mean of the rows' values per model; nil for a model
	// missing from a dataset.
	Macro []*float64 `json:"macro_average"`
	// Pooled is the mean over every query of every dataset, with its
	// significance mark against the baseline; absent without a pooled
	// table.
	Pooled *SummaryRow `json:"pooled,omitempty"`
	// Latency is each model's scoring cost over all datasets (nil for
	// first-stage runs).
	Latency []*Latency `json:"latency"`
}

// SummaryRow is one dataset's (or the pooled queries') values, one per
// model; nil where the model was not evaluated on it.
type SummaryRow struct {
	Dataset string     `json:"dataset"`
	Queries int        `json:"queries"`
	Values  []*float64 `json:"values"`
	// Marks are the significance marks (Significance) of each model
	// against the baseline on this row; "" for the baseline itself.
	Marks []string `json:"marks"`
}

// Summarize builds the summary of one metric over the datasets' tables.
// Models are the union of the tables' models in order of first
// appearance; pooled, when not nil, adds the pooled row.
func Summarize(metric string, tables []NamedTable, pooled *Table) Summary {
	s := Summary{Metric: metric}
	idx := map[string]int{}
	for _, t := range tables {
		if s.Baseline == "" {
			s.Baseline = t.Table.Baseline
		}
		for _, m := range t.Table.Models {
			if _, ok := idx[m.Label]; !ok {
				idx[m.Label] = len(s.Models)
				s.Models = append(s.Models, m.Label)
			}
		}
	}
	row := func(name string, t *Table) SummaryRow {
		r := SummaryRow{Dataset: name, Values: make([]*float64, len(s.Models)), Marks: make([]string, len(s.Models))}
		for _, m := range t.Models {
			v, ok := m.Metrics[metric]
			if !ok {
				continue
			}
			r.Values[idx[m.Label]] = &v
			r.Queries = max(r.Queries, len(m.PerQuery))
		}
		for _, c := range t.Comparisons {
			if c.Metric == metric {
				if i, ok := idx[c.Model]; ok {
					r.Marks[i] = strings.TrimSpace(Significance(c.P()))
				}
			}
		}
		return r
	}
	s.Latency = make([]*Latency, len(s.Models))
	for _, t := range tables {
		s.Rows = append(s.Rows, row(t.Name, t.Table))
		for _, m := range t.Table.Models {
			if m.Latency != nil {
				i := idx[m.Label]
				l := *m.Latency
				if s.Latency[i] != nil {
					l = s.Latency[i].Add(l)
				}
				s.Latency[i] = &l
			}
		}
	}
	s.Macro = make([]*float64, len(s.Models))
	for i := range s.Models {
		sum, ok := 0.0, len(s.Rows) > 0
		for _, r := range s.Rows {
			if r.Values[i] == nil {
				ok = false
				break
			}
			sum += *r.Values[i]
		}
		if ok {
			v := sum / float64(len(s.Rows))
			s.Macro[i] = &v
		}
	}
	if pooled != nil {
		r := row("pooled", pooled)
		s.Pooled = &r
	}
	return s
}

// MultiTable is the outcome of a multi-dataset evaluation, as `rerank
// eval --json` writes it with several datasets: each dataset's table, the
// table of the pooled queries (ids prefixed by dataset, see PoolResults),
// and one summary per metric.
type MultiTable struct {
	Datasets []NamedTable `json:"datasets"`
	Pooled   *Table       `json:"pooled,omitempty"`
	Summary  []Summary    `json:"summary"`
}

// WriteSummary writes a plain-text summary table: datasets as rows,
// models as columns, the macro average and the pooled mean, then each
// model's latency when it has one.
func WriteSummary(w io.Writer, s Summary) error {
	labelW := len("macro average")
	for _, r := range s.Rows {
		labelW = max(labelW, len(r.Dataset))
	}
	colW := 12
	for _, m := range s.Models {
		colW = max(colW, len(m)+1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", labelW, s.Metric)
	for _, m := range s.Models {
		fmt.Fprintf(&b, "  %*s", colW, m)
	}
	b.WriteString("\n")
	cell := func(v *float64, mark string) string {
		if v == nil || math.IsNaN(*v) {
			return "-"
		}
		if mark != "" {
			mark = " " + mark
		}
		return fmt.Sprintf("%.4f%-3s", *v, mark)
	}
	line := func(name string, vals []*float64, marks []string) {
		fmt.Fprintf(&b, "%-*s", labelW, name)
		for i, v := range vals {
			m := ""
			if marks != nil {
				m = marks[i]
			}
			fmt.Fprintf(&b, "  %*s", colW, cell(v, m))
		}
		b.WriteString("\n")
	}
	for _, r := range s.Rows {
		line(r.Dataset, r.Values, r.Marks)
	}
	line("macro average", s.Macro, nil)
	if s.Pooled != nil {
		line("pooled", s.Pooled.Values, s.Pooled.Marks)
	}
	lat := func(name string, f func(Latency) string) {
		fmt.Fprintf(&b, "%-*s", labelW, name)
		for _, l := range s.Latency {
			v := "-"
			if l != nil {
				v = f(*l)
			}
			fmt.Fprintf(&b, "  %*s", colW, v)
		}
		b.WriteString("\n")
	}
	if hasLatency(s.Latency) {
		lat("ms/query", func(l Latency) string { return fmt.Sprintf("%.1f", l.MsPerQuery()) })
		lat("pairs/s", func(l Latency) string { return fmt.Sprintf("%.0f", l.PairsPerSecond()) })
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hasLatency(ls []*Latency) bool {
	for _, l := range ls {
		if l != nil {
			return true
		}
	}
	return false
}
