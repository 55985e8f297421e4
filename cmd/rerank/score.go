package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/internal/jsonl"
)

func init() { register(newScoreCommand()) }

func newScoreCommand() *cli.Command {
	flags := append(modelFlags(),
		&cli.StringFlag{Name: "adapter", Usage: "LoRA adapter `DIR` (PEFT format) or Hub id, merged into the model"},
		&cli.StringFlag{Name: "input", Required: true, Usage: "pairs JSONL `FILE` ({\"query\",\"passages\":[...]} or {\"query\",\"passage\"}; - for standard input), or with --beir a candidates file / TREC run"},
		&cli.StringFlag{Name: "output", Value: "-", Usage: "output `FILE` (- for standard output)"},
		&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "output format: jsonl (scores in input order) or trec (a reranked run; needs --beir)"},
		&cli.StringFlag{Name: "beir", Usage: "BEIR `DIR` whose corpus.jsonl and queries.jsonl give the texts of a candidates --input (every query, judged or not)"},
		&cli.StringFlag{Name: "candidates-format", Value: "auto", Usage: "with --beir: auto, jsonl, trec or flag"},
		&cli.IntFlag{Name: "rerank-top-k", Usage: "with --beir: candidates per query to score (0: all); the rest keep their order below"},
		&cli.StringFlag{Name: "activation", Value: "none", Usage: "none (raw logits) or sigmoid (FlagReranker's normalize=True)"},
		&cli.StringFlag{Name: "tag", Value: "rerank", Usage: "run tag of --format trec"},
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "queries in flight at once (their pairs share forward passes)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
	)
	return &cli.Command{
		Name:      "score",
		Usage:     "score (query, passage) pairs with a model: JSONL scores or a reranked TREC run",
		UsageText: "rerank score --model M [--adapter A] --input FILE|- [--output FILE|-] [--format jsonl|trec] [--beir DIR] [--activation sigmoid]",
		Description: `Scores with the library call that rerank serve and rerank eval use, so that the three
give the same bits for the same model, pairs and truncation.

Input: JSONL, one query per line, {"query": str, "passages": [str, ...]} or
{"query": str, "passage": str} (an "id" is copied to the output); or, with
--beir DIR, a candidates file or TREC run whose every query is scored.

Output: JSONL, one line per input line, {"scores": [...]} (or {"score": x}) in
input order; for candidates, {"qid", "doc_ids", "scores"}; with --format trec
a TREC run reranked by the scores (as rerank eval --runs writes it).

Scores are raw logits, or their sigmoid with --activation sigmoid. Passages
longer than fit follow --long: truncate (longest_first to --max-len) or chunk
(windows of --max-tokens-per-doc passage tokens, the query in each, at most
--max-chunks-per-doc windows, score = max over windows).`,
		Flags:  flags,
		Action: runScore,
	}
}

// scoreLine is one line of pairs JSONL.
type scoreLine struct {
	ID       json.RawMessage `json:"id,omitempty"`
	Query    *string         `json:"query"`
	Passages []string        `json:"passages"`
	Passage  *string         `json:"passage"`
}

// readScoreInput reads pairs JSONL (a UTF-8 byte-order mark and CRLF line
// ends are fine; bytes that are not UTF-8 and lone surrogate escapes are
// errors, as jsonl.Check says).
func readScoreInput(r io.Reader, name string) ([]scoreLine, error) {
	var out []scoreLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n == 1 {
			line = jsonl.TrimBOM(line)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := jsonl.CheckLine(name, n, line); err != nil {
			return nil, err
		}
		var l scoreLine
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		switch {
		case l.Query == nil:
			return nil, fmt.Errorf("%s:%d: field \"query\" is missing", name, n)
		case l.Passage == nil && l.Passages == nil:
			return nil, fmt.Errorf("%s:%d: give \"passages\" (a list) or \"passage\" (a string)", name, n)
		case l.Passage != nil && l.Passages != nil:
			return nil, fmt.Errorf("%s:%d: give \"passages\" or \"passage\", not both", name, n)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// scoreUnit is one query's passages to score.
type scoreUnit struct {
	query    string
	passages []string
}

// scoreAll scores every unit with m, up to conc units at once (their pairs
// share forward passes), and reports progress in pairs.
func scoreAll(ctx context.Context, m *crossencoder.Model, units []scoreUnit, conc int, progress func(done, total int)) ([][]float32, error) {
	total := 0
	for _, u := range units {
		total += len(u.passages)
	}
	out := make([][]float32, len(units))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	done := 0
	sem := make(chan struct{}, max(1, conc))
	var wg sync.WaitGroup
	for i, u := range units {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := m.Rerank(ctx, u.query, u.passages)
			if err != nil {
				cancel(fmt.Errorf("query %d: %w", i+1, err))
				return
			}
			out[i] = s
			mu.Lock()
			done += len(s)
			if progress != nil {
				progress(done, total)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func runScore(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (every input is given by a flag)", c.Args().Slice())
	}
	format := c.String("format")
	if format != "jsonl" && format != "trec" {
		return fmt.Errorf("--format %q: want jsonl or trec", format)
	}
	if format == "trec" && c.String("beir") == "" {
		return errors.New("--format trec needs a candidates --input and --beir DIR")
	}
	o, err := modelOptions(c)
	if err != nil {
		return err
	}
	switch c.String("activation") {
	case "none", "":
	case "sigmoid":
		o.Sigmoid = true
	default:
		return fmt.Errorf("--activation %q: want none or sigmoid", c.String("activation"))
	}
	o.Adapter = c.String("adapter")

	// Read everything before loading the model: input errors come first.
	var lines []scoreLine
	var cands []eval.Candidate
	var units []scoreUnit
	var col *eval.Collection
	if dir := c.String("beir"); dir != "" {
		if c.String("input") == "-" {
			return errors.New("--input -: with --beir the candidates are read from a file (a candidates JSONL or TREC run), not standard input")
		}
		col = &eval.Collection{Dir: dir}
		if col.Corpus, err = eval.ReadCorpus(dir + "/corpus.jsonl"); err != nil {
			return err
		}
		if col.Queries, err = eval.ReadQueries(dir + "/queries.jsonl"); err != nil {
			return err
		}
		known := func(id string) bool { _, ok := col.Corpus[id]; return ok }
		if cands, _, err = eval.ReadCandidateFile(c.String("input"), eval.CandidateFormat(c.String("candidates-format")), known); err != nil {
			return err
		}
		topK := c.Int("rerank-top-k")
		for _, cd := range cands {
			q := cd.Query
			if q == "" {
				var ok bool
				if q, ok = col.Queries[cd.QID]; !ok {
					return fmt.Errorf("query %q: no query text in the candidates or in queries.jsonl", cd.QID)
				}
			}
			n := len(cd.DocIDs)
			if topK > 0 {
				n = min(n, topK)
			}
			u := scoreUnit{query: q, passages: make([]string, n)}
			for i := range n {
				if cd.Passages != nil {
					u.passages[i] = cd.Passages[i]
				} else {
					u.passages[i] = col.Corpus[cd.DocIDs[i]].Passage()
				}
			}
			units = append(units, u)
		}
	} else {
		if in := c.String("input"); in == "-" {
			lines, err = readScoreInput(c.App.Reader, "standard input")
		} else {
			f, oerr := os.Open(in)
			if oerr != nil {
				return oerr
			}
			lines, err = readScoreInput(f, in)
			f.Close()
		}
		if err != nil {
			return err
		}
		for _, l := range lines {
			u := scoreUnit{query: *l.Query, passages: l.Passages}
			if l.Passage != nil {
				u.passages = []string{*l.Passage}
			}
			units = append(units, u)
		}
	}

	m, release, err := openModel(c, o)
	if err != nil {
		return err
	}
	defer release()
	if h := m.FreshHead(); len(h) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "rerank score: %s has no trained head (%s): its scores are an untrained, freshly initialised head's\n",
			c.String("model"), strings.Join(h, ", "))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var prog func(done, total int)
	if !c.Bool("quiet") {
		prog = progress(c, "score")
	}
	scores, err := scoreAll(ctx, m, units, c.Int("concurrency"), prog)
	if err != nil {
		return err
	}
	for i, s := range scores {
		for k, v := range s {
			if math.IsNaN(float64(v)) {
				return fmt.Errorf("query %d, passage %d: the model returned NaN", i+1, k)
			}
		}
	}

	write := func(fill func(w io.Writer) error) error {
		if c.String("output") == "-" {
			bw := bufio.NewWriter(c.App.Writer)
			if err := fill(bw); err != nil {
				return err
			}
			return bw.Flush()
		}
		return atomicfile.Write(c.String("output"), fill)
	}
	switch {
	case format == "trec":
		// The run eval --runs writes: eval.Rerank over the scores just
		// computed.
		byText := map[[2]string]float32{}
		for i, u := range units {
			for k, p := range u.passages {
				byText[[2]string{u.query, p}] = scores[i][k]
			}
		}
		lookup := eval.ScorerFunc(func(_ context.Context, q string, ps []string) ([]float32, error) {
			out := make([]float32, len(ps))
			for i, p := range ps {
				out[i] = byText[[2]string{q, p}]
			}
			return out, nil
		})
		topK := c.Int("rerank-top-k")
		if topK <= 0 {
			for _, cd := range cands {
				topK = max(topK, len(cd.DocIDs))
			}
		}
		run, err := eval.Rerank(ctx, lookup, cands, col.Queries, eval.CorpusPassages(col.Corpus), eval.RerankOptions{TopK: max(1, topK)})
		if err != nil {
			return err
		}
		return write(func(w io.Writer) error { return eval.FormatTRECRun(w, run, c.String("tag"), eval.TiesInputOrder) })
	case cands != nil:
		return write(func(w io.Writer) error {
			enc := json.NewEncoder(w)
			for i, cd := range cands {
				if err := enc.Encode(struct {
					QID    string    `json:"qid"`
					DocIDs []string  `json:"doc_ids"`
					Scores []float32 `json:"scores"`
				}{cd.QID, cd.DocIDs[:len(scores[i])], scores[i]}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return write(func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for i, l := range lines {
			var err error
			if l.Passage != nil {
				err = enc.Encode(struct {
					ID    json.RawMessage `json:"id,omitempty"`
					Score float32         `json:"score"`
				}{l.ID, scores[i][0]})
			} else {
				err = enc.Encode(struct {
					ID     json.RawMessage `json:"id,omitempty"`
					Scores []float32       `json:"scores"`
				}{l.ID, scores[i]})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}
