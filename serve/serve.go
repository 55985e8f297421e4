// Package serve answers reranking requests over HTTP in the shapes RAG
// stacks already call: text-embeddings-inference (POST /rerank), Cohere
// (POST /v1/rerank, POST /v2/rerank) and Jina (POST /v1/rerank, the same
// body as Cohere's v1, with usage.total_tokens in the answer). Every
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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rerank-go/rerank/crossencoder"
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
	// route but /health.
	APIKey string
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
	var err error
	if s.met, err = newMetrics(o.Registry, s.pending); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /rerank", s.api("tei", s.tei))
	s.mux.HandleFunc("POST /v1/rerank", s.api("v1", s.cohereV1))
	s.mux.HandleFunc("POST /v2/rerank", s.api("v2", s.cohereV2))
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /info", s.info)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	return s, nil
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
		if s.o.APIKey != "" && r.URL.Path != "/health" && r.Header.Get("Authorization") != "Bearer "+s.o.APIKey {
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
	_ = json.NewEncoder(w).Encode(v)
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
			switch shape {
			case "tei":
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

// decodeBody parses a request body into v: any JSON error is a 422
// Validation error naming what is wrong, invalid UTF-8 a 422 Tokenizer
// error.
func decodeBody(body []byte, v any) *apiError {
	if !utf8.Valid(body) {
		return errorf(http.StatusUnprocessableEntity, "Tokenizer", "tokenizer error: the request body is not valid UTF-8")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body: field `%s` must be %s, not a JSON %s", te.Field, te.Type, te.Value)
		}
		return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body: %v", err)
	}
	return nil
}

// scoreReq is a request reduced to what every shape has.
type scoreReq struct {
	model *crossencoder.Model
	query string
	docs  []string
	long  crossencoder.LongPolicy
}

// result is the score of one document.
type result struct {
	index  int
	score  float32
	tokens int
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
// document order, with raw logits.
func (s *Server) score(ctx context.Context, q scoreReq, rec *recorder) ([]result, *apiError) {
	if len(q.docs) == 0 {
		return nil, errorf(http.StatusBadRequest, "Empty", "Input validation error: `texts` cannot be empty")
	}
	if len(q.docs) > s.o.MaxClientBatchSize {
		return nil, errorf(http.StatusUnprocessableEntity, "Validation", "Input validation error: `texts` must have less than %d elements. Given: %d",
			s.o.MaxClientBatchSize, len(q.docs))
	}
	if s.closing.Load() {
		return nil, errorf(http.StatusServiceUnavailable, "Unhealthy", "the server is shutting down")
	}
	n := int64(len(q.docs))
	if s.inflight.Add(n) > int64(s.o.MaxConcurrentRequests) {
		s.inflight.Add(-n)
		return nil, errorf(http.StatusTooManyRequests, "Overloaded", "Model is overloaded")
	}
	defer s.inflight.Add(-n)
	rec.pairs, rec.model = len(q.docs), q.model.AdapterName()
	t0 := time.Now()
	docs := make([]crossencoder.Doc, len(q.docs))
	for i, d := range q.docs {
		enc, err := q.model.EncodeDoc(q.query, d, q.long)
		if err != nil {
			if errors.Is(err, crossencoder.ErrTooLong) {
				return nil, errorf(http.StatusUnprocessableEntity, "Validation", "Input validation error: text %d: %v (set truncate: true)", i, err)
			}
			return nil, errorf(http.StatusUnprocessableEntity, "Tokenizer", "tokenizer error: text %d: %v", i, err)
		}
		docs[i] = enc
	}
	s.met.tokenize.Observe(time.Since(t0).Seconds())
	var t crossencoder.Timing
	logits, err := q.model.ScoreDocs(ctx, docs, &t)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// The client has gone away: nobody reads this answer.
			return nil, errorf(499, "Backend", "the client closed the request: %v", err)
		case errors.Is(err, crossencoder.ErrClosed):
			return nil, errorf(http.StatusServiceUnavailable, "Unhealthy", "the model is closed")
		}
		return nil, errorf(http.StatusInternalServerError, "Backend", "Backend error: %v", err)
	}
	s.met.queue.Observe(t.Queue.Seconds())
	s.met.inference.Observe(t.Inference.Seconds())
	out := make([]result, len(docs))
	for i := range docs {
		out[i] = result{index: i, score: logits[i], tokens: docs[i].Tokens()}
	}
	return out, nil
}

// ranked sorts results best first (equal scores keep document order) and
// keeps the top n (all when n <= 0).
func ranked(rs []result, n int) []result {
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].score > rs[b].score })
	if n > 0 && n < len(rs) {
		rs = rs[:n]
	}
	return rs
}

// ---- text-embeddings-inference ----

type teiRequest struct {
	Query               *string  `json:"query"`
	Texts               []string `json:"texts"`
	Truncate            *bool    `json:"truncate"`
	TruncationDirection string   `json:"truncation_direction"`
	RawScores           bool     `json:"raw_scores"`
	ReturnText          bool     `json:"return_text"`
}

type teiRank struct {
	Index int     `json:"index"`
	Text  *string `json:"text,omitempty"`
	Score float32 `json:"score"`
}

func (s *Server) tei(r *http.Request, rec *recorder) (any, *apiError) {
	var req teiRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Query == nil {
		return nil, errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body: missing field `query`")
	}
	long := s.o.Model.Options().Long
	switch strings.ToLower(req.TruncationDirection) {
	case "", "right":
	case "left":
		long = crossencoder.LongPolicy{Left: true}
	default:
		return nil, errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body: truncation_direction %q: want Right or Left", req.TruncationDirection)
	}
	if !(req.Truncate != nil && *req.Truncate) && !s.o.AutoTruncate {
		long = crossencoder.LongPolicy{Mode: crossencoder.Reject}
	}
	rs, aerr := s.score(r.Context(), scoreReq{model: s.o.Model, query: *req.Query, docs: req.Texts, long: long}, rec)
	if aerr != nil {
		return nil, aerr
	}
	out := make([]teiRank, 0, len(rs))
	for _, x := range ranked(rs, 0) {
		sc := x.score
		if !req.RawScores {
			sc = crossencoder.Sigmoid(sc)
		}
		rk := teiRank{Index: x.index, Score: sc}
		if req.ReturnText {
			rk.Text = &req.Texts[x.index]
		}
		out = append(out, rk)
	}
	return out, nil
}

// ---- Cohere v1 / Jina, Cohere v2 ----

// document is a Cohere v1 document: a string or {"text": ...}.
type document struct{ Text string }

func (d *document) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &d.Text)
	}
	var obj struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &obj); err != nil || obj.Text == nil {
		return errors.New(`a document is a string or an object with a "text" string`)
	}
	d.Text = *obj.Text
	return nil
}

type cohereRequest struct {
	Model           string          `json:"model"`
	Query           *string         `json:"query"`
	Documents       json.RawMessage `json:"documents"`
	TopN            *int            `json:"top_n"`
	ReturnDocuments *bool           `json:"return_documents"`
	MaxChunksPerDoc *int            `json:"max_chunks_per_doc"`
	MaxTokensPerDoc *int            `json:"max_tokens_per_doc"`
}

type cohereResult struct {
	Index          int           `json:"index"`
	RelevanceScore float32       `json:"relevance_score"`
	Document       *cohereDocOut `json:"document,omitempty"`
}

type cohereDocOut struct {
	Text string `json:"text"`
}

type cohereMeta struct {
	APIVersion struct {
		Version string `json:"version"`
	} `json:"api_version"`
	BilledUnits struct {
		SearchUnits int `json:"search_units"`
	} `json:"billed_units"`
	Tokens struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"tokens"`
}

type cohereResponse struct {
	ID      string         `json:"id"`
	Results []cohereResult `json:"results"`
	Meta    cohereMeta     `json:"meta"`
	// Jina's fields, on /v1/rerank only.
	Model *string    `json:"model,omitempty"`
	Usage *jinaUsage `json:"usage,omitempty"`
}

type jinaUsage struct {
	TotalTokens int `json:"total_tokens"`
}

func (s *Server) cohereV1(r *http.Request, rec *recorder) (any, *apiError) {
	return s.cohere(r, rec, 1)
}

func (s *Server) cohereV2(r *http.Request, rec *recorder) (any, *apiError) {
	return s.cohere(r, rec, 2)
}

func (s *Server) cohere(r *http.Request, rec *recorder, version int) (any, *apiError) {
	var req cohereRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) *apiError {
		return errorf(http.StatusBadRequest, "Validation", format, args...)
	}
	if req.Query == nil {
		return nil, bad("invalid request: query is required")
	}
	var docs []string
	if version == 1 {
		var ds []document
		if err := json.Unmarshal(req.Documents, &ds); err != nil || req.Documents == nil {
			return nil, bad("invalid request: documents must be a list of strings or of {\"text\": string} objects")
		}
		for _, d := range ds {
			docs = append(docs, d.Text)
		}
	} else if err := json.Unmarshal(req.Documents, &docs); err != nil || req.Documents == nil {
		return nil, bad("invalid request: documents must be a list of strings")
	}
	if len(docs) == 0 {
		return nil, errorf(http.StatusBadRequest, "Empty", "invalid request: documents must not be empty")
	}
	if req.TopN != nil && *req.TopN < 1 {
		return nil, bad("invalid request: top_n must be at least 1")
	}
	m, aerr := s.pick(req.Model)
	if aerr != nil {
		return nil, aerr
	}
	long := m.Options().Long
	switch {
	case version == 1 && req.MaxChunksPerDoc != nil:
		if *req.MaxChunksPerDoc < 1 {
			return nil, bad("invalid request: max_chunks_per_doc must be at least 1")
		}
		long = crossencoder.LongPolicy{Mode: crossencoder.Chunk, MaxTokensPerDoc: long.MaxTokensPerDoc, MaxChunksPerDoc: *req.MaxChunksPerDoc}
	case version == 2 && req.MaxTokensPerDoc != nil:
		if *req.MaxTokensPerDoc < 1 {
			return nil, bad("invalid request: max_tokens_per_doc must be at least 1")
		}
		long = crossencoder.LongPolicy{MaxTokensPerDoc: *req.MaxTokensPerDoc}
	}
	rs, aerr := s.score(r.Context(), scoreReq{model: m, query: *req.Query, docs: docs, long: long}, rec)
	if aerr != nil {
		if aerr.status == http.StatusUnprocessableEntity {
			aerr.status = http.StatusBadRequest // Cohere answers 400 to bad input
		}
		return nil, aerr
	}
	tokens := 0
	for _, x := range rs {
		tokens += x.tokens
	}
	topN := 0
	if req.TopN != nil {
		topN = *req.TopN
	}
	returnDocs := version == 1 // Cohere v1 and Jina return them unless told not to
	if req.ReturnDocuments != nil {
		returnDocs = *req.ReturnDocuments
	}
	resp := cohereResponse{ID: s.requestID(), Results: []cohereResult{}}
	for _, x := range ranked(rs, topN) {
		cr := cohereResult{Index: x.index, RelevanceScore: crossencoder.Sigmoid(x.score)}
		if returnDocs {
			cr.Document = &cohereDocOut{Text: docs[x.index]}
		}
		resp.Results = append(resp.Results, cr)
	}
	resp.Meta.APIVersion.Version = fmt.Sprint(version)
	resp.Meta.BilledUnits.SearchUnits = 1
	resp.Meta.Tokens.InputTokens = tokens
	if version == 1 {
		name := req.Model
		if name == "" {
			name = s.o.ModelID
		}
		resp.Model, resp.Usage = &name, &jinaUsage{TotalTokens: tokens}
	}
	return resp, nil
}

// requestID is a unique id of the form Cohere's have (a UUID layout).
func (s *Server) requestID() string {
	n := s.ids.Add(1)
	t := uint64(s.started.UnixNano())
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(t>>32), uint16(t>>16), uint16(t)&0xfff, uint16(n>>48)&0xfff, n&0xffffffffffff)
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

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	m := s.o.Model
	id2label, label2id := map[string]string{}, map[string]int{}
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
		"model_sha":               nil,
		"model_dtype":             "float32",
		"model_type":              map[string]any{"reranker": map[string]any{"id2label": id2label, "label2id": label2id}},
		"max_concurrent_requests": s.o.MaxConcurrentRequests,
		"max_input_length":        m.MaxLen(),
		"max_batch_tokens":        maxTok,
		"max_batch_requests":      maxReq,
		"max_client_batch_size":   s.o.MaxClientBatchSize,
		"auto_truncate":           s.o.AutoTruncate,
		"tokenization_workers":    nil,
		"version":                 s.o.Version,
		"sha":                     nil,
		"docker_label":            nil,
	})
}
