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
	return runCmd(t, newEvalCommand(), args...)
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

// fakeScorers replaces newScorer for one test and records its calls.
func fakeScorers(t *testing.T) *[]string {
	t.Helper()
	var calls []string
	prev := newScorer
	newScorer = func(model, adapter string, opts scorerOptions) (eval.Scorer, error) {
		calls = append(calls, model+"|"+adapter)
		return overlapScorer{}, nil
	}
	t.Cleanup(func() { newScorer = prev })
	return &calls
}

func readResults(t *testing.T, path string) eval.Results {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var r eval.Results
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
	calls := fakeScorers(t)
	tmp := t.TempDir()
	out, reportDir, runsDir := filepath.Join(tmp, "r.json"), filepath.Join(tmp, "report"), filepath.Join(tmp, "runs")
	log := filepath.Join(tmp, "metrics.jsonl")
	require.NoError(t, os.WriteFile(log, []byte(`{"step":1,"loss":0.7,"learning_rate":1e-5,"pairs_per_second":50}`+"\n"+
		`{"step":2,"loss":0.5,"learning_rate":1e-5,"pairs_per_second":50,"ndcg@10":0.4}`+"\n"), 0o644))
	stdout, _, err := runEvalCLI(t, "--beir", dir, "--candidates", filepath.Join(dir, "bm25", "dev.top100.jsonl"),
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
	}
	// The overlap scorer puts d2 first for q1 (top 2 reranked: d1=0, d2=2).
	assert.Equal(t, 1.0, r.Models[1].PerQuery["q1"]["mrr@10"])

	for _, f := range []string{"index.html", "summary.md", "results.json", "ndcg_at_k.png", "delta_candidates.png", "delta_base_lora-7.png", "training_loss.png", "training_dev.png"} {
		assert.FileExists(t, filepath.Join(reportDir, f))
	}
	run, err := eval.ReadTRECRun(filepath.Join(runsDir, "base+lora-7.run"), nil)
	require.NoError(t, err)
	assert.Len(t, run["q1"], 3, "reranked top 2 plus the tail")

	// The written run can be evaluated again with --run.
	out2 := filepath.Join(tmp, "r2.json")
	_, _, err = runEvalCLI(t, "--beir", dir, "--candidates", filepath.Join(dir, "bm25", "dev.top100.jsonl"),
		"--run", "again="+filepath.Join(runsDir, "base.run"), "--json", out2)
	require.NoError(t, err)
	r2 := readResults(t, out2)
	require.Len(t, r2.Models, 2)
	assert.Equal(t, r.Models[1].Metrics, r2.Models[1].Metrics)
	assert.Equal(t, "candidates", r2.Baseline)
}

func TestEvalFlagEmbeddingCandidates(t *testing.T) {
	dir := evalFixture(t)
	fakeScorers(t)
	out := filepath.Join(t.TempDir(), "r.json")
	_, _, err := runEvalCLI(t, "--candidates", filepath.Join(dir, "flag.jsonl"), "--model", "m", "--json", out, "-q")
	require.NoError(t, err)
	r := readResults(t, out)
	require.Len(t, r.Models, 1, "no first-stage scores: only the model")
	assert.Equal(t, 1.0, r.Models[0].Metrics["mrr@10"], "judgments and passages come from the file")
	assert.Len(t, r.Models[0].PerQuery, 2)

	_, _, err = runEvalCLI(t, "--candidates", filepath.Join(dir, "flag.jsonl"))
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
		{"no judgments", []string{"--candidates", cand}, "no judgments"},
		{"corpus given as candidates", []string{"--beir", dir, "--qrels", filepath.Join(dir, "qrels", "dev.tsv"), "--candidates", filepath.Join(dir, "corpus.jsonl")}, "neither \"doc_ids\""},
		{"stray argument", append(base, "extra"), "unexpected arguments"},
		{"missing candidates flag", []string{"--beir", dir}, "candidates"},
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
