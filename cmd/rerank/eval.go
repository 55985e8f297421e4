package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/eval/report"
	"github.com/rerank-go/rerank/hub"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// scorerOptions are the model settings of `rerank eval` handed to newScorer.
type scorerOptions struct {
	MaxLen      int                     // --max-len: longest query+passage input, in tokens
	QueryMaxLen int                     // --query-max-len: longest query, in tokens; 0 = model default
	BatchSize   int                     // --batch-size: pairs per forward pass
	Device      string                  // --device: "" lets the engine choose
	Long        crossencoder.LongPolicy // --long, --max-tokens-per-doc, --max-chunks-per-doc
	Hub         *hub.Client             // resolves Hugging Face Hub ids given as --model or --adapter
	Int8        bool                    // --int8: int8 linear layers
}

// newScorer builds the reranker for one --model (a model directory) and its
// optional --adapter (a LoRA adapter directory): engineScorer, which tests
// replace with a fake. A returned Scorer that implements io.Closer is
// closed after use.
var newScorer = engineScorer

func init() { register(newEvalCommand()) }

// modelSpec is one --model with the --adapter and --label that follow it.
type modelSpec struct {
	Model, Adapter, Label string
}

// specRecorder keeps --model, --adapter and --label in command-line order,
// so that an adapter or label applies to the --model before it.
type specRecorder struct {
	candidatesLabel string
	specs           []modelSpec
}

// specFlag is the cli.Generic value of one of the three flags.
type specFlag struct {
	kind string
	rec  *specRecorder
}

func (f *specFlag) String() string { return "" }

func (f *specFlag) Set(v string) error {
	r := f.rec
	switch f.kind {
	case "model":
		r.specs = append(r.specs, modelSpec{Model: v})
	case "adapter":
		if len(r.specs) == 0 {
			return fmt.Errorf("--adapter %q must follow the --model it applies to", v)
		}
		s := &r.specs[len(r.specs)-1]
		if s.Adapter != "" {
			return fmt.Errorf("--model %q has two adapters (%q, %q); repeat --model for a second one", s.Model, s.Adapter, v)
		}
		s.Adapter = v
	case "label":
		if len(r.specs) == 0 {
			r.candidatesLabel = v
			return nil
		}
		r.specs[len(r.specs)-1].Label = v
	}
	return nil
}

func newEvalCommand() *cli.Command {
	rec := &specRecorder{}
	return &cli.Command{
		Name:      "eval",
		Usage:     "evaluate first-stage candidates and rerankers with trec_eval metrics, significance tests and a report",
		UsageText: "rerank eval --beir DIR --split NAME --candidates FILE [--model M [--adapter A] [--label L] ...] [--json OUT] [--report DIR]",
		Description: `Reads a BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and
first-stage candidates: candidate JSONL {"qid","query","doc_ids","bm25_scores"},
a TREC run, or FlagEmbedding {"query","pos","neg"} JSONL whose pos/neg are the
candidates and the judgments. Without --model the candidates are evaluated by
their own scores; --run adds precomputed TREC runs (e.g. written by --runs).
Each --model reranks the top --rerank-top-k candidates of every judged query;
--adapter and --label apply to the --model before them (a --label before any
--model names the candidates' run).

Every run is compared with the baseline (--baseline; default: the first model
when two or more are given, else the first row, the candidates' run): mean
difference, paired randomization test, bootstrap confidence interval and
win/tie/loss counts over queries.

Metrics follow trec_eval (see package eval). Equal scores keep first-stage
order (--ties input, the shared collections' protocol) or, with --ties
trec_eval, are ordered by document id descending as trec_eval does.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "beir", Usage: "BEIR `DIR` with corpus.jsonl, queries.jsonl, qrels/"},
			&cli.StringFlag{Name: "split", Value: "dev", Usage: "qrels split `NAME` (qrels/NAME.tsv)"},
			&cli.StringFlag{Name: "qrels", Usage: "qrels `FILE` (overrides DIR/qrels/SPLIT.tsv)"},
			&cli.StringFlag{Name: "candidates", Required: true, Usage: "first-stage candidates `FILE` (.gz read transparently)"},
			&cli.StringFlag{Name: "candidates-format", Value: "auto", Usage: "auto, jsonl, trec or flag"},
			&cli.GenericFlag{Name: "model", Value: &specFlag{"model", rec}, Usage: "reranker model `DIR` (repeatable)"},
			&cli.GenericFlag{Name: "adapter", Value: &specFlag{"adapter", rec}, Usage: "LoRA adapter `DIR` for the preceding --model"},
			&cli.GenericFlag{Name: "label", Value: &specFlag{"label", rec}, Usage: "`NAME` of the preceding --model (before any --model: of the candidates' run)"},
			&cli.StringSliceFlag{Name: "run", Usage: "also evaluate a precomputed TREC run, as `LABEL=FILE` (repeatable)"},
			&cli.StringFlag{Name: "baseline", Usage: "`LABEL` of the run the others are compared with"},
			&cli.StringSliceFlag{Name: "metrics", Value: cli.NewStringSlice("ndcg@10", "mrr@10", "map@100", "recall@100"), Usage: "metrics: name@k, or names (ndcg, mrr, map, recall, p) expanded with --k"},
			&cli.IntSliceFlag{Name: "k", Usage: "cutoffs for metric names given without @k"},
			&cli.IntFlag{Name: "rerank-top-k", Value: 100, Usage: "candidates per query to rerank"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "pairs per model call"},
			&cli.BoolFlag{Name: "int8", Usage: "score with the encoder's linear layers quantized to int8 (CPU; ONNX Runtime's dynamic quantization; see bench/RESULTS.md for the quality)"},
			&cli.IntFlag{Name: "max-len", Value: 512, Usage: "longest query+passage input in tokens"},
			&cli.IntFlag{Name: "query-max-len", Usage: "longest query in tokens (0: the model's default)"},
			&cli.StringFlag{Name: "device", Usage: "device for the model (empty: the engine's default)"},
			longFlags()[0], longFlags()[1], longFlags()[2],
			&cli.StringFlag{Name: "ties", Value: "input", Usage: "tie-break for equal scores: input (first-stage order) or trec_eval (docno descending)"},
			&cli.IntFlag{Name: "permutations", Value: 10000, Usage: "randomization-test permutations"},
			&cli.IntFlag{Name: "bootstrap", Value: 10000, Usage: "bootstrap resamples"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the significance tests"},
			&cli.StringFlag{Name: "json", Usage: "write results as JSON to `OUT`"},
			&cli.StringFlag{Name: "runs", Usage: "write every run as a TREC run file `DIR`/<label>.run"},
			&cli.StringFlag{Name: "report", Usage: "write index.html, summary.md, results.json and plots to `DIR`"},
			&cli.StringFlag{Name: "training-log", Usage: "training metrics.jsonl `FILE` to plot in the report"},
			&cli.StringFlag{Name: "title", Usage: "report title"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: func(c *cli.Context) error { return runEval(c, rec) },
	}
}

// labeledRun is one row of the results.
type labeledRun struct {
	label string
	run   eval.Run
}

func runEval(c *cli.Context, rec *specRecorder) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (every input is given by a flag)", c.Args().Slice())
	}
	metrics, err := eval.ParseMetrics(splitList(c.StringSlice("metrics")), c.IntSlice("k"))
	if err != nil {
		return err
	}
	ties, err := eval.ParseTieBreak(c.String("ties"))
	if err != nil {
		return err
	}
	// The library takes 0 for its default; here the report prints what
	// was asked, so the flags must be what runs.
	for _, f := range []string{"permutations", "bootstrap"} {
		if n := c.Int(f); n < 1 {
			return fmt.Errorf("--%s: must be at least 1, got %d", f, n)
		}
	}

	// Judgments, corpus and queries.
	var col *eval.Collection
	var known eval.DocFilter
	if dir := c.String("beir"); dir != "" {
		if c.String("qrels") != "" {
			col = &eval.Collection{Dir: dir, Split: c.String("split")}
			if col.Corpus, err = eval.ReadCorpus(filepath.Join(dir, "corpus.jsonl")); err != nil {
				return err
			}
			if col.Queries, err = eval.ReadQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
				return err
			}
		} else if col, err = eval.LoadBEIR(dir, c.String("split")); err != nil {
			return err
		}
		known = func(id string) bool { _, ok := col.Corpus[id]; return ok }
	}
	cands, fileQrels, err := eval.ReadCandidateFile(c.String("candidates"), eval.CandidateFormat(c.String("candidates-format")), known)
	if err != nil {
		return err
	}
	var qrels eval.Qrels
	switch {
	case c.String("qrels") != "":
		if qrels, err = eval.ReadQrels(c.String("qrels")); err != nil {
			return err
		}
	case col != nil:
		qrels = col.Qrels
	case fileQrels != nil:
		qrels = fileQrels
	default:
		return errors.New("no judgments: give --beir DIR (with qrels/SPLIT.tsv), --qrels FILE, or FlagEmbedding candidates")
	}
	if len(qrels) == 0 {
		return errors.New("the qrels have no judged queries")
	}
	if known != nil {
		if miss := qrels.MissingDocs(known); len(miss) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "rerank eval: warning: the qrels judge %d documents relevant that the corpus lacks (%s): no ranking can retrieve them, so recall and nDCG stay below 1\n",
				len(miss), strings.Join(miss[:min(len(miss), 5)], ", "))
		}
	}
	judged := cands[:0:0]
	for _, cd := range cands {
		if _, ok := qrels[cd.QID]; ok {
			judged = append(judged, cd)
		}
	}
	if len(judged) == 0 {
		return fmt.Errorf("none of the %d candidate queries has judgments in the qrels (wrong --split?)", len(cands))
	}

	// Ctrl-C stops a reranking between two batches.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()

	// Runs: the candidates' own scores, then one per model.
	candLabel := rec.candidatesLabel
	if candLabel == "" {
		candLabel = "candidates"
	}
	var runs []labeledRun
	if hasScores(judged) {
		run, err := eval.RunFromCandidates(judged)
		if err != nil {
			return err
		}
		runs = append(runs, labeledRun{candLabel, run})
	} else if len(rec.specs) == 0 && len(c.StringSlice("run")) == 0 {
		return errors.New("the candidates have no scores of their own: give --model to rerank them")
	}
	labels := map[string]bool{candLabel: true}
	for _, spec := range c.StringSlice("run") {
		label, path, ok := strings.Cut(spec, "=")
		if !ok || label == "" || path == "" {
			return fmt.Errorf("--run %q: want LABEL=FILE", spec)
		}
		if labels[label] {
			return fmt.Errorf("--run %q: label %q is used twice", spec, label)
		}
		labels[label] = true
		run, err := eval.ReadTRECRun(path, known)
		if err != nil {
			return err
		}
		runs = append(runs, labeledRun{label, run})
	}
	var queries eval.Queries
	var passages eval.PassageLookup
	if col != nil {
		queries, passages = col.Queries, eval.CorpusPassages(col.Corpus)
	}
	for _, spec := range rec.specs {
		label := uniqueLabel(labels, spec.label())
		if passages == nil && judged[0].Passages == nil {
			return errors.New("reranking needs passage texts: give --beir DIR")
		}
		long, err := longPolicy(c)
		if err != nil {
			return err
		}
		s, err := newScorer(spec.Model, spec.Adapter, scorerOptions{
			Hub:    hubClient(c),
			MaxLen: c.Int("max-len"), QueryMaxLen: c.Int("query-max-len"),
			BatchSize: c.Int("batch-size"), Device: c.String("device"), Long: long, Int8: c.Bool("int8"),
		})
		if err != nil {
			return fmt.Errorf("--model %s: %w", spec.Model, err)
		}
		if m, ok := s.(interface{ FreshHead() []string }); ok && len(m.FreshHead()) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "rerank eval: %s has no trained head (%s): its scores are an untrained, freshly initialised head's\n",
				spec.Model, strings.Join(m.FreshHead(), ", "))
		}
		if m, ok := s.(interface{ MaxLen() int }); ok && c.Int("max-len") > m.MaxLen() {
			fmt.Fprintf(c.App.ErrWriter, "rerank eval: %s takes at most %d tokens (its position table): --max-len %d is capped to %d\n",
				spec.Model, m.MaxLen(), c.Int("max-len"), m.MaxLen())
		}
		run, err := eval.Rerank(ctx, s, judged, queries, passages, eval.RerankOptions{
			TopK: c.Int("rerank-top-k"), BatchSize: c.Int("batch-size"),
			Progress: progress(c, label),
		})
		if cl, ok := s.(io.Closer); ok {
			if cerr := cl.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		runs = append(runs, labeledRun{label, run})
	}

	// Metrics and comparisons.
	evaluated := make([]eval.Evaluated, len(runs))
	for i, r := range runs {
		res, err := eval.Evaluate(r.run, qrels, metrics, ties)
		if err != nil {
			return fmt.Errorf("%s: %w", r.label, err)
		}
		if len(res.Missing) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "rerank eval: %s: %d judged queries have no candidates and score 0 (e.g. %q)\n",
				r.label, len(res.Missing), res.Missing[0])
		}
		evaluated[i] = eval.Evaluated{Label: r.label, Result: res}
	}
	baseline := c.String("baseline")
	if baseline == "" {
		baseline = runs[0].label
		if len(rec.specs) >= 2 {
			baseline = runs[len(runs)-len(rec.specs)].label
		}
	}
	if !slices.Contains(runLabels(runs), baseline) {
		return fmt.Errorf("--baseline %q is not one of the runs (%s)", baseline, strings.Join(runLabels(runs), ", "))
	}
	opts := eval.CompareOptions{Permutations: c.Int("permutations"), Bootstrap: c.Int("bootstrap"), Seed: c.Uint64("seed")}
	results, err := eval.NewTable(metrics, evaluated, baseline, opts)
	if err != nil {
		return err
	}

	// Outputs.
	if err := eval.WriteTable(c.App.Writer, results); err != nil {
		return err
	}
	if p := c.String("json"); p != "" {
		if err := eval.WriteJSON(p, results); err != nil {
			return err
		}
	}
	if dir := c.String("runs"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, r := range runs {
			if err := eval.WriteTRECRun(filepath.Join(dir, fileName(r.label)+".run"), r.run, r.label, ties); err != nil {
				return err
			}
		}
	}
	if dir := c.String("report"); dir != "" {
		rep := report.Report{Title: c.String("title"), Results: results}
		if rep.Title == "" {
			rep.Title = "rerank eval: " + describeInput(c)
		}
		rep.Notes = []string{
			fmt.Sprintf("Candidates: %s (%d judged queries of %d in the qrels; rerank depth %d).", c.String("candidates"), len(judged), len(qrels), c.Int("rerank-top-k")),
			fmt.Sprintf("Ties: %s. Randomization test: %d permutations; bootstrap: %d resamples; seed %d.", ties, opts.Permutations, opts.Bootstrap, opts.Seed),
			"Generated " + time.Now().UTC().Format(time.RFC3339) + " by rerank " + version + ".",
		}
		for _, r := range runs {
			curve, err := report.NDCGCurve(r.label, r.run, qrels, report.DefaultCurveKs, ties)
			if err != nil {
				return err
			}
			rep.Curves = append(rep.Curves, curve)
		}
		if p := c.String("training-log"); p != "" {
			if rep.Training, err = eval.ReadTrainingLog(p); err != nil {
				return err
			}
		}
		if err := report.Write(dir, rep); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "rerank eval: report written to %s\n", filepath.Join(dir, "index.html"))
	}
	return nil
}

func (s modelSpec) label() string {
	if s.Label != "" {
		return s.Label
	}
	l := filepath.Base(filepath.Clean(s.Model))
	if s.Adapter != "" {
		l += "+" + filepath.Base(filepath.Clean(s.Adapter))
	}
	return l
}

func uniqueLabel(used map[string]bool, l string) string {
	out := l
	for i := 2; used[out]; i++ {
		out = fmt.Sprintf("%s#%d", l, i)
	}
	used[out] = true
	return out
}

func hasScores(cands []eval.Candidate) bool {
	for _, c := range cands {
		if c.Scores == nil && len(c.DocIDs) > 0 {
			return false
		}
	}
	return true
}

func runLabels(runs []labeledRun) []string {
	var s []string
	for _, r := range runs {
		s = append(s, r.label)
	}
	return s
}

// splitList accepts both repeated flags and comma-separated values.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Split(s, ",")...)
	}
	return out
}

func fileName(label string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r == 0 {
			return '_'
		}
		return r
	}, label)
}

func describeInput(c *cli.Context) string {
	if d := c.String("beir"); d != "" {
		return filepath.Base(filepath.Clean(d)) + " / " + c.String("split")
	}
	return filepath.Base(c.String("candidates"))
}

// progress returns the Progress callback of a reranking: a progress bar on
// standard error, or nothing with --quiet.
func progress(c *cli.Context, label string) func(done, total int) {
	if c.Bool("quiet") {
		return nil
	}
	// Redraw often on a terminal, rarely into a log file.
	throttle := 100 * time.Millisecond
	if f, ok := c.App.ErrWriter.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		throttle = 5 * time.Second
	}
	var bar *progressbar.ProgressBar
	return func(done, total int) {
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(c.App.ErrWriter),
				progressbar.OptionSetDescription(label),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("pairs"),
				progressbar.OptionThrottle(throttle),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.App.ErrWriter) }),
			)
		}
		_ = bar.Set(done)
	}
}
