package eval

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/internal/jsonl"
)

// Doc is one corpus entry.
type Doc struct {
	ID    string
	Title string
	Text  string
}

// Passage is the text a reranker scores for the document:
// (title + " " + text) with surrounding white space removed, the convention
// of BEIR's reranking code and FlagEmbedding's training data.
func (d Doc) Passage() string { return Passage(d.Title, d.Text) }

// Passage joins a title and a text the way Doc.Passage does.
func Passage(title, text string) string { return strings.TrimSpace(title + " " + text) }

// Corpus maps a document id to its document.
type Corpus map[string]Doc

// Queries maps a query id to its text.
type Queries map[string]string

// Qrels maps a query id to the graded labels of its judged documents.
// Labels >= 1 are relevant; see the package documentation.
type Qrels map[string]map[string]int

// NumRelevant returns R, the number of documents of qid with label >= 1.
func (q Qrels) NumRelevant(qid string) int {
	n := 0
	for _, l := range q[qid] {
		if l >= relevanceLevel {
			n++
		}
	}
	return n
}

// QueryIDs returns the judged query ids in sorted order.
func (q Qrels) QueryIDs() []string {
	ids := make([]string, 0, len(q))
	for id := range q {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Collection is a BEIR directory read for one split.
type Collection struct {
	Dir     string
	Split   string
	Corpus  Corpus
	Queries Queries
	Qrels   Qrels
}

// QrelsPath returns the path of a split's qrels in a BEIR directory.
func QrelsPath(dir, split string) string {
	return filepath.Join(dir, "qrels", split+".tsv")
}

// LoadBEIR reads corpus.jsonl, queries.jsonl and qrels/<split>.tsv of a BEIR
// directory. Missing files are reported with their paths.
func LoadBEIR(dir, split string) (*Collection, error) {
	c := &Collection{Dir: dir, Split: split}
	qp := QrelsPath(dir, split)
	if _, err := os.Stat(qp); err != nil {
		return nil, fmt.Errorf("qrels for split %q: %w (expected %s in the BEIR directory)", split, err, qp)
	}
	var err error
	if c.Corpus, err = ReadCorpus(filepath.Join(dir, "corpus.jsonl")); err != nil {
		return nil, err
	}
	if c.Queries, err = ReadQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
		return nil, err
	}
	if c.Qrels, err = ReadQrels(qp); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadCorpus reads a BEIR corpus.jsonl ({"_id","title","text"} per line;
// ".gz" files are decompressed).
func ReadCorpus(path string) (Corpus, error) { return readFile(path, ParseCorpus) }

// ParseCorpus parses corpus JSONL from r; name is used in error messages.
func ParseCorpus(r io.Reader, name string) (Corpus, error) {
	c := Corpus{}
	err := eachLine(r, name, func(line []byte, n int) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var v struct {
			ID    *jsonl.ID `json:"_id"`
			Title string    `json:"title"`
			Text  string    `json:"text"`
		}
		if err := decodeLine(line, &v); err != nil {
			return lineError(name, n, "%v (expected {\"_id\": str or number, \"title\": str, \"text\": str})", err)
		}
		if v.ID == nil || *v.ID == "" {
			return lineError(name, n, "missing or empty \"_id\"")
		}
		id := string(*v.ID)
		if _, dup := c[id]; dup {
			return lineError(name, n, "duplicate document id %q", id)
		}
		c[id] = Doc{ID: id, Title: v.Title, Text: v.Text}
		return nil
	})
	return c, err
}

// ReadQueries reads a BEIR queries.jsonl ({"_id","text"} per line).
func ReadQueries(path string) (Queries, error) { return readFile(path, ParseQueries) }

// ParseQueries parses queries JSONL from r; name is used in error messages.
func ParseQueries(r io.Reader, name string) (Queries, error) {
	q := Queries{}
	err := eachLine(r, name, func(line []byte, n int) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var v struct {
			ID   *jsonl.ID `json:"_id"`
			Text *string   `json:"text"`
		}
		if err := decodeLine(line, &v); err != nil {
			return lineError(name, n, "%v (expected {\"_id\": str or number, \"text\": str})", err)
		}
		if v.ID == nil || *v.ID == "" {
			return lineError(name, n, "missing or empty \"_id\"")
		}
		id := string(*v.ID)
		if v.Text == nil {
			return lineError(name, n, "query %q has no \"text\"", id)
		}
		if _, dup := q[id]; dup {
			return lineError(name, n, "duplicate query id %q", id)
		}
		q[id] = *v.Text
		return nil
	})
	return q, err
}

// ReadQrels reads relevance judgments: BEIR TSV (query-id, corpus-id, score;
// an optional header line) or TREC qrels (query-id, iteration, doc-id,
// label, separated by white space). Labels are integers.
func ReadQrels(path string) (Qrels, error) { return readFile(path, ParseQrels) }

// ParseQrels parses qrels from r; name is used in error messages.
func ParseQrels(r io.Reader, name string) (Qrels, error) {
	q := Qrels{}
	err := eachLine(r, name, func(line []byte, n int) error {
		s := string(line)
		if strings.TrimSpace(s) == "" {
			return nil
		}
		var f []string
		if strings.Contains(s, "\t") {
			f = strings.Split(s, "\t")
			for i := range f {
				f[i] = strings.TrimSpace(f[i])
			}
		} else {
			f = strings.Fields(s)
		}
		var qid, did, label string
		switch len(f) {
		case 3:
			qid, did, label = f[0], f[1], f[2]
		case 4:
			qid, did, label = f[0], f[2], f[3]
		default:
			return lineError(name, n, "%d fields, expected 3 (query-id<TAB>corpus-id<TAB>score) or 4 (TREC qrels: qid iter docno rel)", len(f))
		}
		l, err := strconv.Atoi(label)
		if err != nil {
			// Only BEIR's TSV has a header ("query-id corpus-id score"): a
			// label that looks like a number ("1.5", "-") is a bad
			// judgment, not a header, and TREC qrels have no header.
			if n == 1 && len(q) == 0 && len(f) == 3 && isHeaderLabel(label) {
				return nil
			}
			return lineError(name, n, "relevance label %q is not an integer", label)
		}
		if qid == "" || did == "" {
			return lineError(name, n, "empty query or document id")
		}
		m := q[qid]
		if m == nil {
			m = map[string]int{}
			q[qid] = m
		}
		if _, dup := m[did]; dup {
			return lineError(name, n, "duplicate judgment for query %q, document %q", qid, did)
		}
		m[did] = l
		return nil
	})
	return q, err
}

// isHeaderLabel reports whether a BEIR qrels first line's label field is a
// column name (letters, "-" or "_", starting with a letter) rather than a
// malformed number.
func isHeaderLabel(s string) bool {
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r == '-' || r == '_')
		if !ok {
			return false
		}
	}
	return s != ""
}
