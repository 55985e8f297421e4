package bm25

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rerank-go/rerank/internal/jsonl"
)

// Corpus is a BEIR corpus.jsonl: {"_id", "title", "text"} per line.
type Corpus struct {
	IDs    []string
	Titles []string
	Texts  []string
	pos    map[string]int
}

// Len is the number of documents.
func (c *Corpus) Len() int { return len(c.IDs) }

// Index returns the corpus position of a document id.
func (c *Corpus) Index(id string) (int, bool) {
	i, ok := c.pos[id]
	return i, ok
}

// Passage is the text a reranker scores: (title + " " + text) stripped,
// BEIR's convention.
func (c *Corpus) Passage(i int) string {
	return strings.TrimSpace(c.Titles[i] + " " + c.Texts[i])
}

// Docs returns the documents to index: field title + " " + text.
func (c *Corpus) Docs() []Doc {
	docs := make([]Doc, len(c.IDs))
	for i := range docs {
		docs[i] = Doc{ID: c.IDs[i], Text: c.Titles[i] + " " + c.Texts[i]}
	}
	return docs
}

// Query is one BEIR query.
type Query struct {
	ID   string
	Text string
}

// Qrels maps query id -> document id -> grade (> 0 only).
type Qrels map[string]map[string]int

// InvalidUTF8 is the error of a line that is not valid UTF-8 (Go's JSON
// decoder would turn the bad bytes into U+FFFD silently; Python's json,
// which BEIR and FlagEmbedding use, fails on them).
func InvalidUTF8(path string, line int, b []byte) error {
	off := 0
	for off < len(b) {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return fmt.Errorf("%s:%d: invalid UTF-8 at byte %d of the line (0x%x): save the file as UTF-8", path, line, off+1, b[off])
}

// eachJSONLine calls fn with every non-blank line of a JSON Lines file.
func eachJSONLine(path string, fn func(line int, b []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if line == 1 {
			b = jsonl.TrimBOM(b)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			if !utf8.Valid(t) {
				return InvalidUTF8(path, line, t)
			}
			if cerr := jsonl.CheckLine(path, line, t); cerr != nil {
				return cerr
			}
			if ferr := fn(line, t); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// ReadCorpus reads a BEIR corpus.jsonl.
func ReadCorpus(path string) (*Corpus, error) {
	c := &Corpus{pos: map[string]int{}}
	err := eachJSONLine(path, func(line int, b []byte) error {
		var d struct {
			ID    *jsonl.ID `json:"_id"`
			Title string    `json:"title"`
			Text  string    `json:"text"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if d.ID == nil {
			return fmt.Errorf("%s:%d: field \"_id\": missing", path, line)
		}
		id := string(*d.ID)
		if prev, dup := c.pos[id]; dup {
			return fmt.Errorf("%s:%d: field \"_id\": %q already used by document %d", path, line, id, prev+1)
		}
		c.pos[id] = len(c.IDs)
		c.IDs = append(c.IDs, id)
		c.Titles = append(c.Titles, d.Title)
		c.Texts = append(c.Texts, d.Text)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(c.IDs) == 0 {
		return nil, fmt.Errorf("%s: no documents", path)
	}
	return c, nil
}

// ReadQueries reads a BEIR queries.jsonl in file order.
func ReadQueries(path string) ([]Query, error) {
	var qs []Query
	seen := map[string]bool{}
	err := eachJSONLine(path, func(line int, b []byte) error {
		var q struct {
			ID   *jsonl.ID `json:"_id"`
			Text *string   `json:"text"`
		}
		if err := json.Unmarshal(b, &q); err != nil {
			return fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if q.ID == nil {
			return fmt.Errorf("%s:%d: field \"_id\": missing", path, line)
		}
		if q.Text == nil {
			return fmt.Errorf("%s:%d: field \"text\": missing", path, line)
		}
		if seen[string(*q.ID)] {
			return fmt.Errorf("%s:%d: field \"_id\": %q appears twice", path, line, *q.ID)
		}
		seen[string(*q.ID)] = true
		qs = append(qs, Query{ID: string(*q.ID), Text: *q.Text})
		return nil
	})
	return qs, err
}

// ReadQrels reads a BEIR qrels TSV (query-id, corpus-id, score; an
// optional header line). Rows with score <= 0 are left out.
func ReadQrels(path string) (Qrels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	q := Qrels{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if line == 1 {
			b = jsonl.TrimBOM(b)
		}
		if !utf8.Valid(b) {
			return nil, InvalidUTF8(path, line, b)
		}
		t := strings.TrimRight(string(b), "\r")
		if strings.TrimSpace(t) == "" {
			continue
		}
		cols := strings.Split(t, "\t")
		if len(cols) < 3 {
			cols = strings.Fields(t)
		}
		if len(cols) < 3 {
			return nil, fmt.Errorf("%s:%d: want query-id<TAB>corpus-id<TAB>score, got %q", path, line, t)
		}
		score, err := strconv.ParseFloat(strings.TrimSpace(cols[2]), 64)
		if err != nil {
			if line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%s:%d: score %q is not a number", path, line, cols[2])
		}
		if score <= 0 {
			continue
		}
		qid, did := strings.TrimSpace(cols[0]), strings.TrimSpace(cols[1])
		if q[qid] == nil {
			q[qid] = map[string]int{}
		}
		q[qid][did] = int(score)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return q, nil
}

// Splits lists the splits of a BEIR directory: the names of qrels/*.tsv,
// sorted.
func Splits(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "qrels", "*.tsv"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".tsv"))
	}
	sort.Strings(out)
	return out, nil
}

// SplitQueries returns the queries of a split: those of queries.jsonl
// that have qrels, in queries.jsonl order. A query id in the qrels
// without text is an error.
func SplitQueries(queries []Query, qrels Qrels, qrelsPath string) ([]Query, error) {
	var out []Query
	have := map[string]bool{}
	for _, q := range queries {
		if _, ok := qrels[q.ID]; ok {
			out = append(out, q)
			have[q.ID] = true
		}
	}
	var missing []string
	for id := range qrels {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], "...")
		}
		return nil, fmt.Errorf("%s: %d quer(ies) have judgments but no text in queries.jsonl (%s): add them to queries.jsonl",
			qrelsPath, len(missing), strings.Join(missing, ", "))
	}
	return out, nil
}

// BEIR is a BEIR-layout directory loaded for retrieval.
type BEIR struct {
	Dir     string
	Corpus  *Corpus
	Queries []Query
}

// OpenBEIR reads corpus.jsonl and queries.jsonl of a BEIR directory.
func OpenBEIR(dir string) (*BEIR, error) {
	c, err := ReadCorpus(filepath.Join(dir, "corpus.jsonl"))
	if err != nil {
		return nil, err
	}
	qs, err := ReadQueries(filepath.Join(dir, "queries.jsonl"))
	if err != nil {
		return nil, err
	}
	return &BEIR{Dir: dir, Corpus: c, Queries: qs}, nil
}

// Split returns the qrels and the queries of a split (qrels/NAME.tsv).
func (b *BEIR) Split(name string) (Qrels, []Query, error) {
	p := filepath.Join(b.Dir, "qrels", name+".tsv")
	qrels, err := ReadQrels(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			have, _ := Splits(b.Dir)
			return nil, nil, fmt.Errorf("split %q: %s not found (splits here: %s)", name, p, strings.Join(have, ", "))
		}
		return nil, nil, err
	}
	qs, err := SplitQueries(b.Queries, qrels, p)
	return qrels, qs, err
}
