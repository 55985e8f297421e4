package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rerank-go/rerank/bm25"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
)

func init() { register(newRetrieveCommand()) }

func newRetrieveCommand() *cli.Command {
	return &cli.Command{
		Name:  "retrieve",
		Usage: "BM25 top-k candidates for every query of a BEIR split",
		Description: "Indexes corpus.jsonl of a BEIR directory with BM25 (Lucene-style idf, the analyzer of\n" +
			"the shared collections) and retrieves the top-k documents for every query that has\n" +
			"judgments in qrels/SPLIT.tsv, in queries.jsonl order. The JSONL output is the candidate\n" +
			"format rerank eval reads ({\"qid\", \"query\", \"doc_ids\", \"bm25_scores\"}); --format trec\n" +
			"writes a TREC run instead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "beir", Usage: "BEIR directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)", Required: true},
			&cli.StringFlag{Name: "split", Usage: "split name: qrels/`NAME`.tsv", Value: "dev"},
			&cli.IntFlag{Name: "top-k", Usage: "candidates per query", Value: 100},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (written atomically; - for standard output)", Value: "-"},
			&cli.StringFlag{Name: "format", Usage: "jsonl or trec", Value: "jsonl"},
			&cli.StringFlag{Name: "run-tag", Usage: "TREC run tag", Value: "bm25"},
			&cli.Float64Flag{Name: "k1", Usage: "BM25 k1", Value: bm25.DefaultK1},
			&cli.Float64Flag{Name: "b", Usage: "BM25 b", Value: bm25.DefaultB},
			&cli.StringFlag{Name: "index", Usage: "load the BM25 index from `FILE` instead of indexing corpus.jsonl"},
			&cli.StringFlag{Name: "save-index", Usage: "save the BM25 index to `FILE` for later runs"},
			&cli.IntFlag{Name: "workers", Usage: "goroutines for indexing and search (0 = all cores)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars"},
		},
		Action: runRetrieve,
	}
}

func runRetrieve(c *cli.Context) error {
	ctx := c.Context // cli.App.Run sets it
	format := strings.ToLower(c.String("format"))
	if format != "jsonl" && format != "trec" {
		return fmt.Errorf("--format %q: use jsonl or trec", c.String("format"))
	}
	if c.Int("top-k") < 1 {
		return fmt.Errorf("--top-k %d: must be at least 1", c.Int("top-k"))
	}
	b, err := bm25.OpenBEIR(c.String("beir"))
	if err != nil {
		return err
	}
	_, queries, err := b.Split(c.String("split"))
	if err != nil {
		return err
	}
	ix, err := retrieveIndex(ctx, c, b)
	if err != nil {
		return err
	}
	texts := make([]string, len(queries))
	for i, q := range queries {
		texts[i] = q.Text
	}
	bar := stepBar(c, len(texts), "search", "queries")
	start := time.Now()
	hits, err := ix.SearchAll(ctx, texts, c.Int("top-k"), c.Int("workers"), bar.set)
	bar.finish()
	if err != nil {
		return err
	}
	lines := make([]bm25.RunLine, len(queries))
	for i, q := range queries {
		lines[i] = bm25.NewRunLine(q.ID, q.Text, hits[i])
	}
	out, report := c.String("output"), c.App.Writer
	if out == "-" {
		bw := bufio.NewWriter(c.App.Writer)
		if err := bm25.WriteRun(bw, format, c.String("run-tag"), lines); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		out, report = "standard output", c.App.ErrWriter
	} else if err := bm25.WriteRunFile(out, format, c.String("run-tag"), lines); err != nil {
		return err
	}
	fmt.Fprintf(report, "retrieved top-%d for %d %s queries in %.2fs -> %s\n",
		c.Int("top-k"), len(queries), c.String("split"), time.Since(start).Seconds(), out)
	return nil
}

// retrieveIndex loads --index or builds the index from the corpus (and
// saves it with --save-index).
func retrieveIndex(ctx context.Context, c *cli.Context, b *bm25.BEIR) (*bm25.Index, error) {
	params := bm25.Params{K1: c.Float64("k1"), B: c.Float64("b")}
	if p := c.String("index"); p != "" {
		ix, err := bm25.Load(p)
		if err != nil {
			return nil, err
		}
		if ix.Len() != b.Corpus.Len() {
			return nil, fmt.Errorf("--index %s has %d documents but %s has %d: rebuild it with --save-index", p, ix.Len(), b.Dir, b.Corpus.Len())
		}
		for i := 0; i < ix.Len(); i++ {
			if ix.DocID(i) != b.Corpus.IDs[i] {
				return nil, fmt.Errorf("--index %s does not match corpus.jsonl (document %d is %q, not %q): rebuild it with --save-index",
					p, i+1, ix.DocID(i), b.Corpus.IDs[i])
			}
		}
		return ix.WithParams(params)
	}
	bar := stepBar(c, b.Corpus.Len(), "index", "docs")
	start := time.Now()
	ix, err := bm25.Build(ctx, b.Corpus.Docs(), bm25.BuildOptions{Params: params, Workers: c.Int("workers"), Progress: bar.set})
	bar.finish()
	if err != nil {
		return nil, err
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "indexed %d documents (%d terms) in %.2fs\n", ix.Len(), ix.Vocabulary(), time.Since(start).Seconds())
	}
	if p := c.String("save-index"); p != "" {
		if err := ix.Save(p); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// stepProgress is a progress bar on standard error for one long step, or nothing
// with --quiet.
type stepProgress struct {
	pb    *progressbar.ProgressBar
	w     io.Writer
	line  *lineProgress // into a file or a pipe
	total int
}

// stepBar starts a progress bar of total items.
func stepBar(c *cli.Context, total int, desc, unit string) *stepProgress {
	if c.Bool("quiet") || total <= 0 {
		return &stepProgress{}
	}
	w := c.App.ErrWriter
	if w == nil {
		w = os.Stderr
	}
	if !isTerminal(w) {
		l := newLineProgress(w, desc, unit)
		l.set(0, total)
		return &stepProgress{w: w, line: l, total: total}
	}
	return &stepProgress{w: w, pb: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
	)}
}

// set is a progress callback (done, total).
func (b *stepProgress) set(done int) {
	if b.pb != nil {
		_ = b.pb.Set(done)
	}
	if b.line != nil {
		b.line.set(done, b.total)
	}
}

// setOf adapts to callbacks that also pass the total.
func (b *stepProgress) setOf(done, _ int) { b.set(done) }

func (b *stepProgress) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
		fmt.Fprintln(b.w)
	}
	if b.line != nil {
		b.line.finish()
	}
}
