package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/rerank-go/rerank/crossencoder"
)

// text-embeddings-inference: POST /rerank and POST /predict, as TEI's
// router/src/http/types.rs (RerankRequest, PredictRequest) and server.rs
// define them.

type teiRequest struct {
	Query               *string   `json:"query"`
	Texts               *[]string `json:"texts"`
	Truncate            *bool     `json:"truncate"`
	TruncationDirection *string   `json:"truncation_direction"`
	RawScores           bool      `json:"raw_scores"`
	ReturnText          bool      `json:"return_text"`
}

type teiRank struct {
	Index int     `json:"index"`
	Text  *string `json:"text,omitempty"`
	Score float32 `json:"score"`
}

// teiLong is the long-input policy of a TEI request: truncate (default
// false, or --auto-truncate) and truncation_direction, whose values are
// serde's: Left, left, Right, right.
func (s *Server) teiLong(truncate *bool, direction *string) (crossencoder.LongPolicy, *apiError) {
	long := s.o.Model.Options().Long
	if direction != nil {
		switch *direction {
		case "Right", "right":
		case "Left", "left":
			long = crossencoder.LongPolicy{Left: true}
		default:
			return long, errorf(http.StatusUnprocessableEntity, "Validation",
				"Failed to deserialize the JSON body into the target type: truncation_direction: unknown variant `%s`, expected one of `Left`, `left`, `Right`, `right`", *direction)
		}
	}
	on := s.o.AutoTruncate
	if truncate != nil {
		on = *truncate
	}
	if !on {
		long = crossencoder.LongPolicy{Mode: crossencoder.Reject}
	}
	return long, nil
}

// teiHeaders sets TEI's x-* response headers (router/src/lib.rs,
// ResponseMetadata): times in milliseconds, characters and tokens.
func teiHeaders(w http.ResponseWriter, start time.Time, info scoreInfo) {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	h := w.Header()
	h.Set("x-compute-time", ms(time.Since(start)))
	h.Set("x-compute-characters", strconv.Itoa(info.chars))
	h.Set("x-compute-tokens", strconv.Itoa(info.tokens))
	h.Set("x-total-time", ms(time.Since(start)))
	h.Set("x-tokenization-time", ms(info.tokenize))
	h.Set("x-queue-time", ms(info.queue))
	h.Set("x-inference-time", ms(info.inference))
}

func (s *Server) tei(r *http.Request, rec *recorder) (any, *apiError) {
	start := time.Now()
	var req teiRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name    string
		missing bool
	}{{"query", req.Query == nil}, {"texts", req.Texts == nil}} {
		if f.missing {
			return nil, errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body into the target type: missing field `%s`", f.name)
		}
	}
	long, aerr := s.teiLong(req.Truncate, req.TruncationDirection)
	if aerr != nil {
		return nil, aerr
	}
	texts := *req.Texts
	rs, info, aerr := s.score(r.Context(), scoreReq{model: s.o.Model, query: *req.Query, docs: texts, long: long}, rec)
	if aerr != nil {
		return nil, aerr
	}
	out := make([]teiRank, 0, len(rs))
	for _, x := range ranked(rs, 0, true) {
		sc := x.score
		if !req.RawScores {
			sc = crossencoder.Sigmoid(sc)
		}
		rk := teiRank{Index: x.index, Score: sc}
		if req.ReturnText {
			rk.Text = &texts[x.index]
		}
		out = append(out, rk)
	}
	teiHeaders(rec, start, info)
	return out, nil
}

type predictRequest struct {
	Inputs              json.RawMessage `json:"inputs"`
	Truncate            *bool           `json:"truncate"`
	TruncationDirection *string         `json:"truncation_direction"`
	RawScores           bool            `json:"raw_scores"`
}

type prediction struct {
	Score float32 `json:"score"`
	Label string  `json:"label"`
}

// predictInputs parses TEI's PredictInput: a string, a pair [a, b], or a
// batch [[a] or [a, b], ...]. A cross-encoder scores pairs, so a single
// sequence is refused with a 422 that says so; batch tells a batch from
// one input (whose answer is not nested).
func predictInputs(raw json.RawMessage) (queries, passages []string, batch bool, aerr *apiError) {
	bad := func(format string, args ...any) *apiError {
		return errorf(http.StatusUnprocessableEntity, "Validation", "Failed to deserialize the JSON body into the target type: inputs: "+format, args...)
	}
	single := func() *apiError {
		return errorf(http.StatusUnprocessableEntity, "Validation",
			"a reranker scores (query, passage) pairs: give inputs as [query, passage] or [[query, passage], ...], not a single text")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil, false, bad("missing field `inputs`")
	}
	if raw[0] == '"' {
		return nil, nil, false, single()
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, false, bad("want a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], [string, string], ...]")
	}
	if len(items) == 0 {
		return nil, nil, false, bad("invalid length 0, expected a string, a pair of strings or a batch")
	}
	if first := bytes.TrimSpace(items[0]); len(first) > 0 && first[0] == '"' {
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, nil, false, bad("a pair must be two strings")
		}
		switch len(pair) {
		case 1:
			return nil, nil, false, single()
		case 2:
			return pair[:1], pair[1:], false, nil
		}
		return nil, nil, false, bad("invalid length %d, expected a pair of strings", len(pair))
	}
	for i, it := range items {
		var seq []string
		if err := json.Unmarshal(it, &seq); err != nil {
			return nil, nil, false, bad("batch item %d must be [string] or [string, string]", i)
		}
		switch len(seq) {
		case 1:
			return nil, nil, false, single()
		case 2:
			queries, passages = append(queries, seq[0]), append(passages, seq[1])
		default:
			return nil, nil, false, bad("batch item %d: invalid length %d, expected [string] or [string, string]", i, len(seq))
		}
	}
	return queries, passages, true, nil
}

// predict answers TEI's POST /predict for (query, passage) pairs: per
// pair, [{"score", "label"}] with the sigmoid of the logit (raw_scores:
// false) and the model's label.
func (s *Server) predict(r *http.Request, rec *recorder) (any, *apiError) {
	start := time.Now()
	var req predictRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	queries, passages, batch, aerr := predictInputs(req.Inputs)
	if aerr != nil {
		return nil, aerr
	}
	long, aerr := s.teiLong(req.Truncate, req.TruncationDirection)
	if aerr != nil {
		return nil, aerr
	}
	rs, info, aerr := s.score(r.Context(), scoreReq{model: s.o.Model, queries: queries, docs: passages, long: long}, rec)
	if aerr != nil {
		return nil, aerr
	}
	label := s.id2label["0"]
	out := make([][]prediction, len(rs))
	for i, x := range rs {
		sc := x.score
		if !req.RawScores {
			sc = crossencoder.Sigmoid(sc)
		}
		out[i] = []prediction{{Score: sc, Label: label}}
	}
	teiHeaders(rec, start, info)
	if !batch {
		return out[0], nil
	}
	return out, nil
}
