package eval

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// ScoredDoc is a document with its retrieval score.
type ScoredDoc struct {
	DocID string
	Score float64
}

// Run maps a query id to its scored documents. Documents are ranked by
// score; the order of the slice only matters for equal scores (see
// TieBreak).
type Run map[string][]ScoredDoc

// TieBreak says how documents with equal scores are ordered.
type TieBreak int

const (
	// TiesInputOrder keeps equal-scored documents in the order they were
	// given: first-stage rank for candidate lists and reranked runs, line
	// order for TREC run files. This is the rerank evaluation protocol of
	// the shared collections ("ties are broken by the original BM25
	// order") and the order their bm25/*.metrics.json were computed with.
	TiesInputOrder TieBreak = iota
	// TiesTrecEval orders equal-scored documents by document id,
	// descending byte-wise, as trec_eval (comp_sim_docno in
	// form_res_rels.c) and so pytrec_eval do. Use it to reproduce
	// trec_eval on a run file exactly.
	TiesTrecEval
)

// String returns the flag spelling of the tie-break rule.
func (t TieBreak) String() string {
	if t == TiesTrecEval {
		return "trec_eval"
	}
	return "input"
}

// ParseTieBreak parses "input" or "trec_eval".
func ParseTieBreak(s string) (TieBreak, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "input", "input_order", "":
		return TiesInputOrder, nil
	case "trec_eval", "treceval", "docid":
		return TiesTrecEval, nil
	}
	return 0, fmt.Errorf("unknown tie-break rule %q (want input or trec_eval)", s)
}

// Rank returns a copy of docs sorted by score, descending, with equal
// scores ordered by ties.
func Rank(docs []ScoredDoc, ties TieBreak) []ScoredDoc {
	out := append([]ScoredDoc(nil), docs...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return ties == TiesTrecEval && out[i].DocID > out[j].DocID
	})
	return out
}

// DocFilter reports whether a document id is known (for example present in
// the corpus). Readers given a non-nil filter reject unknown ids with the
// file and line.
type DocFilter func(docID string) bool

// ReadTRECRun reads a TREC run file: "qid Q0 docno rank score tag" per
// line, separated by white space. Documents keep their line order; the
// rank column is checked to be an integer and otherwise ignored, as
// trec_eval ignores it.
// known, when not nil, rejects unknown document ids.
func ReadTRECRun(path string, known DocFilter) (Run, error) {
	return readFile(path, func(r io.Reader, name string) (Run, error) { return ParseTRECRun(r, name, known) })
}

// ParseTRECRun parses a TREC run from r; name is used in error messages.
func ParseTRECRun(r io.Reader, name string, known DocFilter) (Run, error) {
	run := Run{}
	seen := map[string]map[string]int{}
	err := eachLine(r, name, func(line []byte, n int) error {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return nil
		}
		if len(f) != 6 {
			return lineError(name, n, "%d fields, expected 6 (qid Q0 docno rank score tag)", len(f))
		}
		qid, did := f[0], f[2]
		if _, err := strconv.Atoi(f[3]); err != nil {
			return lineError(name, n, "rank %q is not an integer", f[3])
		}
		// strconv accepts Go's digit separators ("1_000"), which trec_eval's
		// atof reads as 1: refuse them rather than disagree silently.
		s, err := strconv.ParseFloat(f[4], 64)
		if err != nil || math.IsNaN(s) || strings.Contains(f[4], "_") {
			return lineError(name, n, "score %q is not a number", f[4])
		}
		if known != nil && !known(did) {
			return lineError(name, n, "unknown document id %q (not in the corpus) for query %q", did, qid)
		}
		sq := seen[qid]
		if sq == nil {
			sq = map[string]int{}
			seen[qid] = sq
		}
		if prev, dup := sq[did]; dup {
			return lineError(name, n, "document %q listed twice for query %q (first at line %d)", did, qid, prev)
		}
		sq[did] = n
		run[qid] = append(run[qid], ScoredDoc{DocID: did, Score: s})
		return nil
	})
	return run, err
}

// WriteTRECRun writes run to path atomically as a TREC run file, queries in
// sorted order, documents ranked with ties (ranks 1..n). Scores are written
// with the shortest representation that reads back exactly. Note that
// trec_eval ignores the rank column: on equal scores it reproduces this
// order only for TiesTrecEval.
func WriteTRECRun(path string, run Run, tag string, ties TieBreak) error {
	return atomicfile.Write(path, func(w io.Writer) error { return FormatTRECRun(w, run, tag, ties) })
}

// RunTag is the tag column `rerank eval --runs` writes: the run's label
// and the tie order its ranks were written in, "<label>.ties-input" or
// "<label>.ties-trec_eval". TREC run files have no comment line trec_eval
// accepts; the tag is free text it reads and ignores, so the file says
// its order and still evaluates unchanged.
func RunTag(label string, ties TieBreak) string {
	return label + ".ties-" + ties.String()
}

// FormatTRECRun writes run to w in TREC run format (see WriteTRECRun).
func FormatTRECRun(w io.Writer, run Run, tag string, ties TieBreak) error {
	if tag == "" {
		tag = "rerank"
	}
	tag = strings.Join(strings.Fields(tag), "_")
	qids := make([]string, 0, len(run))
	for q := range run {
		qids = append(qids, q)
	}
	sort.Strings(qids)
	for _, q := range qids {
		for i, d := range Rank(run[q], ties) {
			if _, err := fmt.Fprintf(w, "%s Q0 %s %d %s %s\n", q, d.DocID, i+1,
				strconv.FormatFloat(d.Score, 'g', -1, 64), tag); err != nil {
				return err
			}
		}
	}
	return nil
}

// Candidate is the first-stage candidate list of one query.
type Candidate struct {
	QID   string
	Query string // may be empty when the source has no query text
	// DocIDs in first-stage order, best first.
	DocIDs []string
	// Scores are the first-stage scores, parallel to DocIDs; nil when the
	// source has none (FlagEmbedding data without pos_scores/neg_scores).
	Scores []float64
	// Passages are the document texts when the source carries them
	// (FlagEmbedding data); nil when they come from the corpus.
	Passages []string
}

// CandidatesFromRun turns a run into candidate lists, each ranked with
// ties, queries sorted by id.
func CandidatesFromRun(run Run, ties TieBreak) []Candidate {
	qids := make([]string, 0, len(run))
	for q := range run {
		qids = append(qids, q)
	}
	sort.Strings(qids)
	out := make([]Candidate, 0, len(qids))
	for _, q := range qids {
		c := Candidate{QID: q}
		for _, d := range Rank(run[q], ties) {
			c.DocIDs = append(c.DocIDs, d.DocID)
			c.Scores = append(c.Scores, d.Score)
		}
		out = append(out, c)
	}
	return out
}

// RunFromCandidates returns the run given by the candidates' own scores.
// It fails when a candidate list has no scores.
func RunFromCandidates(cands []Candidate) (Run, error) {
	run := Run{}
	for _, c := range cands {
		if c.Scores == nil && len(c.DocIDs) > 0 {
			return nil, fmt.Errorf("query %q: the candidates have no scores to evaluate; rerank them with a model", c.QID)
		}
		docs := make([]ScoredDoc, len(c.DocIDs))
		for i, d := range c.DocIDs {
			docs[i] = ScoredDoc{DocID: d, Score: c.Scores[i]}
		}
		run[c.QID] = docs
	}
	return run, nil
}

// ReadCandidates reads candidate JSONL, one query per line:
// {"qid": str, "query": str, "doc_ids": [str], "bm25_scores": [float]}
// ("scores" is accepted for "bm25_scores"; the scores are optional).
// known, when not nil, rejects unknown document ids.
func ReadCandidates(path string, known DocFilter) ([]Candidate, error) {
	return readFile(path, func(r io.Reader, name string) ([]Candidate, error) { return ParseCandidates(r, name, known) })
}

// ParseCandidates parses candidate JSONL from r; name is used in error
// messages.
func ParseCandidates(r io.Reader, name string, known DocFilter) ([]Candidate, error) {
	var out []Candidate
	qline := map[string]int{}
	err := eachLine(r, name, func(line []byte, n int) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var v struct {
			QID        *string    `json:"qid"`
			Query      string     `json:"query"`
			DocIDs     []string   `json:"doc_ids"`
			BM25Scores []*float64 `json:"bm25_scores"` // pointers: null is an error, not 0
			Scores     []*float64 `json:"scores"`
		}
		if err := decodeLine(line, &v); err != nil {
			return lineError(name, n, "%v (expected {\"qid\": str, \"query\": str, \"doc_ids\": [str], \"bm25_scores\": [float]})", err)
		}
		if v.QID == nil || *v.QID == "" {
			return lineError(name, n, "missing or empty \"qid\"")
		}
		if prev, dup := qline[*v.QID]; dup {
			return lineError(name, n, "query %q already listed at line %d", *v.QID, prev)
		}
		qline[*v.QID] = n
		key, ptrs := "bm25_scores", v.BM25Scores
		if ptrs == nil {
			key, ptrs = "scores", v.Scores
		}
		var scores []float64
		if ptrs != nil {
			scores = make([]float64, len(ptrs))
			for i, p := range ptrs {
				if p == nil {
					return lineError(name, n, "query %q: %s[%d] is null, want a number", *v.QID, key, i)
				}
				scores[i] = *p
			}
		}
		if scores != nil && len(scores) != len(v.DocIDs) {
			return lineError(name, n, "query %q has %d doc_ids but %d scores", *v.QID, len(v.DocIDs), len(scores))
		}
		seen := make(map[string]bool, len(v.DocIDs))
		for _, d := range v.DocIDs {
			if d == "" {
				return lineError(name, n, "query %q: empty document id", *v.QID)
			}
			if seen[d] {
				return lineError(name, n, "query %q: document %q listed twice", *v.QID, d)
			}
			seen[d] = true
			if known != nil && !known(d) {
				return lineError(name, n, "query %q: unknown document id %q (not in the corpus)", *v.QID, d)
			}
		}
		out = append(out, Candidate{QID: *v.QID, Query: v.Query, DocIDs: v.DocIDs, Scores: scores})
		return nil
	})
	return out, err
}

// ReadFlagEmbedding reads FlagEmbedding reranker JSONL ({"query": str,
// "pos": [str], "neg": [str]}, optionally "qid", "pos_ids", "neg_ids",
// "pos_scores", "neg_scores"; ".gz" files are decompressed) as candidates:
// every pos and neg passage is a candidate, and the returned qrels judge
// every pos passage relevant (label 1) and every neg passage 0. Without ids
// the query id is the line number and the document ids are "pos-<i>" and
// "neg-<i>". Scores are set only when both pos_scores and neg_scores are
// present.
func ReadFlagEmbedding(path string) ([]Candidate, Qrels, error) {
	r, err := openInput(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	return ParseFlagEmbedding(r, path)
}

// ParseFlagEmbedding parses FlagEmbedding JSONL from r; name is used in
// error messages.
func ParseFlagEmbedding(r io.Reader, name string) ([]Candidate, Qrels, error) {
	var out []Candidate
	qrels := Qrels{}
	err := eachLine(r, name, func(line []byte, n int) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var v struct {
			QID       *string   `json:"qid"`
			Query     *string   `json:"query"`
			Pos       []string  `json:"pos"`
			Neg       []string  `json:"neg"`
			PosIDs    []string  `json:"pos_ids"`
			NegIDs    []string  `json:"neg_ids"`
			PosScores []float64 `json:"pos_scores"`
			NegScores []float64 `json:"neg_scores"`
		}
		if err := decodeLine(line, &v); err != nil {
			return lineError(name, n, "%v (expected {\"query\": str, \"pos\": [str], \"neg\": [str]})", err)
		}
		if v.Query == nil {
			return lineError(name, n, "missing \"query\"")
		}
		qid := strconv.Itoa(n)
		if v.QID != nil {
			if *v.QID == "" {
				return lineError(name, n, "empty \"qid\"")
			}
			qid = *v.QID
		}
		if _, dup := qrels[qid]; dup {
			return lineError(name, n, "query id %q used twice", qid)
		}
		ids := func(given []string, texts []string, prefix, field string) ([]string, error) {
			if given == nil {
				g := make([]string, len(texts))
				for i := range texts {
					g[i] = prefix + "-" + strconv.Itoa(i)
				}
				return g, nil
			}
			if len(given) != len(texts) {
				return nil, lineError(name, n, "%q has %d ids for %d passages", field, len(given), len(texts))
			}
			return given, nil
		}
		pids, err := ids(v.PosIDs, v.Pos, "pos", "pos_ids")
		if err != nil {
			return err
		}
		nids, err := ids(v.NegIDs, v.Neg, "neg", "neg_ids")
		if err != nil {
			return err
		}
		c := Candidate{QID: qid, Query: *v.Query}
		c.DocIDs = append(append(c.DocIDs, pids...), nids...)
		c.Passages = append(append(c.Passages, v.Pos...), v.Neg...)
		if v.PosScores != nil && v.NegScores != nil {
			if len(v.PosScores) != len(v.Pos) || len(v.NegScores) != len(v.Neg) {
				return lineError(name, n, "pos_scores/neg_scores lengths (%d/%d) differ from pos/neg (%d/%d)",
					len(v.PosScores), len(v.NegScores), len(v.Pos), len(v.Neg))
			}
			c.Scores = append(append(c.Scores, v.PosScores...), v.NegScores...)
			for _, s := range c.Scores {
				if math.IsNaN(s) {
					return lineError(name, n, "NaN score")
				}
			}
		}
		j := map[string]int{}
		for i, d := range c.DocIDs {
			if d == "" {
				return lineError(name, n, "empty document id")
			}
			if _, dup := j[d]; dup {
				return lineError(name, n, "document id %q listed twice", d)
			}
			if i < len(pids) {
				j[d] = 1
			} else {
				j[d] = 0
			}
		}
		qrels[qid] = j
		out = append(out, c)
		return nil
	})
	return out, qrels, err
}

// CandidateFormat names a candidate file format.
type CandidateFormat string

// Candidate file formats understood by ReadCandidateFile.
const (
	FormatAuto          CandidateFormat = "auto"
	FormatTREC          CandidateFormat = "trec"
	FormatJSONL         CandidateFormat = "jsonl"
	FormatFlagEmbedding CandidateFormat = "flag"
)

// ReadCandidateFile reads first-stage candidates in the given format. With
// FormatAuto a file whose first non-empty line is a JSON object is
// candidate JSONL when it has "doc_ids" and FlagEmbedding JSONL when it has
// "pos" or "neg"; anything else is read as a TREC run. The returned qrels
// are non-nil only for FlagEmbedding data (judgments carried by the file).
func ReadCandidateFile(path string, format CandidateFormat, known DocFilter) ([]Candidate, Qrels, error) {
	if format == "" || format == FormatAuto {
		var err error
		if format, err = sniffFormat(path); err != nil {
			return nil, nil, err
		}
	}
	switch format {
	case FormatTREC:
		run, err := ReadTRECRun(path, known)
		if err != nil {
			return nil, nil, err
		}
		return CandidatesFromRun(run, TiesInputOrder), nil, nil
	case FormatJSONL:
		c, err := ReadCandidates(path, known)
		return c, nil, err
	case FormatFlagEmbedding:
		return ReadFlagEmbedding(path)
	}
	return nil, nil, fmt.Errorf("unknown candidate format %q (want auto, trec, jsonl or flag)", format)
}

func sniffFormat(path string) (CandidateFormat, error) {
	r, err := openInput(path)
	if err != nil {
		return "", err
	}
	defer r.Close()
	format := FormatTREC
	stop := fmt.Errorf("stop")
	err = eachLine(r, path, func(line []byte, n int) error {
		t := bytes.TrimSpace(line)
		if len(t) == 0 {
			return nil
		}
		if t[0] == '{' {
			var keys map[string]any
			if err := decodeLine(t, &keys); err != nil {
				return lineError(path, n, "%v", err)
			}
			_, hasDocs := keys["doc_ids"]
			_, hasPos := keys["pos"]
			_, hasNeg := keys["neg"]
			switch {
			case hasDocs:
				format = FormatJSONL
			case hasPos || hasNeg:
				format = FormatFlagEmbedding
			default:
				return lineError(path, n, "JSON line has neither \"doc_ids\" (candidate JSONL) nor \"pos\"/\"neg\" (FlagEmbedding JSONL)")
			}
		}
		return stop
	})
	if err != nil && err != stop {
		return "", err
	}
	return format, nil
}
