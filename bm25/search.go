package bm25

import (
	"container/heap"
	"context"
	"runtime"
	"sync"
)

// Hit is one retrieved document.
type Hit struct {
	Doc   int     // corpus position
	ID    string  // external id
	Score float64 // BM25 score
}

// Searcher holds the scratch space for searching one query at a time;
// each goroutine needs its own. The zero value is not usable: call
// Index.NewSearcher.
type Searcher struct {
	ix      *Index
	acc     []float64
	touched []int32
	seen    []bool
	h       hitHeap
}

// NewSearcher returns a Searcher over the index.
func (ix *Index) NewSearcher() *Searcher {
	return &Searcher{ix: ix, acc: make([]float64, len(ix.ids)), seen: make([]bool, len(ix.ids))}
}

// Search returns the k best documents for the query text, best first;
// equal scores rank in corpus order. Documents that share no term with
// the query are never returned, so fewer than k hits may come back.
func (s *Searcher) Search(query string, k int) []Hit {
	return s.SearchTerms(Analyze(query), k)
}

// SearchTerms is Search for an analyzed query (terms may repeat; each
// occurrence adds its weight).
func (s *Searcher) SearchTerms(terms []string, k int) []Hit {
	ix := s.ix
	if k <= 0 || len(ix.ids) == 0 {
		return nil
	}
	k1p1 := ix.params.K1 + 1
	// Term at a time, in query order, so each document's score is summed
	// in the same order as a per-document loop over the query terms.
	for _, t := range terms {
		id, ok := ix.terms[t]
		if !ok {
			continue
		}
		p := &ix.post[id]
		idf := ix.idf[id]
		for i, d := range p.docs {
			tf := float64(p.tfs[i])
			w := float64(float64(idf*tf)*k1p1) / (tf + ix.norm[d])
			if !s.seen[d] {
				s.seen[d] = true
				s.touched = append(s.touched, d)
			}
			s.acc[d] += w
		}
	}
	// Top k with a min-heap whose root is the worst kept hit.
	s.h = s.h[:0]
	for _, d := range s.touched {
		sc := s.acc[d]
		if len(s.h) < k {
			heap.Push(&s.h, scored{d, sc})
		} else if better(scored{d, sc}, s.h[0]) {
			s.h[0] = scored{d, sc}
			heap.Fix(&s.h, 0)
		}
		s.acc[d] = 0
		s.seen[d] = false
	}
	s.touched = s.touched[:0]
	out := make([]Hit, len(s.h))
	for i := len(out) - 1; i >= 0; i-- {
		x := heap.Pop(&s.h).(scored)
		out[i] = Hit{Doc: int(x.doc), ID: ix.ids[x.doc], Score: x.score}
	}
	return out
}

type scored struct {
	doc   int32
	score float64
}

// better orders hits: higher score first, then earlier in the corpus.
func better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.doc < b.doc
}

// hitHeap keeps the worst hit at the root.
type hitHeap []scored

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Search is a convenience for one query (it allocates a Searcher).
func (ix *Index) Search(query string, k int) []Hit {
	return ix.NewSearcher().Search(query, k)
}

// SearchAll searches every query concurrently (workers goroutines, 0
// means GOMAXPROCS) and returns the hits in query order. progress, when
// set, is called after each query with the number done.
func (ix *Index) SearchAll(ctx context.Context, queries []string, k, workers int, progress func(done int)) ([][]Hit, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([][]Hit, len(queries))
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ix.NewSearcher()
			for i := range next {
				out[i] = s.Search(queries[i], k)
				if progress != nil {
					mu.Lock()
					done++
					progress(done)
					mu.Unlock()
				}
			}
		}()
	}
	var err error
feed:
	for i := range queries {
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return out, nil
}
