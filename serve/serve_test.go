package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

// tinyModel is a random tiny BERT cross-encoder with one LoRA adapter,
// made once for the package's tests.
func tinyModel(t testing.TB) (model, adapter string) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = makeFixture()
	})
	require.NoError(t, fixtureErr)
	return filepath.Join(fixtureDir, "tiny"), filepath.Join(fixtureDir, "adapter")
}

func makeFixture() (string, error) {
	dir, err := makeTemp()
	if err != nil {
		return "", err
	}
	model := filepath.Join(dir, "tiny")
	if _, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT,
		Tokenizer: filepath.Join("..", "examples", "bert-uncased-tokenizer"), Output: model, Seed: 7}); err != nil {
		return "", err
	}
	net, _, err := hfmodel.Load(cpu.New(), model, hfmodel.LoadOptions{})
	if err != nil {
		return "", err
	}
	cfg := lora.DefaultConfig()
	cfg.Init = lora.InitRandom
	ad, err := lora.Attach(net, cfg, 5)
	if err != nil {
		return "", err
	}
	return dir, ad.Save(filepath.Join(dir, "adapter"), model)
}

// server is a running server on a loopback port.
type server struct {
	*Server
	url    string
	model  *crossencoder.Model
	stop   context.CancelFunc
	done   chan error
	client *http.Client
}

// start serves the tiny model (and its adapter as "ad") with o's limits.
func start(t *testing.T, o Options, mo crossencoder.Options) *server {
	t.Helper()
	model, adapter := tinyModel(t)
	if mo.MaxLen == 0 {
		mo.MaxLen = 64
	}
	var srv *Server
	mo.OnPass = func(p crossencoder.PassInfo) {
		if srv != nil {
			srv.ObservePass(p)
		}
	}
	m, err := crossencoder.Load(cpu.New(), model, mo)
	require.NoError(t, err)
	v, err := m.WithAdapter("ad", adapter)
	require.NoError(t, err)
	o.Model, o.ModelID, o.Adapters = m, "tiny", map[string]*crossencoder.Model{"ad": v}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err = New(o)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{Server: srv, url: "http://" + ln.Addr().String(), model: m, stop: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}}
	go func() { s.done <- srv.Serve(ctx, ln, 30*time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
		m.Close()
	})
	return s
}

// post sends a JSON body and returns the status and body.
func (s *server) post(t testing.TB, path, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func (s *server) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := s.client.Get(s.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// offline scores passages with a model of its own, as `rerank score`
// does.
func offline(t testing.TB, adapter bool, query string, docs []string) []float32 {
	t.Helper()
	model, ad := tinyModel(t)
	m, err := crossencoder.Load(cpu.New(), model, crossencoder.Options{MaxLen: 64})
	require.NoError(t, err)
	defer m.Close()
	if adapter {
		m, err = m.WithAdapter("ad", ad)
		require.NoError(t, err)
	}
	s, err := m.Rerank(context.Background(), query, docs)
	require.NoError(t, err)
	return s
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGoldenBodies: each API shape answers a request with exactly the
// body its documentation gives: field names, order, ranking, top_n,
// returned documents, scores (sigmoid or raw logits) and token counts.
func TestGoldenBodies(t *testing.T) {
	s := start(t, Options{}, crossencoder.Options{})
	q := "what is a wing"
	docs := []string{"A wing generates lift.", "Heat transfer in slabs.", "wings and lift and drag"}
	raw := offline(t, false, q, docs)
	withAd := offline(t, true, q, docs)
	sig := func(x float32) float32 { return crossencoder.Sigmoid(x) }
	order := func(sc []float32) []int {
		idx := []int{0, 1, 2}
		for i := range idx {
			for k := i + 1; k < len(idx); k++ {
				if sc[idx[k]] > sc[idx[i]] {
					idx[i], idx[k] = idx[k], idx[i]
				}
			}
		}
		return idx
	}
	o, oa := order(raw), order(withAd)
	m := s.model
	tokens := 0
	for _, d := range docs {
		e, err := m.Encode(q, d)
		require.NoError(t, err)
		tokens += e.Len()
	}

	// TEI, sigmoid scores.
	status, body := s.post(t, "/rerank", js(map[string]any{"query": q, "texts": docs}))
	require.Equal(t, 200, status, body)
	want := fmt.Sprintf(`[{"index":%d,"score":%s},{"index":%d,"score":%s},{"index":%d,"score":%s}]`+"\n",
		o[0], js(sig(raw[o[0]])), o[1], js(sig(raw[o[1]])), o[2], js(sig(raw[o[2]])))
	assert.Equal(t, want, body)
	// TEI, raw scores and texts.
	_, body = s.post(t, "/rerank", js(map[string]any{"query": q, "texts": docs, "raw_scores": true, "return_text": true, "truncate": true}))
	want = fmt.Sprintf(`[{"index":%d,"text":%s,"score":%s},{"index":%d,"text":%s,"score":%s},{"index":%d,"text":%s,"score":%s}]`+"\n",
		o[0], js(docs[o[0]]), js(raw[o[0]]), o[1], js(docs[o[1]]), js(raw[o[1]]), o[2], js(docs[o[2]]), js(raw[o[2]]))
	assert.Equal(t, want, body)

	// Cohere v1 / Jina: {"text"} documents, top_n, documents returned by
	// default, the adapter picked by "model".
	status, body = s.post(t, "/v1/rerank", js(map[string]any{"model": "ad", "query": q, "top_n": 2,
		"documents": []any{docs[0], map[string]string{"text": docs[1]}, docs[2]}}))
	require.Equal(t, 200, status, body)
	var v1 map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &v1))
	id := v1["id"].(string)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$`, id)
	want = fmt.Sprintf(`{"id":%q,"results":[{"index":%d,"relevance_score":%s,"document":{"text":%s}},{"index":%d,"relevance_score":%s,"document":{"text":%s}}],`+
		`"meta":{"api_version":{"version":"1"},"billed_units":{"search_units":1},"tokens":{"input_tokens":%d,"output_tokens":0}},"model":"ad","usage":{"total_tokens":%d}}`+"\n",
		id, oa[0], js(sig(withAd[oa[0]])), js(docs[oa[0]]), oa[1], js(sig(withAd[oa[1]])), js(docs[oa[1]]), tokens, tokens)
	assert.Equal(t, want, body)

	// Cohere v2: strings, no documents unless asked, the base model.
	status, body = s.post(t, "/v2/rerank", js(map[string]any{"model": "tiny", "query": q, "documents": docs, "top_n": 1}))
	require.Equal(t, 200, status, body)
	var v2 map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &v2))
	want = fmt.Sprintf(`{"id":%q,"results":[{"index":%d,"relevance_score":%s}],`+
		`"meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1},"tokens":{"input_tokens":%d,"output_tokens":0}}}`+"\n",
		v2["id"], o[0], js(sig(raw[o[0]])), tokens)
	assert.Equal(t, want, body)

	// Operations.
	status, body = s.get(t, "/v1/models")
	assert.Equal(t, 200, status)
	assert.Contains(t, body, `{"id":"tiny","object":"model"`)
	assert.Contains(t, body, `{"id":"ad","object":"model"`)
	status, body = s.get(t, "/info")
	assert.Equal(t, 200, status)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, "tiny", info["model_id"])
	assert.EqualValues(t, 64, info["max_input_length"])
	assert.EqualValues(t, crossencoder.DefaultMaxBatchTokens, info["max_batch_tokens"])
	assert.EqualValues(t, DefaultMaxClientBatchSize, info["max_client_batch_size"])
	assert.EqualValues(t, DefaultMaxConcurrentRequests, info["max_concurrent_requests"])
	assert.Contains(t, body, `"model_type":{"reranker":{"id2label":{"0":"LABEL_0"}`)
	status, _ = s.get(t, "/health")
	assert.Equal(t, 200, status)
	status, body = s.get(t, "/metrics")
	assert.Equal(t, 200, status)
	for _, name := range []string{`rerank_request_count{api="tei"} 2`, `rerank_request_success{api="v1"} 1`, "rerank_queue_size 0",
		"rerank_request_tokenization_duration_seconds_count", "rerank_request_queue_duration_seconds_count",
		"rerank_request_inference_duration_seconds_count", "rerank_batch_size_count", "rerank_batch_tokens_count"} {
		assert.Contains(t, body, name)
	}
}

// TestErrorCodes: every error a client can cause, with its code and the
// body of its API shape.
func TestErrorCodes(t *testing.T) {
	s := start(t, Options{MaxClientBatchSize: 4, MaxConcurrentRequests: 8, PayloadLimit: 4000, APIKey: "k"}, crossencoder.Options{})
	auth := []string{"Authorization", "Bearer k"}
	long := strings.Repeat("lift ", 100)
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
		header           []string
	}{
		{"no api key", "/rerank", `{"query":"q","texts":["a"]}`, 401, `"error_type":"Unauthorized"`, nil},
		{"wrong api key", "/rerank", `{"query":"q","texts":["a"]}`, 401, `"error_type":"Unauthorized"`, []string{"Authorization", "Bearer x"}},
		{"empty texts", "/rerank", `{"query":"q","texts":[]}`, 400, `{"error":"` + "`texts`" + ` cannot be empty","error_type":"Empty"}`, auth},
		{"too many texts", "/rerank", `{"query":"q","texts":["a","b","c","d","e"]}`, 422, `{"error":"batch size 5 > maximum allowed batch size 4","error_type":"Validation"}`, auth},
		{"too long, truncation off", "/rerank", js(map[string]any{"query": "q", "texts": []string{long}}), 422, `input too long: the pair has 104 tokens and the model takes at most 64 (set truncate: true)","error_type":"Validation"}`, auth},
		{"too long, truncated", "/rerank", js(map[string]any{"query": "q", "texts": []string{long}, "truncate": true}), 200, `"index":0`, auth},
		{"tokenizer", "/rerank", "{\"query\":\"q\",\"texts\":[\"\xff\"]}", 422, `"error_type":"Tokenizer"`, auth},
		// serde_json, and so TEI, refuses a lone surrogate escape as a JSON
		// syntax error; encoding/json alone would score U+FFFD.
		{"lone surrogate", "/rerank", `{"query":"q","texts":["a\ud800"]}`, 400, `Failed to parse the request body as JSON: field \"texts\": byte 25: lone UTF-16 surrogate \\ud800`, auth},
		{"cohere lone surrogate", "/v2/rerank", `{"query":"\udc00","documents":["a"]}`, 400, `lone UTF-16 surrogate`, auth},
		{"missing query", "/rerank", `{"texts":["a"]}`, 422, "missing field `query`", auth},
		{"wrong type", "/rerank", `{"query":"q","texts":"a"}`, 422, "`texts` must be an array, not a JSON string", auth},
		{"bad direction", "/rerank", `{"query":"q","texts":["a"],"truncation_direction":"up"}`, 422, "truncation_direction", auth},
		{"payload limit", "/rerank", js(map[string]any{"query": "q", "texts": []string{strings.Repeat("x", 5000)}}), 413, "payload limit of 4000 bytes", auth},
		{"cohere empty", "/v2/rerank", `{"query":"q","documents":[]}`, 400, `{"message":"invalid request: list of documents must not be empty"}`, auth},
		{"cohere no query", "/v1/rerank", `{"documents":["a"]}`, 400, `{"detail":"invalid request: query is required","message":"invalid request: query is required"}`, auth},
		{"cohere object without text", "/v2/rerank", `{"query":"q","documents":[{"title":"a"}]}`, 400, `document 0 has no \"text\" string`, auth},
		{"cohere top_n", "/v2/rerank", `{"query":"q","documents":["a"],"top_n":0}`, 400, "top_n must be at least 1", auth},
		{"cohere unknown model", "/v1/rerank", `{"model":"big","query":"q","documents":["a"]}`, 404, `model \"big\" is not served here; the models are tiny, ad`, auth},
		{"cohere too many", "/v1/rerank", `{"query":"q","documents":["a","b","c","d","e"]}`, 400, "5 documents, more than the 4 this server takes in one request", auth},
		{"cohere chunks", "/v1/rerank", js(map[string]any{"query": "q", "documents": []string{long}, "max_chunks_per_doc": 2}), 200, `"relevance_score"`, auth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.post(t, tc.path, tc.body, tc.header...)
			assert.Equal(t, tc.status, status, body)
			assert.Contains(t, body, tc.want)
		})
	}
	status, _ := s.get(t, "/health")
	assert.Equal(t, 200, status, "/health needs no key")

	// 429: the pairs admitted are at the bound.
	s.inflight.Add(6)
	status, body := s.post(t, "/rerank", `{"query":"q","texts":["a","b","c"]}`, auth...)
	assert.Equal(t, 429, status)
	assert.Equal(t, `{"error":"Model is overloaded","error_type":"Overloaded"}`+"\n", body)
	for _, path := range []string{"/rerank", "/v2/rerank"} {
		resp, _ := s.exchange(t, "POST", path, `{"query":"q","texts":["a","b","c"],"documents":["a","b","c"]}`, auth...)
		assert.Equal(t, 429, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"), "%s: RFC 9110 Retry-After, which cohere-ai's and the AI SDK's retries read", path)
	}
	status, _ = s.post(t, "/rerank", `{"query":"q","texts":["a","b"]}`, auth...)
	assert.Equal(t, 200, status, "two more pairs fit")
	s.inflight.Add(-6)

	// 503: the model is gone.
	require.NoError(t, s.model.Close())
	status, body = s.get(t, "/health")
	assert.Equal(t, 503, status)
	assert.Contains(t, body, `"error_type":"Unhealthy"`)
	status, body = s.post(t, "/rerank", `{"query":"q","texts":["a"]}`, auth...)
	assert.Equal(t, 503, status)
	assert.Contains(t, body, `"error_type":"Unhealthy"`)
}

// loadDocs is a pool of passages for the load tests.
func loadDocs() []string {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("aspirin heart attack risk river calm the of blocked arteries wing lift drag thrust")
	out := make([]string, 64)
	for i := range out {
		var b strings.Builder
		for range 1 + rng.IntN(40) {
			b.WriteString(words[rng.IntN(len(words))] + " ")
		}
		out[i] = b.String()
	}
	return out
}

// TestConcurrentClients: 64 clients × 20 requests, every answer 200 and
// equal, to the bit, to scoring the same pairs offline.
func TestConcurrentClients(t *testing.T) {
	s := start(t, Options{}, crossencoder.Options{})
	docs := loadDocs()
	q := "does aspirin lower the risk of a heart attack"
	want := offline(t, false, q, docs)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for range 20 {
				idx := rng.Perm(len(docs))[:1+rng.IntN(8)]
				texts := make([]string, len(idx))
				for k, i := range idx {
					texts[k] = docs[i]
				}
				resp, err := s.client.Post(s.url+"/rerank", "application/json",
					strings.NewReader(js(map[string]any{"query": q, "texts": texts, "raw_scores": true, "truncate": true})))
				if err != nil {
					errs <- err
					return
				}
				var ranks []struct {
					Index int
					Score float32
				}
				err = json.NewDecoder(resp.Body).Decode(&ranks)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || len(ranks) != len(texts) {
					errs <- fmt.Errorf("status %d, %d ranks, %v", resp.StatusCode, len(ranks), err)
					return
				}
				for _, r := range ranks {
					if r.Score != want[idx[r.Index]] {
						errs <- fmt.Errorf("doc %d: served %v, offline %v", idx[r.Index], r.Score, want[idx[r.Index]])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, body := s.get(t, "/metrics")
	assert.Contains(t, body, `rerank_request_success{api="tei"} 1280`)
}

// TestOverload: far more clients than admitted pairs: the excess is
// answered 429, the rest correctly, and the heap stays bounded.
func TestOverload(t *testing.T) {
	s := start(t, Options{MaxConcurrentRequests: 16, MaxClientBatchSize: 8}, crossencoder.Options{})
	docs := loadDocs()
	q := "wing lift"
	want := offline(t, false, q, docs[:8])
	// The live heap (after each collection) is what the process needs;
	// garbage not yet collected is not.
	// What the process held before (earlier tests' leftovers included) is
	// the baseline.
	runtime.GC()
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak uint64
	var queued float64 // the most pairs ever waiting in the model's queue
	stop := make(chan struct{})
	var mwg sync.WaitGroup
	mwg.Add(1)
	go func() {
		defer mwg.Done()
		for {
			rtmetrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			queued = max(queued, s.pending())
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	body := js(map[string]any{"query": q, "texts": docs[:8], "raw_scores": true, "truncate": true})
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				status, b := s.post(t, "/rerank", body)
				mu.Lock()
				counts[status]++
				mu.Unlock()
				if status == 200 {
					var ranks []struct {
						Index int
						Score float32
					}
					if assert.NoError(t, json.Unmarshal([]byte(b), &ranks)) {
						for _, r := range ranks {
							assert.Equal(t, want[r.Index], r.Score)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	mwg.Wait()
	t.Logf("statuses %v, live heap %d MiB before, %d MiB at most, at most %v pairs queued", counts, base>>20, peak>>20, queued)
	assert.LessOrEqual(t, queued, 16.0, "no more pairs wait than are admitted")
	assert.Equal(t, 480, counts[200]+counts[429], "every answer is 200 or 429")
	assert.Positive(t, counts[429], "overload is answered 429")
	assert.Positive(t, counts[200])
	assert.Less(t, peak-min(peak, base), uint64(128<<20), "the live heap stays bounded")
	assert.Zero(t, s.inflight.Load())
}

// TestGracefulShutdown: cancelling the server (what SIGTERM does in
// rerank serve) during load answers every request it accepted, and Serve
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	s := start(t, Options{}, crossencoder.Options{})
	docs := loadDocs()
	body := js(map[string]any{"query": "wing", "texts": docs[:16], "truncate": true})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var ok200 int
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				resp, err := s.client.Post(s.url+"/rerank", "application/json", strings.NewReader(body))
				if err != nil {
					return // refused: the server no longer accepts
				}
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == 200 && rerr == nil && bytes.HasPrefix(b, []byte("[{")) {
					ok200++
				}
				mu.Unlock()
			}
		}()
	}
	// Signal once several requests are in flight.
	var inFlight int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if inFlight = s.accepted.Load() - s.answered.Load(); inFlight >= 4 {
			break
		}
	}
	s.stop()
	require.NoError(t, <-s.done)
	s.done <- nil // for the cleanup
	wg.Wait()
	t.Logf("statuses %v; %d in flight at the signal; accepted %d, answered %d", statuses, inFlight, s.accepted.Load(), s.answered.Load())
	assert.Positive(t, inFlight, "the shutdown came during load")
	assert.Equal(t, s.accepted.Load(), s.answered.Load(), "every accepted request is handled")
	got := 0
	for _, n := range statuses {
		got += n
	}
	assert.EqualValues(t, s.accepted.Load(), got, "every accepted request's answer reaches its client")
	assert.Positive(t, statuses[200])
	assert.Equal(t, statuses[200], ok200, "every 200 carries a whole body")
	for code := range statuses {
		assert.Contains(t, []int{200, 503}, code)
	}
}

// FuzzDecode: no request body makes a decoder panic, and a body that
// decodes leaves the fields a handler reads well formed.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"query":"q","texts":["a","b"],"truncate":true,"truncation_direction":"Left","raw_scores":true,"return_text":true}`,
		`{"model":"ad","query":"q","documents":["a",{"text":"b"}],"top_n":1,"return_documents":false,"max_chunks_per_doc":2}`,
		`{"query":"q","documents":["a"],"max_tokens_per_doc":10}`,
		`{"query":null,"texts":null}`, `[]`, `{"documents":[{"x":1}]}`, "{\"query\":\"\xff\"}", `{"top_n":1e400}`, ``, `{"query":"\ud800","texts":["a"]}`,
		`{"query":"q","documents":[{"title":"t","text":"a","n":3}],"rank_fields":["title","n"]}`,
		`{"inputs":["q","p"]}`, `{"inputs":[["q","p"],["q"]]}`, `{"inputs":"q"}`, `{"inputs":[]}`, `{"inputs":[["a","b","c"]]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var tei teiRequest
		if decodeBody(body, &tei) == nil && tei.Query != nil && tei.Texts != nil {
			_ = len(*tei.Query) + len(*tei.Texts)
		}
		var co cohereRequest
		if err := decodeBody(body, &co); err == nil {
			for _, fields := range [][]string{nil, co.RankFields, {"title", "text"}} {
				docs, err := parseDocuments(co.Documents, fields)
				if err != nil {
					assert.Equal(t, 400, err.status)
					continue
				}
				for _, d := range docs {
					assert.True(t, json.Valid(d.out()), "a returned document is JSON")
				}
			}
		} else {
			assert.Contains(t, []int{400, 422}, err.status)
		}
		var pr predictRequest
		if decodeBody(body, &pr) == nil {
			qs, ps, _, err := predictInputs(pr.Inputs)
			if err != nil {
				assert.Equal(t, 422, err.status)
			} else {
				assert.Equal(t, len(qs), len(ps))
				assert.NotEmpty(t, qs)
			}
		}
	})
}

func makeTemp() (string, error) { return os.MkdirTemp("", "serve-test") }

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}
