package train

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/testdir"
)

// TestLoadDevMissingDocs: relevant documents absent from the corpus are
// listed, so that training can say why dev recall stays below 1.
func TestLoadDevMissingDocs(t *testing.T) {
	dir := testdir.Write(t, map[string]string{
		"corpus.jsonl":  `{"_id":"d1","text":"wing"}` + "\n" + `{"_id":"d2","text":"heat"}` + "\n",
		"queries.jsonl": `{"_id":"q1","text":"wing"}` + "\n",
		"qrels/dev.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n",
		"cands.jsonl":   `{"qid":"q1","query":"wing","doc_ids":["d1","d2"],"bm25_scores":[2,1]}` + "\n",
	})
	d, err := LoadDev(filepath.Join(dir, "cands.jsonl"), dir, "dev", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"d9"}, d.Missing)
}
