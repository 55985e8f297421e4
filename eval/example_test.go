package eval_test

import (
	"fmt"
	"log"
	"os"

	"github.com/rerank-go/rerank/eval"
)

// Metrics of runs held in memory, and a table comparing them.
func Example() {
	qrels := eval.Qrels{"q1": {"d1": 1}, "q2": {"d4": 2, "d5": 1}}
	bm25 := eval.Run{
		"q1": {{DocID: "d2", Score: 9}, {DocID: "d1", Score: 8}, {DocID: "d3", Score: 7}},
		"q2": {{DocID: "d6", Score: 5}, {DocID: "d5", Score: 4}, {DocID: "d4", Score: 3}},
	}
	reranked := eval.Run{
		"q1": {{DocID: "d1", Score: 0.9}, {DocID: "d2", Score: 0.2}, {DocID: "d3", Score: 0.1}},
		"q2": {{DocID: "d4", Score: 0.8}, {DocID: "d5", Score: 0.7}, {DocID: "d6", Score: 0.1}},
	}
	metrics := []eval.Metric{{Measure: eval.NDCG, K: 10}, {Measure: eval.MRR, K: 10}}
	var runs []eval.Evaluated
	for _, r := range []struct {
		label string
		run   eval.Run
	}{{"bm25", bm25}, {"reranked", reranked}} {
		res, err := eval.Evaluate(r.run, qrels, metrics, eval.TiesInputOrder)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: mrr@10 %.3f\n", r.label, res.MeanOf(eval.Metric{Measure: eval.MRR, K: 10}))
		runs = append(runs, eval.Evaluated{Label: r.label, Result: res})
	}

	table, err := eval.NewTable(metrics, runs, "", eval.CompareOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := eval.WriteTable(os.Stdout, table); err != nil {
		log.Fatal(err)
	}
	// Output:
	// bm25: mrr@10 0.500
	// reranked: mrr@10 1.000
	// model        ndcg@10      mrr@10
	// bm25          0.6254      0.5000
	// reranked      1.0000      1.0000
}
