// Package bm25 is a Lucene-style BM25 first-stage retriever: the
// analyzer the shared collections were prepared with (Analyze), an
// in-memory inverted index built concurrently, saved to and loaded from
// disk, and top-k search with a heap.
//
// Score(q, d) = Σ over query terms t (with repetition) of
//
//	idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl)),
//	idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5)),
//
// with |d| and avgdl counted in analyzed terms. Only documents sharing a
// term with the query are scored; equal scores rank in corpus order.
package bm25

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Default parameters (Anserini's BEIR "flat" settings).
const (
	DefaultK1 = 0.9
	DefaultB  = 0.4
)

// Params are the BM25 free parameters.
type Params struct {
	K1 float64
	B  float64
}

// DefaultParams returns k1 = 0.9, b = 0.4.
func DefaultParams() Params { return Params{K1: DefaultK1, B: DefaultB} }

// Doc is one document to index: its external id and its text (for a
// BEIR corpus, title + " " + text).
type Doc struct {
	ID   string
	Text string
}

// postings are one term's documents in increasing order with their term
// frequencies.
type postings struct {
	docs []int32
	tfs  []int32
}

// Index is an immutable inverted index. It is safe for concurrent
// searches.
type Index struct {
	params Params
	ids    []string // external document ids, corpus order
	lens   []int32  // analyzed length per document
	terms  map[string]int32
	post   []postings
	avgdl  float64
	// derived at build/load time
	idf  []float64 // per term
	norm []float64 // per document: k1·(1 − b + b·|d|/avgdl)
}

// BuildOptions configure Build.
type BuildOptions struct {
	Params  Params // zero value means DefaultParams
	Workers int    // analysis goroutines; 0 means GOMAXPROCS
	// Progress, when set, is called with the number of documents
	// analyzed so far (from one goroutine at a time).
	Progress func(done int)
}

// Build analyzes the documents concurrently and builds the index. Doc
// ids must be unique.
func Build(ctx context.Context, docs []Doc, opts BuildOptions) (*Index, error) {
	if opts.Params == (Params{}) {
		opts.Params = DefaultParams()
	}
	if err := opts.Params.validate(); err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	seen := make(map[string]struct{}, len(docs))
	for i, d := range docs {
		if _, dup := seen[d.ID]; dup {
			return nil, fmt.Errorf("bm25: document %d: duplicate id %q: ids must be unique", i, d.ID)
		}
		seen[d.ID] = struct{}{}
	}

	// Documents are analyzed in chunks by a pool of workers; each chunk's
	// terms are merged into the postings in corpus order, so the index
	// does not depend on scheduling.
	const chunk = 256
	nchunks := (len(docs) + chunk - 1) / chunk
	type result struct {
		terms [][]string
	}
	results := make([]chan result, nchunks)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cache := stemCache{}
			for c := range jobs {
				lo, hi := c*chunk, min((c+1)*chunk, len(docs))
				r := result{terms: make([][]string, hi-lo)}
				for i := lo; i < hi; i++ {
					r.terms[i-lo] = appendTerms(nil, docs[i].Text, cache)
				}
				results[c] <- r
			}
		}()
	}
	go func() {
		defer close(jobs)
		for c := 0; c < nchunks; c++ {
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			}
		}
	}()

	ix := &Index{
		params: opts.Params,
		ids:    make([]string, len(docs)),
		lens:   make([]int32, len(docs)),
		terms:  make(map[string]int32),
	}
	var total int64
	for c := 0; c < nchunks; c++ {
		var r result
		select {
		case r = <-results[c]:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		for k, terms := range r.terms {
			d := int32(c*chunk + k)
			ix.ids[d] = docs[d].ID
			ix.lens[d] = int32(len(terms))
			total += int64(len(terms))
			for _, t := range terms {
				id, ok := ix.terms[t]
				if !ok {
					id = int32(len(ix.post))
					ix.terms[t] = id
					ix.post = append(ix.post, postings{})
				}
				// Postings grow in document order, so a term already seen
				// in this document is the last entry of its list.
				p := &ix.post[id]
				if n := len(p.docs); n > 0 && p.docs[n-1] == d {
					p.tfs[n-1]++
				} else {
					p.docs = append(p.docs, d)
					p.tfs = append(p.tfs, 1)
				}
			}
		}
		if opts.Progress != nil {
			opts.Progress(min((c+1)*chunk, len(docs)))
		}
	}
	wg.Wait()
	if len(docs) > 0 {
		ix.avgdl = float64(total) / float64(len(docs))
	}
	ix.derive()
	return ix, nil
}

func (p Params) validate() error {
	if p.K1 < 0 || p.B < 0 || p.B > 1 || math.IsNaN(p.K1) || math.IsNaN(p.B) {
		return fmt.Errorf("bm25: parameters k1=%v b=%v out of range: need k1 >= 0 and 0 <= b <= 1", p.K1, p.B)
	}
	return nil
}

// derive computes idf per term and the length normalisation per document.
func (ix *Index) derive() {
	n := float64(len(ix.ids))
	ix.idf = make([]float64, len(ix.post))
	for i, p := range ix.post {
		df := float64(len(p.docs))
		ix.idf[i] = math.Log(1 + (n-df+0.5)/(df+0.5))
	}
	k1, b := ix.params.K1, ix.params.B
	ix.norm = make([]float64, len(ix.lens))
	for d, l := range ix.lens {
		if ix.avgdl > 0 {
			ix.norm[d] = k1 * (1 - b + float64(b*float64(l))/ix.avgdl)
		} else {
			ix.norm[d] = k1 * (1 - b)
		}
	}
}

// Params returns the index's BM25 parameters.
func (ix *Index) Params() Params { return ix.params }

// WithParams returns a copy of the index that scores with other
// parameters (the postings are shared).
func (ix *Index) WithParams(p Params) (*Index, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	c := *ix
	c.params = p
	c.derive()
	return &c, nil
}

// Len is the number of documents.
func (ix *Index) Len() int { return len(ix.ids) }

// Vocabulary is the number of distinct terms.
func (ix *Index) Vocabulary() int { return len(ix.post) }

// AvgDocLen is the mean analyzed document length.
func (ix *Index) AvgDocLen() float64 { return ix.avgdl }

// DocID returns the external id of document i (corpus order).
func (ix *Index) DocID(i int) string { return ix.ids[i] }

// DocFreq returns the number of documents containing an analyzed term.
func (ix *Index) DocFreq(term string) int {
	id, ok := ix.terms[term]
	if !ok {
		return 0
	}
	return len(ix.post[id].docs)
}
