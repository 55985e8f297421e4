package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/eval"
)

// sampleResults builds two models over n queries, the second better on
// most of them.
func sampleResults(t *testing.T, n int) (*eval.Table, []Curve) {
	t.Helper()
	qrels := eval.Qrels{}
	base, model := eval.Run{}, eval.Run{}
	for i := 0; i < n; i++ {
		q := "q" + strconv.Itoa(i)
		qrels[q] = map[string]int{"r" + q: 1 + i%3, "s" + q: 1}
		var b, m []eval.ScoredDoc
		for j := 0; j < 30; j++ {
			b = append(b, eval.ScoredDoc{DocID: "n" + strconv.Itoa(j), Score: float64(100 - j)})
			m = append(m, eval.ScoredDoc{DocID: "n" + strconv.Itoa(j), Score: float64(100 - j)})
		}
		b = append(b, eval.ScoredDoc{DocID: "r" + q, Score: float64(100 - (i*7)%25)}, eval.ScoredDoc{DocID: "s" + q, Score: float64(80 - i%20)})
		m = append(m, eval.ScoredDoc{DocID: "r" + q, Score: float64(100 - (i*3)%9)}, eval.ScoredDoc{DocID: "s" + q, Score: float64(70 - i%20)})
		base[q], model[q] = b, m
	}
	ms, err := eval.ParseMetrics([]string{"ndcg@10", "mrr@10", "map@100", "recall@100"}, nil)
	require.NoError(t, err)
	rb, err := eval.Evaluate(base, qrels, ms, eval.TiesInputOrder)
	require.NoError(t, err)
	rm, err := eval.Evaluate(model, qrels, ms, eval.TiesInputOrder)
	require.NoError(t, err)
	res, err := eval.NewTable(ms, []eval.Evaluated{{Label: "bm25", Result: rb}, {Label: "fine-tuned", Result: rm}},
		"bm25", eval.CompareOptions{Permutations: 1000, Bootstrap: 1000})
	require.NoError(t, err)
	var curves []Curve
	for label, run := range map[string]eval.Run{"bm25": base, "fine-tuned": model} {
		c, err := NDCGCurve(label, run, qrels, DefaultCurveKs, eval.TiesInputOrder)
		require.NoError(t, err)
		curves = append(curves, c)
	}
	return res, curves
}

func TestWrite(t *testing.T) {
	res, curves := sampleResults(t, 40)
	training := []eval.TrainingRecord{}
	for s := 1; s <= 50; s++ {
		r := eval.TrainingRecord{Step: s * 10, Loss: 1 / float64(s), LearningRate: 2e-5 * float64(50-s) / 50, PairsPerSecond: 120}
		if s%10 == 0 {
			r.Dev = map[string]float64{"ndcg@10": 0.3 + float64(s)/500}
		}
		training = append(training, r)
	}
	dir := filepath.Join(t.TempDir(), "report")
	require.NoError(t, Write(dir, Report{
		Title:    "test <report>",
		Notes:    []string{"collection: synthetic"},
		Results:  res,
		Curves:   curves,
		Training: training,
	}))

	for _, name := range []string{"ndcg_at_k.png", "delta_fine-tuned.png", "training_loss.png", "training_lr.png", "training_dev.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.True(t, bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")), "%s is a PNG", name)
	}
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	assert.Equal(t, 5, bytes.Count(html, []byte(`src="data:image/png;base64,`)), "plots embedded")
	assert.Contains(t, string(html), "test &lt;report&gt;", "title escaped")
	assert.NotContains(t, string(html), `src="ndcg_at_k.png"`, "self-contained")

	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| fine-tuned | ndcg@10 |")
	assert.Contains(t, string(md), "![ndcg_at_k.png](ndcg_at_k.png)")

	var back eval.Table
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, res.Models[1].Metrics, back.Models[1].Metrics)
	assert.Len(t, back.Models[0].PerQuery, 40)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp-", "no temporary files left behind")
	}

	// Without curves, baseline or training log only the tables remain.
	dir2 := t.TempDir()
	require.NoError(t, Write(dir2, Report{Results: &eval.Table{Models: res.Models[:1]}}))
	html, err = os.ReadFile(filepath.Join(dir2, "index.html"))
	require.NoError(t, err)
	assert.NotContains(t, string(html), "<img")
	assert.Error(t, Write(dir2, Report{}))
}

// dirFiles reads every file of dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = b
	}
	return out
}

// TestWriteReplacesWhole: a report that fails half-way leaves the previous
// one as it was, a new report leaves no plot of an earlier one behind, and
// a directory holding other files is not touched.
func TestWriteReplacesWhole(t *testing.T) {
	res, curves := sampleResults(t, 20)
	training := []eval.TrainingRecord{{Step: 1, Loss: 2, LearningRate: 1e-5}, {Step: 2, Loss: 1, LearningRate: 2e-5}}
	dir := filepath.Join(t.TempDir(), "report")
	require.NoError(t, Write(dir, Report{Results: res, Curves: curves, Training: training}))
	first := dirFiles(t, dir)
	require.Contains(t, first, "training_loss.png")

	// results.json cannot hold a NaN: the write fails after the plots.
	bad := *res
	bad.Models = append([]eval.ModelResult(nil), res.Models...)
	bad.Models[1].Metrics = map[string]float64{"ndcg@10": math.NaN()}
	other := []Curve{{Label: "other", K: []int{1, 10}, Values: []float64{0.1, 0.2}}}
	require.Error(t, Write(dir, Report{Title: "second", Results: &bad, Curves: other}))
	assert.Equal(t, first, dirFiles(t, dir), "the failed report changed nothing")

	require.NoError(t, Write(dir, Report{Results: res}))
	assert.ElementsMatch(t, []string{"delta_fine-tuned.png", "index.html", "results.json", "summary.md"},
		slices.Collect(maps.Keys(dirFiles(t, dir))), "no plot of the first report is left")
	siblings, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, siblings, 1, "no temporary directory is left")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	before := dirFiles(t, dir)
	assert.ErrorContains(t, Write(dir, Report{Results: res}), "notes.txt")
	assert.Equal(t, before, dirFiles(t, dir))
}

// sampleRuns is sampleResults' data as runs, qrels and texts.
func sampleRuns(n int) (eval.Qrels, eval.Run, eval.Run, eval.Corpus, eval.Queries) {
	qrels, queries, corpus := eval.Qrels{}, eval.Queries{}, eval.Corpus{}
	base, model := eval.Run{}, eval.Run{}
	for i := 0; i < n; i++ {
		q := "q" + strconv.Itoa(i)
		queries[q] = "query <" + q + ">"
		qrels[q] = map[string]int{"r" + q: 1 + i%3}
		var b, m []eval.ScoredDoc
		for j := 0; j < 20; j++ {
			d := "n" + strconv.Itoa(j)
			corpus[d] = eval.Doc{ID: d, Title: "Title " + d, Text: "text of " + d}
			b = append(b, eval.ScoredDoc{DocID: d, Score: float64(100 - j)})
			m = append(m, eval.ScoredDoc{DocID: d, Score: float64(100 - j)})
		}
		corpus["r"+q] = eval.Doc{ID: "r" + q, Text: "the relevant one"}
		b = append(b, eval.ScoredDoc{DocID: "r" + q, Score: float64(100-(i*7)%15) - 0.5})
		m = append(m, eval.ScoredDoc{DocID: "r" + q, Score: float64(100-(i*3)%9) - 0.5})
		base[q], model[q] = b, m
	}
	return qrels, base, model, corpus, queries
}

// sampleDataset evaluates sampleRuns into a table with the model's
// latency, and its examples.
func sampleDataset(t *testing.T, n int) (*eval.Table, []eval.Examples) {
	t.Helper()
	qrels, base, model, corpus, queries := sampleRuns(n)
	ms, err := eval.ParseMetrics([]string{"ndcg@10", "mrr@10"}, nil)
	require.NoError(t, err)
	rb, err := eval.Evaluate(base, qrels, ms, eval.TiesInputOrder)
	require.NoError(t, err)
	rm, err := eval.Evaluate(model, qrels, ms, eval.TiesInputOrder)
	require.NoError(t, err)
	tab, err := eval.NewTable(ms, []eval.Evaluated{{Label: "bm25", Result: rb}, {Label: "fine-tuned", Result: rm}},
		"bm25", eval.CompareOptions{Permutations: 100, Bootstrap: 100})
	require.NoError(t, err)
	require.True(t, tab.SetLatency("fine-tuned", &eval.Latency{Depth: 21, Queries: n, Pairs: 21 * n, Seconds: 0.5}))
	ex := eval.NewExamples(eval.ExampleInput{
		Metric: "ndcg@10", BaselineLabel: "bm25", ModelLabel: "fine-tuned", Baseline: base, Model: model,
		BaselineValues: rb.Values("ndcg@10"), ModelValues: rm.Values("ndcg@10"),
		Qrels: qrels, Queries: queries, Corpus: corpus,
	}, eval.ExampleOptions{N: 2})
	return tab, []eval.Examples{ex}
}

func TestWriteExamplesAndLatency(t *testing.T) {
	tab, ex := sampleDataset(t, 12)
	require.NotEmpty(t, ex[0].Gains)
	require.NotEmpty(t, ex[0].Losses)
	dir := filepath.Join(t.TempDir(), "report")
	require.NoError(t, Write(dir, Report{Results: tab, Examples: ex}))
	files := dirFiles(t, dir)
	require.Contains(t, files, "rankshift_fine-tuned.png")
	assert.True(t, bytes.HasPrefix(files["rankshift_fine-tuned.png"], []byte("\x89PNG")))

	html := string(files["index.html"])
	for _, want := range []string{
		"Examples: fine-tuned against bm25, by ndcg@10", "Largest gains", "Largest losses",
		"query &lt;" + ex[0].Gains[0].QID + "&gt;", // escaped query text
		`<td class="lab rel">rel `, "Title n0", "<th>ms/query</th>", ">41.7<", ">504<", "no rerank cost",
	} {
		assert.Contains(t, html, want)
	}
	assert.Equal(t, 2, strings.Count(html, `src="data:image/png;base64,`), "delta and rank-shift plots embedded")
	assert.NotContains(t, html, "Summary", "one dataset: no summary")

	md := string(files["summary.md"])
	for _, want := range []string{
		"## Examples: fine-tuned against bm25, by ndcg@10", "### Largest gains", "| # | label | move | bm25 | label | move | fine-tuned |",
		"**Title n0** text of n0 `n0`", "![rankshift_fine-tuned.png](rankshift_fine-tuned.png)",
		"| model | ndcg@10 | mrr@10 | ms/query | pairs/s |", "| fine-tuned | ", " | 41.7 | 504 |", "| bm25 | ",
	} {
		assert.Contains(t, md, want)
	}
	assert.Contains(t, md, "| bm25 | "+fmt.Sprintf("%.4f | %.4f |  |  |", tab.Models[0].Metrics["ndcg@10"], tab.Models[0].Metrics["mrr@10"]), "BM25: empty latency cells")
}

func TestWriteDatasets(t *testing.T) {
	x, exX := sampleDataset(t, 12)
	y, _ := sampleDataset(t, 5)
	y.Models[1].Metrics = map[string]float64{"ndcg@10": 0.25, "mrr@10": 0.5}
	dir := filepath.Join(t.TempDir(), "report")
	require.NoError(t, Write(dir, Report{
		Title:    "two datasets",
		Results:  x, // stands for the pooled table
		Datasets: []Dataset{{Name: "x", Results: x, Examples: exX}, {Name: "y/z", Notes: []string{"note of y"}, Results: y}},
	}))
	files := dirFiles(t, dir)
	for _, f := range []string{"results.json", "results_x.json", "results_y_z.json", "x_delta_fine-tuned.png", "x_rankshift_fine-tuned.png", "y_z_delta_fine-tuned.png"} {
		assert.Contains(t, files, f)
	}
	md := string(files["summary.md"])
	macro := (x.Models[1].Metrics["ndcg@10"] + 0.25) / 2
	for _, want := range []string{
		"## Summary", "### ndcg@10", "### mrr@10", "| dataset | queries | bm25 | fine-tuned |",
		fmt.Sprintf("| **macro average** |  | %.4f | %.4f |", (x.Models[0].Metrics["ndcg@10"]+y.Models[0].Metrics["ndcg@10"])/2, macro),
		"| y/z | 5 | ", "| ms/query | |  | 58.8 |", "| pairs/s | |  | 357 |", "## All queries pooled", "## Dataset x", "## Dataset y/z", "- note of y",
		"### Examples: fine-tuned against bm25",
	} {
		assert.Contains(t, md, want)
	}
	assert.Equal(t, 1, strings.Count(md, "| ms/query | |"), "latency rows once, under the primary metric")
	html := string(files["index.html"])
	assert.Contains(t, html, "<h2>Summary</h2>")
	assert.Contains(t, html, "<h2>Dataset y/z</h2>")
	assert.Contains(t, html, `<tr class="avg"><td>macro average</td>`)

	var back eval.Table
	require.NoError(t, json.Unmarshal(files["results_y_z.json"], &back))
	assert.Len(t, back.Models[0].PerQuery, 5)
	assert.Equal(t, 0.5, back.Models[1].Latency.Seconds)

	assert.ErrorContains(t, Write(t.TempDir(), Report{Datasets: []Dataset{{Name: "bad"}}}), `dataset "bad" has no results`)
}
