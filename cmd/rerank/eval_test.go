package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/internal/testdir"
)

// runEvalCLI runs `rerank eval args...` with a fresh command.
func runEvalCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runEvalWith(t, engineScorer, args...)
}

// runEvalWith is runEvalCLI loading models with newScorer.
func runEvalWith(t *testing.T, newScorer scorerFactory, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(t, newEvalCommand(newScorer), args...)
}

// evalFixture writes a small BEIR directory with BM25-style candidates.
func evalFixture(t *testing.T) string {
	t.Helper()
	files := map[string]string{
		"corpus.jsonl": `{"_id":"d1","title":"","text":"nothing"}
{"_id":"d2","title":"wing","text":"lift of a wing"}
{"_id":"d3","title":"","text":"heat"}
{"_id":"d4","title":"","text":"heat transfer in slabs"}
`,
		"queries.jsonl": `{"_id":"q1","text":"wing lift"}
{"_id":"q2","text":"heat transfer"}
{"_id":"q3","text":"unjudged"}
`,
		"qrels/dev.tsv": "query-id\tcorpus-id\tscore\nq1\td2\t2\nq2\td4\t1\nq2\td3\t1\n",
		"bm25/dev.top100.jsonl": `{"qid":"q1","query":"wing lift","doc_ids":["d1","d2","d3"],"bm25_scores":[3,2,1]}
{"qid":"q2","query":"heat transfer","doc_ids":["d3","d1","d4"],"bm25_scores":[5,4,3]}
{"qid":"q3","query":"unjudged","doc_ids":["d1"],"bm25_scores":[1]}
`,
		"flag.jsonl": `{"qid":"f1","query":"wing lift","pos":["lift of a wing"],"neg":["nothing","wing only"]}
{"qid":"f2","query":"heat","pos":["heat"],"neg":["cold"]}
`,
		"bad.jsonl": `{"qid":"q1","query":"x","doc_ids":["d1"],"bm25_scores":[1]}
{"qid":"q2","query":"x","doc_ids":["d1","d99"],"bm25_scores":[1,0]}
`,
	}
	return testdir.Write(t, files)
}

// overlapScorer scores passages by the number of query words they contain.
type overlapScorer struct{ bonus float32 }

func (o overlapScorer) Score(_ context.Context, query string, passages []string) ([]float32, error) {
	out := make([]float32, len(passages))
	for i, p := range passages {
		for _, w := range strings.Fields(query) {
			if strings.Contains(p, w) {
				out[i] += 1 + o.bonus
			}
		}
	}
	return out, nil
}

// fakeScorers returns a scorerFactory of overlapScorers that records its
// calls.
func fakeScorers() (scorerFactory, *[]string) {
	var calls []string
	return func(model, adapter string, opts scorerOptions) (eval.Scorer, error) {
		calls = append(calls, model+"|"+adapter)
		return overlapScorer{}, nil
	}, &calls
}

func readResults(t *testing.T, path string) eval.Table {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var r eval.Table
	require.NoError(t, json.Unmarshal(raw, &r))
	return r
}

func TestEvalCandidatesOnly(t *testing.T) {
	dir := evalFixture(t)
	out := filepath.Join(t.TempDir(), "r.json")
	stdout, _, err := runEvalCLI(t, "--beir", dir, "--split", "dev", "--candidates", filepath.Join(dir, "bm25", "dev.top100.jsonl"),
		"--label", "bm25", "--json", out)
	require.NoError(t, err)
	assert.Contains(t, stdout, "bm25")
	r := readResults(t, out)
	require.Len(t, r.Models, 1)
	m := r.Models[0]
	assert.Equal(t, "bm25", m.Label)
	assert.Equal(t, []string{"ndcg@10", "mrr@10", "map@100", "recall@100"}, r.Metrics)
	assert.InDelta(t, (0.5+1)/2, m.Metrics["mrr@10"], 1e-12)
	assert.InDelta(t, (0.5+(1+2.0/3)/2)/2, m.Metrics["map@100"], 1e-12)
	assert.Len(t, m.PerQuery, 2, "only judged queries")
	assert.Equal(t, 1.0, m.PerQuery["q2"]["recall@100"])
	assert.Empty(t, r.Comparisons)

	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"comparisons": []`)
}

func TestEvalModels(t *testing.T) {
	dir := evalFixture(t)
	fake, calls := fakeScorers()
	tmp := t.TempDir()
	out, reportDir, runsDir := filepath.Join(tmp, "r.json"), filepath.Join(tmp, "report"), filepath.Join(tmp, "runs")
	log := filepath.Join(tmp, "metrics.jsonl")
	require.NoError(t, os.WriteFile(log, []byte(`{"step":1,"loss":0.7,"learning_rate":1e-5,"pairs_per_second":50}`+"\n"+
		`{"step":2,"loss":0.5,"learning_rate":1e-5,"pairs_per_second":50,"ndcg@10":0.4}`+"\n"), 0o644))
	stdout, _, err := runEvalWith(t, fake, "--beir", dir, "--candidates", filepath.Join(dir, "bm25", "dev.top100.jsonl"),
		"--model", "/m/base", "--label", "base",
		"--model", "/m/base", "--adapter", "/a/lora-7",
		"--rerank-top-k", "2", "--quiet", "--permutations", "100", "--bootstrap", "100",
		"--json", out, "--report", reportDir, "--runs", runsDir, "--training-log", log)
	require.NoError(t, err)
	assert.Equal(t, []string{"/m/base|", "/m/base|/a/lora-7"}, *calls)
	assert.Contains(t, stdout, "vs base")

	r := readResults(t, out)
	var labels []string
	for _, m := range r.Models {
		labels = append(labels, m.Label)
	}
	assert.Equal(t, []string{"candidates", "base", "base+lora-7"}, labels)
	assert.Equal(t, "base", r.Baseline, "two models: the first model is the baseline")
	require.Len(t, r.Comparisons, 8, "candidates and base+lora-7 against base, 4 metrics each")
	for _, c := range r.Comparisons {
		assert.Equal(t, "base", c.Baseline)
		assert.Equal(t, 2, c.N)
		assert.Equal(t, eval.CorrectionHolm, c.Correction, "--correction holm by default")
		assert.Equal(t, eval.TestRandomization, c.Test)
		assert.GreaterOrEqual(t, c.PAdjusted, c.PValue)
	}
	md, err := os.ReadFile(filepath.Join(reportDir, "summary.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| p (holm) |")
	html, err := os.ReadFile(filepath.Join(reportDir, "index.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), "<th>p (holm)</th>")
	// The overlap scorer puts d2 first for q1 (top 2 reranked: d1=0, d2=2).
	assert.Equal(t, 1.0, r.Models[1].PerQuery["q1"]["mrr@10"])

	assert.Nil(t, r.Models[0].Latency, "first stage: no rerank cost")
	require.NotNil(t, r.Models[1].Latency)
	assert.Equal(t, eval.Latency{Depth: 2, Queries: 2, Pairs: 4, Seconds: r.Models[1].Latency.Seconds}, *r.Models[1].Latency)
	assert.Contains(t, stdout, "ms/query")

	for _, f := range []string{"index.html", "summary.md", "results.json", "ndcg_at_k.png", "delta_candidates.png", "delta_base_lora-7.png", "training_loss.png", "training_dev.png"} {
		assert.FileExists(t, filepath.Join(reportDir, f))
	}
	run, err := eval.ReadTRECRun(filepath.Join(runsDir, "base+lora-7.run"), nil)
	require.NoError(t, err)
	assert.Len(t, run["q1"], 3, "reranked top 2 plus the tail")

	// The written run can be evaluated again with --run.
	out2 := filepath.Join(tmp, "r2.json")
	_, _, err = runEvalWith(t, fake, "--beir", dir, "--candidates", filepath.Join(dir, "bm25", "dev.top100.jsonl"),
		"--run", "again="+filepath.Join(runsDir, "base.run"), "--json", out2)
	require.NoError(t, err)
	r2 := readResults(t, out2)
	require.Len(t, r2.Models, 2)
	assert.Equal(t, r.Models[1].Metrics, r2.Models[1].Metrics)
	assert.Equal(t, "candidates", r2.Baseline)
}

func TestEvalFlagEmbeddingCandidates(t *testing.T) {
	dir := evalFixture(t)
	fake, _ := fakeScorers()
	out := filepath.Join(t.TempDir(), "r.json")
	_, _, err := runEvalWith(t, fake, "--candidates", filepath.Join(dir, "flag.jsonl"), "--model", "m", "--json", out, "-q")
	require.NoError(t, err)
	r := readResults(t, out)
	require.Len(t, r.Models, 1, "no first-stage scores: only the model")
	assert.Equal(t, 1.0, r.Models[0].Metrics["mrr@10"], "judgments and passages come from the file")
	assert.Len(t, r.Models[0].PerQuery, 2)

	_, _, err = runEvalWith(t, fake, "--candidates", filepath.Join(dir, "flag.jsonl"))
	assert.ErrorContains(t, err, "no scores of their own")
}

func TestEvalErrors(t *testing.T) {
	dir := evalFixture(t)
	cand := filepath.Join(dir, "bm25", "dev.top100.jsonl")
	base := []string{"--beir", dir, "--candidates", cand}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing model", append(base, "--model", filepath.Join(dir, "no-model")), filepath.Join(dir, "no-model")},
		{"missing qrels file", []string{"--beir", dir, "--split", "test", "--candidates", cand}, filepath.Join(dir, "qrels", "test.tsv")},
		{"unknown doc id", []string{"--beir", dir, "--candidates", filepath.Join(dir, "bad.jsonl")}, `bad.jsonl:2: query "q2": unknown document id "d99"`},
		{"bad metric", append(base, "--metrics", "ndcg@ten"), "not a positive integer"},
		{"adapter first", append(base, "--adapter", "/a"), "must follow the --model"},
		{"bad baseline", append(base, "--baseline", "nope"), `--baseline "nope" is not one of the runs (candidates)`},
		{"bad run spec", append(base, "--run", "nofile"), "want LABEL=FILE"},
		{"bad ties", append(base, "--ties", "random"), "unknown tie-break"},
		{"bad test", append(base, "--test", "wilcoxon"), `--test: significance test "wilcoxon": want randomization`},
		{"bad correction", append(base, "--correction", "bonferroni"), `--correction: multiple-comparison correction "bonferroni": want holm`},
		{"no judgments", []string{"--candidates", cand}, "no judgments"},
		{"corpus given as candidates", []string{"--beir", dir, "--qrels", filepath.Join(dir, "qrels", "dev.tsv"), "--candidates", filepath.Join(dir, "corpus.jsonl")}, "neither \"doc_ids\""},
		{"stray argument", append(base, "extra"), "unexpected arguments"},
		{"no default candidates", []string{"--beir", dir, "--split", "nosplit"}, filepath.Join(dir, "bm25", "nosplit.top100.jsonl")},
		{"no candidates at all", []string{"--qrels", filepath.Join(dir, "qrels", "dev.tsv")}, "no candidates: give --candidates"},
		{"no permutations", append(base, "--permutations", "0"), "--permutations: must be at least 1, got 0"},
		{"negative bootstrap", append(base, "--bootstrap", "-1"), "--bootstrap: must be at least 1, got -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runEvalCLI(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestEvalReproducesBM25 runs the command line on every shared collection
// and split with reference metrics: the contract scripts depend on.
func TestEvalReproducesBM25(t *testing.T) {
	data := sharedtest.Data(t)
	refs, err := filepath.Glob(filepath.Join(data, "*", "bm25", "*.metrics.json"))
	require.NoError(t, err)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		col := filepath.Dir(filepath.Dir(ref))
		split := strings.TrimSuffix(filepath.Base(ref), ".metrics.json")
		t.Run(filepath.Base(col)+"/"+split, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "r.json")
			_, _, err := runEvalCLI(t, "--beir", col, "--split", split,
				"--candidates", filepath.Join(col, "bm25", split+".top100.jsonl"), "--json", out)
			require.NoError(t, err)
			raw, err := os.ReadFile(ref)
			require.NoError(t, err)
			var want struct {
				Metrics map[string]float64 `json:"metrics"`
			}
			require.NoError(t, json.Unmarshal(raw, &want))
			got := readResults(t, out).Models[0].Metrics
			for _, name := range []string{"ndcg@10", "mrr@10", "map@100", "recall@100"} {
				assert.InDelta(t, want.Metrics[name], got[name], 1e-4, name)
			}
		})
	}
}

// multiFixture writes a directory of two BEIR collections, c1 and c2,
// each evalFixture's.
func multiFixture(t *testing.T) string {
	t.Helper()
	one := evalFixture(t)
	files := map[string]string{}
	for _, c := range []string{"c1", "c2"} {
		for _, f := range []string{"corpus.jsonl", "queries.jsonl", "qrels/dev.tsv", "bm25/dev.top100.jsonl"} {
			b, err := os.ReadFile(filepath.Join(one, filepath.FromSlash(f)))
			require.NoError(t, err)
			files[c+"/"+f] = string(b)
		}
	}
	files["c2/qrels/dev.tsv"] = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\n"
	return testdir.Write(t, files)
}

func TestEvalDatasets(t *testing.T) {
	root := multiFixture(t)
	fake, _ := fakeScorers()
	tmp := t.TempDir()
	common := []string{"--label", "bm25", "--model", "/m/ce", "--label", "ce", "--quiet", "--permutations", "100", "--bootstrap", "100"}

	out := filepath.Join(tmp, "dir.json")
	reportDir, runsDir := filepath.Join(tmp, "report"), filepath.Join(tmp, "runs")
	stdout, _, err := runEvalWith(t, fake, append([]string{"--beir", root, "--json", out, "--report", reportDir, "--runs", runsDir, "--examples", "1"}, common...)...)
	require.NoError(t, err)
	assert.Contains(t, stdout, "== c1 (2 queries)")
	assert.Contains(t, stdout, "== all queries pooled (4)")
	assert.Regexp(t, `macro average\s+0\.\d{4}`, stdout)
	assert.Regexp(t, `ms/query\s+-\s+\d`, stdout)
	assert.Equal(t, 1, strings.Count(stdout, "\nms/query "), "latency once, under the primary metric's summary")

	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	var mt eval.MultiTable
	require.NoError(t, json.Unmarshal(raw, &mt))
	require.Len(t, mt.Datasets, 2)
	assert.Equal(t, "c1", mt.Datasets[0].Name)
	assert.Equal(t, "c2", mt.Datasets[1].Name)
	require.NotNil(t, mt.Pooled)
	assert.Equal(t, "bm25", mt.Pooled.Baseline)
	assert.Contains(t, mt.Pooled.Models[1].PerQuery, "c2/q1", "pooled ids are prefixed by dataset")
	assert.Len(t, mt.Pooled.Models[1].PerQuery, 4)
	for _, c := range mt.Pooled.Comparisons {
		assert.Equal(t, 4, c.N, "pooled significance over every query")
	}
	require.Len(t, mt.Summary, 4, "one summary per metric")
	s := mt.Summary[0]
	assert.Equal(t, "ndcg@10", s.Metric)
	assert.Equal(t, []string{"bm25", "ce"}, s.Models)
	require.Len(t, s.Rows, 2)
	for i := range s.Models {
		assert.InDelta(t, (*s.Rows[0].Values[i]+*s.Rows[1].Values[i])/2, *s.Macro[i], 1e-12)
	}
	// Latency: the model's, per dataset and over both; none for BM25.
	for _, d := range mt.Datasets {
		assert.Nil(t, d.Table.Models[0].Latency)
		require.NotNil(t, d.Table.Models[1].Latency)
		assert.Equal(t, 2, d.Table.Models[1].Latency.Queries)
		assert.Equal(t, 100, d.Table.Models[1].Latency.Depth)
	}
	require.NotNil(t, s.Latency[1])
	assert.Equal(t, 4, s.Latency[1].Queries)
	assert.Equal(t, 12, s.Latency[1].Pairs)
	assert.Nil(t, s.Latency[0])

	for _, f := range []string{"index.html", "summary.md", "results.json", "results_c1.json", "results_c2.json", "c1_ndcg_at_k.png", "c2_delta_ce.png"} {
		assert.FileExists(t, filepath.Join(reportDir, f))
	}
	html, err := os.ReadFile(filepath.Join(reportDir, "index.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), "<h2>Summary</h2>")
	assert.Contains(t, string(html), "Examples: ce against bm25, by ndcg@10")
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, filepath.Join(root, "c1"))
	require.NoError(t, err)
	assert.Contains(t, string(html), "Collection "+rel+", split dev.", "paths relative to the working directory")
	assert.NotContains(t, string(html), "Collection "+root, "no absolute paths in the report")
	for _, f := range []string{"c1/bm25.run", "c2/ce.run"} {
		assert.FileExists(t, filepath.Join(runsDir, filepath.FromSlash(f)))
	}

	// The repeated flag, with explicit candidates, gives the same tables.
	out2 := filepath.Join(tmp, "flags.json")
	_, _, err = runEvalWith(t, fake, append([]string{"--beir", filepath.Join(root, "c1"), "--beir", filepath.Join(root, "c2"),
		"--candidates", filepath.Join(root, "c1", "bm25", "dev.top100.jsonl"), "--candidates", filepath.Join(root, "c2", "bm25", "dev.top100.jsonl"),
		"--json", out2}, common...)...)
	require.NoError(t, err)
	raw2, err := os.ReadFile(out2)
	require.NoError(t, err)
	var mt2 eval.MultiTable
	require.NoError(t, json.Unmarshal(raw2, &mt2))
	require.Len(t, mt2.Summary, 4)
	assert.Equal(t, mt.Summary[0].Rows[0].Values, mt2.Summary[0].Rows[0].Values)
	assert.Equal(t, mt.Pooled.Models[1].Metrics, mt2.Pooled.Models[1].Metrics)
}

func TestEvalDatasetsErrors(t *testing.T) {
	root := multiFixture(t)
	c1 := filepath.Join(root, "c1", "bm25", "dev.top100.jsonl")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"candidates count", []string{"--beir", root, "--candidates", c1}, "1 candidates files for 2 collections (" + filepath.Join(root, "c1")},
		{"missing collection", []string{"--beir", root, "--beir", filepath.Join(root, "c3")}, "BEIR directory " + filepath.Join(root, "c3")},
		{"not a collection", []string{"--beir", filepath.Join(root, "c1", "bm25")}, filepath.Join(root, "c1", "bm25") + ": no corpus.jsonl"},
		{"qrels with several", []string{"--beir", root, "--qrels", "x.tsv"}, "--qrels applies to one dataset"},
		{"run with several", []string{"--beir", root, "--run", "a=" + c1}, "--run applies to one dataset"},
		{"candidates without beir", []string{"--candidates", c1, "--candidates", c1}, "several datasets need one --beir each"},
		{"negative examples", []string{"--beir", root, "--examples", "-1"}, "--examples: must be 0 or more"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runEvalCLI(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestEvalTestAndCorrectionFlags: --test t and --correction none reach the
// JSON and the report.
func TestEvalTestAndCorrectionFlags(t *testing.T) {
	dir := evalFixture(t)
	fake, _ := fakeScorers()
	tmp := t.TempDir()
	out, reportDir := filepath.Join(tmp, "r.json"), filepath.Join(tmp, "report")
	stdout, _, err := runEvalWith(t, fake, "--beir", dir, "--model", "/m/base", "--rerank-top-k", "2", "--quiet",
		"--test", "t", "--correction", "none", "--json", out, "--report", reportDir, "--examples", "0")
	require.NoError(t, err)
	assert.Contains(t, stdout, "paired t-test")
	r := readResults(t, out)
	require.NotEmpty(t, r.Comparisons)
	assert.Equal(t, eval.TestT, r.Test)
	assert.Equal(t, eval.CorrectionNone, r.Correction)
	for _, c := range r.Comparisons {
		assert.Equal(t, eval.TestT, c.Test)
		assert.Equal(t, 1, c.DF)
		assert.Equal(t, c.PValue, c.PAdjusted)
	}
	md, err := os.ReadFile(filepath.Join(reportDir, "summary.md"))
	require.NoError(t, err)
	assert.NotContains(t, string(md), "p (holm)")
	assert.Contains(t, string(md), "paired t-test")
}

// TestEvalRunsSayTheirTieOrder: run files written with --runs name the
// order their ranks follow in the tag column (trec_eval reads it as free
// text; TREC runs have no comment syntax), and eval's own reader still
// reads them.
func TestEvalRunsSayTheirTieOrder(t *testing.T) {
	dir := evalFixture(t)
	for _, ties := range []string{"input", "trec_eval"} {
		runsDir := filepath.Join(t.TempDir(), "runs")
		_, _, err := runEvalCLI(t, "--beir", dir, "--label", "bm25", "--ties", ties, "--runs", runsDir)
		require.NoError(t, err)
		path := filepath.Join(runsDir, "bm25.run")
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			f := strings.Fields(line)
			require.Len(t, f, 6, line)
			assert.Equal(t, "bm25.ties-"+ties, f[5], line)
		}
		run, err := eval.ReadTRECRun(path, nil)
		require.NoError(t, err)
		assert.Len(t, run, 2)
	}
}

// TestEvalReportPathsRelative: reports record the paths of their inputs
// relative to the working directory, never the machine's absolute paths,
// even when the flags gave absolute ones.
func TestEvalReportPathsRelative(t *testing.T) {
	work := t.TempDir()
	beir := filepath.Join(work, "data", "col")
	require.NoError(t, os.MkdirAll(filepath.Dir(beir), 0o755))
	require.NoError(t, os.Rename(evalFixture(t), beir))
	t.Chdir(work)
	reportDir := filepath.Join(work, "report")
	_, _, err := runEvalCLI(t, "--beir", beir, "--label", "bm25", "--report", reportDir, "--json", filepath.Join(work, "r.json"))
	require.NoError(t, err)
	for _, f := range []string{"index.html", "summary.md", "results.json", "../r.json"} {
		raw, err := os.ReadFile(filepath.Join(reportDir, f))
		require.NoError(t, err)
		assert.NotContains(t, string(raw), work, "%s records an absolute path", f)
	}
	md, err := os.ReadFile(filepath.Join(reportDir, "summary.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), filepath.Join("data", "col", "bm25", "dev.top100.jsonl"))
}

func TestDisplayPath(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	parent := filepath.Dir(work)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"data/x.jsonl", filepath.Join("data", "x.jsonl")},
		{filepath.Join(work, "data", "x.jsonl"), filepath.Join("data", "x.jsonl")},
		{filepath.Join(parent, "shared", "data"), filepath.Join("..", "shared", "data")},
		{"../shared/data", filepath.Join("..", "shared", "data")},
	} {
		assert.Equal(t, tc.want, displayPath(tc.in), tc.in)
	}
}
