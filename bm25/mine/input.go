package mine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/bm25"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/internal/jsonl"
)

// FromBEIR turns a split's qrels into queries: positives are the judged
// relevant documents ordered by grade (descending), then id, as in the
// shared reranker_train files.
func FromBEIR(c *bm25.Corpus, qrels bm25.Qrels, qs []bm25.Query) ([]Query, error) {
	out := make([]Query, 0, len(qs))
	for _, q := range qs {
		type rel struct {
			id    string
			grade int
		}
		var rels []rel
		for id, g := range qrels[q.ID] {
			rels = append(rels, rel{id, g})
		}
		sort.Slice(rels, func(i, j int) bool {
			if rels[i].grade != rels[j].grade {
				return rels[i].grade > rels[j].grade
			}
			return rels[i].id < rels[j].id
		})
		mq := Query{ID: q.ID, Text: q.Text}
		for _, r := range rels {
			i, ok := c.Index(r.id)
			if !ok {
				continue // judged document missing from the corpus
			}
			mq.Pos = append(mq.Pos, c.Passage(i))
			mq.PosIDs = append(mq.PosIDs, r.id)
		}
		if len(mq.Pos) == 0 {
			return nil, fmt.Errorf("query %s: none of its judged documents is in the corpus", q.ID)
		}
		out = append(out, mq)
	}
	return out, nil
}

// FromExamples turns FlagEmbedding lines (query/pos, neg optional) into
// queries. A string "qid" and a "pos_ids" list as long as "pos" are
// picked up; other extra keys are carried to the output.
func FromExamples(exs []flagdata.Example) []Query {
	out := make([]Query, len(exs))
	for i, e := range exs {
		q := Query{Text: e.Query, Prompt: e.Prompt, Pos: e.Pos, Extra: map[string]json.RawMessage{}}
		for k, v := range e.Extra {
			q.Extra[k] = v
		}
		var qid string
		if json.Unmarshal(e.Extra["qid"], &qid) == nil {
			q.ID = qid
			delete(q.Extra, "qid")
		}
		var pids []string
		if json.Unmarshal(e.Extra["pos_ids"], &pids) == nil && len(pids) == len(e.Pos) {
			q.PosIDs = pids
			delete(q.Extra, "pos_ids")
		}
		out[i] = q
	}
	return out
}

// PoolFromExamples builds the candidate texts FlagEmbedding's hn_mine uses
// without a candidate pool: every pos and neg passage of the input, once
// each, in order of first appearance (ids are their positions).
func PoolFromExamples(exs []flagdata.Example) (ids, passages []string) {
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			ids = append(ids, strconv.Itoa(len(ids)))
			passages = append(passages, p)
		}
	}
	for _, e := range exs {
		for _, p := range e.Pos {
			add(p)
		}
		for _, p := range e.Neg {
			add(p)
		}
	}
	return ids, passages
}

// ReadPoolFile reads a candidate pool: a BEIR corpus.jsonl
// ({"_id", "title", "text"}) or FlagEmbedding's candidate pool ({"text"}
// per line, ids = 0-based line numbers). passages are (title + " " +
// text) stripped; indexTexts are title + " " + text.
func ReadPoolFile(path string) (ids, passages, indexTexts []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	seen := map[string]int{}
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if line == 1 {
			b = jsonl.TrimBOM(b)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			if err := jsonl.CheckLine(path, line, t); err != nil {
				return nil, nil, nil, err
			}
			var d struct {
				ID    json.RawMessage `json:"_id"`
				Title string          `json:"title"`
				Text  *string         `json:"text"`
			}
			if err := json.Unmarshal(t, &d); err != nil {
				return nil, nil, nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			if d.Text == nil {
				return nil, nil, nil, fmt.Errorf("%s:%d: field \"text\": missing", path, line)
			}
			id := strconv.Itoa(len(ids))
			if d.ID != nil {
				var s string
				if json.Unmarshal(d.ID, &s) != nil {
					s = strings.TrimSpace(string(d.ID))
				}
				id = s
			}
			if prev, dup := seen[id]; dup {
				return nil, nil, nil, fmt.Errorf("%s:%d: id %q already used on line %d", path, line, id, prev)
			}
			seen[id] = line
			ids = append(ids, id)
			passages = append(passages, strings.TrimSpace(d.Title+" "+*d.Text))
			indexTexts = append(indexTexts, d.Title+" "+*d.Text)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, nil, nil, fmt.Errorf("%s:%d: %w", path, line, rerr)
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: no passages", path)
	}
	return ids, passages, indexTexts, nil
}
