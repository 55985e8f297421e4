package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/serve"
)

// TestServeMatchesScore: the scores `rerank serve` answers (TEI raw
// logits, Cohere sigmoid) are those `rerank score` writes, to the bit;
// TestScoreMatchesEvalRuns closes the circle with `rerank eval --runs`.
func TestServeMatchesScore(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	q := "wing lift"
	docs := []string{"lift of a wing", "nothing at all", "heat transfer in slabs and plates of many shapes", "wing", strings.Repeat("drag ", 80)}
	line, _ := json.Marshal(map[string]any{"query": q, "passages": docs})
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, append(line, '\n'), 0o644))
	var scored [2][]float32
	for i, act := range []string{"none", "sigmoid"} {
		out := filepath.Join(dir, act)
		_, _, err := runTrainCLI(t, "score", "-q", "--model", model, "--max-len", "64", "--input", in, "--output", out, "--activation", act)
		require.NoError(t, err)
		var l struct{ Scores []float32 }
		require.NoError(t, json.Unmarshal([]byte(readLines(t, out)[0]), &l))
		scored[i] = l.Scores
	}

	m, err := crossencoder.Load(cpu.New(), model, crossencoder.Options{MaxLen: 64})
	require.NoError(t, err)
	defer m.Close()
	srv, err := serve.New(serve.Options{Model: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 10*time.Second) }()
	defer func() { cancel(); <-done }()
	post := func(path string, body any, v any) {
		b, _ := json.Marshal(body)
		resp, err := http.Post("http://"+ln.Addr().String()+path, "application/json", strings.NewReader(string(b)))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	var tei []struct {
		Index int
		Score float32
	}
	post("/rerank", map[string]any{"query": q, "texts": docs, "raw_scores": true, "truncate": true}, &tei)
	require.Len(t, tei, len(docs))
	for _, r := range tei {
		assert.Equal(t, scored[0][r.Index], r.Score, "doc %d", r.Index)
	}
	var co struct {
		Results []struct {
			Index          int
			RelevanceScore float32 `json:"relevance_score"`
		}
	}
	post("/v2/rerank", map[string]any{"query": q, "documents": docs}, &co)
	require.Len(t, co.Results, len(docs))
	for _, r := range co.Results {
		assert.Equal(t, scored[1][r.Index], r.RelevanceScore, "doc %d", r.Index)
	}
}

func TestServeFlagErrors(t *testing.T) {
	model := tinyModel(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--adapter", "x"}, `--adapter "x": want NAME=DIR`},
		{[]string{"--adapter", "a=/nonexistent"}, "--adapter a=/nonexistent"},
		{[]string{"--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"--max-client-batch-size", "600"}, "exceeds max concurrent requests"},
		{[]string{"--port", "-5"}, "invalid port"},
	} {
		_, _, err := runTrainCLI(t, append([]string{"serve", "--model", model}, tc.args...)...)
		assert.ErrorContains(t, err, tc.err, "%v", tc.args)
	}
}
