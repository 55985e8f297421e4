// Package eval measures rerankers the way trec_eval does and compares them
// with significance tests.
//
// It reads BEIR collections (corpus.jsonl, queries.jsonl, qrels/<split>.tsv),
// first-stage candidates (TREC run files, candidate JSONL as written by the
// BM25 step, or FlagEmbedding query/pos/neg JSONL), reranks candidates with
// any Scorer, computes per-query and mean metrics, compares runs pairwise
// (paired randomization test, bootstrap confidence interval, win/tie/loss),
// and writes TREC runs, JSON results and plain-text tables. The HTML and
// Markdown report with plots is package eval/report, so that a program
// that only computes metrics links no plotting.
//
// # Metric definitions
//
// The metrics follow trec_eval 10.0 (and so pytrec_eval) exactly:
//
//   - Ranking: a query's documents are sorted by score, descending. Equal
//     scores are ordered by a TieBreak: TiesInputOrder (the default) keeps
//     the order of the input (first-stage rank for candidate lists), which
//     is the protocol of the shared collections and how their
//     bm25/*.metrics.json were computed; TiesTrecEval orders them by
//     document id in descending byte order, exactly as trec_eval's
//     comp_sim_docno does. The rank column of a TREC run is ignored, as
//     trec_eval ignores it. A document id may occur once per query.
//   - A document is relevant when its qrels label is >= 1 (trec_eval's
//     default relevance level). Documents absent from the qrels have label 0.
//   - ndcg@k: sum over ranks i <= k of label/log2(i+1) (labels <= 0 add
//     nothing), divided by the same sum over the query's positive labels
//     sorted descending (all judged documents, not only retrieved ones);
//     0 when the query has no positive label (trec_eval ndcg_cut).
//   - mrr@k: 1/rank of the first relevant document at rank <= k, else 0.
//   - map@k: sum over relevant documents at rank i <= k of precision@i,
//     divided by the number of relevant documents of the query, R
//     (trec_eval map_cut); 0 when R = 0.
//   - recall@k: relevant documents at rank <= k divided by R; 0 when R = 0.
//   - p@k: relevant documents at rank <= k divided by k, also when fewer
//     than k documents were retrieved (trec_eval P).
//
// Means are taken over every query of the qrels that has at least one
// judgment line; a judged query that is missing from the run scores 0 on
// every metric (trec_eval -c). Queries of the run that have no judgments
// are ignored.
//
// # Reranking and comparisons
//
// Rerank drives any Scorer (the model engine, or a test fake) over the top
// k candidates of each query and returns a Run; WriteTRECRun stores it for
// trec_eval or ranx. Compare and CompareResults pair two runs' per-query
// values: mean difference, a two-sided paired randomization test (seeded;
// exact over all sign flips for small query sets), a percentile bootstrap
// confidence interval and win/tie/loss counts. WriteTable and WriteJSON
// (and report.Write) present the outcome. RerankOptions.Latency times the
// scoring (ms/query at the rerank depth, pairs/s). NewExamples picks the
// queries of largest gain and loss of one run against another
// (PickExamples) and lays out both rankings for the report. Several
// datasets: FindDatasets resolves BEIR directories (or a directory of
// them), PoolResults merges a run's results over datasets with query ids
// prefixed by dataset, and Summarize builds the BEIR-style table of one
// metric (datasets as rows, models as columns, macro average); `rerank eval` (cmd/rerank/eval.go) is
// the command line over this package.
package eval
