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
)

// scorerOptions are the model settings of `rerank eval` handed to its
// scorerFactory.
type scorerOptions struct {
	MaxLen      int                     // --max-len: longest query+passage input, in tokens
	QueryMaxLen int                     // --query-max-len: longest query, in tokens; 0 = model default
	BatchSize   int                     // --batch-size: pairs per forward pass
	Device      string                  // --device: "" lets the engine choose
	Long        crossencoder.LongPolicy // --long, --max-tokens-per-doc, --max-chunks-per-doc
	Hub         *hub.Client             // resolves Hugging Face Hub ids given as --model or --adapter
	Int8        bool                    // --int8: int8 linear layers
}

// scorerFactory builds the reranker for one --model (a model directory or
// Hub id) and its optional --adapter (a LoRA adapter): engineScorer in the
// command, a fake in tests. A returned Scorer that implements io.Closer is
// closed after use.
type scorerFactory func(modelDir, adapter string, opts scorerOptions) (eval.Scorer, error)

func init() { register(newEvalCommand(engineScorer)) }

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

// listFlag is a repeatable string flag that, unlike cli.StringSliceFlag,
// never splits a value at commas (paths may hold them).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// newEvalCommand is `rerank eval`, loading its models with newScorer.
func newEvalCommand(newScorer scorerFactory) *cli.Command {
	rec := &specRecorder{}
	beir, cands := &listFlag{}, &listFlag{}
	return &cli.Command{
		Name:      "eval",
		Usage:     "evaluate first-stage candidates and rerankers with trec_eval metrics, significance tests and a report",
		UsageText: "rerank eval --beir DIR [--beir DIR ...] --split NAME [--candidates FILE ...] [--model M [--adapter A] [--label L] ...] [--json OUT] [--report DIR]",
		Description: `Reads a BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and
first-stage candidates: candidate JSONL {"qid","query","doc_ids","bm25_scores"},
a TREC run, or FlagEmbedding {"query","pos","neg"} JSONL whose pos/neg are the
candidates and the judgments. Without --candidates, a BEIR directory's
bm25/<split>.top100.jsonl is used. Without --model the candidates are
evaluated by their own scores; --run adds precomputed TREC runs (e.g. written
by --runs). Each --model reranks the top --rerank-top-k candidates of every
judged query, timed (ms/query, pairs/s); --adapter and --label apply to the
--model before them (a --label before any --model names the candidates' run).

Several datasets: repeat --beir, or give a directory of BEIR collections
(every subdirectory with a corpus.jsonl), with one --candidates per
collection in the same order or none. Every model is evaluated on each; the
output has one table per dataset, the table of all queries pooled (ids
prefixed by the dataset's name) and a summary per metric (datasets as rows,
models as columns, macro average), as BEIR papers show them.

Every run is compared with the baseline (--baseline; default: the first model
when two or more are given, else the first row, the candidates' run): mean
difference, paired randomization test (--test t: paired t-test),
bootstrap confidence interval and win/tie/loss counts over queries, per
dataset and pooled. With several models and metrics the p-values of one
table (every model against the baseline on every metric: one dataset, or
the pooled queries) form one family and get Holm–Bonferroni adjusted
p-values beside the raw ones (--correction none: raw only); the * and **
marks judge the adjusted p. The report shows
the --examples queries of largest gain and loss of every other run against
the baseline on the first metric, with both rankings side by side, and a
rank-shift plot.

Metrics follow trec_eval (see package eval). Equal scores keep first-stage
order (--ties input, the shared collections' protocol) or, with --ties
trec_eval, are ordered by document id descending as trec_eval does.`,
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "beir", Value: beir, Usage: "BEIR `DIR` with corpus.jsonl, queries.jsonl, qrels/, or a directory of such collections (repeatable)"},
			&cli.StringFlag{Name: "split", Value: "dev", Usage: "qrels split `NAME` (qrels/NAME.tsv)"},
			&cli.StringFlag{Name: "qrels", Usage: "qrels `FILE` (overrides DIR/qrels/SPLIT.tsv; one dataset only)"},
			&cli.GenericFlag{Name: "candidates", Value: cands, Usage: "first-stage candidates `FILE` (.gz read transparently; one per collection, in order; default DIR/bm25/SPLIT.top100.jsonl)"},
			&cli.StringFlag{Name: "candidates-format", Value: "auto", Usage: "auto, jsonl, trec or flag"},
			&cli.GenericFlag{Name: "model", Value: &specFlag{"model", rec}, Usage: "reranker model `DIR` or Hugging Face Hub id (org/name[@revision]) (repeatable)"},
			&cli.GenericFlag{Name: "adapter", Value: &specFlag{"adapter", rec}, Usage: "LoRA adapter `DIR` or Hub id for the preceding --model"},
			&cli.GenericFlag{Name: "label", Value: &specFlag{"label", rec}, Usage: "`NAME` of the preceding --model (before any --model: of the candidates' run)"},
			&cli.StringSliceFlag{Name: "run", Usage: "also evaluate a precomputed TREC run, as `LABEL=FILE` (repeatable; one dataset only)"},
			&cli.StringFlag{Name: "baseline", Usage: "`LABEL` of the run the others are compared with"},
			&cli.StringSliceFlag{Name: "metrics", Value: cli.NewStringSlice("ndcg@10", "mrr@10", "map@100", "recall@100"), Usage: "metrics: name@k, or names (ndcg, mrr, map, recall, p) expanded with --k; the first is the primary metric (summary, examples, delta plots)"},
			&cli.IntSliceFlag{Name: "k", Usage: "cutoffs for metric names given without @k"},
			&cli.IntFlag{Name: "rerank-top-k", Value: 100, Usage: "candidates per query to rerank"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "pairs per model call"},
			&cli.BoolFlag{Name: "int8", Usage: "score with the encoder's linear layers quantized to int8 (CPU; ONNX Runtime's dynamic quantization; see bench/RESULTS.md for the quality)"},
			&cli.IntFlag{Name: "max-len", Value: 512, Usage: "longest query+passage input in tokens"},
			&cli.IntFlag{Name: "query-max-len", Usage: "longest query in tokens (0: the model's default)"},
			&cli.StringFlag{Name: "device", Usage: "where the models run: cpu (the default), cuda or cuda:N (cuda needs a build with -tags cuda)"},
			longFlags()[0], longFlags()[1], longFlags()[2],
			&cli.StringFlag{Name: "ties", Value: "input", Usage: "tie-break for equal scores: input (first-stage order) or trec_eval (docno descending)"},
			&cli.StringFlag{Name: "test", Value: "randomization", Usage: "significance test: randomization (paired sign-flip) or t (paired t-test, df = queries-1)"},
			&cli.StringFlag{Name: "correction", Value: "holm", Usage: "multiple-comparison correction of the p-values of one table (every model against the baseline on every metric, per dataset and pooled): holm (Holm–Bonferroni) or none"},
			&cli.IntFlag{Name: "permutations", Value: 10000, Usage: "randomization-test permutations"},
			&cli.IntFlag{Name: "bootstrap", Value: 10000, Usage: "bootstrap resamples"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the significance tests"},
			&cli.IntFlag{Name: "examples", Value: 5, Usage: "report `N` queries of largest gain and N of largest loss against the baseline, per run and dataset (0: none)"},
			&cli.StringFlag{Name: "json", Usage: "write results as JSON to `OUT` (several datasets: each dataset's table, the pooled table and the summaries)"},
			&cli.StringFlag{Name: "runs", Usage: "write every run as a TREC run file `DIR`/<label>.run (several datasets: DIR/<dataset>/<label>.run), ranked in the --ties order, which the tag column names (<label>.ties-input or .ties-trec_eval)"},
			&cli.StringFlag{Name: "report", Usage: "write index.html, summary.md, results.json and plots to `DIR`"},
			&cli.StringFlag{Name: "training-log", Usage: "training metrics.jsonl `FILE` to plot in the report"},
			&cli.StringFlag{Name: "title", Usage: "report title"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: func(c *cli.Context) error { return runEval(c, newScorer, rec, *beir, *cands) },
	}
}

// labeledRun is one row of the results.
type labeledRun struct {
	label   string
	run     eval.Run
	latency *eval.Latency // nil for first-stage runs
}

// evalDataset is one dataset of an evaluation: its inputs, then its runs
// and their results.
type evalDataset struct {
	spec     eval.DatasetSpec // Name is "" for a single dataset
	judged   []eval.Candidate
	qrels    eval.Qrels
	queries  eval.Queries // query texts, for reranking and examples
	corpus   eval.Corpus  // passages (from the corpus or the candidates)
	passages eval.PassageLookup
	runs     []labeledRun
	results  []*eval.Result
	table    *eval.Table
}

func (d *evalDataset) prefix() string {
	if d.spec.Name == "" {
		return ""
	}
	return d.spec.Name + ": "
}

// resolveDatasets turns --beir and --candidates into datasets.
func resolveDatasets(c *cli.Context, beirs, cands []string) ([]eval.DatasetSpec, error) {
	if len(beirs) == 0 {
		switch len(cands) {
		case 0:
			return nil, errors.New("no candidates: give --candidates FILE, or --beir DIR with DIR/bm25/SPLIT.top100.jsonl")
		case 1:
			return []eval.DatasetSpec{{Candidates: cands[0]}}, nil
		}
		return nil, fmt.Errorf("%d --candidates without --beir: several datasets need one --beir each", len(cands))
	}
	specs, err := eval.FindDatasets(beirs, c.String("split"), cands)
	if err != nil {
		return nil, err
	}
	if len(specs) > 1 {
		if c.String("qrels") != "" {
			return nil, errors.New("--qrels applies to one dataset; several datasets read each DIR/qrels/SPLIT.tsv")
		}
		if len(c.StringSlice("run")) > 0 {
			return nil, errors.New("--run applies to one dataset; evaluate a precomputed run with a single --beir")
		}
	} else {
		specs[0].Name = ""
	}
	return specs, nil
}

// loadDataset reads a dataset's judgments, corpus, queries and
// candidates, and its first-stage runs.
func loadDataset(c *cli.Context, spec eval.DatasetSpec, candLabel string, labels map[string]bool, hasModels bool) (*evalDataset, error) {
	d := &evalDataset{spec: spec}
	var col *eval.Collection
	var known eval.DocFilter
	var err error
	if dir := spec.Dir; dir != "" {
		if c.String("qrels") != "" {
			col = &eval.Collection{Dir: dir, Split: c.String("split")}
			if col.Corpus, err = eval.ReadCorpus(filepath.Join(dir, "corpus.jsonl")); err != nil {
				return nil, err
			}
			if col.Queries, err = eval.ReadQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
				return nil, err
			}
		} else if col, err = eval.LoadBEIR(dir, c.String("split")); err != nil {
			return nil, err
		}
		known = func(id string) bool { _, ok := col.Corpus[id]; return ok }
	}
	cands, fileQrels, err := eval.ReadCandidateFile(spec.Candidates, eval.CandidateFormat(c.String("candidates-format")), known)
	if err != nil {
		return nil, err
	}
	switch {
	case c.String("qrels") != "":
		if d.qrels, err = eval.ReadQrels(c.String("qrels")); err != nil {
			return nil, err
		}
	case col != nil:
		d.qrels = col.Qrels
	case fileQrels != nil:
		d.qrels = fileQrels
	default:
		return nil, errors.New("no judgments: give --beir DIR (with qrels/SPLIT.tsv), --qrels FILE, or FlagEmbedding candidates")
	}
	if len(d.qrels) == 0 {
		return nil, fmt.Errorf("%sthe qrels have no judged queries", d.prefix())
	}
	if known != nil {
		if miss := d.qrels.MissingDocs(known); len(miss) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "rerank eval: %swarning: the qrels judge %d documents relevant that the corpus lacks (%s): no ranking can retrieve them, so recall and nDCG stay below 1\n",
				d.prefix(), len(miss), strings.Join(miss[:min(len(miss), 5)], ", "))
		}
	}
	for _, cd := range cands {
		if _, ok := d.qrels[cd.QID]; ok {
			d.judged = append(d.judged, cd)
		}
	}
	if len(d.judged) == 0 {
		return nil, fmt.Errorf("%snone of the %d candidate queries of %s has judgments in the qrels (wrong --split?)", d.prefix(), len(cands), displayPath(spec.Candidates))
	}

	// Texts: queries and passages for reranking and the report's examples.
	d.queries, d.corpus = eval.Queries{}, eval.Corpus{}
	if col != nil {
		d.queries, d.corpus = col.Queries, col.Corpus
		d.passages = eval.CorpusPassages(col.Corpus)
	}
	for _, cd := range d.judged {
		if cd.Query != "" {
			if _, ok := d.queries[cd.QID]; !ok {
				d.queries[cd.QID] = cd.Query
			}
		}
		for i, p := range cd.Passages {
			if _, ok := d.corpus[cd.DocIDs[i]]; !ok {
				d.corpus[cd.DocIDs[i]] = eval.Doc{ID: cd.DocIDs[i], Text: p}
			}
		}
	}

	if hasScores(d.judged) {
		run, err := eval.RunFromCandidates(d.judged)
		if err != nil {
			return nil, err
		}
		d.runs = append(d.runs, labeledRun{label: candLabel, run: run})
	} else if !hasModels && len(c.StringSlice("run")) == 0 {
		return nil, fmt.Errorf("%sthe candidates have no scores of their own: give --model to rerank them", d.prefix())
	}
	for _, spec := range c.StringSlice("run") {
		label, path, ok := strings.Cut(spec, "=")
		if !ok || label == "" || path == "" {
			return nil, fmt.Errorf("--run %q: want LABEL=FILE", spec)
		}
		if labels[label] {
			return nil, fmt.Errorf("--run %q: label %q is used twice", spec, label)
		}
		labels[label] = true
		run, err := eval.ReadTRECRun(path, known)
		if err != nil {
			return nil, err
		}
		d.runs = append(d.runs, labeledRun{label: label, run: run})
	}
	return d, nil
}

func runEval(c *cli.Context, newScorer scorerFactory, rec *specRecorder, beirs, candFiles []string) error {
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
	test, err := eval.ParseTest(c.String("test"))
	if err != nil {
		return fmt.Errorf("--test: %w", err)
	}
	correction, err := eval.ParseCorrection(c.String("correction"))
	if err != nil {
		return fmt.Errorf("--correction: %w", err)
	}
	// The library takes 0 for its default; here the report prints what
	// was asked, so the flags must be what runs.
	for _, f := range []string{"permutations", "bootstrap"} {
		if n := c.Int(f); n < 1 {
			return fmt.Errorf("--%s: must be at least 1, got %d", f, n)
		}
	}
	if n := c.Int("examples"); n < 0 {
		return fmt.Errorf("--examples: must be 0 or more, got %d", n)
	}
	specs, err := resolveDatasets(c, beirs, candFiles)
	if err != nil {
		return err
	}
	multi := len(specs) > 1

	// Judgments, corpus, queries, candidates and first-stage runs.
	candLabel := rec.candidatesLabel
	if candLabel == "" {
		candLabel = "candidates"
	}
	labels := map[string]bool{candLabel: true}
	var sets []*evalDataset
	for _, spec := range specs {
		d, err := loadDataset(c, spec, candLabel, labels, len(rec.specs) > 0)
		if err != nil {
			return err
		}
		sets = append(sets, d)
	}

	// Ctrl-C stops a reranking between two batches.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()

	// One run per model and dataset; each model is loaded once.
	for _, spec := range rec.specs {
		label := uniqueLabel(labels, spec.label())
		for _, d := range sets {
			if d.passages == nil && d.judged[0].Passages == nil {
				return errors.New("reranking needs passage texts: give --beir DIR")
			}
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
		for _, d := range sets {
			lat := &eval.Latency{}
			run, err := eval.Rerank(ctx, s, d.judged, d.queries, d.passages, eval.RerankOptions{
				TopK: c.Int("rerank-top-k"), BatchSize: c.Int("batch-size"),
				Progress: progress(c, d.prefix()+label), Latency: lat,
			})
			if err != nil {
				if cl, ok := s.(io.Closer); ok {
					cl.Close()
				}
				return fmt.Errorf("%s%s: %w", d.prefix(), label, err)
			}
			d.runs = append(d.runs, labeledRun{label: label, run: run, latency: lat})
		}
		if cl, ok := s.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
		}
	}

	// Metrics and comparisons, per dataset.
	runs0 := sets[0].runs
	baseline := c.String("baseline")
	if baseline == "" {
		baseline = runs0[0].label
		if len(rec.specs) >= 2 {
			baseline = runs0[len(runs0)-len(rec.specs)].label
		}
	}
	opts := eval.CompareOptions{Permutations: c.Int("permutations"), Bootstrap: c.Int("bootstrap"), Seed: c.Uint64("seed"),
		Test: test, Correction: correction}
	for _, d := range sets {
		if !slices.Contains(runLabels(d.runs), baseline) {
			return fmt.Errorf("--baseline %q is not one of the runs (%s)", baseline, strings.Join(runLabels(d.runs), ", "))
		}
		evaluated := make([]eval.Evaluated, len(d.runs))
		for i, r := range d.runs {
			res, err := eval.Evaluate(r.run, d.qrels, metrics, ties)
			if err != nil {
				return fmt.Errorf("%s%s: %w", d.prefix(), r.label, err)
			}
			if len(res.Missing) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "rerank eval: %s%s: %d judged queries have no candidates and score 0 (e.g. %q)\n",
					d.prefix(), r.label, len(res.Missing), res.Missing[0])
			}
			d.results = append(d.results, res)
			evaluated[i] = eval.Evaluated{Label: r.label, Result: res}
		}
		if d.table, err = eval.NewTable(metrics, evaluated, baseline, opts); err != nil {
			return err
		}
		for _, r := range d.runs {
			d.table.SetLatency(r.label, r.latency)
		}
	}

	// Several datasets: the pooled queries and the summaries.
	var multiTable *eval.MultiTable
	if multi {
		if multiTable, err = poolDatasets(sets, metrics, baseline, opts); err != nil {
			return err
		}
	}

	// Outputs.
	if multi {
		for _, d := range sets {
			fmt.Fprintf(c.App.Writer, "== %s (%d queries)\n", d.spec.Name, len(d.qrels))
			if err := eval.WriteTable(c.App.Writer, d.table); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer)
		}
		fmt.Fprintf(c.App.Writer, "== all queries pooled (%d)\n", len(multiTable.Pooled.Models[0].PerQuery))
		if err := eval.WriteTable(c.App.Writer, multiTable.Pooled); err != nil {
			return err
		}
		for i, s := range multiTable.Summary {
			fmt.Fprintln(c.App.Writer)
			if i > 0 {
				s.Latency = nil // printed once, under the primary metric
			}
			if err := eval.WriteSummary(c.App.Writer, s); err != nil {
				return err
			}
		}
	} else if err := eval.WriteTable(c.App.Writer, sets[0].table); err != nil {
		return err
	}
	if p := c.String("json"); p != "" {
		var v any = sets[0].table
		if multi {
			v = multiTable
		}
		if err := eval.WriteJSON(p, v); err != nil {
			return err
		}
	}
	if dir := c.String("runs"); dir != "" {
		for _, d := range sets {
			sub := filepath.Join(dir, fileName(d.spec.Name))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			for _, r := range d.runs {
				if err := eval.WriteTRECRun(filepath.Join(sub, fileName(r.label)+".run"), r.run, eval.RunTag(r.label, ties), ties); err != nil {
					return err
				}
			}
		}
	}
	if dir := c.String("report"); dir != "" {
		rep, err := buildReport(c, sets, multiTable, metrics, baseline, ties, opts, len(rec.specs))
		if err != nil {
			return err
		}
		if err := report.Write(dir, rep); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "rerank eval: report written to %s\n", filepath.Join(dir, "index.html"))
	}
	return nil
}

// poolDatasets compares the runs over the pooled queries of every dataset
// (ids prefixed by dataset) and summarizes each metric.
func poolDatasets(sets []*evalDataset, metrics []eval.Metric, baseline string, opts eval.CompareOptions) (*eval.MultiTable, error) {
	mt := &eval.MultiTable{}
	names := make([]string, len(sets))
	for i, d := range sets {
		names[i] = d.spec.Name
		mt.Datasets = append(mt.Datasets, eval.NamedTable{Name: d.spec.Name, Table: d.table})
	}
	var pooled []eval.Evaluated
	lats := map[string]*eval.Latency{}
	for _, r := range sets[0].runs {
		var results []*eval.Result
		var lat *eval.Latency
		for _, d := range sets {
			i := slices.Index(runLabels(d.runs), r.label)
			if i < 0 {
				results = nil
				break
			}
			results = append(results, d.results[i])
			if l := d.runs[i].latency; l != nil {
				sum := *l
				if lat != nil {
					sum = lat.Add(*l)
				}
				lat = &sum
			}
		}
		if results == nil {
			continue // not on every dataset
		}
		res, err := eval.PoolResults(names, results)
		if err != nil {
			return nil, err
		}
		pooled = append(pooled, eval.Evaluated{Label: r.label, Result: res})
		lats[r.label] = lat
	}
	var err error
	if mt.Pooled, err = eval.NewTable(metrics, pooled, baseline, opts); err != nil {
		return nil, fmt.Errorf("pooled queries: %w", err)
	}
	for label, l := range lats {
		mt.Pooled.SetLatency(label, l)
	}
	for _, m := range metrics {
		mt.Summary = append(mt.Summary, eval.Summarize(m.String(), mt.Datasets, mt.Pooled))
	}
	return mt, nil
}

// buildReport lays out the report: per dataset its tables, nDCG@k curves
// and example rankings, and for several datasets the pooled table.
func buildReport(c *cli.Context, sets []*evalDataset, multiTable *eval.MultiTable, metrics []eval.Metric, baseline string,
	ties eval.TieBreak, opts eval.CompareOptions, nModels int) (report.Report, error) {
	rep := report.Report{Title: c.String("title")}
	if rep.Title == "" {
		rep.Title = "rerank eval: " + describeInput(c, sets)
	}
	primary := metrics[0].String()
	rep.Notes = []string{
		fmt.Sprintf("Ties: %s. %s; bootstrap: %d resamples; seed %d; p-values corrected by %s per table. Rerank depth %d.", ties, testNote(opts), opts.Bootstrap, opts.Seed, opts.Correction, c.Int("rerank-top-k")),
		fmt.Sprintf("Examples and delta plots: %s, the primary metric (the first of --metrics).", primary),
		"Generated " + time.Now().UTC().Format(time.RFC3339) + " by rerank " + version + ".",
	}
	for _, d := range sets {
		note := fmt.Sprintf("Candidates: %s (%d judged queries of %d in the qrels).", displayPath(d.spec.Candidates), len(d.judged), len(d.qrels))
		if d.spec.Dir != "" {
			note = fmt.Sprintf("Collection %s, split %s. ", displayPath(d.spec.Dir), c.String("split")) + note
		}
		ds := report.Dataset{Name: d.spec.Name, Notes: []string{note}, Results: d.table}
		for _, r := range d.runs {
			curve, err := report.NDCGCurve(r.label, r.run, d.qrels, report.DefaultCurveKs, ties)
			if err != nil {
				return rep, err
			}
			ds.Curves = append(ds.Curves, curve)
		}
		if n := c.Int("examples"); n > 0 {
			ds.Examples = datasetExamples(d, baseline, primary, n, ties, nModels)
		}
		rep.Datasets = append(rep.Datasets, ds)
	}
	if multiTable == nil {
		// One dataset: the report's own tables, as before.
		d := rep.Datasets[0]
		rep.Notes = append(d.Notes, rep.Notes...)
		rep.Results, rep.Curves, rep.Examples, rep.Datasets = d.Results, d.Curves, d.Examples, nil
	} else {
		rep.Results = multiTable.Pooled
	}
	if p := c.String("training-log"); p != "" {
		var err error
		if rep.Training, err = eval.ReadTrainingLog(p); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// testNote names the significance test of the report's notes.
func testNote(o eval.CompareOptions) string {
	if o.Test == eval.TestT {
		return "Paired t-test (two-sided, df = queries - 1)"
	}
	return fmt.Sprintf("Randomization test: %d permutations", o.Permutations)
}

// datasetExamples picks every other run's example rankings against the
// baseline: the models' first (the last nModels runs), then the
// first-stage runs.
func datasetExamples(d *evalDataset, baseline, metric string, n int, ties eval.TieBreak, nModels int) []eval.Examples {
	bi := slices.Index(runLabels(d.runs), baseline)
	order := make([]int, 0, len(d.runs))
	for i := len(d.runs) - nModels; i < len(d.runs); i++ {
		order = append(order, i)
	}
	for i := 0; i < len(d.runs)-nModels; i++ {
		order = append(order, i)
	}
	var out []eval.Examples
	for _, i := range order {
		if i == bi {
			continue
		}
		out = append(out, eval.NewExamples(eval.ExampleInput{
			Metric:        metric,
			BaselineLabel: baseline, ModelLabel: d.runs[i].label,
			Baseline: d.runs[bi].run, Model: d.runs[i].run,
			BaselineValues: d.results[bi].Values(metric), ModelValues: d.results[i].Values(metric),
			Qrels: d.qrels, Queries: d.queries, Corpus: d.corpus,
		}, eval.ExampleOptions{N: n, Ties: ties}))
	}
	return out
}

// displayPath writes a path relative to the working directory, with ".."
// when it lies outside it (../shared/data/scifact): reports, notes and
// the files eval writes never record the machine's absolute paths, which
// mean nothing elsewhere and name its users. Only a path with no relative
// form (no working directory) stays as given.
func displayPath(p string) string {
	if p == "" {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, abs); err == nil {
		return rel
	}
	return p
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

func describeInput(c *cli.Context, sets []*evalDataset) string {
	if sets[0].spec.Dir == "" {
		return filepath.Base(sets[0].spec.Candidates)
	}
	var names []string
	for _, d := range sets {
		names = append(names, filepath.Base(filepath.Clean(d.spec.Dir)))
	}
	return strings.Join(names, ", ") + " / " + c.String("split")
}

// progress returns the Progress callback of a reranking: a progress bar on
// standard error, or nothing with --quiet.
func progress(c *cli.Context, label string) func(done, total int) {
	if c.Bool("quiet") {
		return nil
	}
	// A bar on a terminal; plain lines into a log file or a pipe.
	if !isTerminal(c.App.ErrWriter) {
		return newLineProgress(c.App.ErrWriter, label, "pairs").set
	}
	throttle := 100 * time.Millisecond
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
