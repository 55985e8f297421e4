package tokenize

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Pair is one (query, passage) input.
type Pair struct {
	Query, Passage string
}

// PaddedBatch is encodings padded to one length, row-major: row i holds positions
// [i*S, (i+1)*S) of IDs, TypeIDs and Mask. Padding is on the right, with the
// tokenizer's pad id, type id 0 and mask 0.
type PaddedBatch struct {
	N, S               int
	IDs, TypeIDs, Mask []int32
}

// BatchOptions configures EncodeBatch.
type BatchOptions struct {
	Truncation Truncation
	// PadToMultipleOf rounds the padded length S up to a multiple (0 or 1:
	// the longest row).
	PadToMultipleOf int
	// Workers is how many goroutines encode (0: GOMAXPROCS).
	Workers int
}

// EncodePairs encodes pairs concurrently on workers goroutines (0:
// GOMAXPROCS), in input order. errs is nil when every pair was encoded;
// otherwise errs[i] is the error of pair i (encs[i] is then empty).
func (t *Tokenizer) EncodePairs(pairs []Pair, tr Truncation, workers int) (encs []Encoding, errs []error) {
	encs = make([]Encoding, len(pairs))
	if err := t.check(tr); err != nil {
		errs = make([]error, len(pairs))
		for i := range errs {
			errs[i] = err
		}
		return encs, errs
	}
	var mu sync.Mutex
	t.parallel(len(pairs), workers, func(i int, s *scratch) {
		e, err := t.encodePair(pairs[i].Query, pairs[i].Passage, tr, s)
		if err != nil {
			mu.Lock()
			if errs == nil {
				errs = make([]error, len(pairs))
			}
			errs[i] = err
			mu.Unlock()
			return
		}
		encs[i] = e
	})
	return encs, errs
}

// parallel calls fn(i) for i in [0, n) on up to workers goroutines, each
// with its own scratch space.
func (t *Tokenizer) parallel(n, workers int, fn func(i int, s *scratch)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		s := t.getScratch()
		for i := 0; i < n; i++ {
			fn(i, s)
		}
		t.pool.Put(s)
		return
	}
	const chunk = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := t.getScratch()
			defer t.pool.Put(s)
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < lo+chunk && i < n; i++ {
					fn(i, s)
				}
			}
		}()
	}
	wg.Wait()
}

// EncodeBatch encodes and pads pairs into one batch. It fails on the first
// pair (in input order) that cannot be encoded, naming its index.
func (t *Tokenizer) EncodeBatch(pairs []Pair, opt BatchOptions) (PaddedBatch, error) {
	encs, errs := t.EncodePairs(pairs, opt.Truncation, opt.Workers)
	for i, err := range errs {
		if err != nil {
			return PaddedBatch{}, fmt.Errorf("tokenize: pair %d: %w", i, err)
		}
	}
	return t.Pad(encs, opt.PadToMultipleOf)
}

// Pad lays encodings out as a right-padded batch whose length S is the
// longest encoding rounded up to a multiple of multiple (when > 1).
func (t *Tokenizer) Pad(encs []Encoding, multiple int) (PaddedBatch, error) {
	if t.padID < 0 {
		return PaddedBatch{}, fmt.Errorf("tokenize: %s has no padding token ([PAD] or <pad>) to pad a batch with", t.name)
	}
	return Pad(encs, t.padID, multiple), nil
}

// Pad lays encodings out as a right-padded batch with padID, type id 0 and
// mask 0; S is the longest encoding rounded up to a multiple of multiple
// (when > 1).
func Pad(encs []Encoding, padID int32, multiple int) PaddedBatch {
	s := 0
	for _, e := range encs {
		if len(e.IDs) > s {
			s = len(e.IDs)
		}
	}
	if multiple > 1 && s%multiple != 0 {
		s += multiple - s%multiple
	}
	n := len(encs)
	b := PaddedBatch{N: n, S: s, IDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
	for i, e := range encs {
		row := i * s
		copy(b.IDs[row:row+s], e.IDs)
		copy(b.TypeIDs[row:row+s], e.TypeIDs)
		copy(b.Mask[row:row+s], e.Mask)
		for j := row + len(e.IDs); j < row+s; j++ {
			b.IDs[j] = padID
		}
	}
	return b
}
