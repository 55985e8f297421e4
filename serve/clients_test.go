package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/internal/sharedtest"
)

// clientsDir holds the real clients' scripts and their pinned npm
// packages (package-lock.json; `npm ci` there, which
// scripts/setup-debian.sh does).
var clientsDir = filepath.Join("testdata", "clients")

// needClient skips the test when what a client needs is absent (node and
// the npm packages, or python3 with requests), and fails it under CI=true,
// where scripts/setup-debian.sh has installed them.
func needClient(t *testing.T, kind string) string {
	t.Helper()
	miss := func(msg string) {
		t.Helper()
		if sharedtest.InCI() {
			t.Fatal(msg + " (CI=true: scripts/setup-debian.sh installs it; this must not be skipped)")
		}
		t.Skip(msg)
	}
	switch kind {
	case "node":
		node, err := exec.LookPath("node")
		if err != nil {
			miss("node is not installed: apt-get install nodejs npm (scripts/setup-debian.sh)")
		}
		if _, err := os.Stat(filepath.Join(clientsDir, "node_modules", "cohere-ai", "package.json")); err != nil {
			miss("the client packages are not installed: cd serve/testdata/clients && npm ci (scripts/setup-debian.sh does)")
		}
		return node
	default:
		// The python3 on PATH, else Debian's, whichever has requests.
		for _, name := range []string{"python3", "/usr/bin/python3"} {
			if py, err := exec.LookPath(name); err == nil && exec.Command(py, "-c", "import requests").Run() == nil {
				return py
			}
		}
		miss("python3 with requests is not installed: apt-get install python3-requests (scripts/setup-debian.sh)")
		return ""
	}
}

// clientAnswer is what a client script prints (testdata/clients/lib.js).
type clientAnswer struct {
	Results []struct {
		Index    int             `json:"index"`
		Score    float64         `json:"score"`
		Document json.RawMessage `json:"document"`
	} `json:"results"`
	Error *struct {
		Name    string          `json:"name"`
		Status  int             `json:"status"`
		Message string          `json:"message"`
		Body    json.RawMessage `json:"body"`
	} `json:"error"`
	raw map[string]json.RawMessage
}

// runClient runs one client script with spec on its standard input.
func runClient(t *testing.T, interpreter, script string, spec map[string]any) clientAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, script)
	cmd.Dir = clientsDir
	cmd.Stdin = strings.NewReader(js(spec))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The clients must not find a real key or endpoint in the
	// environment, nor send telemetry.
	cmd.Env = append(os.Environ(), "CO_API_KEY=", "COHERE_API_KEY=", "LANGCHAIN_TRACING_V2=false", "LANGSMITH_TRACING=false")
	require.NoError(t, cmd.Run(), "%s: %s", script, stderr.String())
	var a clientAnswer
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &a), "%s printed %q (stderr %s)", script, stdout.String(), stderr.String())
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &a.raw))
	return a
}

// TestRealClients: third-party clients, unchanged, pointed at a served
// model on loopback by their own base-URL options: the official Cohere
// TypeScript SDK (CohereClient v1 and CohereClientV2), LangChain JS's
// CohereRerank (over the cohere-ai 7.x it depends on), the Vercel AI SDK's
// Cohere reranking model, and TEI's and Jina's documented calls made with
// Python's requests. Every client must parse the indices, order, scores
// (equal, to the bit, to scoring offline), documents and errors it gets.
func TestRealClients(t *testing.T) {
	const key = "test-key"
	s := start(t, Options{APIKey: key}, crossencoder.Options{})
	q := "does aspirin lower the risk of a heart attack"
	docs := []string{
		"Aspirin lowers the risk of a heart attack in people with blocked arteries.",
		"The river was calm at dawn.",
		"Ünïcödé wings — 翼 — and heart attacks, \"quoted\" & <escaped>.",
		strings.Repeat("aspirin heart attack risk trial ", 40), // longer than the model's 64 tokens: truncated
		"The river was calm at dawn.",                          // a duplicate
	}
	fields := []map[string]string{}
	structured := []string{}
	for i, d := range docs[:3] {
		fields = append(fields, map[string]string{"title": fmt.Sprintf("doc %d", i), "text": d, "id": fmt.Sprintf("id-%d", i)})
		structured = append(structured, fmt.Sprintf("title: doc %d\ntext: %s", i, d))
	}
	base := offline(t, false, q, docs)
	withAd := offline(t, true, q, docs)
	yaml := offline(t, false, q, structured)
	sigmoid := func(xs []float32) []float32 {
		out := make([]float32, len(xs))
		for i, x := range xs {
			out[i] = crossencoder.Sigmoid(x)
		}
		return out
	}
	// order ranks documents best first; equal scores (the duplicate) keep
	// document order, or with teiTies come last first, as TEI has them.
	order := func(sc []float32, n int, teiTies bool) []int {
		idx := make([]int, len(sc))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			if sc[idx[a]] == sc[idx[b]] && teiTies {
				return idx[a] > idx[b]
			}
			return sc[idx[a]] > sc[idx[b]]
		})
		if n > 0 && n < len(idx) {
			idx = idx[:n]
		}
		return idx
	}
	spec := func(extra map[string]any) map[string]any {
		m := map[string]any{"url": s.url, "api_key": key, "model": "tiny", "query": q, "documents": docs}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	text := func(i int) string { return js(map[string]string{"text": docs[i]}) }

	for _, tc := range []struct {
		name, kind, script string
		spec               map[string]any
		scores             []float32 // the scores the client must report, by document
		topN               int
		doc                func(i int) string // the document a result carries, "" for none
		check              func(t *testing.T, a clientAnswer)
	}{
		{name: "cohere-ai CohereClient.rerank (v1)", kind: "node", script: "cohere_v1.js",
			spec: spec(map[string]any{"top_n": 3, "return_documents": true}), scores: sigmoid(base), topN: 3, doc: text,
			check: func(t *testing.T, a clientAnswer) {
				assert.Contains(t, string(a.raw["meta"]), `"apiVersion":{"version":"1"}`, "meta parsed by the SDK")
				assert.Regexp(t, `^"[0-9a-f-]{36}"$`, string(a.raw["id"]))
			}},
		{name: "cohere-ai CohereClient.rerank (v1), objects and rank_fields", kind: "node", script: "cohere_v1.js",
			spec:   spec(map[string]any{"documents": fields, "rank_fields": []string{"title", "text"}, "return_documents": true}),
			scores: sigmoid(yaml), doc: func(i int) string { return js(fields[i]) }},
		{name: "cohere-ai CohereClientV2.rerank (v2)", kind: "node", script: "cohere_v2.js",
			spec: spec(map[string]any{"priority": 1}), scores: sigmoid(base)},
		{name: "cohere-ai CohereClientV2.rerank (v2), an adapter", kind: "node", script: "cohere_v2.js",
			spec: spec(map[string]any{"model": "ad", "top_n": 2, "max_tokens_per_doc": 4096}), scores: sigmoid(withAd), topN: 2},
		{name: "cohere-ai, an error", kind: "node", script: "cohere_v1.js", spec: spec(map[string]any{"documents": []string{}}),
			check: func(t *testing.T, a clientAnswer) {
				require.NotNil(t, a.Error)
				assert.Equal(t, "BadRequestError", a.Error.Name)
				assert.Equal(t, 400, a.Error.Status)
				assert.Contains(t, string(a.Error.Body), `"message":"invalid request: list of documents must not be empty"`)
			}},
		{name: "cohere-ai v2, an unknown model", kind: "node", script: "cohere_v2.js", spec: spec(map[string]any{"model": "rerank-v3.5"}),
			check: func(t *testing.T, a clientAnswer) {
				require.NotNil(t, a.Error)
				assert.Equal(t, "NotFoundError", a.Error.Name)
				assert.Equal(t, 404, a.Error.Status)
			}},
		{name: "LangChain CohereRerank", kind: "node", script: "langchain_cohere.js",
			spec: spec(map[string]any{"top_n": 3}), scores: sigmoid(base), topN: 3, doc: text,
			check: func(t *testing.T, a clientAnswer) {
				var ranked []struct {
					Index int
					Score float64
				}
				require.NoError(t, json.Unmarshal(a.raw["rerank"], &ranked))
				want := order(base, 3, false)
				require.Len(t, ranked, 3)
				for k, r := range ranked {
					assert.Equal(t, want[k], r.Index)
					assert.Equal(t, crossencoder.Sigmoid(base[r.Index]), float32(r.Score))
				}
				assert.Contains(t, string(a.raw["cohere_ai_version"]), `"7.`, "LangChain's own cohere-ai")
			}},
		{name: "Vercel AI SDK rerank (@ai-sdk/cohere)", kind: "node", script: "ai_sdk.js",
			spec: spec(map[string]any{"top_n": 3}), scores: sigmoid(base), topN: 3, doc: text},
		{name: "TEI's calls (Python requests)", kind: "python", script: "tei_requests.py",
			spec: spec(nil), scores: sigmoid(base), doc: text,
			check: func(t *testing.T, a clientAnswer) {
				var predict []float64
				require.NoError(t, json.Unmarshal(a.raw["predict"], &predict))
				require.Len(t, predict, len(docs))
				for i, p := range predict {
					assert.Equal(t, crossencoder.Sigmoid(base[i]), float32(p), "predict %d", i)
				}
				var info struct {
					ModelID             string `json:"model_id"`
					TokenizationWorkers int    `json:"tokenization_workers"`
				}
				require.NoError(t, json.Unmarshal(a.raw["info"], &info))
				assert.Equal(t, "tiny", info.ModelID)
				assert.Positive(t, info.TokenizationWorkers)
				assert.Equal(t, "200", string(a.raw["health"]))
				assert.NotEqual(t, "0", string(a.raw["compute_tokens"]))
			}},
		{name: "TEI's calls (Python requests), raw scores", kind: "python", script: "tei_requests.py",
			spec: spec(map[string]any{"raw_scores": true}), scores: base, doc: text},
		{name: "Jina's call (Python requests)", kind: "python", script: "jina_requests.py",
			spec: spec(map[string]any{"top_n": 2}), scores: sigmoid(base), topN: 2, doc: text,
			check: func(t *testing.T, a clientAnswer) {
				assert.Equal(t, `"tiny"`, string(a.raw["model"]))
				assert.NotEqual(t, "0", string(a.raw["total_tokens"]))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each client is a process of its own; the server takes them at once
			interp := needClient(t, tc.kind)
			a := runClient(t, interp, tc.script, tc.spec)
			if tc.scores != nil {
				require.Nil(t, a.Error, "the client failed: %+v", a.Error)
				want := order(tc.scores, tc.topN, tc.kind == "python" && strings.HasPrefix(tc.script, "tei"))
				require.Len(t, a.Results, len(want))
				for k, r := range a.Results {
					assert.Equal(t, want[k], r.Index, "rank %d", k)
					assert.Equal(t, tc.scores[r.Index], float32(r.Score), "rank %d: the score of document %d", k, r.Index)
					if tc.doc != nil {
						assert.JSONEq(t, tc.doc(r.Index), string(r.Document), "rank %d: document %d", k, r.Index)
					} else {
						assert.Empty(t, r.Document)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}
