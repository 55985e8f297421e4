package report_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/eval/report"
)

// A report directory for two runs: tables, an nDCG@k plot per model and
// the per-query differences from the baseline.
func Example() {
	qrels := eval.Qrels{"q1": {"d1": 1}, "q2": {"d4": 2, "d5": 1}}
	runs := map[string]eval.Run{
		"bm25":     {"q1": {{DocID: "d2", Score: 9}, {DocID: "d1", Score: 8}}, "q2": {{DocID: "d5", Score: 4}, {DocID: "d4", Score: 3}}},
		"reranked": {"q1": {{DocID: "d1", Score: 0.9}, {DocID: "d2", Score: 0.2}}, "q2": {{DocID: "d4", Score: 0.8}, {DocID: "d5", Score: 0.7}}},
	}
	var evaluated []eval.Evaluated
	var curves []report.Curve
	for _, label := range []string{"bm25", "reranked"} {
		res, err := eval.Evaluate(runs[label], qrels, eval.DefaultMetrics, eval.TiesInputOrder)
		if err != nil {
			log.Fatal(err)
		}
		evaluated = append(evaluated, eval.Evaluated{Label: label, Result: res})
		c, err := report.NDCGCurve(label, runs[label], qrels, report.DefaultCurveKs, eval.TiesInputOrder)
		if err != nil {
			log.Fatal(err)
		}
		curves = append(curves, c)
	}
	table, err := eval.NewTable(eval.DefaultMetrics, evaluated, "bm25", eval.CompareOptions{Permutations: 100, Bootstrap: 100})
	if err != nil {
		log.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := report.Write(filepath.Join(dir, "report"), report.Report{Title: "bm25 vs reranked", Results: table, Curves: curves}); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "report"))
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// delta_reranked.png
	// index.html
	// ndcg_at_k.png
	// results.json
	// summary.md
}
