package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDataCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	bad := filepath.Join(dir, "bad.jsonl")
	pairs := filepath.Join(dir, "pairs.jsonl")
	require.NoError(t, os.WriteFile(good, []byte(`{"query":"a b","pos":["p q r"],"neg":["n","m"],"qid":"1"}
{"query":"c","pos":["p","s"],"neg":["n"],"pos_scores":[1,2],"neg_scores":[0]}
`), 0o644))
	require.NoError(t, os.WriteFile(bad, []byte(`{"query":"a","pos":["p"],"neg":["n"]}
{"query":"a","pos":[]}
not json
`), 0o644))
	require.NoError(t, os.WriteFile(pairs, []byte(`{"query":"a","pos":["p"]}`+"\n"), 0o644))

	tests := []struct {
		name    string
		args    []string
		wantErr string
		out     []string
	}{
		{"check ok", []string{"check", good}, "", []string{"ok: 2 examples in 1 file(s)"}},
		{"check bad", []string{"check", bad}, "2 invalid line(s), 1 valid", []string{
			bad + `:2: field "pos": empty`, bad + `:2: field "neg": missing`, bad + ":3: invalid JSON"}},
		{"check limit", []string{"check", "--max-errors", "1", bad}, "or more", []string{"and 2 more"}},
		{"check pairs need neg", []string{"check", pairs}, "1 invalid", nil},
		{"check pairs for mining", []string{"check", "--allow-missing-neg", pairs}, "", []string{"ok: 1 examples"}},
		{"check directory", []string{"check", "--allow-missing-neg", dir}, "invalid", []string{bad + ":3"}},
		{"stats", []string{"stats", good}, "", []string{"2 examples in 1 file(s)", "pos per query", "with teacher scores    1", "extra keys             qid"}},
		{"stats with invalid lines", []string{"stats", bad}, "", []string{"(2 invalid lines left out)"}},
		{"no path", []string{"check"}, "give one training file", nil},
		{"missing path", []string{"stats", filepath.Join(dir, "nope")}, "nope", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCmd(t, newDataCommand(), tc.args...)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			for _, o := range tc.out {
				assert.Contains(t, stdout, o)
			}
		})
	}

	t.Run("stats json", func(t *testing.T) {
		stdout, _, err := runCmd(t, newDataCommand(), "stats", "--json", good)
		require.NoError(t, err)
		var st dataStats
		require.NoError(t, json.Unmarshal([]byte(stdout), &st))
		assert.Equal(t, 2, st.Examples)
		assert.Equal(t, countSummary{Total: 3, Min: 1, Mean: 1.5, Median: 1.5, Max: 2}, st.Pos)
		assert.Equal(t, 2, st.NegBelow["7"])
		assert.Zero(t, st.NegBelow["1"])
		assert.Equal(t, 5, st.UniquePassages)
	})
}

func TestDataCheckSharedFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedtest.Data(t), "*", "reranker_train.jsonl.gz"))
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			stdout, _, err := runCmd(t, newDataCommand(), "check", f)
			require.NoError(t, err)
			assert.Contains(t, stdout, "ok: ")
		})
	}
}
