package bm25

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// RunLine is one line of a candidate file such as
// ../shared/data/*/bm25/dev.top100.jsonl, the format rerank eval reads.
type RunLine struct {
	QID    string    `json:"qid"`
	Query  string    `json:"query"`
	DocIDs []string  `json:"doc_ids"`
	Scores []float64 `json:"bm25_scores"`
}

// NewRunLine builds a candidate line from hits.
func NewRunLine(qid, query string, hits []Hit) RunLine {
	l := RunLine{QID: qid, Query: query, DocIDs: make([]string, len(hits)), Scores: make([]float64, len(hits))}
	for i, h := range hits {
		l.DocIDs[i], l.Scores[i] = h.ID, h.Score
	}
	return l
}

// AppendJSONL appends the line as the shared candidate files write it
// (Python's json.dumps with ensure_ascii=False: ", " and ": " separators,
// UTF-8 text, scores rounded to 4 decimals), followed by a newline.
func (l RunLine) AppendJSONL(b []byte) []byte {
	b = append(b, `{"qid": `...)
	b = appendPyString(b, l.QID)
	b = append(b, `, "query": `...)
	b = appendPyString(b, l.Query)
	b = append(b, `, "doc_ids": [`...)
	for i, id := range l.DocIDs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPyString(b, id)
	}
	b = append(b, `], "bm25_scores": [`...)
	for i, s := range l.Scores {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, FormatScore(s)...)
	}
	return append(b, "]}\n"...)
}

// AppendTREC appends the line as a TREC run: "qid Q0 docid rank score tag"
// per document (rank from 1, full-precision score).
func (l RunLine) AppendTREC(b []byte, tag string) []byte {
	for i, id := range l.DocIDs {
		b = append(b, l.QID...)
		b = append(b, " Q0 "...)
		b = append(b, id...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, l.Scores[i], 'f', 6, 64)
		b = append(b, ' ')
		b = append(b, tag...)
		b = append(b, '\n')
	}
	return b
}

// FormatScore writes a score as Python's repr(round(x, 4)).
func FormatScore(x float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 4, 64), 64)
	s := strconv.FormatFloat(r, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// appendPyString quotes s like Python's json.dumps(ensure_ascii=False).
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		default:
			if c < 0x20 {
				b = append(b, fmt.Sprintf(`\u%04x`, c)...)
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// ReadRun reads a candidate JSONL file.
func ReadRun(path string) ([]RunLine, error) {
	var out []RunLine
	err := eachJSONLine(path, func(line int, b []byte) error {
		var l RunLine
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if bytes.Contains(b, []byte("null")) {
			// encoding/json leaves a float at 0 for null: refuse it.
			var ptrs struct {
				Scores []*float64 `json:"bm25_scores"`
			}
			if err := json.Unmarshal(b, &ptrs); err == nil {
				for i, p := range ptrs.Scores {
					if p == nil {
						return fmt.Errorf("%s:%d: bm25_scores[%d] is null, want a number", path, line, i)
					}
				}
			}
		}
		if len(l.Scores) != len(l.DocIDs) {
			return fmt.Errorf("%s:%d: %d doc_ids but %d bm25_scores", path, line, len(l.DocIDs), len(l.Scores))
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// WriteRunFile writes candidate lines to path atomically, as JSON Lines
// (format "jsonl") or a TREC run (format "trec", with tag).
func WriteRunFile(path, format, tag string, lines []RunLine) error {
	if format != "jsonl" && format != "trec" {
		return fmt.Errorf("unknown run format %q: use jsonl or trec", format)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return WriteRun(w, format, tag, lines) })
}

// WriteRun writes lines to w as WriteRunFile lays them out in a file.
func WriteRun(w io.Writer, format, tag string, lines []RunLine) error {
	if format != "jsonl" && format != "trec" {
		return fmt.Errorf("unknown run format %q: use jsonl or trec", format)
	}
	var buf []byte
	for _, l := range lines {
		buf = buf[:0]
		if format == "jsonl" {
			buf = l.AppendJSONL(buf)
		} else {
			buf = l.AppendTREC(buf, tag)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
