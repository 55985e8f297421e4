package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rerank-go/rerank/bm25"
	"github.com/rerank-go/rerank/bm25/mine"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/urfave/cli/v2"
)

// mineScorerFactory builds the cross-encoder of `rerank mine
// --rescore-model DIR [--adapter DIR]`: engineScorer, the engine of
// `rerank eval`, in the command; a fake in tests. Any value with the method
// Score(ctx, query, passages) ([]float32, error) fits. A returned Scorer
// that implements io.Closer is closed after use.
type mineScorerFactory func(modelDir, adapter string, opts scorerOptions) (mine.Scorer, error)

func init() { register(newMineCommand(engineMineScorer)) }

// engineMineScorer is engineScorer as a mineScorerFactory.
func engineMineScorer(modelDir, adapter string, opts scorerOptions) (mine.Scorer, error) {
	return engineScorer(modelDir, adapter, opts)
}

// newMineCommand is `rerank mine`, rescoring with newScorer.
func newMineCommand(newScorer mineScorerFactory) *cli.Command {
	return &cli.Command{
		Name:  "mine",
		Usage: "mine BM25 hard negatives into FlagEmbedding training data",
		Description: "Input: FlagEmbedding JSONL with query/pos (--input; neg is replaced), or a BEIR split\n" +
			"(--beir DIR --split NAME: positives are the judged documents). Candidates come from\n" +
			"BM25 over --corpus (a BEIR corpus.jsonl or a {\"text\"} pool), the BEIR corpus, or else\n" +
			"every pos/neg passage of the input (as FlagEmbedding's hn_mine). Negatives are sampled\n" +
			"from the ranks --range-for-sampling (a Python slice: 2-200 means ranks 3 to 200),\n" +
			"without positives, their near-duplicates or the query, and kept in rank order.\n" +
			"With --rescore-model a cross-encoder drops likely false negatives (scores above the\n" +
			"lowest positive, or within --absolute-margin / --relative-margin of it, or above\n" +
			"--max-score) and --teacher-scores writes pos_scores/neg_scores.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "FlagEmbedding JSONL `FILE` or directory with query/pos"},
			&cli.StringFlag{Name: "beir", Usage: "BEIR directory, instead of --input"},
			&cli.StringFlag{Name: "split", Usage: "BEIR split (qrels/`NAME`.tsv)", Value: "train"},
			&cli.StringFlag{Name: "corpus", Usage: "candidate `FILE`: BEIR corpus.jsonl or {\"text\"} per line"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output JSONL `FILE` (.gz compresses; written atomically)", Required: true},
			&cli.StringFlag{Name: "range-for-sampling", Usage: "rank window START-END (Python slice)", Value: "2-200"},
			&cli.IntFlag{Name: "negative-number", Usage: "negatives per query", Value: 15},
			&cli.Uint64Flag{Name: "seed", Usage: "sampling seed", Value: 42},
			&cli.Float64Flag{Name: "near-dup-threshold", Usage: "drop candidates whose term-set Jaccard with a positive is at least this (0 = exact duplicates only)", Value: 0.9},
			&cli.BoolFlag{Name: "fill-random", Usage: "top up short lists with random passages, as hn_mine does", Value: true},
			&cli.StringFlag{Name: "rescore-model", Usage: "cross-encoder model `DIR` or Hub id for the false-negative filter"},
			&cli.StringFlag{Name: "adapter", Usage: "LoRA adapter `DIR` or Hub id for --rescore-model"},
			&cli.IntFlag{Name: "batch-size", Usage: "pairs per cross-encoder forward pass", Value: 32},
			&cli.IntFlag{Name: "max-len", Usage: "longest query+passage input of the cross-encoder, in tokens", Value: 512},
			&cli.IntFlag{Name: "query-max-len", Usage: "longest query in tokens (0: the model's default)"},
			&cli.StringFlag{Name: "device", Usage: "where the cross-encoder runs: cpu (the default), cuda or cuda:N (cuda needs a build with -tags cuda)"},
			&cli.Float64Flag{Name: "absolute-margin", Usage: "drop candidates scoring above (lowest positive - margin)"},
			&cli.Float64Flag{Name: "relative-margin", Usage: "drop candidates scoring above lowest positive * (1 - margin)"},
			&cli.Float64Flag{Name: "max-score", Usage: "drop candidates scoring above this"},
			&cli.BoolFlag{Name: "teacher-scores", Usage: "write pos_scores/neg_scores from --rescore-model"},
			&cli.IntFlag{Name: "workers", Usage: "goroutines (0 = all cores)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars"},
		},
		Action: func(c *cli.Context) error { return runMine(c, newScorer) },
	}
}

func runMine(c *cli.Context, newScorer mineScorerFactory) error {
	ctx := c.Context // cli.App.Run sets it
	in, beirDir := c.String("input"), c.String("beir")
	if (in == "") == (beirDir == "") {
		return errors.New("give exactly one of --input (FlagEmbedding JSONL) and --beir (BEIR directory)")
	}
	start, end, err := mine.ParseRange(c.String("range-for-sampling"))
	if err != nil {
		return fmt.Errorf("--range-for-sampling: %w", err)
	}
	if c.String("adapter") != "" && c.String("rescore-model") == "" {
		return errors.New("--adapter needs --rescore-model")
	}
	if c.Bool("teacher-scores") && c.String("rescore-model") == "" {
		return errors.New("--teacher-scores needs --rescore-model (the teacher)")
	}
	opts := mine.Options{
		RangeStart: start, RangeEnd: end,
		NegativeNumber:   c.Int("negative-number"),
		Seed:             c.Uint64("seed"),
		NearDupThreshold: c.Float64("near-dup-threshold"),
		FillRandom:       c.Bool("fill-random"),
		TeacherScores:    c.Bool("teacher-scores"),
		Workers:          c.Int("workers"),
		Filter: mine.Filter{
			AbsoluteMargin: c.Float64("absolute-margin"),
			RelativeMargin: c.Float64("relative-margin"),
			HasMaxScore:    c.IsSet("max-score"),
			MaxScore:       c.Float64("max-score"),
		},
	}

	// Queries and the candidate pool.
	var (
		queries                  []mine.Query
		ids, passages, idxTexts  []string
		poolFrom                 string
		beirCorpus               *bm25.Corpus
		corpusPath               = c.String("corpus")
		inputExamples            []flagdata.Example
		inputDescription, output = "", c.String("output")
	)
	if beirDir != "" {
		b, err := bm25.OpenBEIR(beirDir)
		if err != nil {
			return err
		}
		qrels, qs, err := b.Split(c.String("split"))
		if err != nil {
			return err
		}
		if queries, err = mine.FromBEIR(b.Corpus, qrels, qs); err != nil {
			return fmt.Errorf("%s: %w", beirDir, err)
		}
		beirCorpus = b.Corpus
		inputDescription = fmt.Sprintf("%s split %s", beirDir, c.String("split"))
	} else {
		inputExamples, err = flagdata.Load(in, flagdata.Options{AllowMissingNeg: true})
		if err != nil {
			return err
		}
		if len(inputExamples) == 0 {
			return fmt.Errorf("%s: no examples", in)
		}
		queries = mine.FromExamples(inputExamples)
		inputDescription = in
	}
	switch {
	case corpusPath != "":
		if ids, passages, idxTexts, err = mine.ReadPoolFile(corpusPath); err != nil {
			return err
		}
		poolFrom = corpusPath
	case beirCorpus != nil:
		n := beirCorpus.Len()
		ids, passages, idxTexts = beirCorpus.IDs, make([]string, n), make([]string, n)
		for i := 0; i < n; i++ {
			passages[i] = beirCorpus.Passage(i)
			idxTexts[i] = beirCorpus.Titles[i] + " " + beirCorpus.Texts[i]
		}
		poolFrom = filepath.Join(beirDir, "corpus.jsonl")
	default:
		ids, passages = mine.PoolFromExamples(inputExamples)
		poolFrom = "the input's pos/neg passages"
	}

	if m := c.String("rescore-model"); m != "" {
		s, err := newScorer(m, c.String("adapter"), scorerOptions{
			MaxLen: c.Int("max-len"), QueryMaxLen: c.Int("query-max-len"),
			BatchSize: c.Int("batch-size"), Device: c.String("device"),
		})
		if err != nil {
			return err
		}
		if cl, ok := s.(interface{ Close() error }); ok {
			defer cl.Close()
		}
		opts.Scorer = s
	}

	ibar := stepBar(c, len(ids), "index", "docs")
	pool, err := mine.NewPool(ctx, ids, passages, idxTexts, ibar.set)
	ibar.finish()
	if err != nil {
		return err
	}
	mbar := stepBar(c, len(queries), "mine", "queries")
	opts.Progress = mbar.setOf
	exs, st, err := mine.Mine(ctx, pool, queries, opts)
	mbar.finish()
	if err != nil {
		return err
	}
	// A line without negatives is not valid training data: leave it out.
	kept := exs[:0]
	for _, e := range exs {
		if len(e.Neg) > 0 {
			kept = append(kept, e)
		}
	}
	dropped := len(exs) - len(kept)
	if err := flagdata.WriteFile(output, kept); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "mined %d queries from %s against %d passages (%s) -> %s\n", st.Queries, inputDescription, len(ids), poolFrom, output)
	fmt.Fprintf(w, "  negatives written: %d (%.1f per query), %d of them random top-ups\n",
		st.Negatives, float64(st.Negatives)/float64(max(st.Queries, 1)), st.RandomFill)
	fmt.Fprintf(w, "  window candidates: %d; excluded as positives/query: %d, near-duplicates: %d, false negatives (cross-encoder): %d\n",
		st.CandidatesTotal, st.ExcludedPos, st.NearDuplicates, st.FalseNegatives)
	if dropped > 0 {
		fmt.Fprintf(w, "  %d queries got no negative and were left out (widen --range-for-sampling or keep --fill-random)\n", dropped)
	}
	if st.ShortQueries > 0 {
		fmt.Fprintf(w, "  %d queries have fewer than %d negatives\n", st.ShortQueries, opts.NegativeNumber)
	}
	return nil
}
