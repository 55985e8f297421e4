package eval

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadersText: every reader takes a UTF-8 byte-order mark at the start
// of the file and CRLF line ends, and refuses bytes that are not UTF-8 and
// lone UTF-16 surrogate escapes (which encoding/json would turn into U+FFFD
// silently, scoring other text than the file's) with the file, line and
// field.
func TestReadersText(t *testing.T) {
	corpus := func(data string) error { _, err := ParseCorpus(strings.NewReader(data), "corpus.jsonl"); return err }
	queries := func(data string) error { _, err := ParseQueries(strings.NewReader(data), "queries.jsonl"); return err }
	qrels := func(data string) error { _, err := ParseQrels(strings.NewReader(data), "test.tsv"); return err }
	cands := func(data string) error {
		_, err := ParseCandidates(strings.NewReader(data), "c.jsonl", nil)
		return err
	}
	flag := func(data string) error {
		_, _, err := ParseFlagEmbedding(strings.NewReader(data), "f.jsonl")
		return err
	}
	run := func(data string) error { _, err := ParseTRECRun(strings.NewReader(data), "r.run", nil); return err }
	for _, tc := range []struct {
		name  string
		parse func(string) error
		data  string
		want  string // "" = accepted
	}{
		{"corpus BOM CRLF", corpus, "\xef\xbb\xbf{\"_id\":\"d1\",\"text\":\"a\"}\r\n{\"_id\":\"d2\",\"text\":\"b\"}\r\n", ""},
		{"corpus CJK emoji RTL", corpus, `{"_id":"d1","title":"機翼","text":"👩‍👩‍👧 ما هو \u200f\ud83d\ude00"}`, ""},
		{"corpus invalid UTF-8", corpus, "{\"_id\":\"d1\",\"text\":\"a\"}\n{\"_id\":\"d2\",\"text\":\"caf\xe9\"}\n", `corpus.jsonl:2: field "text": byte 24: invalid UTF-8 (0xe9)`},
		{"corpus lone surrogate", corpus, `{"_id":"d1","title":"\ud800","text":"a"}`, `corpus.jsonl:1: field "title": byte 22: lone UTF-16 surrogate \ud800`},
		{"corpus numeric ids (as bm25 reads them)", corpus, "{\"_id\":7,\"text\":\"a\"}\n{\"_id\":\"7\",\"text\":\"b\"}\n", `corpus.jsonl:2: duplicate document id "7"`},
		{"corpus boolean id", corpus, `{"_id":true,"text":"a"}`, `corpus.jsonl:1: invalid JSON: want a string or number id, got true`},
		{"queries numeric id", queries, `{"_id":12,"text":"a"}`, ""},
		{"queries BOM", queries, "\xef\xbb\xbf{\"_id\":\"q1\",\"text\":\"a\"}\n", ""},
		{"queries lone low surrogate", queries, "{\"_id\":\"q1\",\"text\":\"a\"}\n{\"_id\":\"q2\",\"text\":\"\\udc00\"}", `queries.jsonl:2: field "text": byte 21: lone UTF-16 surrogate \udc00`},
		{"qrels BOM CRLF", qrels, "\xef\xbb\xbfquery-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n", ""},
		{"qrels invalid UTF-8", qrels, "q1\td\xff\t1\n", `test.tsv:1: byte 5: invalid UTF-8 (0xff)`},
		{"run BOM", run, "\xef\xbb\xbfq1 Q0 d1 1 2.5 x\n", ""},
		{"candidates lone surrogate", cands, `{"qid":"q1","query":"\ud83d","doc_ids":["d1"]}`, `c.jsonl:1: field "query": byte 22: lone UTF-16 surrogate \ud83d`},
		{"flag passage invalid UTF-8", flag, "{\"query\":\"q\",\"pos\":[\"a\xc0\"],\"neg\":[]}", `f.jsonl:1: field "pos": byte 23: invalid UTF-8 (0xc0)`},
		{"flag BOM", flag, "\xef\xbb\xbf{\"query\":\"q\",\"pos\":[\"a\"],\"neg\":[\"b\"]}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.data)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// FuzzParseCorpus: no input panics, errors name the file, and an accepted
// corpus holds no U+FFFD that its bytes do not spell (encoding/json's
// replacement of bad bytes and lone surrogates is refused instead).
func FuzzParseCorpus(f *testing.F) {
	for _, s := range []string{
		`{"_id":"d1","title":"t","text":"x"}` + "\n",
		"\xef\xbb\xbf{\"_id\":\"d1\",\"text\":\"x\"}\r\n",
		`{"_id":"d1","text":"\ud800"}`,
		"{\"_id\":\"d1\",\"text\":\"\xff\"}",
		`{"_id":"d1","text":"\ud83d\ude00 \ufffd"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCorpus(bytes.NewReader(data), "fuzz.jsonl")
		if err != nil {
			assert.Contains(t, err.Error(), "fuzz.jsonl:")
			return
		}
		spelled := bytes.Count(data, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(data), []byte(`\ufffd`))
		got := 0
		for id, d := range c {
			got += strings.Count(id+d.Title+d.Text, "\uFFFD")
		}
		assert.LessOrEqual(t, got, spelled, "U+FFFD the input does not spell")
	})
}
