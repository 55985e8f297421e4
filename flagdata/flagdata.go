// Package flagdata reads, validates, writes and samples FlagEmbedding
// reranker training data.
//
// One JSON object per line:
//
//	{"query": str, "pos": [str, ...], "neg": [str, ...],
//	 "pos_scores": [num, ...], "neg_scores": [num, ...], "prompt": str}
//
// pos_scores/neg_scores (teacher scores for distillation) and prompt are
// optional; any other key (qid, pos_ids, neg_ids, ...) is kept verbatim
// and written back. Files may be .jsonl or .json (JSON Lines, or one JSON
// array of objects), each optionally gzip-compressed (.gz); a directory
// means every such file directly inside it, in name order.
//
// Validation never stops at the first problem: every error names the
// file, line and field, and up to Options.MaxErrors of them are returned
// together as an ErrorList.
package flagdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/rerank-go/rerank/internal/jsonl"
)

// Example is one training line.
type Example struct {
	Query     string
	Pos       []string
	Neg       []string
	PosScores []float64 // nil when absent; else len(Pos)
	NegScores []float64 // nil when absent; else len(Neg)
	Prompt    string    // optional instruction; "" when absent
	// Extra holds every other key of the line, verbatim (qid, pos_ids,
	// neg_ids, ...). Written back after the known keys, sorted by key.
	Extra map[string]json.RawMessage

	// File and Line say where the example was read from (1-based line;
	// for a JSON array file, the line where the object starts). Not
	// written.
	File string
	Line int
}

// HasScores reports whether the example carries teacher scores.
func (e *Example) HasScores() bool { return e.PosScores != nil && e.NegScores != nil }

// FieldError is one validation problem.
type FieldError struct {
	File  string
	Line  int    // 1-based; 0 when the problem is about the whole file
	Field string // JSON key, with an index for list elements ("pos[2]"); "" for the line as a whole
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every validation problem found (up to Options.MaxErrors),
// in file and line order. Truncated counts those left out.
type ErrorList struct {
	Errors    []*FieldError
	Truncated int
}

func (l *ErrorList) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s) in the training data:", len(l.Errors)+l.Truncated)
	for _, e := range l.Errors {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	if l.Truncated > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more (raise the error limit to see them)", l.Truncated)
	}
	return b.String()
}

// Lines is the number of distinct file:line locations among the reported
// errors.
func (l *ErrorList) Lines() int {
	type loc struct {
		file string
		line int
	}
	seen := map[loc]bool{}
	for _, e := range l.Errors {
		seen[loc{e.File, e.Line}] = true
	}
	return len(seen)
}

// Unwrap lets errors.As find the individual FieldErrors.
func (l *ErrorList) Unwrap() []error {
	out := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		out[i] = e
	}
	return out
}

// Options control validation.
type Options struct {
	// AllowMissingNeg accepts lines without "neg" (or with an empty list):
	// the input of hard-negative mining. Training data needs negatives.
	AllowMissingNeg bool
	// RequireScores demands pos_scores and neg_scores on every line
	// (knowledge distillation).
	RequireScores bool
	// MaxErrors caps the errors collected; 0 means 50, < 0 means no cap.
	MaxErrors int
}

func (o Options) maxErrors() int {
	switch {
	case o.MaxErrors == 0:
		return 50
	case o.MaxErrors < 0:
		return int(^uint(0) >> 1)
	}
	return o.MaxErrors
}

// collector gathers errors up to a cap.
type collector struct {
	max  int
	list ErrorList
}

func (c *collector) add(e *FieldError) {
	if len(c.list.Errors) < c.max {
		c.list.Errors = append(c.list.Errors, e)
	} else {
		c.list.Truncated++
	}
}

func (c *collector) err() error {
	if len(c.list.Errors) == 0 && c.list.Truncated == 0 {
		return nil
	}
	l := c.list
	return &l
}

// known keys of a line.
const (
	keyQuery     = "query"
	keyPos       = "pos"
	keyNeg       = "neg"
	keyPosScores = "pos_scores"
	keyNegScores = "neg_scores"
	keyPrompt    = "prompt"
)

// jsonType names the JSON type of a raw value for error messages.
func jsonType(raw json.RawMessage) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// decodeObject validates one JSON object (already split from the input)
// and returns the example and its problems.
func decodeObject(raw []byte, file string, line int, opts Options) (Example, []*FieldError) {
	ex := Example{File: file, Line: line}
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !utf8.Valid(raw) {
		off := 0
		for off < len(raw) {
			r, n := utf8.DecodeRune(raw[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		bad("", "invalid UTF-8 at byte %d of the object (0x%x): FlagEmbedding cannot read it; save the file as UTF-8", off+1, raw[off])
		return ex, errs
	}
	var te *jsonl.TextError
	if err := jsonl.Check(raw); errors.As(err, &te) {
		bad(te.Field, "byte %d of the object: %s", te.Offset+1, te.Msg)
		return ex, errs
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var probe any
		if json.Unmarshal(raw, &probe) == nil {
			bad("", "want a JSON object with query/pos/neg, got %s", jsonType(raw))
		} else {
			bad("", "invalid JSON: %v", err)
		}
		return ex, errs
	}
	if m == nil {
		bad("", "want a JSON object with query/pos/neg, got null")
		return ex, errs
	}

	// query
	if v, ok := m[keyQuery]; !ok {
		bad(keyQuery, "missing: every line needs the query text")
	} else if err := json.Unmarshal(v, &ex.Query); err != nil || jsonType(v) != "a string" {
		bad(keyQuery, "want a string, got %s", jsonType(v))
	}

	ex.Pos = stringList(m, keyPos, true, bad)
	if v, ok := m[keyPos]; ok && ex.Pos != nil && len(ex.Pos) == 0 && jsonType(v) == "a list" {
		bad(keyPos, "empty: every line needs at least one positive passage")
	}
	if _, ok := m[keyNeg]; !ok {
		if !opts.AllowMissingNeg {
			bad(keyNeg, "missing: training needs negative passages (mine them with `rerank mine`)")
		}
	} else {
		ex.Neg = stringList(m, keyNeg, false, bad)
		if ex.Neg != nil && len(ex.Neg) == 0 && !opts.AllowMissingNeg {
			bad(keyNeg, "empty: training needs at least one negative passage (mine them with `rerank mine`)")
		}
	}

	ex.PosScores = numberList(m, keyPosScores, bad)
	ex.NegScores = numberList(m, keyNegScores, bad)
	_, hasPS := m[keyPosScores]
	_, hasNS := m[keyNegScores]
	switch {
	case hasPS && !hasNS:
		bad(keyNegScores, "missing while pos_scores is present: teacher scores need both lists")
	case hasNS && !hasPS:
		bad(keyPosScores, "missing while neg_scores is present: teacher scores need both lists")
	case !hasPS && !hasNS && opts.RequireScores:
		bad(keyPosScores, "missing: distillation needs pos_scores and neg_scores on every line")
	}
	if ex.PosScores != nil && ex.Pos != nil && len(ex.PosScores) != len(ex.Pos) {
		bad(keyPosScores, "has %d scores but pos has %d passages: one score per passage", len(ex.PosScores), len(ex.Pos))
	}
	_, hasNeg := m[keyNeg]
	if ex.NegScores != nil && (ex.Neg != nil || !hasNeg) && len(ex.NegScores) != len(ex.Neg) {
		bad(keyNegScores, "has %d scores but neg has %d passages: one score per passage", len(ex.NegScores), len(ex.Neg))
	}

	if v, ok := m[keyPrompt]; ok {
		if jsonType(v) != "a string" || json.Unmarshal(v, &ex.Prompt) != nil {
			bad(keyPrompt, "want a string, got %s", jsonType(v))
		}
	}

	for k, v := range m {
		switch k {
		case keyQuery, keyPos, keyNeg, keyPosScores, keyNegScores, keyPrompt:
			continue
		}
		if ex.Extra == nil {
			ex.Extra = map[string]json.RawMessage{}
		}
		ex.Extra[k] = v
	}
	sort.Slice(errs, func(i, j int) bool { return fieldRank(errs[i].Field) < fieldRank(errs[j].Field) })
	return ex, errs
}

// fieldRank orders a line's errors by the field's place in the format.
func fieldRank(f string) int {
	base := f
	if i := strings.IndexByte(f, '['); i >= 0 {
		base = f[:i]
	}
	switch base {
	case "":
		return 0
	case keyQuery:
		return 1
	case keyPos:
		return 2
	case keyNeg:
		return 3
	case keyPosScores:
		return 4
	case keyNegScores:
		return 5
	}
	return 6
}

// stringList decodes m[key] as a list of strings. It returns nil when the
// key is absent or has the wrong type (after reporting), and a non-nil
// (possibly empty) slice otherwise.
func stringList(m map[string]json.RawMessage, key string, required bool, bad func(string, string, ...any)) []string {
	v, ok := m[key]
	if !ok {
		if required {
			bad(key, "missing: every line needs a list of positive passages")
		}
		return nil
	}
	if jsonType(v) != "a list" {
		bad(key, "want a list of strings, got %s", jsonType(v))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		bad(key, "want a list of strings: %v", err)
		return nil
	}
	out := make([]string, 0, len(items))
	ok = true
	for i, it := range items {
		var s string
		if jsonType(it) != "a string" || json.Unmarshal(it, &s) != nil {
			bad(fmt.Sprintf("%s[%d]", key, i), "want a string, got %s", jsonType(it))
			ok = false
			continue
		}
		out = append(out, s)
	}
	if !ok {
		return nil
	}
	return out
}

// numberList decodes an optional list of numbers; nil when absent or bad.
func numberList(m map[string]json.RawMessage, key string, bad func(string, string, ...any)) []float64 {
	v, ok := m[key]
	if !ok {
		return nil
	}
	if jsonType(v) != "a list" {
		bad(key, "want a list of numbers, got %s", jsonType(v))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		bad(key, "want a list of numbers: %v", err)
		return nil
	}
	out := make([]float64, 0, len(items))
	ok = true
	for i, it := range items {
		var f float64
		if jsonType(it) != "a number" || json.Unmarshal(it, &f) != nil {
			bad(fmt.Sprintf("%s[%d]", key, i), "want a number, got %s", jsonType(it))
			ok = false
			continue
		}
		out = append(out, f)
	}
	if !ok {
		return nil
	}
	return out
}
