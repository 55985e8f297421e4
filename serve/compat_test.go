package serve

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/crossencoder"
)

// The tests of this file check the API shapes field by field against
// their sources, cited per row:
//   - TEI: text-embeddings-inference router/src/http/types.rs
//     (RerankRequest, Rank, PredictRequest, PredictInput,
//     TruncationDirection), router/src/http/server.rs (rerank, predict,
//     routes, public routes, error codes), router/src/lib.rs (Info,
//     ErrorType, ResponseMetadata headers), core/src/infer.rs (sigmoid of
//     a single label).
//   - Cohere: cohere-typescript src/api/client/requests/RerankRequest.ts
//     and resources/v2 V2RerankRequest.ts (fields, documents as strings or
//     Record<string, string>, rank_fields, "all other fields will be
//     preserved in the response", max_tokens_per_doc defaults to 4096,
//     priority), serialization/types/RerankResponse*.ts (response), and
//     Cohere's v1 reference (return_documents defaults to false).
//   - Jina: Jina's /v1/rerank reference (return_documents defaults to
//     true, usage.total_tokens, model).

// exchange sends a request and returns the response with its body read.
func (s *server) exchange(t *testing.T, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestTEICompat: TEI's /rerank, /predict and operations, request by
// request.
func TestTEICompat(t *testing.T) {
	s := start(t, Options{MaxClientBatchSize: 4, MaxConcurrentRequests: 8, APIKey: "k"}, crossencoder.Options{})
	auth := []string{"Authorization", "Bearer k"}
	q, docs := "what is a wing", []string{"A wing generates lift.", "Heat transfer in slabs."}
	raw := offline(t, false, q, docs)
	sig := []float32{crossencoder.Sigmoid(raw[0]), crossencoder.Sigmoid(raw[1])}
	best := 0
	if raw[1] > raw[0] {
		best = 1
	}
	ranks := func(scores []float32) string {
		return js([]map[string]any{{"index": best, "score": scores[best]}, {"index": 1 - best, "score": scores[1-best]}}) + "\n"
	}
	long := strings.Repeat("lift ", 100)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // the whole body, or a part of it with contains
		contains                 bool
		noKey                    bool
	}{
		// types.rs RerankRequest: truncate, truncation_direction,
		// raw_scores and return_text are optional; the answer is Vec<Rank>
		// sorted best first, text skipped when None.
		{name: "rerank, defaults", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": docs}), status: 200, want: ranks(sig)},
		{name: "rerank, nulls are defaults", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": docs, "truncate": nil}), status: 200, want: ranks(sig)},
		{name: "rerank, raw scores", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": docs, "raw_scores": true}), status: 200, want: ranks(raw)},
		// server.rs rerank: sorted ascending, then reversed: equal scores come last document first.
		{name: "ties", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": []string{docs[0], docs[0], docs[0]}}), status: 200,
			want: js([]map[string]any{{"index": 2, "score": sig[0]}, {"index": 1, "score": sig[0]}, {"index": 0, "score": sig[0]}}) + "\n"},
		// server.rs: a reranker's / and /invocations (SageMaker) route to rerank.
		{name: "POST / is rerank", method: "POST", path: "/", body: js(map[string]any{"query": q, "texts": docs}), status: 200, want: ranks(sig)},
		{name: "POST /invocations is rerank", method: "POST", path: "/invocations", body: js(map[string]any{"query": q, "texts": docs}), status: 200, want: ranks(sig)},
		// types.rs TruncationDirection: serde aliases Left, left, Right, right, nothing else.
		{name: "direction left", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": []string{long}, "truncate": true, "truncation_direction": "left"}), status: 200, want: `"index":0`, contains: true},
		{name: "direction Right", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": []string{long}, "truncate": true, "truncation_direction": "Right"}), status: 200, want: `"index":0`, contains: true},
		{name: "direction LEFT", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": docs, "truncation_direction": "LEFT"}), status: 422, want: "unknown variant `LEFT`", contains: true},
		// server.rs rerank: truncate defaults to auto_truncate (false): a long input is refused.
		{name: "truncate defaults to false", method: "POST", path: "/rerank", body: js(map[string]any{"query": q, "texts": []string{long}}), status: 422, want: `"error_type":"Validation"`, contains: true},
		// axum's Json: missing fields and wrong types are 422, a body that is not JSON 400.
		{name: "missing texts", method: "POST", path: "/rerank", body: `{"query":"q"}`, status: 422, want: "missing field `texts`", contains: true},
		{name: "not JSON", method: "POST", path: "/rerank", body: `{"query":`, status: 400, want: "Failed to parse the request body as JSON", contains: true},
		{name: "not an object", method: "POST", path: "/rerank", body: `["q"]`, status: 422, want: "must be a JSON object", contains: true},
		// server.rs rerank: its exact messages.
		{name: "empty texts", method: "POST", path: "/rerank", body: `{"query":"q","texts":[]}`, status: 400, want: `{"error":"` + "`texts`" + ` cannot be empty","error_type":"Empty"}` + "\n"},
		{name: "batch size", method: "POST", path: "/rerank", body: `{"query":"q","texts":["a","b","c","d","e"]}`, status: 422, want: `{"error":"batch size 5 > maximum allowed batch size 4","error_type":"Validation"}` + "\n"},
		// types.rs PredictInput and server.rs predict: a pair is one
		// input, [[a, b], ...] a batch; each answer is [{score, label}],
		// the sigmoid of a single logit unless raw_scores.
		{name: "predict pair", method: "POST", path: "/predict", body: js(map[string]any{"inputs": []string{q, docs[0]}}), status: 200,
			want: js([]prediction{{Score: sig[0], Label: "LABEL_0"}}) + "\n"},
		{name: "predict batch", method: "POST", path: "/predict", body: js(map[string]any{"inputs": [][]string{{q, docs[0]}, {q, docs[1]}}, "raw_scores": true}), status: 200,
			want: js([][]prediction{{{Score: raw[0], Label: "LABEL_0"}}, {{Score: raw[1], Label: "LABEL_0"}}}) + "\n"},
		{name: "predict single text", method: "POST", path: "/predict", body: `{"inputs":"just one text"}`, status: 422, want: "a reranker scores (query, passage) pairs", contains: true},
		{name: "predict batch of singles", method: "POST", path: "/predict", body: `{"inputs":[["a"],["b"]]}`, status: 422, want: "a reranker scores (query, passage) pairs", contains: true},
		{name: "predict three strings", method: "POST", path: "/predict", body: `{"inputs":["a","b","c"]}`, status: 422, want: "invalid length 3", contains: true},
		{name: "predict empty", method: "POST", path: "/predict", body: `{"inputs":[]}`, status: 422, want: "invalid length 0", contains: true},
		{name: "predict no inputs", method: "POST", path: "/predict", body: `{}`, status: 422, want: "missing field `inputs`", contains: true},
		{name: "predict batch size", method: "POST", path: "/predict", body: js(map[string]any{"inputs": [][]string{{"a", "b"}, {"a", "b"}, {"a", "b"}, {"a", "b"}, {"a", "b"}}}), status: 422, want: "batch size 5 > maximum allowed batch size 4", contains: true},
		// server.rs: /health, / and /ping (GET) and /metrics are public routes; the rest needs the key.
		{name: "health", method: "GET", path: "/health", status: 200, noKey: true},
		{name: "GET /", method: "GET", path: "/", status: 200, noKey: true},
		{name: "ping", method: "GET", path: "/ping", status: 200, noKey: true},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, want: "rerank_request_count", contains: true, noKey: true},
		{name: "info needs the key", method: "GET", path: "/info", status: 401, noKey: true, want: `"error_type":"Unauthorized"`, contains: true},
		{name: "predict needs the key", method: "POST", path: "/predict", body: `{"inputs":["a","b"]}`, status: 401, noKey: true, want: `"error_type":"Unauthorized"`, contains: true},
		// lib.rs Info: served_model_name is a string, tokenization_workers a number.
		{name: "info", method: "GET", path: "/info", status: 200, want: `"served_model_name":"tiny"`, contains: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := auth
			if tc.noKey {
				h = nil
			}
			resp, body := s.exchange(t, tc.method, tc.path, tc.body, h...)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			if tc.contains {
				assert.Contains(t, body, tc.want)
			} else if tc.want != "" {
				assert.Equal(t, tc.want, body)
			}
			if resp.StatusCode == 200 && (tc.path == "/rerank" || tc.path == "/predict") {
				// lib.rs ResponseMetadata: x-compute-tokens and friends.
				for _, name := range []string{"x-compute-time", "x-compute-characters", "x-compute-tokens", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time"} {
					_, err := strconv.Atoi(resp.Header.Get(name))
					assert.NoError(t, err, "header %s", name)
				}
				n, _ := strconv.Atoi(resp.Header.Get("x-compute-tokens"))
				assert.Positive(t, n)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}
		})
	}
	_, body := s.exchange(t, "GET", "/info", "", auth...)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.IsType(t, float64(0), info["tokenization_workers"], "lib.rs Info: tokenization_workers is a usize")
}

// TestCohereCompat: Cohere v1/v2 and Jina on /v1/rerank and /v2/rerank,
// request by request.
func TestCohereCompat(t *testing.T) {
	s := start(t, Options{MaxClientBatchSize: 4, MaxConcurrentRequests: 8}, crossencoder.Options{})
	q := "what is a wing"
	docs := []string{"A wing generates lift.", "Heat transfer in slabs."}
	structured := "title: Wings\ntext: A wing generates lift."
	sc := offline(t, false, q, []string{docs[0], docs[1], structured})
	sig := func(i int) float32 { return crossencoder.Sigmoid(sc[i]) }
	type res struct {
		Index          int             `json:"index"`
		RelevanceScore float32         `json:"relevance_score"`
		Document       json.RawMessage `json:"document"`
	}
	type answer struct {
		Results []res `json:"results"`
		Model   *string
		Usage   *struct {
			TotalTokens int `json:"total_tokens"`
		}
		Message string
	}
	for _, tc := range []struct {
		name, path string
		body       any
		header     []string
		status     int
		check      func(t *testing.T, a answer)
	}{
		// RerankRequest.ts: documents are strings or Record<string, string>;
		// "all other fields will be preserved in the response".
		{name: "v1 object documents come back whole", path: "/v1/rerank", status: 200,
			body: map[string]any{"query": q, "documents": []any{map[string]string{"text": docs[0], "id": "d0", "url": "u"}, docs[1]}, "return_documents": true},
			check: func(t *testing.T, a answer) {
				require.Len(t, a.Results, 2)
				for _, r := range a.Results {
					assert.Equal(t, sig(r.Index), r.RelevanceScore)
					if r.Index == 0 {
						assert.JSONEq(t, `{"text":"A wing generates lift.","id":"d0","url":"u"}`, string(r.Document))
					} else {
						assert.JSONEq(t, `{"text":"Heat transfer in slabs."}`, string(r.Document))
					}
				}
			}},
		// RerankRequest.ts rank_fields: the model ranks the values of
		// those fields, in order (here as "field: value" lines).
		{name: "v1 rank_fields", path: "/v1/rerank", status: 200,
			body: map[string]any{"query": q, "documents": []any{map[string]string{"body": "x", "title": "Wings", "text": docs[0]}}, "rank_fields": []string{"title", "text", "missing"}},
			check: func(t *testing.T, a answer) {
				require.Len(t, a.Results, 1)
				assert.Equal(t, sig(2), a.Results[0].RelevanceScore, "scored as the YAML lines of the fields")
			}},
		{name: "v1 object without text", path: "/v1/rerank", status: 400,
			body:  map[string]any{"query": q, "documents": []any{map[string]string{"title": "Wings"}}},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, `document 0 has no "text" string`) }},
		{name: "v1 none of the rank_fields", path: "/v1/rerank", status: 400,
			body:  map[string]any{"query": q, "documents": []any{map[string]string{"title": "Wings"}}, "rank_fields": []string{"text"}},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, "none of the rank_fields") }},
		{name: "v1 a number is no document", path: "/v1/rerank", status: 400,
			body:  map[string]any{"query": q, "documents": []any{1}},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, "document 0 is a number") }},
		{name: "documents required", path: "/v2/rerank", status: 400, body: map[string]any{"query": q},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, "documents is required") }},
		// Cohere answers bad input with 400, wrong types included.
		{name: "v2 wrong type is 400", path: "/v2/rerank", status: 400, body: map[string]any{"query": q, "documents": docs, "top_n": "two"},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, "`top_n` must be an integer") }},
		// V2RerankRequest.ts: priority is a field; documents come back only when asked.
		{name: "v2 priority, no documents", path: "/v2/rerank", status: 200, body: map[string]any{"model": "tiny", "query": q, "documents": docs, "priority": 3},
			check: func(t *testing.T, a answer) {
				require.Len(t, a.Results, 2)
				for _, r := range a.Results {
					assert.Nil(t, r.Document)
					assert.Equal(t, sig(r.Index), r.RelevanceScore)
				}
				assert.Nil(t, a.Usage, "v2 has no Jina usage")
			}},
		// top_n: "defaults to the length of the documents"; more is all.
		{name: "top_n past the documents", path: "/v2/rerank", status: 200, body: map[string]any{"query": q, "documents": docs, "top_n": 10},
			check: func(t *testing.T, a answer) { assert.Len(t, a.Results, 2) }},
		{name: "duplicates are each ranked", path: "/v2/rerank", status: 200, body: map[string]any{"query": q, "documents": []string{docs[0], docs[0]}},
			check: func(t *testing.T, a answer) {
				require.Len(t, a.Results, 2)
				assert.Equal(t, a.Results[0].RelevanceScore, a.Results[1].RelevanceScore)
				assert.Equal(t, []int{0, 1}, []int{a.Results[0].Index, a.Results[1].Index}, "ties keep document order")
			}},
		// Jina: return_documents defaults to true; usage.total_tokens and model.
		{name: "jina defaults", path: "/v1/rerank", status: 200, body: map[string]any{"model": "tiny", "query": q, "documents": docs, "top_n": 1},
			header: []string{"Authorization", "Bearer jina_anything"},
			check: func(t *testing.T, a answer) {
				require.Len(t, a.Results, 1)
				assert.JSONEq(t, js(map[string]string{"text": docs[a.Results[0].Index]}), string(a.Results[0].Document))
				require.NotNil(t, a.Usage)
				assert.Positive(t, a.Usage.TotalTokens)
				assert.Equal(t, "tiny", *a.Model)
			}},
		{name: "jina return_documents false", path: "/v1/rerank", status: 200, body: map[string]any{"query": q, "documents": docs, "return_documents": false},
			check: func(t *testing.T, a answer) {
				for _, r := range a.Results {
					assert.Nil(t, r.Document)
				}
			}},
		{name: "unknown model", path: "/v1/rerank", status: 404, body: map[string]any{"model": "rerank-v3.5", "query": q, "documents": docs},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Message, `model "rerank-v3.5" is not served here`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.exchange(t, "POST", tc.path, js(tc.body), tc.header...)
			require.Equal(t, tc.status, resp.StatusCode, body)
			var a answer
			require.NoError(t, json.Unmarshal([]byte(body), &a), body)
			tc.check(t, a)
		})
	}
}

// TestCohereLong: Cohere's long-document fields over the model's policy
// (V2RerankRequest.ts: max_tokens_per_doc "Defaults to 4096").
func TestCohereLong(t *testing.T) {
	n := func(v int) *int { return &v }
	chunk := crossencoder.LongPolicy{Mode: crossencoder.Chunk, MaxTokensPerDoc: 100}
	for _, tc := range []struct {
		name    string
		version int
		req     cohereRequest
		model   crossencoder.LongPolicy
		want    crossencoder.LongPolicy
		bad     bool
	}{
		{"v2 default cuts at 4096", 2, cohereRequest{}, crossencoder.LongPolicy{}, crossencoder.LongPolicy{MaxTokensPerDoc: DefaultMaxTokensPerDoc}, false},
		{"v2 given", 2, cohereRequest{MaxTokensPerDoc: n(32)}, crossencoder.LongPolicy{}, crossencoder.LongPolicy{MaxTokensPerDoc: 32}, false},
		{"v2 zero", 2, cohereRequest{MaxTokensPerDoc: n(0)}, crossencoder.LongPolicy{}, crossencoder.LongPolicy{}, true},
		{"v2 keeps a chunking model", 2, cohereRequest{}, chunk, chunk, false},
		{"v1 default is the model's", 1, cohereRequest{}, crossencoder.LongPolicy{}, crossencoder.LongPolicy{}, false},
		{"v1 max_chunks_per_doc chunks", 1, cohereRequest{MaxChunksPerDoc: n(3)}, chunk, crossencoder.LongPolicy{Mode: crossencoder.Chunk, MaxTokensPerDoc: 100, MaxChunksPerDoc: 3}, false},
		{"v1 ignores max_tokens_per_doc", 1, cohereRequest{MaxTokensPerDoc: n(7)}, crossencoder.LongPolicy{}, crossencoder.LongPolicy{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cohereLong(tc.version, tc.req, tc.model)
			if tc.bad {
				require.NotNil(t, err)
				assert.Equal(t, 400, err.status)
				return
			}
			require.Nil(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestCORS: browsers' cross-origin calls, as TEI's CorsLayer answers them
// (server.rs: methods GET and POST, any origin or a list), with none
// allowed unless told.
func TestCORS(t *testing.T) {
	body := `{"query":"q","texts":["a"]}`
	preflight := []string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,authorization"}
	for _, tc := range []struct {
		name          string
		allow         []string
		method, path  string
		body          string
		header        []string
		status        int
		allowOrigin   string
		allowsMethods bool
	}{
		{"none by default", nil, "POST", "/rerank", body, []string{"Origin", "https://app.example", "Authorization", "Bearer k"}, 200, "", false},
		{"any", []string{"*"}, "POST", "/rerank", body, []string{"Origin", "https://app.example", "Authorization", "Bearer k"}, 200, "*", false},
		{"listed", []string{"https://app.example"}, "POST", "/rerank", body, []string{"Origin", "https://app.example", "Authorization", "Bearer k"}, 200, "https://app.example", false},
		{"not listed", []string{"https://app.example"}, "POST", "/rerank", body, []string{"Origin", "https://evil.example", "Authorization", "Bearer k"}, 200, "", false},
		{"preflight needs no key", []string{"*"}, "OPTIONS", "/rerank", "", preflight, 200, "*", true},
		{"preflight from elsewhere", []string{"https://other.example"}, "OPTIONS", "/rerank", "", preflight, 401, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{APIKey: "k", CORSAllowOrigins: tc.allow}, crossencoder.Options{})
			resp, got := s.exchange(t, tc.method, tc.path, tc.body, tc.header...)
			assert.Equal(t, tc.status, resp.StatusCode, got)
			assert.Equal(t, tc.allowOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
			if tc.allowsMethods {
				assert.Equal(t, "GET,POST", resp.Header.Get("Access-Control-Allow-Methods"))
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "authorization")
			} else {
				assert.Empty(t, resp.Header.Get("Access-Control-Allow-Methods"))
			}
		})
	}
}
