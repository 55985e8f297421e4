package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A crew is the set of lanes one Backend.Lanes call returns. A lane that
// has finished its share of a pass (LanesDone) does not sit idle while the
// others finish theirs: it takes blocks of rows of the products they are
// computing. A lane slowed down by other programs on its core, or dealt
// more tokens, then holds back the pass less.
//
// Only products whose weight is packed already (GemmBiasPacked, and its
// GELU variant) or quantized (GemmBiasQuantized, and its GELU variant) are
// shared: the weight is read-only and shared anyway, every row of C is
// summed in the same order whichever lane computes it, and an int8
// product quantizes each row of A on its own, so the results have the
// same bits as without help.
type crew struct {
	mu   sync.Mutex
	wake *sync.Cond
	jobs []*crewJob // products open to helpers
	// active counts the lanes of the current pass that have not called
	// LanesDone; lenders, those waiting in LanesDone for work.
	active  int
	lenders atomic.Int32
}

func newCrew() *crew {
	c := &crew{}
	c.wake = sync.NewCond(&c.mu)
	return c
}

// crewJob is one product C = A·Wᵀ + bias, W packed or quantized, cut into
// blocks of chunk rows (a multiple of align) that the owner and its
// helpers claim from next; left counts the blocks not finished yet, users
// the helpers inside work. Each lane reuses its own job (Backend.job) for
// its next product once users is 0.
type crewJob struct {
	m, n, k     int
	a           []float32
	lda         int
	pw, bias, c []float32
	act         []float32 // gelu(C), or nil
	align       int
	// q8, for an int8 product, is the lane that owns it (whose route picks
	// the kernel), qw its weight, gelu whether C gets gelu in place; nil
	// for a float32 product with a packed weight.
	q8            *Backend
	qw            q8Weight
	gelu          bool
	ldc           int
	chunk, blocks int
	next          atomic.Int64
	left          sync.WaitGroup
	users         atomic.Int32
	kern          *kernel // the owner's kernel
}

// work computes blocks of j until none is left to claim.
func (j *crewJob) work() {
	for {
		i := int(j.next.Add(1)) - 1
		if i >= j.blocks {
			return
		}
		m0 := i * j.chunk
		m1 := min(j.m, m0+j.chunk)
		if j.q8 != nil {
			j.q8.q8Rows(m0, m1, j.n, j.k, j.a, j.lda, j.qw, j.bias, j.c, j.ldc, j.gelu)
		} else {
			j.kern.prepackedRows(m0, m1, j.n, j.k, j.a, j.lda, j.pw, j.c, j.ldc, j.bias, j.act)
		}
		j.left.Done()
	}
}

// crewMinBlock is the fewest rows a block of a shared product has: a
// block reads all of the packed weight.
const crewMinBlock = 96

// worth says whether a product of m rows is shared now: some lane is
// free to help and there are rows enough to split.
func (c *crew) worth(m int) bool { return c.lenders.Load() > 0 && m >= 2*crewMinBlock }

// share computes j's product with whatever help the crew's lenders give,
// returning when every block is done and no helper holds j any more.
func (c *crew) share(j *crewJob) {
	lenders := int(c.lenders.Load())
	// About four blocks per lane at work, so that a lender that joins late
	// still finds some.
	j.chunk = max(crewMinBlock, (j.m+4*(lenders+1)-1)/(4*(lenders+1)))
	j.chunk = (j.chunk + j.align - 1) / j.align * j.align
	j.blocks = (j.m + j.chunk - 1) / j.chunk
	j.next.Store(0)
	j.left.Add(j.blocks)
	c.mu.Lock()
	c.jobs = append(c.jobs, j)
	c.wake.Broadcast()
	c.mu.Unlock()
	j.work()
	c.drop(j)     // no helper takes j up from now on
	j.left.Wait() // for the blocks helpers are finishing
	for j.users.Load() > 0 {
		runtime.Gosched() // a helper is leaving work, finding nothing left
	}
}

// open returns the first product with blocks left to claim, or nil.
// c.mu is held.
func (c *crew) open() *crewJob {
	for _, j := range c.jobs {
		if j.next.Load() < int64(j.blocks) {
			return j
		}
	}
	return nil
}

// drop takes j off the list of open products, if it is still there.
func (c *crew) drop(j *crewJob) {
	c.mu.Lock()
	for i, x := range c.jobs {
		if x == j {
			c.jobs = append(c.jobs[:i], c.jobs[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
}

// begin starts a pass that n lanes take part in.
func (c *crew) begin(n int) {
	c.mu.Lock()
	c.active = n
	c.mu.Unlock()
}

// done marks one lane's share of the pass finished and lends that lane to
// the others' open products until every lane's share is.
func (c *crew) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	if c.active <= 0 {
		c.wake.Broadcast()
		return
	}
	c.lenders.Add(1)
	defer c.lenders.Add(-1)
	for {
		// A product is open only while its lane computes it, so once every
		// lane is done none is.
		var j *crewJob
		for c.active > 0 {
			if j = c.open(); j != nil {
				break
			}
			c.wake.Wait()
		}
		if j == nil {
			return
		}
		j.users.Add(1)
		c.mu.Unlock()
		j.work()
		j.users.Add(-1)
		c.mu.Lock()
	}
}

// LanesBegin implements backend.LaneHelper.
func (bk *Backend) LanesBegin(n int) {
	if bk.crew != nil {
		bk.crew.begin(n)
	}
}

// LanesDone implements backend.LaneHelper.
func (bk *Backend) LanesDone() {
	if bk.crew != nil {
		bk.crew.done()
	}
}
