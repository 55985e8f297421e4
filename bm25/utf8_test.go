package bm25

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadersText: the BEIR readers name the file, line and byte of text
// that is not UTF-8 (Python's json fails on it; Go's would read U+FFFD
// silently) and of lone UTF-16 surrogate escapes (Go's json reads U+FFFD
// silently there too), and take a byte-order mark and CRLF line ends.
func TestReadersText(t *testing.T) {
	dir := t.TempDir()
	corpus := func(p string) error { _, err := ReadCorpus(p); return err }
	queries := func(p string) error { _, err := ReadQueries(p); return err }
	qrels := func(p string) error { _, err := ReadQrels(p); return err }
	run := func(p string) error { _, err := ReadRun(p); return err }
	for i, tc := range []struct {
		name string
		read func(string) error
		data string
		want string // after "<file>:"; "" = accepted
	}{
		{"corpus invalid UTF-8", corpus, `{"_id":"d1","text":"fine"}` + "\n" + `{"_id":"d2","text":"caf` + "\xe9" + `"}` + "\n", `2: invalid UTF-8 at byte 24 of the line (0xe9)`},
		{"queries invalid UTF-8", queries, `{"_id":"q1","text":"` + "\xff" + `"}` + "\n", "1: invalid UTF-8"},
		{"corpus lone surrogate", corpus, `{"_id":"d1","text":"a\ud800b"}`, `1: field "text": byte 22: lone UTF-16 surrogate \ud800`},
		{"queries lone low surrogate", queries, `{"_id":"q1","text":"\udc00"}`, `1: field "text": byte 21: lone UTF-16 surrogate \udc00`},
		{"run lone surrogate", run, `{"qid":"q1","query":"\ud800","doc_ids":[],"bm25_scores":[]}`, `1: field "query": byte 22: lone UTF-16 surrogate`},
		{"qrels invalid UTF-8", qrels, "q1\td\xff\t1\n", `1: invalid UTF-8 at byte 5 of the line (0xff)`},
		{"corpus BOM CRLF", corpus, "\xef\xbb\xbf" + `{"_id":"d1","text":"a"}` + "\r\n" + `{"_id":"d2","text":"b \ud83d\ude00"}` + "\r\n", ""},
		{"queries BOM", queries, "\xef\xbb\xbf" + `{"_id":"q1","text":"a"}`, ""},
		{"qrels BOM CRLF", qrels, "\xef\xbb\xbfquery-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, string(rune('a'+i))+".jsonl")
			require.NoError(t, os.WriteFile(p, []byte(tc.data), 0o644))
			err := tc.read(p)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), p+":"+tc.want)
		})
	}
}
