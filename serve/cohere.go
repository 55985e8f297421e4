package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/rerank-go/rerank/crossencoder"
)

// Cohere v1 and v2 and Jina: POST /v1/rerank (Cohere v1 and Jina, one
// body) and POST /v2/rerank, as the official SDK (cohere-typescript:
// RerankRequest, V2RerankRequest, RerankResponse) and Jina's API
// reference define them.

// DefaultMaxTokensPerDoc is Cohere v2's default max_tokens_per_doc: a
// document is cut to that many tokens first.
const DefaultMaxTokensPerDoc = 4096

type cohereRequest struct {
	Model     string          `json:"model"`
	Query     *string         `json:"query"`
	Documents json.RawMessage `json:"documents"`
	TopN      *int            `json:"top_n"`
	// RankFields names the fields of object documents that are ranked,
	// in order; without it an object is ranked on its "text".
	RankFields      []string `json:"rank_fields"`
	ReturnDocuments *bool    `json:"return_documents"`
	MaxChunksPerDoc *int     `json:"max_chunks_per_doc"`
	MaxTokensPerDoc *int     `json:"max_tokens_per_doc"`
	// Cohere v2's priority is accepted and has no effect: requests are
	// served as they come.
}

type cohereResult struct {
	Index          int             `json:"index"`
	RelevanceScore float32         `json:"relevance_score"`
	Document       json.RawMessage `json:"document,omitempty"`
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

// cohereDoc is one of a request's documents.
type cohereDoc struct {
	text string          // what is ranked
	obj  json.RawMessage // the object as sent; nil for a string
}

// out is the document as a result returns it: a string as {"text"}, an
// object as it was sent, every field kept (Cohere: "all other fields will
// be preserved in the response").
func (d cohereDoc) out() json.RawMessage {
	if d.obj != nil {
		return d.obj
	}
	b, _ := json.Marshal(cohereDocOut{Text: d.text})
	return b
}

// parseDocuments reads Cohere's and Jina's documents: strings, or objects
// of fields. An object is ranked on its "text" field; with rank_fields, on
// those of its fields, in that order, one "field: value" line each (the
// YAML form Cohere recommends for structured documents); missing fields
// are skipped.
func parseDocuments(raw json.RawMessage, rankFields []string) ([]cohereDoc, *apiError) {
	bad := func(format string, args ...any) *apiError {
		return errorf(http.StatusBadRequest, "Validation", "invalid request: "+format, args...)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, bad("documents is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, bad("documents must be a list of strings or of objects with a \"text\" field")
	}
	docs := make([]cohereDoc, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' {
			if err := json.Unmarshal(it, &docs[i].text); err != nil {
				return nil, bad("document %d: %v", i, err)
			}
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(it, &fields); err != nil || fields == nil {
			return nil, bad("document %d is %s: a document is a string or an object with a \"text\" field", i, jsonKind(it))
		}
		docs[i].obj = it
		if len(rankFields) == 0 {
			var text *string
			if err := json.Unmarshal(fields["text"], &text); err != nil || text == nil {
				return nil, bad("document %d has no \"text\" string: give it one, or name the fields to rank in rank_fields", i)
			}
			docs[i].text = *text
			continue
		}
		var lines []string
		for _, f := range rankFields {
			v, ok := fields[f]
			if !ok {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(bytes.TrimSpace(v)) // a number, boolean, list...: its JSON
			}
			lines = append(lines, f+": "+s)
		}
		if len(lines) == 0 {
			return nil, bad("document %d has none of the rank_fields %q", i, rankFields)
		}
		docs[i].text = strings.Join(lines, "\n")
	}
	return docs, nil
}

// jsonKind names the kind of a JSON value, for errors.
func jsonKind(v json.RawMessage) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	}
	return "a number"
}

// cohereError rewords an error for Cohere's and Jina's clients: Cohere
// answers bad input with 400, and a failed backend with 500.
func cohereError(e *apiError) *apiError {
	switch e.status {
	case http.StatusUnprocessableEntity:
		e.status = http.StatusBadRequest
	case http.StatusFailedDependency:
		e.status = http.StatusInternalServerError
	}
	return e
}

// cohereAt is the handler of Cohere's API version 1 or 2, its errors in
// Cohere's words.
func (s *Server) cohereAt(version int) func(r *http.Request, rec *recorder) (any, *apiError) {
	return func(r *http.Request, rec *recorder) (any, *apiError) {
		out, err := s.cohere(r, rec, version)
		if err != nil {
			return nil, cohereError(err)
		}
		return out, nil
	}
}

// cohereLong is the long-passage policy of a Cohere request over the
// model's own: v1's max_chunks_per_doc chunks the documents; v2 cuts them
// to max_tokens_per_doc tokens first, DefaultMaxTokensPerDoc when not
// given (a model that chunks keeps chunking).
func cohereLong(version int, req cohereRequest, long crossencoder.LongPolicy) (crossencoder.LongPolicy, *apiError) {
	switch {
	case version == 1 && req.MaxChunksPerDoc != nil:
		if *req.MaxChunksPerDoc < 1 {
			return long, errorf(http.StatusBadRequest, "Validation", "invalid request: max_chunks_per_doc must be at least 1")
		}
		return crossencoder.LongPolicy{Mode: crossencoder.Chunk, MaxTokensPerDoc: long.MaxTokensPerDoc, MaxChunksPerDoc: *req.MaxChunksPerDoc}, nil
	case version == 2 && req.MaxTokensPerDoc != nil:
		if *req.MaxTokensPerDoc < 1 {
			return long, errorf(http.StatusBadRequest, "Validation", "invalid request: max_tokens_per_doc must be at least 1")
		}
		return crossencoder.LongPolicy{MaxTokensPerDoc: *req.MaxTokensPerDoc}, nil
	case version == 2 && long.Mode == crossencoder.Truncate && long.MaxTokensPerDoc == 0:
		long.MaxTokensPerDoc = DefaultMaxTokensPerDoc
	}
	return long, nil
}

func (s *Server) cohere(r *http.Request, rec *recorder, version int) (any, *apiError) {
	var req cohereRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) *apiError {
		return errorf(http.StatusBadRequest, "Validation", "invalid request: "+format, args...)
	}
	if req.Query == nil {
		return nil, bad("query is required")
	}
	docs, aerr := parseDocuments(req.Documents, req.RankFields)
	if aerr != nil {
		return nil, aerr
	}
	if req.TopN != nil && *req.TopN < 1 {
		return nil, bad("top_n must be at least 1")
	}
	m, aerr := s.pick(req.Model)
	if aerr != nil {
		return nil, aerr
	}
	long, aerr := cohereLong(version, req, m.Options().Long)
	if aerr != nil {
		return nil, aerr
	}
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.text
	}
	rs, info, aerr := s.score(r.Context(), scoreReq{model: m, query: *req.Query, docs: texts, long: long, cohere: true}, rec)
	if aerr != nil {
		return nil, aerr
	}
	topN := 0
	if req.TopN != nil {
		topN = *req.TopN
	}
	// Jina returns the documents unless told not to, Cohere v1 only when
	// asked: /v1/rerank serves both, and returns them (a Cohere client
	// ignores the field it did not ask for).
	returnDocs := version == 1
	if req.ReturnDocuments != nil {
		returnDocs = *req.ReturnDocuments
	}
	resp := cohereResponse{ID: s.requestID(), Results: []cohereResult{}}
	for _, x := range ranked(rs, topN, false) {
		cr := cohereResult{Index: x.index, RelevanceScore: crossencoder.Sigmoid(x.score)}
		if returnDocs {
			cr.Document = docs[x.index].out()
		}
		resp.Results = append(resp.Results, cr)
	}
	resp.Meta.APIVersion.Version = fmt.Sprint(version)
	resp.Meta.BilledUnits.SearchUnits = 1
	resp.Meta.Tokens.InputTokens = info.tokens
	if version == 1 {
		name := req.Model
		if name == "" {
			name = s.o.ModelID
		}
		resp.Model, resp.Usage = &name, &jinaUsage{TotalTokens: info.tokens}
	}
	return resp, nil
}

// requestID is a unique id of the form Cohere's have (a UUID layout).
func (s *Server) requestID() string {
	n := s.ids.Add(1)
	t := uint64(s.started.UnixNano())
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(t>>32), uint16(t>>16), uint16(t)&0xfff, uint16(n>>48)&0xfff, n&0xffffffffffff)
}
