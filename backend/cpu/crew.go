package cpu

import (
	"sync"
	"sync/atomic"
)

// A crew is the set of lanes one Backend.Lanes call returns. A lane that
// has finished its share of a pass (LanesDone) does not sit idle while the
// others finish theirs: it takes blocks of rows of the products they are
// computing. A lane slowed down by other programs on its core, or dealt
// more tokens, then holds back the pass less.
//
// Only products whose weight is packed already (GemmBiasPacked) are
// shared: the packed weight is read-only and shared anyway, and every row
// of C is summed in the same order whichever lane computes it, so the
// results have the same bits as without help.
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

// crewJob is one product C = A·Wᵀ + bias, W packed, cut into blocks of
// chunk rows that the owner and its helpers claim from next; left counts
// the blocks not finished yet.
type crewJob struct {
	m, n, k       int
	a             []float32
	lda           int
	pw, bias, c   []float32
	ldc           int
	chunk, blocks int
	next          atomic.Int64
	left          sync.WaitGroup
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
		avxPrepackedRows(m0, m1, j.n, j.k, j.a, j.lda, j.pw, j.c, j.ldc, j.bias)
		j.left.Done()
	}
}

// crewMinBlock is the fewest rows a block of a shared product has: a
// block reads all of the packed weight.
const crewMinBlock = 96

// share computes j's product with whatever help the crew's lenders give,
// returning when every block is done. It reports false, having done
// nothing, when no lane is free to help or the product is too small to
// split.
func (c *crew) share(j *crewJob) bool {
	lenders := int(c.lenders.Load())
	if lenders == 0 || j.m < 2*crewMinBlock {
		return false
	}
	// About four blocks per lane at work, so that a lender that joins late
	// still finds some.
	j.chunk = max(crewMinBlock, (j.m+4*(lenders+1)-1)/(4*(lenders+1)))
	j.chunk = (j.chunk + avxMR - 1) / avxMR * avxMR
	j.blocks = (j.m + j.chunk - 1) / j.chunk
	j.left.Add(j.blocks)
	c.mu.Lock()
	c.jobs = append(c.jobs, j)
	c.wake.Broadcast()
	c.mu.Unlock()
	j.work()
	c.drop(j)
	j.left.Wait() // for the blocks helpers are finishing
	return true
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
		for len(c.jobs) == 0 && c.active > 0 {
			c.wake.Wait()
		}
		if c.active <= 0 {
			return
		}
		j := c.jobs[0]
		c.mu.Unlock()
		j.work()
		c.drop(j)
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
