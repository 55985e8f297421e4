package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/tokenize"
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
		assert.Equal(t, countSummary{Total: 3, Min: 1, Mean: 1.5, Median: 1.5, P95: 2, Max: 2}, st.Pos)
		assert.Nil(t, st.Tokens)
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

func TestDataStatsTokens(t *testing.T) {
	tokPath := filepath.Join(sharedtest.Models(t), "bert-uncased-wordpiece-tokenizer")
	tok, err := tokenize.Load(tokPath)
	require.NoError(t, err)
	long := strings.Repeat("aerodynamic heating of slender wings ", 40)
	dir := t.TempDir()
	path := filepath.Join(dir, "d.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"query":"heat transfer","pos":["short passage"],"neg":["`+long+`","tiny"]}`+"\n"), 0o644))
	tests := []struct {
		name     string
		qml, pml int
		cut      int
	}{
		{"defaults cut the long passage", 32, 128, 1},
		{"room for everything", 32, 1000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCmd(t, newDataCommand(), "stats", "--json", "-q", "--tokenizer", tokPath,
				"--query-max-len", fmt.Sprint(tc.qml), "--passage-max-len", fmt.Sprint(tc.pml), path)
			require.NoError(t, err)
			var st dataStats
			require.NoError(t, json.Unmarshal([]byte(stdout), &st))
			require.NotNil(t, st.Tokens)
			assert.Equal(t, 3, st.Tokens.Pairs)
			assert.Equal(t, tc.cut, st.Tokens.PairsCut)
			assert.Equal(t, len(tok.Tokenize("heat transfer")), st.Tokens.Query.Max)
			assert.Equal(t, len(tok.Tokenize(long)), st.Tokens.Neg.Max)
			assert.Equal(t, len(tok.Tokenize("short passage")), st.Tokens.Pos.Max)
		})
	}
	t.Run("text output", func(t *testing.T) {
		stdout, _, err := runCmd(t, newDataCommand(), "stats", "-q", "--tokenizer", tokPath, path)
		require.NoError(t, err)
		assert.Contains(t, stdout, "1 of 3 pairs cut")
	})
	t.Run("bad tokenizer", func(t *testing.T) {
		_, _, err := runCmd(t, newDataCommand(), "stats", "--tokenizer", dir, path)
		assert.ErrorContains(t, err, "--tokenizer")
	})
}
