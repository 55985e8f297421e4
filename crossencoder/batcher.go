package crossencoder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
	"github.com/rerank-go/rerank/tokenize"
)

// ErrClosed is returned by the calls of a closed Model.
var ErrClosed = errors.New("crossencoder: the model is closed")

// DefaultMaxBatchTokens is Options.MaxBatchTokens when it is 0.
const DefaultMaxBatchTokens = 16384

// engine is the dynamic batcher of a Model: calls put their pairs in one
// queue kept sorted by length, and workers take forward passes from it.
// It holds no reference to its Model, whose cleanup closes it.
type engine struct {
	mu     sync.Mutex
	wake   *sync.Cond
	items  []item // pending pairs, sorted by (tokens, arrival)
	seq    uint64
	closed bool
	busy   sync.WaitGroup // the workers

	net      *nn.Model
	share    func() (*nn.Model, error) // a model for each further worker
	frozen   bool                      // the weights never change: keep them packed
	workers  int
	maxTok   int
	maxPairs int
	pack     int64
	int8     bool // quantize instead of packing (Options.Int8)
	// q8, when not nil, holds the int8 weights Load quantized as the
	// model streamed in (the float32 ones dropped), for the one worker's
	// first pass to take over.
	q8      *infer.Int8Weights
	onPass  func(PassInfo)
	started bool
	passes  int       // forward passes taken so far
	views   []*engine // the engines of the adapters over this model

	// drop: pack or quantize every weight, dropping the float32 ones (a
	// loaded base model scored by one worker, Options.KeepFloat32
	// unset); dropStarted: the worker has begun to (WithAdapter is then
	// refused). Both under mu.
	drop, dropStarted bool
	// device, when not nil, is held for every use of the backend: the
	// engines of a model and its adapters share it on a backend that is
	// not safe for concurrent use (every one but the CPU's).
	device *sync.Mutex
}

// job is one scoring call.
type job struct {
	ctx     context.Context
	encs    []tokenize.Encoding
	out     []float32
	left    int // pairs not yet scored
	err     error
	done    chan struct{}
	start   time.Time
	first   time.Time // when its first pass began
	passes  int
	lastRun int // the number of the last pass that held it
}

// item is one pending pair.
type item struct {
	j   *job
	i   int    // the pair's index in j.encs
	n   int    // its tokens
	seq uint64 // arrival order
}

func newEngine(net *nn.Model, o Options, frozen bool, share func() (*nn.Model, error)) *engine {
	e := &engine{net: net, share: share, frozen: frozen, workers: max(1, o.Workers),
		maxTok: o.MaxBatchTokens, maxPairs: o.BatchSize, pack: o.PackBudget, int8: o.Int8, onPass: o.OnPass}
	if e.maxTok == 0 {
		e.maxTok = DefaultMaxBatchTokens
	}
	switch {
	case e.pack == 0:
		e.pack = infer.DefaultPackBudget
	case e.pack < 0:
		e.pack = 0
	}
	e.wake = sync.NewCond(&e.mu)
	return e
}

func (e *engine) pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.items)
}

// close stops the workers once the queue is empty.
func (e *engine) close() {
	e.mu.Lock()
	e.closed = true
	e.wake.Broadcast()
	views := e.views
	e.mu.Unlock()
	for _, v := range views {
		v.close()
	}
	e.busy.Wait()
}

// score queues encs and waits for their logits, in order.
func (e *engine) score(ctx context.Context, encs []tokenize.Encoding, t *Timing) ([]float32, error) {
	if len(encs) == 0 {
		return []float32{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, enc := range encs {
		if enc.Len() == 0 {
			return nil, fmt.Errorf("crossencoder: pair %d has no tokens", i)
		}
	}
	j := &job{ctx: ctx, encs: encs, out: make([]float32, len(encs)), left: len(encs), done: make(chan struct{}), start: time.Now()}
	add := make([]item, len(encs))
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if !e.started {
		e.started = true
		e.busy.Add(e.workers)
		for w := range e.workers {
			go e.work(w)
		}
	}
	for i, enc := range encs {
		add[i] = item{j: j, i: i, n: enc.Len(), seq: e.seq}
		e.seq++
	}
	slices.SortFunc(add, cmpItem)
	e.items = mergeItems(e.items, add)
	e.wake.Broadcast()
	e.mu.Unlock()

	select {
	case <-j.done:
	case <-ctx.Done():
		// Drop the pairs not yet taken: nobody waits for them.
		e.mu.Lock()
		e.items = slices.DeleteFunc(e.items, func(it item) bool { return it.j == j })
		e.mu.Unlock()
		return nil, ctx.Err()
	}
	if j.err != nil {
		return nil, j.err
	}
	if t != nil {
		end := time.Now()
		*t = Timing{Queue: j.first.Sub(j.start), Inference: end.Sub(j.first), Passes: j.passes}
	}
	return j.out, nil
}

func cmpItem(a, b item) int {
	if a.n != b.n {
		return a.n - b.n
	}
	return int(a.seq) - int(b.seq)
}

// mergeItems merges two sorted lists.
func mergeItems(a, b []item) []item {
	if len(a) == 0 {
		return append(a, b...)
	}
	out := make([]item, 0, len(a)+len(b))
	i, k := 0, 0
	for i < len(a) && k < len(b) {
		if cmpItem(a[i], b[k]) <= 0 {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[k])
			k++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[k:]...)
}

// next waits for pending pairs and takes one forward pass's worth: the
// oldest pending pair, and around it in the length order the pairs
// closest to it in length, while pairs × the longest stays within
// maxTok (and pairs within maxPairs). The oldest pair always goes next, so
// no call waits behind a stream of others; its neighbours in length keep
// the padding small. It returns false once the engine is closed and
// empty.
func (e *engine) next(dst []item) ([]item, int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		// Pairs of calls that have gone away are not computed.
		e.items = slices.DeleteFunc(e.items, func(it item) bool { return it.j.ctx.Err() != nil })
		if len(e.items) > 0 {
			break
		}
		if e.closed {
			return dst[:0], 0, false
		}
		e.wake.Wait()
	}
	items := e.items
	a := 0
	for k := range items {
		if items[k].seq < items[a].seq {
			a = k
		}
	}
	lo, hi := a, a+1
	for e.maxPairs <= 0 || hi-lo < e.maxPairs {
		w := items[hi-1].n
		left := lo > 0 && (hi-lo+1)*w <= e.maxTok
		right := hi < len(items) && (hi-lo+1)*items[hi].n <= e.maxTok
		if left && right {
			if items[a].n-items[lo-1].n <= items[hi].n-items[a].n {
				right = false
			} else {
				left = false
			}
		}
		if left {
			lo--
		} else if right {
			hi++
		} else {
			break
		}
	}
	dst = append(dst[:0], items[lo:hi]...)
	e.items = slices.Delete(items, lo, hi)
	now := time.Now()
	for _, it := range dst {
		if it.j.first.IsZero() {
			it.j.first = now
		}
	}
	e.passes++
	return dst, e.passes, true
}

// work is one worker: it takes passes from the queue and runs them on
// its lanes until the engine closes.
func (e *engine) work(w int) {
	defer e.busy.Done()
	net := e.net
	var err error
	if w > 0 {
		e.lockDevice()
		net, err = e.share()
		e.unlockDevice()
	}
	var lanes *infer.Runner
	if err == nil {
		lanes, err = infer.New(net)
	}
	var release func()
	defer func() {
		if release != nil {
			e.lockDevice()
			release()
			e.unlockDevice()
		}
	}()
	var b []item
	var encs []tokenize.Encoding
	for {
		var ok bool
		var pass int
		if b, pass, ok = e.next(b); !ok {
			return
		}
		var logits []float32
		e.lockDevice()
		if err == nil {
			// The weights are packed once for the passes that follow
			// while the queue stays busy (for good when frozen); a single
			// pair runs on the model alone and gains nothing from it,
			// unless every weight is packed in the float32 ones' place
			// (drop): then all passes read that copy, from the first on.
			// int8 weights are quantized for every pass, however small,
			// so that a pair's score does not depend on its company.
			switch {
			case release != nil:
			case e.int8:
				quantize := lanes.QuantizeWeights
				switch {
				case e.q8 != nil:
					q8 := e.q8
					e.q8 = nil
					quantize = func() (func(), error) { return lanes.UseInt8Weights(q8) }
				case e.dropping():
					quantize = lanes.QuantizeWeightsDropping
				}
				if release, err = quantize(); err != nil {
					release = nil
				}
			case e.pack > 0 && e.dropping():
				if release, err = lanes.PackWeightsDropping(); err != nil {
					release = nil
				}
			case len(b) > 1 && e.pack > 0:
				if release, err = lanes.PackWeights(e.pack); err != nil {
					release = nil
				}
			}
			encs = encs[:0]
			for _, it := range b {
				encs = append(encs, it.j.encs[it.i])
			}
			if err == nil {
				t0 := time.Now()
				in := input.Batch(encs, int32(net.Cfg.PadID))
				logits, err = lanes.Forward(in)
				if e.onPass != nil {
					tokens := 0
					for _, enc := range encs {
						tokens += enc.Len()
					}
					e.onPass(PassInfo{Pairs: in.N, Tokens: tokens, Padded: in.N * in.S, Duration: time.Since(t0), Err: err})
				}
			}
		}
		// When the weights may change between calls and no pair waits,
		// the packed copy goes before the results do, so that a call that
		// returns never leaves a stale copy behind.
		if !e.frozen && release != nil && e.pending() == 0 {
			release()
			release = nil
		}
		e.unlockDevice()
		e.deliver(b, logits, net.Cfg.NumLabels, err, pass)
		if err != nil && lanes != nil {
			err = nil // a failed pass fails its calls, not the worker
		}
	}
}

// dropping reports whether the worker drops the float32 weights as it
// packs or quantizes them; once it has said so, WithAdapter is refused.
func (e *engine) dropping() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropStarted = e.drop
	return e.drop
}

// keepFloat32 turns drop off for an adapter (WithAdapter) unless the
// float32 weights are being dropped already, and reports whether they
// are kept.
func (e *engine) keepFloat32() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dropStarted || e.net.LinearWeightsDropped() {
		return false
	}
	e.drop = false
	return true
}

func (e *engine) lockDevice() {
	if e.device != nil {
		e.device.Lock()
	}
}

func (e *engine) unlockDevice() {
	if e.device != nil {
		e.device.Unlock()
	}
}

// deliver hands a pass's logits (or its error) to the calls it held.
func (e *engine) deliver(b []item, logits []float32, labels int, err error, pass int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, it := range b {
		j := it.j
		if err != nil {
			if j.err == nil {
				j.err = err
			}
		} else {
			j.out[it.i] = logits[k*labels]
		}
		if j.lastRun != pass {
			j.lastRun = pass
			j.passes++
		}
		j.left--
		if j.left == 0 {
			close(j.done)
		}
	}
}
