package bm25

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInvalidUTF8 names the file, line and byte of text that is not
// UTF-8 (Python's json fails on it; Go's would read U+FFFD silently).
func TestInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.jsonl")
	require.NoError(t, os.WriteFile(corpus, []byte(`{"_id":"d1","text":"fine"}`+"\n"+`{"_id":"d2","text":"caf`+"\xe9"+`"}`+"\n"), 0o644))
	_, err := ReadCorpus(corpus)
	require.Error(t, err)
	assert.Contains(t, err.Error(), corpus+`:2: invalid UTF-8 at byte 24 of the line (0xe9)`)
	queries := filepath.Join(dir, "queries.jsonl")
	require.NoError(t, os.WriteFile(queries, []byte(`{"_id":"q1","text":"`+"\xff"+`"}`+"\n"), 0o644))
	_, err = ReadQueries(queries)
	require.Error(t, err)
	assert.Contains(t, err.Error(), queries+":1: invalid UTF-8")
}
