package eval

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rerank-go/rerank/internal/testdir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// tinyBEIR writes a small BEIR directory and returns it.
func tinyBEIR(t *testing.T) string {
	t.Helper()
	files := map[string]string{
		"corpus.jsonl": `{"_id": "d1", "title": "Wing", "text": "lift of a wing"}
{"_id": "d2", "title": "", "text": "  heat transfer  "}
{"_id": "d3", "title": "Shock", "text": ""}
`,
		"queries.jsonl":  `{"_id": "q1", "text": "wing lift"}` + "\n" + `{"_id": "q2", "text": "heat"}` + "\n",
		"qrels/dev.tsv":  "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td2\t1\n",
		"qrels/bad.tsv":  "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td2\tx\n",
		"qrels/dup.tsv":  "q1\td1\t1\nq1\td1\t2\n",
		"qrels/trec.txt": "q1 0 d1 2\nq2 0 d2 1\n",
	}
	return testdir.Write(t, files)
}

func TestLoadBEIR(t *testing.T) {
	dir := tinyBEIR(t)
	c, err := LoadBEIR(dir, "dev")
	require.NoError(t, err)
	assert.Equal(t, "Wing lift of a wing", c.Corpus["d1"].Passage())
	assert.Equal(t, "heat transfer", c.Corpus["d2"].Passage(), "empty title: stripped")
	assert.Equal(t, "Shock", c.Corpus["d3"].Passage())
	assert.Equal(t, "heat", c.Queries["q2"])
	assert.Equal(t, Qrels{"q1": {"d1": 2}, "q2": {"d2": 1}}, c.Qrels)
	assert.Equal(t, 1, c.Qrels.NumRelevant("q1"))

	q, err := ReadQrels(filepath.Join(dir, "qrels", "trec.txt"))
	require.NoError(t, err)
	assert.Equal(t, c.Qrels, q, "TREC qrels format")
}

func TestReaderErrorsNameFileAndLine(t *testing.T) {
	dir := tinyBEIR(t)
	known := func(id string) bool { return id == "d1" || id == "d2" }
	tests := []struct {
		name string
		read func() error
		want string
	}{
		{"missing qrels file", func() error { _, err := LoadBEIR(dir, "test"); return err },
			filepath.Join(dir, "qrels", "test.tsv")},
		{"bad TSV label", func() error { _, err := ReadQrels(filepath.Join(dir, "qrels", "bad.tsv")); return err },
			filepath.Join(dir, "qrels", "bad.tsv") + `:3: relevance label "x" is not an integer`},
		{"duplicate judgment", func() error { _, err := ReadQrels(filepath.Join(dir, "qrels", "dup.tsv")); return err },
			"dup.tsv:2: duplicate judgment"},
		{"TSV field count", func() error { _, err := ReadQrels(writeTemp(t, "q.tsv", "q1\td1\t1\nq1 d2\n")); return err },
			"q.tsv:2: 2 fields"},
		{"run field count", func() error {
			_, err := ReadTRECRun(writeTemp(t, "r.run", "q1 Q0 d1 1 2.5 x\nq1 Q0 d2 2 1.5\n"), nil)
			return err
		}, "r.run:2: 5 fields, expected 6"},
		{"run bad score", func() error {
			_, err := ReadTRECRun(writeTemp(t, "r.run", "q1 Q0 d1 1 high x\n"), nil)
			return err
		}, `r.run:1: score "high" is not a number`},
		{"run unknown doc", func() error {
			_, err := ReadTRECRun(writeTemp(t, "r.run", "q1 Q0 d1 1 2 x\n\nq1 Q0 d9 2 1 x\n"), known)
			return err
		}, `r.run:3: unknown document id "d9"`},
		{"run duplicate doc", func() error {
			_, err := ReadTRECRun(writeTemp(t, "r.run", "q1 Q0 d1 1 2 x\nq1 Q0 d1 2 1 x\n"), nil)
			return err
		}, `r.run:2: document "d1" listed twice for query "q1" (first at line 1)`},
		{"candidates bad JSON", func() error {
			_, err := ReadCandidates(writeTemp(t, "c.jsonl", `{"qid":"q1","doc_ids":["d1"]}`+"\n{oops\n"), nil)
			return err
		}, "c.jsonl:2: invalid JSON"},
		{"candidates unknown doc", func() error {
			_, err := ReadCandidates(writeTemp(t, "c.jsonl", `{"qid":"q1","doc_ids":["d1","zz"]}`+"\n"), known)
			return err
		}, `c.jsonl:1: query "q1": unknown document id "zz"`},
		{"candidates score count", func() error {
			_, err := ReadCandidates(writeTemp(t, "c.jsonl", `{"qid":"q1","doc_ids":["d1","d2"],"bm25_scores":[1]}`+"\n"), nil)
			return err
		}, "c.jsonl:1: query \"q1\" has 2 doc_ids but 1 scores"},
		{"candidates numeric qid", func() error {
			_, err := ReadCandidates(writeTemp(t, "c.jsonl", `{"qid":1,"doc_ids":[]}`+"\n"), nil)
			return err
		}, "c.jsonl:1: invalid JSON"},
		// Issue 19 §6: where trec_eval would read these differently, fail.
		{"run score with underscores", func() error {
			_, err := ReadTRECRun(writeTemp(t, "r.run", "q1 Q0 d1 1 1_000 x\n"), nil)
			return err
		}, `r.run:1: score "1_000" is not a number`},
		{"TREC qrels first line not an integer", func() error {
			_, err := ReadQrels(writeTemp(t, "q.trec", "q1 0 d1 1.5\nq1 0 d2 1\n"))
			return err
		}, `q.trec:1: relevance label "1.5" is not an integer`},
		{"TSV qrels first label a number", func() error {
			_, err := ReadQrels(writeTemp(t, "q.tsv", "q1\td1\t2.0\nq1\td2\t1\n"))
			return err
		}, `q.tsv:1: relevance label "2.0" is not an integer`},
		{"candidates null score", func() error {
			_, err := ReadCandidates(writeTemp(t, "c.jsonl", `{"qid":"q1","doc_ids":["d1","d2"],"bm25_scores":[1,null]}`+"\n"), nil)
			return err
		}, `c.jsonl:1: query "q1": bm25_scores[1] is null`},
		{"flag missing query", func() error {
			_, _, err := ReadFlagEmbedding(writeTemp(t, "f.jsonl", `{"pos":["a"],"neg":[]}`+"\n"))
			return err
		}, `f.jsonl:1: missing "query"`},
		{"corpus missing id", func() error {
			_, err := ReadCorpus(writeTemp(t, "corpus.jsonl", `{"title":"t","text":"x"}`))
			return err
		},
			`corpus.jsonl:1: missing or empty "_id"`},
		{"queries duplicate", func() error {
			_, err := ReadQueries(writeTemp(t, "queries.jsonl", `{"_id":"1","text":"a"}`+"\n"+`{"_id":"1","text":"b"}`))
			return err
		}, `queries.jsonl:2: duplicate query id "1"`},
		{"training log without step", func() error {
			_, err := ReadTrainingLog(writeTemp(t, "m.jsonl", `{"step":1,"loss":2}`+"\n"+`{"loss":1}`))
			return err
		}, `m.jsonl:2: missing or non-integer "step"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTRECRunRoundTrip(t *testing.T) {
	run := Run{
		"q2": {{"d1", 0.1}, {"d2", 1.0 / 3}},
		"q1": {{"a", -2.5e-7}, {"b", 7}, {"c", 7}},
	}
	p := filepath.Join(t.TempDir(), "x.run")
	require.NoError(t, WriteTRECRun(p, run, "my run", TiesInputOrder))
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "q1 Q0 b 1 7 my_run\nq1 Q0 c 2 7 my_run\nq1 Q0 a 3 -2.5e-07 my_run\n"+
		"q2 Q0 d2 1 0.3333333333333333 my_run\nq2 Q0 d1 2 0.1 my_run\n", string(raw))
	back, err := ReadTRECRun(p, nil)
	require.NoError(t, err)
	for q, docs := range run {
		assert.ElementsMatch(t, docs, back[q])
	}
	// Candidates from a run keep the ranking.
	c := CandidatesFromRun(back, TiesInputOrder)
	require.Len(t, c, 2)
	assert.Equal(t, Candidate{QID: "q1", DocIDs: []string{"b", "c", "a"}, Scores: []float64{7, 7, -2.5e-7}}, c[0])
}

func TestReadCandidateFileFormats(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write([]byte(`{"query":"what","pos":["p0","p1"],"neg":["n0"],"qid":"7","pos_ids":["a","b"],"neg_ids":["c"]}` + "\n" +
		`{"query":"who","pos":["x"],"neg":["y","z"],"pos_scores":[1],"neg_scores":[0.5,2]}` + "\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	flagPath := filepath.Join(t.TempDir(), "train.jsonl.gz")
	require.NoError(t, os.WriteFile(flagPath, gz.Bytes(), 0o644))

	tests := []struct {
		name      string
		path      string
		format    CandidateFormat
		want      []Candidate
		wantQrels Qrels
	}{
		{"jsonl", writeTemp(t, "c.jsonl", "\n"+`{"qid":"q1","query":"wing","doc_ids":["d2","d1"],"bm25_scores":[3.5,1]}`+"\n"), FormatAuto,
			[]Candidate{{QID: "q1", Query: "wing", DocIDs: []string{"d2", "d1"}, Scores: []float64{3.5, 1}}}, nil},
		{"jsonl without scores", writeTemp(t, "c.jsonl", `{"qid":"q1","doc_ids":["d2"]}`), FormatJSONL,
			[]Candidate{{QID: "q1", DocIDs: []string{"d2"}}}, nil},
		{"trec", writeTemp(t, "c.run", "q1 Q0 d1 2 1.0 bm25\nq1 Q0 d2 1 3.5 bm25\n"), FormatAuto,
			[]Candidate{{QID: "q1", DocIDs: []string{"d2", "d1"}, Scores: []float64{3.5, 1}}}, nil},
		{"flagembedding gz", flagPath, FormatAuto,
			[]Candidate{
				{QID: "7", Query: "what", DocIDs: []string{"a", "b", "c"}, Passages: []string{"p0", "p1", "n0"}},
				{QID: "2", Query: "who", DocIDs: []string{"pos-0", "neg-0", "neg-1"}, Passages: []string{"x", "y", "z"}, Scores: []float64{1, 0.5, 2}},
			},
			Qrels{"7": {"a": 1, "b": 1, "c": 0}, "2": {"pos-0": 1, "neg-0": 0, "neg-1": 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, q, err := ReadCandidateFile(tc.path, tc.format, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, c)
			assert.Equal(t, tc.wantQrels, q)
		})
	}

	_, _, err = ReadCandidateFile(writeTemp(t, "c.jsonl", `{"id":"q"}`), FormatAuto, nil)
	assert.ErrorContains(t, err, `c.jsonl:1: JSON line has neither "doc_ids"`)
	_, _, err = ReadCandidateFile("/nonexistent/c.jsonl", FormatAuto, nil)
	assert.ErrorContains(t, err, "/nonexistent/c.jsonl")

	cands, _, err := ReadCandidateFile(flagPath, FormatFlagEmbedding, nil)
	require.NoError(t, err)
	_, err = RunFromCandidates(cands)
	assert.ErrorContains(t, err, `query "7": the candidates have no scores`)
}

func TestReadTrainingLog(t *testing.T) {
	p := writeTemp(t, "metrics.jsonl", strings.Join([]string{
		`{"step": 20, "loss": 0.5, "learning_rate": 1e-5, "pairs_per_second": 100, "epoch": 1}`,
		`{"step": 10, "loss": 0.9, "lr": 2e-5}`,
		`{"step": 20, "ndcg@10": 0.41, "dev_mrr@10": 0.5, "split": "dev"}`,
	}, "\n"))
	recs, err := ReadTrainingLog(p)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, 10, recs[0].Step)
	assert.Equal(t, 2e-5, recs[0].LearningRate)
	assert.Equal(t, 100.0, recs[1].PairsPerSecond)
	assert.Nil(t, recs[1].Dev)
	assert.True(t, recs[2].Loss != recs[2].Loss, "missing loss is NaN")
	assert.Equal(t, map[string]float64{"ndcg@10": 0.41, "dev_mrr@10": 0.5}, recs[2].Dev)
}
