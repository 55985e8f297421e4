package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rerank-go/rerank/backend"
)

// A Backend's workers are goroutines started once, on its first op, and
// woken for each op that splits its work, so that ops allocate nothing in
// the steady state: no goroutine, closure or WaitGroup per call. An op's
// operands go in the pool's task (ggml's op params) and the code each
// worker runs is a function literal that captures nothing (a static
// function value, never allocated), reading them from there. The pool also
// owns the scratch of the ops (grown to the largest op seen, then reused).
//
// One op runs on a pool at a time: callers on several goroutines take
// turns (each op is split across the workers already).

// pool is a backend's workers and the op they run, with its operands and
// scratch. t is guarded by mu.
type pool struct {
	mu sync.Mutex
	t  task
	// wake[i] starts worker i (1 ≤ i < len(wake)) on t.work; wake[0] is
	// unused (slot 0 runs on the calling goroutine).
	wake []chan struct{}
	done sync.WaitGroup
}

// task is the op in flight on a pool.
type task struct {
	// work runs one slot's share of the op (fork).
	work func(t *task, slot int)
	// span computes items [lo, hi) of a split op; chunk i of chunk items
	// goes to slot i%slots.
	span            func(t *task, lo, hi int)
	n, chunk, slots int

	// Operands of elementwise and row-wise ops, each op naming them on
	// its first line: float32 buffers, int32 ids, sizes, float32 scalars.
	f    [8][]float32
	ids  []int32
	i    [4]int
	x    [9]float32
	seed uint64
	flag bool

	// colReduce: block adds rows [lo, hi) of one block into its
	// accumulators; f64 holds nAcc·cols sums per block.
	block      func(t *task, acc0, acc1 []float64, lo, hi int)
	f64        []float64
	nAcc, cols int

	// forTasks: the workers claim task indices from next, each running
	// each(t, its scratch, index); scratch[slot] is grown to scratchLen.
	each       func(t *task, scratch []float32, i int)
	next       atomic.Int64
	tasks      int
	scratchLen int
	scratch    [][]float32
	attn       attnOp

	// avxGemmPar's product.
	gemm gemmOp
}

// attnOp holds the operands of an attention op (attention.go).
type attnOp struct {
	a                          backend.Attn
	qkv, q, ctx, save, g, dqkv []float32
	lens                       []int     // key length per sequence
	madd                       []float32 // additive key mask, [N·S]
	scale                      float32
}

// gemmOp holds the operands of one product split by avxGemmPar
// (gemm_avx512.go) and the counters its workers claim work from.
type gemmOp struct {
	transA, transB, byRows      bool
	m, n, k, lda, ldb, ldc      int
	alpha, beta                 float32
	a, b, c, bias, act, buf, pb []float32
	nb, apSize, panels          int
	chunk, blocks               int
	next, packed, claim         atomic.Int64
	kern                        *kernel // the blocked kernel (avxGemmPar)
	goRoute                     bool    // blocks take the pure-Go product (gemmPar)
}

// newPool returns a pool of workers goroutines in all (the caller's
// included).
func newPool(workers int) *pool {
	p := &pool{wake: make([]chan struct{}, workers)}
	p.t.scratch = make([][]float32, workers)
	for i := 1; i < workers; i++ {
		p.wake[i] = make(chan struct{}, 1)
		go p.worker(i)
	}
	return p
}

func (p *pool) worker(slot int) {
	for range p.wake[slot] {
		p.t.work(&p.t, slot)
		p.done.Done()
	}
}

// stop ends the workers (a Backend's cleanup, once it is unreachable).
func (p *pool) stop() {
	for _, c := range p.wake[1:] {
		close(c)
	}
}

// lock returns b's pool, started on first use (a Backend built as a
// literal, as tests do, works too), and locked for one op: set its
// operands in p.t, run it, then call p.unlock.
func (b *Backend) lock() *pool {
	b.once.Do(func() {
		b.p = newPool(max(1, b.workers))
		runtime.AddCleanup(b, (*pool).stop, b.p)
	})
	b.p.mu.Lock()
	return b.p
}

// unlock ends an op: it drops the task's references to the op's buffers,
// so that the pool keeps no memory of its callers alive, and unlocks p.
func (p *pool) unlock() {
	t := &p.t
	t.f, t.ids = [8][]float32{}, nil
	a := &t.attn
	a.qkv, a.q, a.ctx, a.save, a.g, a.dqkv = nil, nil, nil, nil, nil, nil
	g := &t.gemm
	g.a, g.b, g.c, g.bias, g.buf, g.pb = nil, nil, nil, nil, nil, nil
	p.mu.Unlock()
}

// fork runs p.t.work(&p.t, slot) for every slot in [0, slots): slot 0 on
// the calling goroutine, the others on the workers. The caller holds
// p.mu.
func (p *pool) fork(slots int) {
	slots = min(slots, len(p.wake))
	if slots <= 1 {
		p.t.work(&p.t, 0)
		return
	}
	p.done.Add(slots - 1)
	for i := 1; i < slots; i++ {
		p.wake[i] <- struct{}{}
	}
	p.t.work(&p.t, 0)
	p.done.Wait()
}

// parallel splits [0, n) into contiguous chunks and runs span on each, on
// up to b.workers goroutines. Work smaller than minChunk items per worker
// runs on the calling goroutine. The caller holds p.mu and has set the
// operands in p.t.
func (p *pool) parallel(n, minChunk int, span func(t *task, lo, hi int)) {
	w := min(len(p.wake), n/max(minChunk, 1))
	if w <= 1 {
		span(&p.t, 0, n)
		return
	}
	p.split(n, (n+w-1)/w, span)
}

// split runs span on [0, n) in chunks of chunk items, the first on the
// calling goroutine and each other on a worker. The caller holds p.mu.
func (p *pool) split(n, chunk int, span func(t *task, lo, hi int)) {
	if chunk >= n {
		span(&p.t, 0, n)
		return
	}
	t := &p.t
	t.span, t.n, t.chunk = span, n, chunk
	t.slots = min(len(p.wake), (n+chunk-1)/chunk)
	t.work = splitWork
	p.fork(t.slots)
}

func splitWork(t *task, slot int) {
	for lo := slot * t.chunk; lo < t.n; lo += t.slots * t.chunk {
		t.span(t, lo, min(lo+t.chunk, t.n))
	}
}

// grow returns the buffer *s grown to at least n values (not zeroed).
func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}
