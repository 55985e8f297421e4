// Package serve answers reranking requests over HTTP in the shapes RAG
// stacks already call: text-embeddings-inference (POST /rerank, POST
// /predict with (query, passage) pairs), Cohere (POST /v1/rerank, POST
// /v2/rerank) and Jina (POST /v1/rerank, the same body as Cohere's v1,
// with usage.total_tokens in the answer). Every
// request goes through crossencoder.Model, whose dynamic batcher puts the
// pairs of concurrent requests into shared forward passes, so that the
// scores are those of `rerank score` and `rerank eval`, bit for bit.
//
// Memory stays bounded: the pairs admitted at once are counted
// (MaxConcurrentRequests, beyond which a request gets 429), a request
// body is at most PayloadLimit bytes and holds at most MaxClientBatchSize
// documents, and a forward pass at most the model's MaxBatchTokens.
package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/internal/jsonl"
)

// Defaults, as text-embeddings-inference's.
const (
	DefaultMaxClientBatchSize    = 32
	DefaultMaxConcurrentRequests = 512
	DefaultPayloadLimit          = 2_000_000
)

// Options configure a Server.
type Options struct {
	// Model is the base model; ModelID the name it answers to (the
	// request's "model" field and GET /info), "" for its directory.
	Model   *crossencoder.Model
	ModelID string
	// Adapters are LoRA adapters over Model (crossencoder.WithAdapter),
	// by the name a request's "model" field picks them with.
	Adapters map[string]*crossencoder.Model
	// MaxClientBatchSize is the most documents of one request (422
	// beyond); 0 means DefaultMaxClientBatchSize.
	MaxClientBatchSize int
	// MaxConcurrentRequests is the most (query, document) pairs admitted
	// at once, queued or computing; a request that would pass it is
	// answered 429. 0 means DefaultMaxConcurrentRequests.
	MaxConcurrentRequests int
	// PayloadLimit is the most bytes of a request body (413 beyond); 0
	// means DefaultPayloadLimit.
	PayloadLimit int64
	// AutoTruncate truncates TEI requests that ask for truncate=false
	// instead of refusing their long inputs (TEI's --auto-truncate).
	AutoTruncate bool
	// APIKey, when set, must come as "Authorization: Bearer KEY" on every
	// route but TEI's public ones: GET /health, /ping, / and /metrics.
	APIKey string
	// CORSAllowOrigins are the origins a browser may call the server
	// from (TEI's --cors-allow-origin), "*" for any. TEI allows any
	// origin when none is given; here none is allowed then, so that a web
	// page cannot use a server on localhost unless told so.
	CORSAllowOrigins []string
	// Logger gets one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Registry gets the metrics; nil means a registry of the server's
	// own, which GET /metrics serves either way.
	Registry *prometheus.Registry
	// Version is reported by GET /info.
	Version string
}

// Server is the HTTP front of a model and its adapters.
type Server struct {
	o        Options
	log      *slog.Logger
	inflight atomic.Int64 // pairs admitted
	closing  atomic.Bool
	met      *metrics
	mux      *http.ServeMux
	ids      atomic.Uint64
	started  time.Time
	// accepted and answered count the requests that reached the handler
	// and those whose handler returned (a graceful shutdown leaves them
	// equal).
	accepted, answered atomic.Int64
	// id2label and label2id are the model's labels (labels), read once
	// for GET /info and /predict.
	id2label map[string]string
	label2id map[string]int
}

// New returns a server for o.Model. Pass metrics of the model's forward
// passes with ObservePass (crossencoder.Options.OnPass).
func New(o Options) (*Server, error) {
	if o.Model == nil {
		return nil, errors.New("serve: no model")
	}
	if o.MaxClientBatchSize == 0 {
		o.MaxClientBatchSize = DefaultMaxClientBatchSize
	}
	if o.MaxConcurrentRequests == 0 {
		o.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if o.PayloadLimit == 0 {
		o.PayloadLimit = DefaultPayloadLimit
	}
	if o.MaxClientBatchSize < 0 || o.MaxConcurrentRequests < 0 || o.PayloadLimit < 0 {
		return nil, errors.New("serve: the limits must not be negative")
	}
	if o.MaxClientBatchSize > o.MaxConcurrentRequests {
		return nil, fmt.Errorf("serve: max client batch size %d exceeds max concurrent requests %d: no request that large could ever be admitted",
			o.MaxClientBatchSize, o.MaxConcurrentRequests)
	}
	if o.ModelID == "" {
		o.ModelID = o.Model.Dir
	}
	for name := range o.Adapters {
		if name == "" || name == o.ModelID {
			return nil, fmt.Errorf("serve: adapter name %q is empty or the base model's", name)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{o: o, log: o.Logger, started: time.Now()}
	s.id2label, s.label2id = labels(o.Model)
	var err error
	if s.met, err = newMetrics(o.Registry, s.pending); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /rerank", s.api("tei", s.tei))
	// TEI serves a reranker's /rerank at / and /invocations too (AWS
	// SageMaker's route), and /predict for pairs.
	s.mux.HandleFunc("POST /{$}", s.api("tei", s.tei))
	s.mux.HandleFunc("POST /invocations", s.api("tei", s.tei))
	s.mux.HandleFunc("POST /predict", s.api("predict", s.predict))
	s.mux.HandleFunc("POST /v1/rerank", s.api("v1", s.cohereAt(1)))
	s.mux.HandleFunc("POST /v2/rerank", s.api("v2", s.cohereAt(2)))
	s.mux.HandleFunc("GET /v1/models", s.models)
	for _, p := range publicRoutes {
		s.mux.HandleFunc("GET "+p, s.health)
	}
	s.mux.HandleFunc("GET /info", s.info)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	return s, nil
}

// publicRoutes answer health checks (TEI's /health, the Inference API's
// GET / and SageMaker's /ping); with /metrics they need no API key, as in
// TEI.
var publicRoutes = []string{"/health", "/ping", "/{$}"}

// public reports whether a GET of path needs no API key.
func public(method, path string) bool {
	switch path {
	case "/health", "/ping", "/", "/metrics":
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// ObservePass records a forward pass in the metrics; give it to the
// model's crossencoder.Options.OnPass.
func (s *Server) ObservePass(p crossencoder.PassInfo) { s.met.observePass(p) }

// pending is the number of pairs waiting for a forward pass, all models.
func (s *Server) pending() float64 {
	n := s.o.Model.Pending()
	for _, m := range s.o.Adapters {
		n += m.Pending()
	}
	return float64(n)
}

// Handler returns the server's routes, with authentication, the body
// limit and the request log around them.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.accepted.Add(1)
		defer s.answered.Add(1)
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		if s.cors(rec, r) {
			// A preflight: answered before the key, which it never carries.
		} else if s.o.APIKey != "" && !public(r.Method, r.URL.Path) && r.Header.Get("Authorization") != "Bearer "+s.o.APIKey {
			writeJSON(rec, http.StatusUnauthorized, teiError{Error: "missing or wrong API key: send Authorization: Bearer KEY", ErrorType: "Unauthorized"})
		} else {
			r.Body = http.MaxBytesReader(rec, r.Body, s.o.PayloadLimit)
			s.mux.ServeHTTP(rec, r)
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)), slog.Int("pairs", rec.pairs), slog.String("model", rec.model),
			slog.String("error", rec.errMsg), slog.String("remote", r.RemoteAddr))
	})
}

// cors sets the CORS headers of a request from an allowed origin, as
// TEI's CorsLayer (methods GET and POST; headers Content-Type, and
// Authorization for --api-key), and answers a preflight itself: it
// reports whether it did.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.o.CORSAllowOrigins) == 0 {
		return false
	}
	h := w.Header()
	switch {
	case slices.Contains(s.o.CORSAllowOrigins, "*"):
		h.Set("Access-Control-Allow-Origin", "*")
	case slices.Contains(s.o.CORSAllowOrigins, origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	default:
		return false
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET,POST")
	h.Set("Access-Control-Allow-Headers", "content-type,authorization")
	w.WriteHeader(http.StatusOK)
	return true
}

// recorder keeps what the log line says about a response.
type recorder struct {
	http.ResponseWriter
	status       int
	pairs        int
	model        string
	errMsg       string
	wroteHeaders bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeaders {
		r.status, r.wroteHeaders = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: it stops accepting, answers every request already accepted
// (waiting up to grace), and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.closing.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// apiError is a failed request, in the words of every API shape.
type apiError struct {
	status int
	typ    string // TEI's error_type
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, typ, format string, args ...any) *apiError {
	return &apiError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

// teiError is TEI's error body.
type teiError struct {
	Error     string `json:"error"`
	ErrorType string `json:"error_type"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// As serde_json and Cohere write it: <, > and & as they are.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// api wraps a handler of one API shape: it counts the request, and
// writes its answer or its error in the shape's words.
func (s *Server) api(shape string, h func(r *http.Request, rec *recorder) (any, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := w.(*recorder)
		s.met.requests.WithLabelValues(shape).Inc()
		start := time.Now()
		out, aerr := h(r, rec)
		if aerr != nil {
			rec.errMsg = aerr.msg
			s.met.failures.WithLabelValues(shape, aerr.typ).Inc()
			if aerr.status == http.StatusTooManyRequests {
				// The clients' retry loops (cohere-ai, the AI SDK) wait
				// this long before trying again, rather than guessing.
				w.Header().Set("Retry-After", "1")
			}
			switch shape {
			case "tei", "predict":
				writeJSON(w, aerr.status, teiError{Error: aerr.msg, ErrorType: aerr.typ})
			case "v1":
				// Cohere's {"message"} and Jina's {"detail"} at once.
				writeJSON(w, aerr.status, map[string]string{"message": aerr.msg, "detail": aerr.msg})
			default:
				writeJSON(w, aerr.status, map[string]string{"message": aerr.msg})
			}
			return
		}
		s.met.successes.WithLabelValues(shape).Inc()
		s.met.duration.WithLabelValues(shape).Observe(time.Since(start).Seconds())
		writeJSON(w, http.StatusOK, out)
	}
}

// decode reads a JSON body into v.
func decode(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "Validation", "the request body exceeds the payload limit of %d bytes", tooBig.Limit)
		}
		return errorf(http.StatusBadRequest, "Validation", "reading the request body: %v", err)
	}
	return decodeBody(body, v)
}

// decodeBody parses a request body into v with the status codes of TEI's
// JSON extractor (axum's Json): a body that is not JSON is a 400, JSON of
// the wrong shape a 422, both Validation errors naming what is wrong;
// invalid UTF-8 is a 422 Tokenizer error.
func decodeBody(body []byte, v any) *apiError {
	if !utf8.Valid(body) {
		return errorf(http.StatusUnprocessableEntity, "Tokenizer", "tokenizer error: the request body is not valid UTF-8")
	}
	if err := jsonl.Check(body); err != nil {
		// A lone surrogate escape: serde_json (TEI) refuses it as a syntax
		// error, where encoding/json would read U+FFFD and score that.
		return errorf(http.StatusBadRequest, "Validation", "Failed to parse the request body as JSON: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body into the target type: `%s` must be %s, not a JSON %s", te.Field, jsonType(te.Type.String()), te.Value)
		case errors.As(err, &te):
			return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body into the target type: the body must be a JSON object, not a JSON %s", te.Value)
		case errors.As(err, &se), len(bytes.TrimSpace(body)) == 0:
			return errorf(http.StatusBadRequest, "Validation", "Failed to parse the request body as JSON: %v", err)
		}
		return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body into the target type: %v", err)
	}
	return nil
}

// jsonType names a Go type of a request field in JSON's words.
func jsonType(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "a string"
	case goType == "bool" || goType == "*bool":
		return "a boolean"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]"):
		return "an array"
	}
	return goType
}

// scoreReq is a request reduced to what every shape has.
type scoreReq struct {
	model *crossencoder.Model
	// query goes with every document, unless queries gives one per
	// document (TEI's /predict pairs).
	query   string
	queries []string
	docs    []string
	long    crossencoder.LongPolicy
	// cohere words the errors of a Cohere or Jina request (documents)
	// rather than TEI's (texts).
	cohere bool
}

// result is the score of one document.
type result struct {
	index  int
	score  float32
	tokens int
}

// scoreInfo is what a scored request cost, for TEI's x-* headers.
type scoreInfo struct {
	tokenize, queue, inference time.Duration
	tokens, chars              int
}

// pick returns the model a request's "model" field names.
func (s *Server) pick(name string) (*crossencoder.Model, *apiError) {
	if name == "" || name == s.o.ModelID {
		return s.o.Model, nil
	}
	if m, ok := s.o.Adapters[name]; ok {
		return m, nil
	}
	names := []string{s.o.ModelID}
	for n := range s.o.Adapters {
		names = append(names, n)
	}
	sort.Strings(names[1:])
	return nil, errorf(http.StatusNotFound, "Validation", "model %q is not served here; the models are %s (GET /v1/models)", name, strings.Join(names, ", "))
}

// score admits, tokenizes and scores a request; the results are in
// document order, with raw logits. Its errors are TEI's (a Backend error
// is 424); cohereError rewords them for Cohere.
func (s *Server) score(ctx context.Context, q scoreReq, rec *recorder) ([]result, scoreInfo, *apiError) {
	var info scoreInfo
	if len(q.docs) == 0 {
		if q.cohere {
			return nil, info, errorf(http.StatusBadRequest, "Empty", "invalid request: list of documents must not be empty")
		}
		return nil, info, errorf(http.StatusBadRequest, "Empty", "`texts` cannot be empty")
	}
	if len(q.docs) > s.o.MaxClientBatchSize {
		if q.cohere {
			return nil, info, errorf(http.StatusUnprocessableEntity, "Validation", "invalid request: %d documents, more than the %d this server takes in one request (rerank serve --max-client-batch-size)",
				len(q.docs), s.o.MaxClientBatchSize)
		}
		return nil, info, errorf(http.StatusUnprocessableEntity, "Validation", "batch size %d > maximum allowed batch size %d", len(q.docs), s.o.MaxClientBatchSize)
	}
	if s.closing.Load() {
		return nil, info, errorf(http.StatusServiceUnavailable, "Unhealthy", "the server is shutting down")
	}
	n := int64(len(q.docs))
	if s.inflight.Add(n) > int64(s.o.MaxConcurrentRequests) {
		s.inflight.Add(-n)
		return nil, info, errorf(http.StatusTooManyRequests, "Overloaded", "Model is overloaded")
	}
	defer s.inflight.Add(-n)
	rec.pairs, rec.model = len(q.docs), q.model.AdapterName()
	t0 := time.Now()
	docs := make([]crossencoder.Doc, len(q.docs))
	for i, d := range q.docs {
		query := q.query
		if q.queries != nil {
			query = q.queries[i]
		}
		info.chars += utf8.RuneCountInString(query) + utf8.RuneCountInString(d)
		enc, err := q.model.EncodeDoc(query, d, q.long)
		if err != nil {
			if errors.Is(err, crossencoder.ErrTooLong) {
				return nil, info, errorf(http.StatusUnprocessableEntity, "Validation", "Input validation error: text %d: %v (set truncate: true)", i, err)
			}
			return nil, info, errorf(http.StatusUnprocessableEntity, "Tokenizer", "tokenizer error: text %d: %v", i, err)
		}
		docs[i] = enc
	}
	info.tokenize = time.Since(t0)
	s.met.tokenize.Observe(info.tokenize.Seconds())
	var t crossencoder.Timing
	logits, err := q.model.ScoreDocs(ctx, docs, &t)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// The client has gone away: nobody reads this answer.
			return nil, info, errorf(499, "Backend", "the client closed the request: %v", err)
		case errors.Is(err, crossencoder.ErrClosed):
			return nil, info, errorf(http.StatusServiceUnavailable, "Unhealthy", "the model is closed")
		}
		return nil, info, errorf(http.StatusFailedDependency, "Backend", "Backend error: %v", err)
	}
	info.queue, info.inference = t.Queue, t.Inference
	s.met.queue.Observe(t.Queue.Seconds())
	s.met.inference.Observe(t.Inference.Seconds())
	out := make([]result, len(docs))
	for i := range docs {
		out[i] = result{index: i, score: logits[i], tokens: docs[i].Tokens()}
		info.tokens += out[i].tokens
	}
	return out, info, nil
}

// ranked sorts results best first and keeps the top n (all when n <= 0).
// Equal scores keep document order, or, with teiTies, come last document
// first, as TEI's sort-ascending-then-reverse leaves them.
func ranked(rs []result, n int, teiTies bool) []result {
	sort.SliceStable(rs, func(a, b int) bool {
		if rs[a].score == rs[b].score && teiTies {
			return rs[a].index > rs[b].index
		}
		return rs[a].score > rs[b].score
	})
	if n > 0 && n < len(rs) {
		rs = rs[:n]
	}
	return rs
}

// ---- operations ----

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
		Adapter bool   `json:"adapter"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list"}
	out.Data = append(out.Data, model{ID: s.o.ModelID, Object: "model", Created: s.started.Unix(), OwnedBy: "rerank"})
	names := make([]string, 0, len(s.o.Adapters))
	for n := range s.o.Adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Data = append(out.Data, model{ID: n, Object: "model", Created: s.started.Unix(), OwnedBy: "rerank", Adapter: true})
	}
	writeJSON(w, http.StatusOK, out)
}

// health scores one pair: 200 when the model answers, 503 when it does
// not or the server is shutting down.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, teiError{Error: "the server is shutting down", ErrorType: "Unhealthy"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if _, err := s.o.Model.Rerank(ctx, "health", []string{"check"}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, teiError{Error: "the model does not answer: " + err.Error(), ErrorType: "Unhealthy"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// labels are the model's id2label and label2id, from its config.json
// when it has them, else transformers' defaults (LABEL_0, ...).
func labels(m *crossencoder.Model) (id2label map[string]string, label2id map[string]int) {
	id2label, label2id = map[string]string{}, map[string]int{}
	for i := range m.Net.Cfg.NumLabels {
		l := fmt.Sprintf("LABEL_%d", i)
		id2label[fmt.Sprint(i)], label2id[l] = l, i
	}
	if c := m.HFConfig; c != nil {
		if raw, ok := c.Raw["id2label"]; ok {
			var v map[string]string
			if json.Unmarshal(raw, &v) == nil && len(v) > 0 {
				id2label = v
			}
		}
		if raw, ok := c.Raw["label2id"]; ok {
			var v map[string]int
			if json.Unmarshal(raw, &v) == nil && len(v) > 0 {
				label2id = v
			}
		}
	}
	return id2label, label2id
}

// info answers GET /info in TEI's shape (router/src/lib.rs, Info).
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	m := s.o.Model
	mo := m.Options()
	maxTok := mo.MaxBatchTokens
	if maxTok == 0 {
		maxTok = crossencoder.DefaultMaxBatchTokens
	}
	var maxReq *int
	if mo.BatchSize > 0 {
		maxReq = &mo.BatchSize
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model_id":                s.o.ModelID,
		"served_model_name":       s.o.ModelID,
		"model_sha":               nil,
		"model_dtype":             "float32",
		"model_type":              map[string]any{"reranker": map[string]any{"id2label": s.id2label, "label2id": s.label2id}},
		"max_concurrent_requests": s.o.MaxConcurrentRequests,
		"max_input_length":        m.MaxLen(),
		"max_batch_tokens":        maxTok,
		"max_batch_requests":      maxReq,
		"max_client_batch_size":   s.o.MaxClientBatchSize,
		"auto_truncate":           s.o.AutoTruncate,
		"tokenization_workers":    runtime.GOMAXPROCS(0), // each request tokenizes on its own goroutine
		"version":                 s.o.Version,
		"sha":                     nil,
		"docker_label":            nil,
	})
}
