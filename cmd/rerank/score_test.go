package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/eval"
)

// tinyModel makes a random tiny BERT cross-encoder directory.
func tinyModel(t *testing.T) string {
	t.Helper()
	model := filepath.Join(t.TempDir(), "tiny")
	_, _, err := runTrainCLI(t, "init", "--preset", "tiny", "--tokenizer", bundledTokenizer, "--output", model, "--seed", "3")
	require.NoError(t, err)
	return model
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestScoreJSONL: both input forms, scores in input order with the bits
// of the library call, raw and with the sigmoid.
func TestScoreJSONL(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"id":"a","query":"wing lift","passages":["lift of a wing","nothing at all","", "heat transfer in slabs"]}
{"query":"heat","passage":"heat transfer"}

{"id":7,"query":"empty list","passages":[]}
`), 0o644))
	m, err := crossencoder.Load(cpu.New(), model, crossencoder.Options{MaxLen: 64})
	require.NoError(t, err)
	want1, err := m.Rerank(context.Background(), "wing lift", []string{"lift of a wing", "nothing at all", "", "heat transfer in slabs"})
	require.NoError(t, err)
	want2, err := m.Rerank(context.Background(), "heat", []string{"heat transfer"})
	require.NoError(t, err)
	for _, act := range []string{"none", "sigmoid"} {
		out := filepath.Join(dir, act+".jsonl")
		_, _, err := runTrainCLI(t, "score", "-q", "--model", model, "--max-len", "64", "--input", in, "--output", out, "--activation", act)
		require.NoError(t, err)
		lines := readLines(t, out)
		require.Len(t, lines, 3)
		var l1 struct {
			ID     string    `json:"id"`
			Scores []float32 `json:"scores"`
		}
		var l2 struct{ Score float32 }
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &l1))
		require.NoError(t, json.Unmarshal([]byte(lines[1]), &l2))
		assert.Equal(t, `{"id":7,"scores":[]}`, lines[2])
		w1, w2 := append([]float32(nil), want1...), want2[0]
		if act == "sigmoid" {
			for i := range w1 {
				w1[i] = crossencoder.Sigmoid(w1[i])
			}
			w2 = crossencoder.Sigmoid(w2)
		}
		assert.Equal(t, "a", l1.ID)
		assert.Equal(t, w1, l1.Scores)
		assert.Equal(t, w2, l2.Score)
	}
}

// TestScoreMaxLenAbovePositions: --max-len above the model's position
// table scores as the table's length does (sentence-transformers caps it
// too), and says so on stderr.
func TestScoreMaxLenAbovePositions(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"query":"wing lift","passage":"`+strings.Repeat("lift of a wing ", 400)+`"}`+"\n"), 0o644))
	score := func(maxLen string) (string, string) {
		out := filepath.Join(dir, maxLen+".jsonl")
		_, stderr, err := runTrainCLI(t, "score", "-q", "--model", model, "--max-len", maxLen, "--input", in, "--output", out)
		require.NoError(t, err)
		return readLines(t, out)[0], stderr
	}
	capped, note := score("100000")
	exact, none := score("512")
	assert.Equal(t, exact, capped)
	assert.Contains(t, note, "takes at most 512 tokens (its position table): --max-len 100000 is capped to 512")
	assert.NotContains(t, none, "capped")
}

// TestScoreMatchesEvalRuns: `rerank score --format trec` writes the run
// `rerank eval --runs` writes for the same model and candidates, to the
// bit, for every judged query, and scores the unjudged ones too; chunking
// changes the scores of long passages only.
func TestScoreMatchesEvalRuns(t *testing.T) {
	model := tinyModel(t)
	beir := filepath.Join("..", "..", "examples", "scifact-sample")
	cands := filepath.Join(beir, "bm25", "dev.top20.jsonl")
	dir := t.TempDir()
	_, _, err := runEvalCLI(t, "-q", "--beir", beir, "--split", "dev", "--candidates", cands, "--model", model, "--label", "tiny",
		"--max-len", "128", "--rerank-top-k", "20", "--runs", dir, "--permutations", "10", "--bootstrap", "10")
	require.NoError(t, err)
	evalRun := readLines(t, filepath.Join(dir, "tiny.run"))
	out := filepath.Join(dir, "score.run")
	_, _, err = runTrainCLI(t, "score", "-q", "--model", model, "--max-len", "128", "--beir", beir, "--input", cands,
		"--format", "trec", "--tag", eval.RunTag("tiny", eval.TiesInputOrder), "--output", out)
	require.NoError(t, err)
	scoreRun := map[string]bool{}
	for _, l := range readLines(t, out) {
		scoreRun[l] = true
	}
	require.NotEmpty(t, evalRun)
	for _, l := range evalRun {
		assert.True(t, scoreRun[l], "eval's line %q is not in score's run", l)
	}
	assert.GreaterOrEqual(t, len(scoreRun), len(evalRun))

	// The JSONL form of the same candidates has the same scores.
	js := filepath.Join(dir, "score.jsonl")
	_, _, err = runTrainCLI(t, "score", "-q", "--model", model, "--max-len", "128", "--beir", beir, "--input", cands, "--output", js,
		"--long", "chunk", "--max-tokens-per-doc", "40", "--max-chunks-per-doc", "3")
	require.NoError(t, err)
	f, err := os.Open(js)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var l struct {
			QID    string    `json:"qid"`
			DocIDs []string  `json:"doc_ids"`
			Scores []float32 `json:"scores"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		assert.Len(t, l.Scores, len(l.DocIDs))
		n++
	}
	assert.Equal(t, 60, n)
}

// TestScoreStdio: --input - reads the pairs from standard input and the
// scores go to standard output when --output is not given, as `rerank
// tokenize` does; the bits are those of a file in, file out.
func TestScoreStdio(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	pairs := "{\"query\":\"wing lift\",\"passages\":[\"lift of a wing\",\"heat\"]}\n{\"id\":\"b\",\"query\":\"heat\",\"passage\":\"heat transfer\"}\n"
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(pairs), 0o644))
	out := filepath.Join(dir, "out.jsonl")
	_, _, err := runTrainCLI(t, "score", "-q", "--model", model, "--input", in, "--output", out)
	require.NoError(t, err)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	run := func(stdin string, args ...string) (string, string, error) {
		var o, e bytes.Buffer
		app := &cli.App{Name: "rerank", Commands: commands, Reader: strings.NewReader(stdin), Writer: &o, ErrWriter: &e}
		err := app.Run(append([]string{"rerank", "score", "-q", "--model", model}, args...))
		return o.String(), e.String(), err
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want, err   string
	}{
		{"stdin to stdout", pairs, []string{"--input", "-"}, string(want), ""},
		{"stdin to explicit stdout", pairs, []string{"--input", "-", "--output", "-"}, string(want), ""},
		{"file to default stdout", "", []string{"--input", in}, string(want), ""},
		{"bad stdin names it", "{\"query\":\"q\",\"passage\":\"p\"}\n{\"passages\":[\"x\"]}\n", []string{"--input", "-"}, "", `standard input:2: field "query" is missing`},
		{"candidates are a file", "", []string{"--input", "-", "--beir", dir}, "", "with --beir the candidates are read from a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := run(tc.stdin, tc.args...)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestScoreErrors(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"query\":\"q\",\"passage\":\"p\"}\n{\"passages\":[\"x\"]}\n"), 0o644))
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--input", bad}, `bad.jsonl:2: field "query" is missing`},
		{[]string{"--input", bad, "--format", "csv"}, `--format "csv"`},
		{[]string{"--input", bad, "--format", "trec"}, "--format trec needs"},
		{[]string{"--input", bad, "--activation", "softmax"}, `--activation "softmax"`},
		{[]string{"--input", bad, "--long", "squeeze"}, `--long "squeeze"`},
		{[]string{"--input", bad, "--max-tokens-per-doc", "5"}, "applies to --long chunk"},
		{[]string{"--input", bad, "--query-max-len", "600"}, "must be below --max-len"},
	} {
		_, _, err := runTrainCLI(t, append([]string{"score", "-q", "--model", model, "--output", filepath.Join(dir, "o")}, tc.args...)...)
		assert.ErrorContains(t, err, tc.err, "%v", tc.args)
	}
}

// TestReadScoreInputText: pairs JSONL with a byte-order mark, CRLF line
// ends and any Unicode reads as written; bytes that are not UTF-8 and lone
// surrogate escapes (which encoding/json would score as U+FFFD) are
// errors naming file, line and field.
func TestReadScoreInputText(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []string // the queries read; nil with err
		err        string
	}{
		{"BOM CRLF", "\xef\xbb\xbf{\"query\":\"q\",\"passage\":\"p\"}\r\n{\"query\":\"r\",\"passages\":[]}\r\n", []string{"q", "r"}, ""},
		{"unicode", `{"query":"機翼 ปีก ما 👩‍👩‍👧 e\u0301 \u200b\ud83d\ude00","passage":""}`, []string{"機翼 ปีก ما 👩‍👩‍👧 e\u0301 \u200b😀"}, ""},
		{"BOM not at the start", "{\"query\":\"q\",\"passage\":\"p\"}\n\xef\xbb\xbf{\"query\":\"q\",\"passage\":\"p\"}", nil, "in.jsonl:2: invalid character"},
		{"lone surrogate", `{"query":"q","passages":["ok","\ud800"]}`, nil, `in.jsonl:1: field "passages": byte 32: lone UTF-16 surrogate \ud800`},
		{"invalid UTF-8", "{\"query\":\"q\",\"passage\":\"p\"}\n{\"query\":\"\xff\",\"passage\":\"p\"}", nil, `in.jsonl:2: field "query": byte 11: invalid UTF-8 (0xff)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := readScoreInput(strings.NewReader(tc.data), "in.jsonl")
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, l := range lines {
				got = append(got, *l.Query)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzReadScoreInput: no input makes the pairs JSONL reader panic, every
// line it accepts has a query and passages, and no accepted text holds a
// U+FFFD the input does not spell.
func FuzzReadScoreInput(f *testing.F) {
	for _, seed := range []string{
		`{"query":"q","passages":["a","b"]}` + "\n" + `{"query":"q","passage":"p","id":3}`,
		`{"query":"q"}`, `{"passage":"p"}`, `{"query":1}`, "\n\n", `{"query":"q","passages":["a"],"passage":"b"}`, `[`,
		`{"query":"\ud800","passage":"p"}`, "\xef\xbb\xbf{\"query\":\"q\",\"passage\":\"\xfe\"}\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := readScoreInput(strings.NewReader(string(data)), "in.jsonl")
		if err != nil {
			assert.Contains(t, err.Error(), "in.jsonl")
			return
		}
		spelled := bytes.Count(data, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(data), []byte(`\ufffd`))
		got := 0
		for _, l := range lines {
			assert.NotNil(t, l.Query)
			assert.True(t, (l.Passage == nil) != (l.Passages == nil))
			got += strings.Count(*l.Query+strings.Join(l.Passages, ""), "\uFFFD")
			if l.Passage != nil {
				got += strings.Count(*l.Passage, "\uFFFD")
			}
		}
		assert.LessOrEqual(t, got, spelled, "U+FFFD the input does not spell")
	})
}
