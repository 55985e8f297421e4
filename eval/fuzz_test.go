package eval

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fuzz targets check that no input makes a parser panic, that errors
// name the input, and that accepted input satisfies the readers' promises.
// Under plain `go test` they run on their seed corpus.

func FuzzParseQrels(f *testing.F) {
	for _, s := range []string{
		"query-id\tcorpus-id\tscore\n1\t184\t3\n1\t29\t2\n",
		"q1 0 d1 1\nq1 0 d2 0\n",
		"q1\td1\t-1\r\n",
		"q1\td1\tx\n",
		"q1\td1\n",
		"\n\n\t\t\n",
		"a\tb\t99999999999999999999\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseQrels(bytes.NewReader(data), "fuzz.tsv")
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.tsv:")
			return
		}
		for qid, docs := range q {
			require.NotEmpty(t, qid)
			for d := range docs {
				require.NotEmpty(t, d)
			}
		}
	})
}

func FuzzParseTRECRun(f *testing.F) {
	for _, s := range []string{
		"1 Q0 51 1 12.5 bm25\n1 Q0 486 2 11 bm25\n",
		"q Q0 d 1 NaN x\n",
		"q Q0 d 1 1e400 x\n",
		"q Q0 d one 1 x\n",
		"q Q0 d 1 1 x\nq Q0 d 2 1 x\n",
		"q Q0 d 1 -inf x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		run, err := ParseTRECRun(bytes.NewReader(data), "fuzz.run", func(id string) bool { return id != "unknown" })
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.run:")
			return
		}
		res, err := Evaluate(run, Qrels{"q": {"d": 1}}, DefaultMetrics, TiesTrecEval)
		require.NoError(t, err, "accepted runs have unique documents per query")
		for _, v := range res.Mean {
			require.False(t, v != v, "NaN metric")
			require.GreaterOrEqual(t, v, 0.0)
			require.LessOrEqual(t, v, 1.0)
		}
		var b bytes.Buffer
		require.NoError(t, FormatTRECRun(&b, run, "x", TiesTrecEval))
		back, err := ParseTRECRun(&b, "again", nil)
		require.NoError(t, err)
		for q, docs := range run {
			require.ElementsMatch(t, docs, back[q], "round trip")
		}
	})
}

func FuzzParseCandidates(f *testing.F) {
	for _, s := range []string{
		`{"qid": "1", "query": "what", "doc_ids": ["51", "486"], "bm25_scores": [12.5, 11.0]}` + "\n",
		`{"qid": "1", "doc_ids": ["a"], "scores": [1]}`,
		`{"qid": "1", "doc_ids": ["a", "a"]}`,
		`{"qid": 1}`,
		`{"qid": "1", "doc_ids": ["a"], "bm25_scores": []}`,
		`{"qid": "1"} {"qid": "2"}`,
		"[1,2]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cands, err := ParseCandidates(bytes.NewReader(data), "fuzz.jsonl", nil)
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.jsonl:")
			return
		}
		for _, c := range cands {
			require.NotEmpty(t, c.QID)
			if c.Scores != nil {
				require.Len(t, c.Scores, len(c.DocIDs))
			}
		}
	})
}

func FuzzParseFlagEmbedding(f *testing.F) {
	for _, s := range []string{
		`{"query": "q", "pos": ["a"], "neg": ["b", "c"]}` + "\n",
		`{"query": "q", "pos": ["a"], "neg": ["b"], "qid": "7", "pos_ids": ["x"], "neg_ids": ["y"]}`,
		`{"query": "q", "pos": ["a"], "neg": ["b"], "pos_ids": ["x"], "neg_ids": ["x"]}`,
		`{"query": "q", "pos": ["a"], "neg": [], "pos_scores": [1], "neg_scores": []}`,
		`{"pos": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cands, qrels, err := ParseFlagEmbedding(bytes.NewReader(data), "fuzz.jsonl")
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.jsonl:")
			return
		}
		for _, c := range cands {
			require.Len(t, c.Passages, len(c.DocIDs))
			require.Len(t, qrels[c.QID], len(c.DocIDs))
		}
	})
}

func FuzzParseTrainingLog(f *testing.F) {
	for _, s := range []string{
		`{"step": 1, "loss": 0.5, "learning_rate": 1e-5, "pairs_per_second": 10, "ndcg@10": 0.3}`,
		`{"step": 1.5}`,
		`{"loss": 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseTrainingLog(bytes.NewReader(data), "fuzz.jsonl")
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.jsonl:")
			return
		}
		for i := 1; i < len(recs); i++ {
			require.LessOrEqual(t, recs[i-1].Step, recs[i].Step)
		}
	})
}
