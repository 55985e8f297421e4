// Package infer runs a cross-encoder (an nn.Model's weights, read in
// place) for scoring: forward passes only, in the layout that suits them.
// Package nn keeps the training path (forward and backward side by side,
// activations kept for the backward pass); this package holds what only
// inference does:
//
//   - no activations kept for a backward pass: one set of layer
//     activations serves every layer;
//   - each sequence packed to its real tokens (padding skipped);
//   - the last layer computed past its attention at position 0 only (the
//     row the classification head reads), and on a backend that can
//     (backend.FirstQueryAttender) its attention too;
//   - a batch's sequences dealt to the backend's lanes (backend.Laner),
//     all lanes at once;
//   - weights packed once for many passes (Runner.PackWeights), all of
//     them in the float32 weights' own memory for a process that only
//     scores (Runner.PackWeightsDropping), or quantized to int8
//     (Runner.QuantizeWeights);
//   - tiled attention for long sequences, as the model's Attention says.
//
// Package crossencoder scores with it, and so do rerank score, serve and
// eval; training never does.
package infer

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// Runner runs inference passes of one model, each batch split across the
// lanes of its backend: each lane computes a share of the batch's
// sequences into activations of its own, reading the model's weights in
// place, all lanes at once. On a backend without lanes, for a batch too
// small to split, or while the model has adapters, a pass runs on the
// model's backend whole.
//
// The passes read the model's weights as they are at each pass, so
// training may go on between passes, but not during one. A Runner is not
// safe for concurrent use; runners over one model run passes at the same
// time.
type Runner struct {
	m *nn.Model
	// whole runs passes on the model's backend; lanes on its lanes.
	whole *pass
	lanes []*pass
	// Reused by every pass: the rows dealt to each lane, the logits
	// returned, and the pass the lanes run (started on first use).
	deal dealer
	out  []float32
	lp   *lanePass
	// pk holds the weights PackWeights packed or QuantizeWeights
	// quantized while holding; bytes is their size.
	pk      packed
	holding bool
	bytes   int64
	// quantized: pk holds int8 weights (QuantizeWeights); packedAll: pk
	// holds every weight the passes read, packed (PackWeightsDropping).
	// dropped is the bytes of float32 weights either dropping call gave
	// back or overwrote.
	quantized bool
	packedAll bool
	dropped   int64
}

// New returns a runner for m, with activations of its own for m's
// backend and for each of its lanes.
func New(m *nn.Model) (*Runner, error) {
	if m == nil || len(m.Params()) == 0 || m.Params()[0].W == nil {
		return nil, errors.New("infer: a model without weights")
	}
	r := &Runner{m: m, whole: newPass(m, m.Backend())}
	if ln, ok := m.Backend().(backend.Laner); ok {
		for _, be := range ln.Lanes() {
			r.lanes = append(r.lanes, newPass(m, be))
		}
	}
	return r, nil
}

// Model returns the model the runner reads.
func (r *Runner) Model() *nn.Model { return r.m }

// Count returns the number of lanes a large enough batch is split across.
func (r *Runner) Count() int { return max(1, len(r.lanes)) }

// PackedBytes returns the size of the weights PackWeights (or
// PackWeightsDropping) packed or QuantizeWeights quantized, 0 when none
// are (or they were released).
func (r *Runner) PackedBytes() int64 { return r.bytes }

// Forward runs b with its sequences dealt to the lanes so that each gets
// about the same number of real tokens, and returns the logits in row
// order, [N·NumLabels]. Each lane's sequences are cut to the longest of
// them and packed to their real tokens: the positions after a sequence's
// last real token are padding, which changes no logit. The logits are the
// runner's memory, reused by the next Forward: copy them to keep them
// longer (steady-state passes allocate nothing).
func (r *Runner) Forward(b *nn.Batch) ([]float32, error) {
	if err := b.Validate(r.m.Cfg); err != nil {
		return nil, err
	}
	if !r.quantized && !r.packedAll {
		if err := r.m.CheckLinearWeights(); err != nil {
			return nil, err
		}
	}
	shares := r.deal.assign(b, len(r.lanes))
	out := grow(&r.out, b.N*r.m.Cfg.NumLabels)
	if len(shares) <= 1 || r.m.HasAdapters() {
		logits, err := r.whole.forward(b)
		if err != nil {
			return nil, err
		}
		copy(out, logits)
		return out, nil
	}
	if r.lp == nil {
		r.lp = newLanePass(r.lanes)
		runtime.AddCleanup(r, (*lanePass).stop, r.lp)
	}
	if err := r.lp.run(b, shares, out); err != nil {
		return nil, err
	}
	return out, nil
}

// lanePass runs the lanes of a Runner at once: lane 0 on the calling
// goroutine, each other on a goroutine of its own, started once and woken
// for each pass. It holds no reference to its Runner, whose cleanup stops
// it.
type lanePass struct {
	lanes []*pass
	subs  []nn.Batch // each lane's share of the batch, arrays reused
	wake  []chan struct{}
	done  sync.WaitGroup

	// The pass in flight.
	b      *nn.Batch
	shares [][]int
	out    []float32
	errs   []error
}

func newLanePass(lanes []*pass) *lanePass {
	p := &lanePass{lanes: lanes, subs: make([]nn.Batch, len(lanes)), wake: make([]chan struct{}, len(lanes)), errs: make([]error, len(lanes))}
	for i := 1; i < len(lanes); i++ {
		p.wake[i] = make(chan struct{}, 1)
		go func() {
			for range p.wake[i] {
				p.lane(i)
				p.done.Done()
			}
		}()
	}
	return p
}

func (p *lanePass) stop() {
	for _, c := range p.wake[1:] {
		close(c)
	}
}

// run computes the logits of b's rows shares[i] on lane i into out.
func (p *lanePass) run(b *nn.Batch, shares [][]int, out []float32) error {
	p.b, p.shares, p.out = b, shares, out
	if h, ok := p.lanes[0].be.(backend.LaneHelper); ok {
		h.LanesBegin(len(shares))
	}
	p.done.Add(len(shares) - 1)
	for i := 1; i < len(shares); i++ {
		p.wake[i] <- struct{}{}
	}
	p.lane(0)
	p.done.Wait()
	p.b = nil
	err := errors.Join(p.errs...)
	clear(p.errs)
	return err
}

func (p *lanePass) lane(i int) {
	if h, ok := p.lanes[i].be.(backend.LaneHelper); ok {
		// Once its share is done, the lane helps with the others'.
		defer h.LanesDone()
	}
	rows, sub := p.shares[i], &p.subs[i]
	gatherRows(sub, p.b, rows)
	logits, err := p.lanes[i].forward(sub)
	if err != nil {
		p.errs[i] = fmt.Errorf("lane %d (rows %v): %w", i, rows, err)
		return
	}
	labels := p.lanes[i].m.Cfg.NumLabels
	for k, n := range rows {
		copy(p.out[n*labels:(n+1)*labels], logits[k*labels:(k+1)*labels])
	}
}

// gatherRows sets sub to the given rows of b, cut to the longest of them
// (Batch.RowLen), reusing sub's arrays.
func gatherRows(sub, b *nn.Batch, rows []int) {
	S := 1
	for _, n := range rows {
		S = max(S, b.RowLen(n))
	}
	T := len(rows) * S
	grow := func(v []int32) []int32 {
		if cap(v) < T {
			return make([]int32, T)
		}
		return v[:T]
	}
	sub.N, sub.S = len(rows), S
	sub.InputIDs, sub.TypeIDs, sub.Mask = grow(sub.InputIDs), grow(sub.TypeIDs), grow(sub.Mask)
	for k, n := range rows {
		copy(sub.InputIDs[k*S:(k+1)*S], b.InputIDs[n*b.S:n*b.S+S])
		copy(sub.TypeIDs[k*S:(k+1)*S], b.TypeIDs[n*b.S:n*b.S+S])
		copy(sub.Mask[k*S:(k+1)*S], b.Mask[n*b.S:n*b.S+S])
	}
}

// dealer deals a batch's rows to lanes, reusing its slices.
type dealer struct {
	order, lens, load []int
	rows              [][]int
}

// assign deals b's rows to at most lanes lanes, longest first, each to
// the lane with the fewest real tokens so far (ties to the lower lane);
// each lane lists its rows in batch order and gets at least one. The
// result is d's memory, valid until the next call.
func (d *dealer) assign(b *nn.Batch, lanes int) [][]int {
	lanes = max(1, min(lanes, b.N))
	if cap(d.rows) < lanes {
		d.rows = make([][]int, lanes)
	}
	d.rows = d.rows[:lanes]
	for i := range d.rows {
		d.rows[i] = d.rows[i][:0]
	}
	if lanes == 1 {
		for n := 0; n < b.N; n++ {
			d.rows[0] = append(d.rows[0], n)
		}
		return d.rows
	}
	order, lens, load := grow(&d.order, b.N), grow(&d.lens, b.N), grow(&d.load, lanes)
	for n := range order {
		order[n], lens[n] = n, b.RowLen(n)
	}
	clear(load)
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(lens[y], lens[x]) })
	for _, n := range order {
		best := 0
		for i := range load {
			if load[i] < load[best] {
				best = i
			}
		}
		d.rows[best] = append(d.rows[best], n)
		load[best] += lens[n]
	}
	for _, rows := range d.rows {
		slices.Sort(rows)
	}
	return d.rows
}
