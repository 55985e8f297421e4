package flagdata

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseValidation(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		opts  Options
		want  []string // substrings of the errors, in order; empty means valid
		check func(t *testing.T, ex Example)
	}{
		{name: "minimal", line: `{"query":"q","pos":["p"],"neg":["n1","n2"]}`,
			check: func(t *testing.T, ex Example) {
				assert.Equal(t, "q", ex.Query)
				assert.Equal(t, []string{"p"}, ex.Pos)
				assert.Equal(t, []string{"n1", "n2"}, ex.Neg)
				assert.Nil(t, ex.PosScores)
				assert.False(t, ex.HasScores())
			}},
		{name: "scores and prompt", line: `{"query":"q","pos":["p"],"neg":["n"],"pos_scores":[1.5],"neg_scores":[-2],"prompt":"Is it relevant?"}`,
			check: func(t *testing.T, ex Example) {
				assert.Equal(t, []float64{1.5}, ex.PosScores)
				assert.Equal(t, []float64{-2}, ex.NegScores)
				assert.Equal(t, "Is it relevant?", ex.Prompt)
				assert.True(t, ex.HasScores())
			}},
		{name: "extra keys kept", line: `{"query":"q","pos":["p"],"neg":["n"],"qid":"7","pos_ids":["1"],"neg_ids":["2"]}`,
			check: func(t *testing.T, ex Example) {
				assert.JSONEq(t, `"7"`, string(ex.Extra["qid"]))
				assert.JSONEq(t, `["2"]`, string(ex.Extra["neg_ids"]))
			}},
		{name: "missing neg", line: `{"query":"q","pos":["p"]}`, want: []string{`t.jsonl:1: field "neg": missing`}},
		{name: "invalid UTF-8", line: "{\"query\":\"caf\xe9\",\"pos\":[\"p\"],\"neg\":[\"n\"]}", want: []string{`t.jsonl:1: invalid UTF-8 at byte 14 of the object (0xe9)`}},
		// encoding/json would read a lone surrogate as U+FFFD: training
		// on another text than the file's, where FlagEmbedding's
		// tokenizer fails.
		{name: "lone surrogate", line: `{"query":"q","pos":["p\ud800"],"neg":["n"]}`, want: []string{`t.jsonl:1: field "pos": byte 23 of the object: lone UTF-16 surrogate \ud800`}},
		{name: "lone low surrogate in query", line: `{"query":"\udfff","pos":["p"],"neg":["n"]}`, want: []string{`field "query": byte 11 of the object: lone UTF-16 surrogate \udfff`}},
		{name: "surrogate pair", line: `{"query":"\ud83d\ude00","pos":["p"],"neg":["n"]}`, check: func(t *testing.T, ex Example) { assert.Equal(t, "😀", ex.Query) }},
		{name: "BOM and CRLF", line: "\xef\xbb\xbf{\"query\":\"q\",\"pos\":[\"p\"],\"neg\":[\"n\"]}\r", check: func(t *testing.T, ex Example) { assert.Equal(t, "q", ex.Query) }},
		{name: "missing neg allowed", line: `{"query":"q","pos":["p"]}`, opts: Options{AllowMissingNeg: true}},
		{name: "empty neg", line: `{"query":"q","pos":["p"],"neg":[]}`, want: []string{`field "neg": empty`}},
		{name: "empty pos", line: `{"query":"q","pos":[],"neg":["n"]}`, want: []string{`field "pos": empty`}},
		{name: "missing query and pos", line: `{"neg":["n"]}`, want: []string{`field "query": missing`, `field "pos": missing`}},
		{name: "query wrong type", line: `{"query":3,"pos":["p"],"neg":["n"]}`, want: []string{`field "query": want a string, got a number`}},
		{name: "pos is a string", line: `{"query":"q","pos":"p","neg":["n"]}`, want: []string{`field "pos": want a list of strings, got a string`}},
		{name: "neg element wrong type", line: `{"query":"q","pos":["p"],"neg":["n",null,{}]}`,
			want: []string{`field "neg[1]": want a string, got null`, `field "neg[2]": want a string, got an object`}},
		{name: "score length mismatch", line: `{"query":"q","pos":["p"],"neg":["n","m"],"pos_scores":[1],"neg_scores":[1]}`,
			want: []string{`field "neg_scores": has 1 scores but neg has 2 passages`}},
		{name: "score wrong type", line: `{"query":"q","pos":["p"],"neg":["n"],"pos_scores":["1"],"neg_scores":[1]}`,
			want: []string{`field "pos_scores[0]": want a number, got a string`}},
		{name: "only one score list", line: `{"query":"q","pos":["p"],"neg":["n"],"pos_scores":[1]}`,
			want: []string{`field "neg_scores": missing while pos_scores is present`}},
		{name: "scores required", line: `{"query":"q","pos":["p"],"neg":["n"]}`, opts: Options{RequireScores: true},
			want: []string{`field "pos_scores": missing: distillation`}},
		{name: "prompt wrong type", line: `{"query":"q","pos":["p"],"neg":["n"],"prompt":["x"]}`, want: []string{`field "prompt": want a string, got a list`}},
		{name: "not an object", line: `["q"]`, want: []string{`t.jsonl:1: want a JSON object`}},
		{name: "null line", line: `null`, want: []string{`t.jsonl:1: want a JSON object with query/pos/neg, got null`}},
		{name: "broken JSON", line: `{"query":"q",`, want: []string{`t.jsonl:1: invalid JSON`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, err := Parse(strings.NewReader(tc.line+"\n"), "t.jsonl", tc.opts)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				require.Len(t, exs, 1)
				assert.Equal(t, "t.jsonl", exs[0].File)
				assert.Equal(t, 1, exs[0].Line)
				if tc.check != nil {
					tc.check(t, exs[0])
				}
				return
			}
			require.Error(t, err)
			var list *ErrorList
			require.True(t, errors.As(err, &list))
			require.Len(t, list.Errors, len(tc.want), err.Error())
			for i, w := range tc.want {
				assert.Contains(t, list.Errors[i].Error(), w)
			}
			var fe *FieldError
			assert.True(t, errors.As(err, &fe))
			assert.Empty(t, exs)
		})
	}
}

func TestParseCollectsAllErrorsUpToLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("\xef\xbb\xbf{\"query\":\"ok\",\"pos\":[\"p\"],\"neg\":[\"n\"]}\n\n")
	for i := 0; i < 10; i++ {
		b.WriteString(`{"query":"q","pos":["p"]}` + "\r\n")
	}
	tests := []struct {
		name      string
		max       int
		errors    int
		truncated int
	}{
		{"default limit", 0, 10, 0},
		{"limit 3", 3, 3, 7},
		{"no limit", -1, 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, err := Parse(strings.NewReader(b.String()), "d.jsonl", Options{MaxErrors: tc.max})
			require.Len(t, exs, 1, "the valid line is kept")
			var list *ErrorList
			require.True(t, errors.As(err, &list))
			assert.Len(t, list.Errors, tc.errors)
			assert.Equal(t, tc.truncated, list.Truncated)
			assert.Equal(t, 3, list.Errors[0].Line, "blank lines still count")
			if tc.truncated > 0 {
				assert.Contains(t, err.Error(), "and 7 more")
			}
		})
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func TestLoadFilesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	line := func(q string) string { return `{"query":"` + q + `","pos":["p"],"neg":["n"]}` + "\n" }
	files := map[string][]byte{
		"a.jsonl":    []byte(line("a1") + line("a2")),
		"b.json":     []byte("[\n " + strings.TrimSpace(line("b1")) + ",\n " + strings.TrimSpace(line("b2")) + "\n]\n"),
		"c.jsonl.gz": gz(t, line("c1")),
		"d.json":     []byte(line("d1")), // JSON Lines in a .json file
		"notes.txt":  []byte("ignored"),
	}
	for n, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	tests := []struct {
		name    string
		path    string
		queries []string
		lines   []int
	}{
		{"directory", dir, []string{"a1", "a2", "b1", "b2", "c1", "d1"}, []int{1, 2, 2, 3, 1, 1}},
		{"jsonl file", filepath.Join(dir, "a.jsonl"), []string{"a1", "a2"}, []int{1, 2}},
		{"json array", filepath.Join(dir, "b.json"), []string{"b1", "b2"}, []int{2, 3}},
		{"gzip", filepath.Join(dir, "c.jsonl.gz"), []string{"c1"}, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, err := Load(tc.path, Options{})
			require.NoError(t, err)
			var qs []string
			var ls []int
			for _, e := range exs {
				qs = append(qs, e.Query)
				ls = append(ls, e.Line)
			}
			assert.Equal(t, tc.queries, qs)
			assert.Equal(t, tc.lines, ls)
		})
	}

	t.Run("errors across files name each file", func(t *testing.T) {
		d := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(d, "x.jsonl"), []byte(`{"query":"q","pos":["p"]}`+"\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "y.json"), []byte("[{\"query\":\"q\",\"pos\":[],\"neg\":[\"n\"]}]"), 0o644))
		_, err := Load(d, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(d, "x.jsonl")+`:1: field "neg"`)
		assert.Contains(t, err.Error(), filepath.Join(d, "y.json")+`:1: field "pos"`)
	})
	t.Run("empty directory", func(t *testing.T) {
		_, err := Load(t.TempDir(), Options{})
		assert.ErrorContains(t, err, "no .jsonl")
	})
	t.Run("missing path", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.jsonl"), Options{})
		assert.ErrorContains(t, err, "nope.jsonl")
	})
}

func TestWriteRoundTrip(t *testing.T) {
	exs := []Example{
		{Query: "q <1> & ü", Pos: []string{"p"}, Neg: []string{"n1", "n2"}},
		{Query: "q2", Pos: []string{"p"}, Neg: []string{"n"}, PosScores: []float64{0.5}, NegScores: []float64{-1.25}, Prompt: "pr"},
	}
	exs[0].Extra = map[string]json.RawMessage{"qid": json.RawMessage(`"9"`), "neg_ids": json.RawMessage(`["1","2"]`)}
	tests := []string{"out.jsonl", "out.jsonl.gz"}
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			require.NoError(t, WriteFile(path, exs))
			got, err := Load(path, Options{})
			require.NoError(t, err)
			require.Len(t, got, 2)
			for i := range got {
				got[i].File, got[i].Line = "", 0
			}
			assert.Equal(t, exs, got)
			ents, _ := os.ReadDir(dir)
			assert.Len(t, ents, 1, "no temporary file left behind")
		})
	}
	t.Run("line format", func(t *testing.T) {
		b, err := Marshal(&exs[0])
		require.NoError(t, err)
		assert.Equal(t, `{"query": "q <1> & ü", "pos": ["p"], "neg": ["n1","n2"], "neg_ids": ["1","2"], "qid": "9"}`, string(b))
	})
	t.Run("failed write leaves destination", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keep.jsonl")
		require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o644))
		w, err := Create(path)
		require.NoError(t, err)
		require.NoError(t, w.Write(&exs[0]))
		w.Abort()
		b, _ := os.ReadFile(path)
		assert.Equal(t, "old\n", string(b))
		ents, _ := os.ReadDir(dir)
		assert.Len(t, ents, 1)
	})
}

// TestLoadSharedCollections reads every provided FlagEmbedding file.
func TestLoadSharedCollections(t *testing.T) {
	data := sharedtest.Data(t)
	files, _ := filepath.Glob(filepath.Join(data, "*", "reranker_train.jsonl.gz"))
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			exs, err := Load(f, Options{})
			require.NoError(t, err)
			require.NotEmpty(t, exs)
			for _, e := range exs {
				assert.NotEmpty(t, e.Pos)
				assert.NotEmpty(t, e.Neg)
				assert.Contains(t, e.Extra, "qid")
			}
		})
	}
}
