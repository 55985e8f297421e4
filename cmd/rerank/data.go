package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/tokenize"
	"github.com/urfave/cli/v2"
)

func init() { register(newDataCommand()) }

func newDataCommand() *cli.Command {
	validation := []cli.Flag{
		&cli.IntFlag{Name: "max-errors", Usage: "errors to report at most (-1 = all)", Value: 50},
		&cli.BoolFlag{Name: "allow-missing-neg", Usage: "accept lines without neg (input for rerank mine)"},
		&cli.BoolFlag{Name: "require-scores", Usage: "demand pos_scores/neg_scores on every line (distillation)"},
	}
	return &cli.Command{
		Name:  "data",
		Usage: "check and describe FlagEmbedding training data",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "validate a training file or directory; errors name file:line and field",
				ArgsUsage: "PATH",
				Flags:     validation,
				Action:    runDataCheck,
			},
			{
				Name:      "stats",
				Usage:     "count queries and passages, positives and negatives per query",
				ArgsUsage: "PATH",
				Flags: append(validation[:len(validation):len(validation)],
					&cli.BoolFlag{Name: "json", Usage: "print the statistics as JSON"},
					&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer.json or model `DIR`: also count tokens per field and the pairs truncation cuts"},
					&cli.IntFlag{Name: "query-max-len", Usage: "query_max_len for the truncation count", Value: 32},
					&cli.IntFlag{Name: "passage-max-len", Usage: "passage_max_len for the truncation count", Value: 128},
					&cli.IntFlag{Name: "workers", Usage: "tokenizing goroutines (0 = all cores)"},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"}),
				Action: runDataStats,
			},
		},
	}
}

func dataOptions(c *cli.Context) flagdata.Options {
	return flagdata.Options{
		AllowMissingNeg: c.Bool("allow-missing-neg"),
		RequireScores:   c.Bool("require-scores"),
		MaxErrors:       c.Int("max-errors"),
	}
}

func dataPath(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("rerank data %s: give one training file or directory", c.Command.Name)
	}
	return c.Args().First(), nil
}

func runDataCheck(c *cli.Context) error {
	path, err := dataPath(c)
	if err != nil {
		return err
	}
	files, err := flagdata.Files(path)
	if err != nil {
		return err
	}
	exs, err := flagdata.Load(path, dataOptions(c))
	var list *flagdata.ErrorList
	if errors.As(err, &list) {
		fmt.Fprintln(c.App.Writer, list.Error())
		more := ""
		if list.Truncated > 0 {
			more = " (or more: raise --max-errors)"
		}
		return fmt.Errorf("%s: %d invalid line(s)%s, %d valid examples", path, list.Lines(), more, len(exs))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "ok: %d examples in %d file(s)\n", len(exs), len(files))
	return nil
}

// dataStats describes a training set.
type dataStats struct {
	Files          int          `json:"files"`
	Examples       int          `json:"examples"`
	InvalidLines   int          `json:"invalid_lines"`
	Pos            countSummary `json:"pos_per_query"`
	Neg            countSummary `json:"neg_per_query"`
	QueryWords     countSummary `json:"query_words"`
	PassageWords   countSummary `json:"passage_words"`
	UniquePassages int          `json:"unique_passages"`
	WithScores     int          `json:"examples_with_teacher_scores"`
	WithPrompt     int          `json:"examples_with_prompt"`
	ExtraKeys      []string     `json:"extra_keys"`
	// NegBelow lists how many queries have fewer negatives than common
	// train_group_size-1 values.
	NegBelow map[string]int `json:"queries_with_fewer_negatives_than"`
	// Tokens is filled with --tokenizer.
	Tokens *tokenStats `json:"tokens,omitempty"`
}

// tokenStats are token lengths (without special tokens) and how many
// (query, passage) pairs FlagEmbedding's truncation cuts.
type tokenStats struct {
	Tokenizer     string       `json:"tokenizer"`
	QueryMaxLen   int          `json:"query_max_len"`
	PassageMaxLen int          `json:"passage_max_len"`
	Query         countSummary `json:"query_tokens"`
	Pos           countSummary `json:"pos_tokens"`
	Neg           countSummary `json:"neg_tokens"`
	Pairs         int          `json:"pairs"`
	PairsCut      int          `json:"pairs_cut"`
	QueriesCut    int          `json:"queries_cut"`
}

type countSummary struct {
	Total  int     `json:"total"`
	Min    int     `json:"min"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P95    int     `json:"p95"`
	Max    int     `json:"max"`
}

func summarize(xs []int) countSummary {
	if len(xs) == 0 {
		return countSummary{}
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	total := 0
	for _, x := range s {
		total += x
	}
	med := float64(s[len(s)/2])
	if len(s)%2 == 0 {
		med = float64(s[len(s)/2-1]+s[len(s)/2]) / 2
	}
	p95 := s[min(len(s)-1, (95*len(s)+99)/100-1)]
	return countSummary{Total: total, Min: s[0], Max: s[len(s)-1], Mean: float64(total) / float64(len(s)), Median: med, P95: p95}
}

func computeDataStats(exs []flagdata.Example, files, invalid int) dataStats {
	st := dataStats{Files: files, Examples: len(exs), InvalidLines: invalid, NegBelow: map[string]int{}}
	var pos, neg, qw, pw []int
	uniq := map[string]struct{}{}
	extra := map[string]bool{}
	for _, e := range exs {
		pos = append(pos, len(e.Pos))
		neg = append(neg, len(e.Neg))
		qw = append(qw, len(strings.Fields(e.Query)))
		for _, p := range append(append([]string(nil), e.Pos...), e.Neg...) {
			pw = append(pw, len(strings.Fields(p)))
			uniq[p] = struct{}{}
		}
		if e.HasScores() {
			st.WithScores++
		}
		if e.Prompt != "" {
			st.WithPrompt++
		}
		for k := range e.Extra {
			extra[k] = true
		}
		for _, g := range []int{1, 7, 15} {
			if len(e.Neg) < g {
				st.NegBelow[fmt.Sprint(g)]++
			}
		}
	}
	st.Pos, st.Neg, st.QueryWords, st.PassageWords = summarize(pos), summarize(neg), summarize(qw), summarize(pw)
	st.UniquePassages = len(uniq)
	for k := range extra {
		st.ExtraKeys = append(st.ExtraKeys, k)
	}
	sort.Strings(st.ExtraKeys)
	return st
}

func runDataStats(c *cli.Context) error {
	path, err := dataPath(c)
	if err != nil {
		return err
	}
	files, err := flagdata.Files(path)
	if err != nil {
		return err
	}
	exs, err := flagdata.Load(path, dataOptions(c))
	invalid := 0
	var list *flagdata.ErrorList
	if errors.As(err, &list) {
		invalid = list.Lines()
		fmt.Fprintf(c.App.ErrWriter, "warning: invalid lines are left out of the statistics (run `rerank data check %s`):\n%s\n", path, list.Error())
	} else if err != nil {
		return err
	}
	st := computeDataStats(exs, len(files), invalid)
	if tp := c.String("tokenizer"); tp != "" {
		tok, err := tokenize.Load(tp)
		if err != nil {
			return fmt.Errorf("--tokenizer: %w", err)
		}
		ts, err := computeTokenStats(c, tok, exs, c.Int("query-max-len"), c.Int("passage-max-len"))
		if err != nil {
			return err
		}
		ts.Tokenizer = tp
		st.Tokens = ts
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "%s: %d examples in %d file(s)", path, st.Examples, st.Files)
	if st.InvalidLines > 0 {
		fmt.Fprintf(w, " (%d invalid lines left out)", st.InvalidLines)
	}
	fmt.Fprintln(w)
	row := func(name string, s countSummary) {
		fmt.Fprintf(w, "  %-22s total %8d  min %5d  mean %8.1f  median %7.1f  p95 %6d  max %6d\n", name, s.Total, s.Min, s.Mean, s.Median, s.P95, s.Max)
	}
	row("pos per query", st.Pos)
	row("neg per query", st.Neg)
	row("words per query", st.QueryWords)
	row("words per passage", st.PassageWords)
	if ts := st.Tokens; ts != nil {
		row("tokens per query", ts.Query)
		row("tokens per pos", ts.Pos)
		row("tokens per neg", ts.Neg)
		fmt.Fprintf(w, "  truncation             %d of %d pairs cut (%.1f%%), %d queries cut, at query_max_len %d + passage_max_len %d\n",
			ts.PairsCut, ts.Pairs, 100*float64(ts.PairsCut)/float64(max(ts.Pairs, 1)), ts.QueriesCut, ts.QueryMaxLen, ts.PassageMaxLen)
	}
	fmt.Fprintf(w, "  unique passages        %d\n", st.UniquePassages)
	fmt.Fprintf(w, "  with teacher scores    %d\n", st.WithScores)
	fmt.Fprintf(w, "  with prompt            %d\n", st.WithPrompt)
	if len(st.ExtraKeys) > 0 {
		fmt.Fprintf(w, "  extra keys             %s\n", strings.Join(st.ExtraKeys, ", "))
	}
	if n := st.NegBelow["1"]; n > 0 {
		fmt.Fprintf(w, "  queries without neg    %d (they cannot train with train_group_size > 1)\n", n)
	}
	for _, g := range []int{7, 15} {
		if n := st.NegBelow[fmt.Sprint(g)]; n > 0 {
			fmt.Fprintf(w, "  queries with < %-2d neg  %d (train_group_size %d repeats negatives for them)\n", g, n, g+1)
		}
	}
	return nil
}

// computeTokenStats tokenizes every distinct text once (concurrently) and
// applies FlagEmbedding's truncation rule to the lengths: the query is cut
// to query_max_len + passage_max_len/4 tokens, the passage to
// passage_max_len + query_max_len/2, then the passage (only_second) so
// that the pair with its special tokens fits query_max_len +
// passage_max_len. A pair counts as cut when any of these removes tokens.
func computeTokenStats(c *cli.Context, tok *tokenize.Tokenizer, exs []flagdata.Example, qml, pml int) (*tokenStats, error) {
	if qml < 1 || pml < 1 {
		return nil, fmt.Errorf("--query-max-len %d and --passage-max-len %d must be positive", qml, pml)
	}
	index := map[string]int{}
	var texts []string
	add := func(s string) {
		if _, ok := index[s]; !ok {
			index[s] = len(texts)
			texts = append(texts, s)
		}
	}
	for _, e := range exs {
		add(e.Query)
		for _, p := range e.Pos {
			add(p)
		}
		for _, p := range e.Neg {
			add(p)
		}
	}
	lens := make([]int, len(texts))
	workers := c.Int("workers")
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bar := stepBar(c, len(texts), "tokenize", "texts")
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		done atomic.Int64
		mu   sync.Mutex
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(texts) {
					return
				}
				lens[i] = len(tok.Tokenize(texts[i]))
				if n := done.Add(1); n%256 == 0 || int(n) == len(texts) {
					mu.Lock()
					bar.set(int(n))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	bar.finish()

	ts := &tokenStats{QueryMaxLen: qml, PassageMaxLen: pml}
	special := tok.SpecialTokens(true)
	qcap, pcap, total := qml+pml/4, pml+qml/2, qml+pml
	cut := func(lq, lp int) bool {
		return lq > qcap || lp > pcap || min(lq, qcap)+min(lp, pcap)+special > total
	}
	var q, pos, neg []int
	for _, e := range exs {
		lq := lens[index[e.Query]]
		q = append(q, lq)
		if lq > qcap {
			ts.QueriesCut++
		}
		for _, p := range e.Pos {
			lp := lens[index[p]]
			pos = append(pos, lp)
			ts.Pairs++
			if cut(lq, lp) {
				ts.PairsCut++
			}
		}
		for _, p := range e.Neg {
			lp := lens[index[p]]
			neg = append(neg, lp)
			ts.Pairs++
			if cut(lq, lp) {
				ts.PairsCut++
			}
		}
	}
	ts.Query, ts.Pos, ts.Neg = summarize(q), summarize(pos), summarize(neg)
	return ts, nil
}
