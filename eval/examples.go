package eval

import (
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// PickExamples chooses the queries on which model differs most from
// baseline: up to n with the largest gains (model above baseline, largest
// first) and up to n with the largest losses (largest drop first). Values
// are per-query values of one metric, keyed by query id; only queries with
// a value in both count, and queries whose values differ by no more than
// TieEps are neither. Equal differences are ordered by query id, so the
// choice does not depend on map order.
func PickExamples(baseline, model map[string]float64, n int) (gains, losses []string) {
	if n <= 0 {
		return nil, nil
	}
	type qd struct {
		q string
		d float64
	}
	var up, down []qd
	for q, b := range baseline {
		m, ok := model[q]
		if !ok || math.IsNaN(b) || math.IsNaN(m) {
			continue
		}
		switch d := m - b; {
		case d > TieEps:
			up = append(up, qd{q, d})
		case d < -TieEps:
			down = append(down, qd{q, -d})
		}
	}
	pick := func(s []qd) []string {
		sort.Slice(s, func(i, j int) bool {
			if s[i].d != s[j].d {
				return s[i].d > s[j].d
			}
			return s[i].q < s[j].q
		})
		out := make([]string, 0, min(n, len(s)))
		for _, x := range s[:min(n, len(s))] {
			out = append(out, x.q)
		}
		return out
	}
	return pick(up), pick(down)
}

// ExampleDoc is one passage of an example ranking.
type ExampleDoc struct {
	DocID string `json:"doc_id"`
	// Label is the qrels label (0 when unjudged).
	Label int `json:"label"`
	// Rank is the 1-based rank in this ranking; OtherRank in the other
	// ranking (0 when the other ranking lacks the document).
	Rank      int    `json:"rank"`
	OtherRank int    `json:"other_rank"`
	Title     string `json:"title,omitempty"`
	// Snippet is the start of the passage text (ExampleOptions.SnippetChars
	// characters, "…" when cut).
	Snippet string `json:"snippet"`
}

// Example is one query's rankings by the baseline and the model.
type Example struct {
	QID   string `json:"qid"`
	Query string `json:"query"`
	// BaselineValue and ModelValue are the query's values of the
	// examples' metric.
	BaselineValue float64 `json:"baseline_value"`
	ModelValue    float64 `json:"model_value"`
	// Baseline and Model are the top ExampleOptions.Top documents of each
	// ranking.
	Baseline []ExampleDoc `json:"baseline"`
	Model    []ExampleDoc `json:"model"`
}

// RankShift is where a judged relevant document of a query ranks before
// (baseline) and after (model); 0 when a ranking lacks it.
type RankShift struct {
	QID    string `json:"qid"`
	DocID  string `json:"doc_id"`
	Before int    `json:"before"`
	After  int    `json:"after"`
}

// Examples are the example rankings of one model against the baseline.
type Examples struct {
	Metric   string      `json:"metric"`
	Baseline string      `json:"baseline"`
	Model    string      `json:"model"`
	Gains    []Example   `json:"gains"`
	Losses   []Example   `json:"losses"`
	Shifts   []RankShift `json:"rank_shifts"`
}

// ExampleOptions configure NewExamples.
type ExampleOptions struct {
	// N is the most queries shown each way (default 5).
	N int
	// Top is how many documents of each ranking are shown (default 5).
	Top int
	// SnippetChars is the most characters of passage text (default 200).
	SnippetChars int
	// Ties orders equal scores, as in Evaluate.
	Ties TieBreak
}

func (o ExampleOptions) withDefaults() ExampleOptions {
	if o.N <= 0 {
		o.N = 5
	}
	if o.Top <= 0 {
		o.Top = 5
	}
	if o.SnippetChars <= 0 {
		o.SnippetChars = 200
	}
	return o
}

// ExampleInput is what NewExamples compares: two runs over the same
// judged queries, their per-query values of one metric, and the texts.
type ExampleInput struct {
	Metric                    string
	BaselineLabel, ModelLabel string
	Baseline, Model           Run
	// BaselineValues and ModelValues are per-query values of Metric.
	BaselineValues, ModelValues map[string]float64
	Qrels                       Qrels
	// Queries and Corpus give the texts shown; either may be nil (ids
	// are shown instead).
	Queries Queries
	Corpus  Corpus
}

// NewExamples picks the queries of largest gain and loss (PickExamples)
// and lays out the top documents of both rankings, with labels, rank
// changes and snippets, plus the rank shift of every judged relevant
// document over all judged queries.
func NewExamples(in ExampleInput, opts ExampleOptions) Examples {
	opts = opts.withDefaults()
	ex := Examples{Metric: in.Metric, Baseline: in.BaselineLabel, Model: in.ModelLabel, Gains: []Example{}, Losses: []Example{}, Shifts: []RankShift{}}
	ranks := func(run Run, q string) ([]ScoredDoc, map[string]int) {
		r := Rank(run[q], opts.Ties)
		pos := make(map[string]int, len(r))
		for i, d := range r {
			if _, dup := pos[d.DocID]; !dup {
				pos[d.DocID] = i + 1
			}
		}
		return r, pos
	}
	build := func(q string) Example {
		e := Example{QID: q, Query: in.Queries[q], BaselineValue: in.BaselineValues[q], ModelValue: in.ModelValues[q]}
		br, bpos := ranks(in.Baseline, q)
		mr, mpos := ranks(in.Model, q)
		side := func(r []ScoredDoc, other map[string]int) []ExampleDoc {
			out := []ExampleDoc{}
			for i, d := range r[:min(opts.Top, len(r))] {
				doc := in.Corpus[d.DocID]
				out = append(out, ExampleDoc{
					DocID: d.DocID, Label: in.Qrels[q][d.DocID], Rank: i + 1, OtherRank: other[d.DocID],
					Title: doc.Title, Snippet: Snippet(doc.Text, opts.SnippetChars),
				})
			}
			return out
		}
		e.Baseline, e.Model = side(br, mpos), side(mr, bpos)
		return e
	}
	gains, losses := PickExamples(in.BaselineValues, in.ModelValues, opts.N)
	for _, q := range gains {
		ex.Gains = append(ex.Gains, build(q))
	}
	for _, q := range losses {
		ex.Losses = append(ex.Losses, build(q))
	}
	for _, q := range in.Qrels.QueryIDs() {
		_, bpos := ranks(in.Baseline, q)
		_, mpos := ranks(in.Model, q)
		docs := make([]string, 0, len(in.Qrels[q]))
		for d, l := range in.Qrels[q] {
			if l >= relevanceLevel {
				docs = append(docs, d)
			}
		}
		sort.Strings(docs)
		for _, d := range docs {
			if bpos[d] == 0 && mpos[d] == 0 {
				continue
			}
			ex.Shifts = append(ex.Shifts, RankShift{QID: q, DocID: d, Before: bpos[d], After: mpos[d]})
		}
	}
	return ex
}

// Snippet returns the first n characters of s with runs of white space
// collapsed, cut at a word boundary when one is near, with "…" when cut.
func Snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut, count := len(s), 0
	for i := range s {
		if count == n {
			cut = i
			break
		}
		count++
	}
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > cut*3/4 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " ") + "…"
}
