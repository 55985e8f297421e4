package nn

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/rerank-go/rerank/backend"
)

// Lanes runs inference forward passes of one model split across the lanes
// of its backend (backend.Laner): each lane computes a share of a batch's
// sequences on a replica of the model that shares its weights, all lanes
// at once. On a backend without lanes, or for a batch too small to split,
// it is the model's own Forward.
//
// The replicas read the model's weights as they are at each pass, so
// training may go on between passes, but not during one. A Lanes is not
// safe for concurrent use.
type Lanes struct {
	m    *Model
	reps []*Model
	// Reused by every pass: the rows dealt to each lane, the logits
	// returned, and the pass the lanes run (started on first use).
	deal dealer
	out  []float32
	pass *lanePass
	// holding says a PackWeights has not been released yet; bytes is the
	// size of the weights it packed.
	holding bool
	bytes   int64
}

// PackedBytes returns the size of the weights PackWeights packed, 0 when
// none are (or they were released).
func (l *Lanes) PackedBytes() int64 { return l.bytes }

// NewLanes returns the lanes of m's backend, with one replica of m each.
// While m has adapters, its passes run on it alone (merge them to use
// every lane).
func NewLanes(m *Model) (*Lanes, error) {
	l := &Lanes{m: m}
	ln, ok := m.be.(backend.Laner)
	if !ok {
		return l, nil
	}
	for _, be := range ln.Lanes() {
		r, err := m.replica(be)
		if err != nil {
			return nil, err
		}
		l.reps = append(l.reps, r)
	}
	return l, nil
}

// Model returns the model the lanes replicate.
func (l *Lanes) Model() *Model { return l.m }

// Count returns the number of lanes a large enough batch is split across.
func (l *Lanes) Count() int { return max(1, len(l.reps)) }

// replica returns a model on be that shares m's weights and has its own
// activations, no gradient buffers and no adapters.
func (m *Model) replica(be backend.Backend) (*Model, error) {
	if m.weights == nil {
		return nil, errors.New("replica of a model without weights")
	}
	r := &Model{Cfg: m.Cfg, be: be, byName: map[string]*Param{}, weights: m.weights, Attention: m.Attention}
	r.params = layout(m.Cfg)
	for _, p := range r.params {
		p.W = m.byName[p.Name].W // m's weights, or the head of its own (Share)
		r.byName[p.Name] = p
	}
	r.wire()
	return r, nil
}

// Forward runs an inference pass (o.Train must be false) with b's
// sequences dealt to the lanes so that each gets about the same number of
// real tokens, and returns the logits in row order, [N*NumLabels]. Each
// lane's sequences are cut to the longest of them: the positions after a
// sequence's last real token are padding, which changes no logit. The
// logits are the lanes' memory, reused by the next Forward: copy them to
// keep them longer (steady-state passes allocate nothing).
func (l *Lanes) Forward(b *Batch, o RunOptions) ([]float32, error) {
	if o.Train {
		return nil, errors.New("lanes run inference only: o.Train must be false")
	}
	if err := b.Validate(l.m.Cfg); err != nil {
		return nil, err
	}
	shares := l.deal.assign(b, len(l.reps))
	out := grow(&l.out, b.N*l.m.Cfg.NumLabels)
	if len(shares) <= 1 || l.m.hasAdapters() {
		logits, err := l.m.Forward(b, o)
		if err != nil {
			return nil, err
		}
		copy(out, logits)
		return out, nil
	}
	for _, r := range l.reps {
		r.Attention = l.m.Attention
	}
	if l.pass == nil {
		l.pass = newLanePass(l.reps)
		runtime.AddCleanup(l, (*lanePass).stop, l.pass)
	}
	if err := l.pass.run(b, o, shares, out); err != nil {
		return nil, err
	}
	return out, nil
}

// lanePass runs the lanes of a Lanes at once: lane 0 on the calling
// goroutine, each other on a goroutine of its own, started once and woken
// for each pass. It holds no reference to its Lanes, whose cleanup stops
// it.
type lanePass struct {
	reps []*Model
	subs []Batch // each lane's share of the batch, arrays reused
	wake []chan struct{}
	done sync.WaitGroup

	// The pass in flight.
	b      *Batch
	o      RunOptions
	shares [][]int
	out    []float32
	errs   []error
}

func newLanePass(reps []*Model) *lanePass {
	p := &lanePass{reps: reps, subs: make([]Batch, len(reps)), wake: make([]chan struct{}, len(reps)), errs: make([]error, len(reps))}
	for i := 1; i < len(reps); i++ {
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
func (p *lanePass) run(b *Batch, o RunOptions, shares [][]int, out []float32) error {
	p.b, p.o, p.shares, p.out = b, o, shares, out
	if h, ok := p.reps[0].be.(backend.LaneHelper); ok {
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
	if h, ok := p.reps[i].be.(backend.LaneHelper); ok {
		// Once its share is done, the lane helps with the others'.
		defer h.LanesDone()
	}
	rows, sub := p.shares[i], &p.subs[i]
	gatherRows(sub, p.b, rows)
	logits, err := p.reps[i].Forward(sub, p.o)
	if err != nil {
		p.errs[i] = fmt.Errorf("lane %d (rows %v): %w", i, rows, err)
		return
	}
	labels := p.reps[i].Cfg.NumLabels
	for k, n := range rows {
		copy(p.out[n*labels:(n+1)*labels], logits[k*labels:(k+1)*labels])
	}
}

// gatherRows sets sub to the given rows of b, cut to the longest of them
// (Batch.RowLen), reusing sub's arrays.
func gatherRows(sub, b *Batch, rows []int) {
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
func (d *dealer) assign(b *Batch, lanes int) [][]int {
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

// DefaultPackBudget is the packed-weights budget (see Lanes.PackWeights)
// that crossencoder and rerank bench use unless told otherwise, in bytes:
// all of a MiniLM-sized model (about 42 MiB for MiniLM-L6, 84 MiB for
// L12), the head, the last layer and a few others of a base-sized one.
const DefaultPackBudget = 128 << 20

// packItem is one weight PackWeights packs: w, n×k, and where each
// replica keeps its packed copy.
type packItem struct {
	w    backend.Buf
	n, k int
	set  func(r *Model, pw backend.Buf)
	head bool // the classification head's (QuantizeWeights leaves it float32)
}

// packItems lists the weights of m's linear layers in the order
// PackWeights packs them: the head's and the last layer's first, then the
// other layers in order, then the last layer's fused query-key-value
// weight, which only a pass with AllPositions reads.
func (m *Model) packItems() []packItem {
	H := m.Cfg.Hidden
	lin := func(get func(r *Model) *Linear) packItem {
		l := get(m)
		return packItem{w: l.W.W, n: l.Out, k: l.In, set: func(r *Model, pw backend.Buf) { get(r).packed = pw }}
	}
	layer := func(l int) []packItem {
		return []packItem{
			lin(func(r *Model) *Linear { return &r.layers[l].ao }),
			lin(func(r *Model) *Linear { return &r.layers[l].inter }),
			lin(func(r *Model) *Linear { return &r.layers[l].out }),
		}
	}
	qkv := func(l int) packItem {
		return packItem{w: m.layers[l].qkvW, n: 3 * H, k: H, set: func(r *Model, pw backend.Buf) { r.layers[l].pk.qkv = pw }}
	}
	last := len(m.layers) - 1
	hd := func(it packItem) packItem { it.head = true; return it }
	items := []packItem{
		hd(lin(func(r *Model) *Linear { return &r.head.dense })),
		hd(lin(func(r *Model) *Linear { return &r.head.out })),
		{w: m.layers[last].qkvW.Slice(0, H*H), n: H, k: H, set: func(r *Model, pw backend.Buf) { r.layers[last].pk.q = pw }},
		{w: m.layers[last].qkvW.Slice(H*H, 2*H*H), n: 2 * H, k: H, set: func(r *Model, pw backend.Buf) { r.layers[last].pk.kv = pw }},
	}
	items = append(items, layer(last)...)
	for l := 0; l < last; l++ {
		items = append(items, qkv(l))
		items = append(items, layer(l)...)
	}
	return append(items, qkv(last))
}

// PackWeights packs the weights of the model's linear layers, as they are
// now, into the layout the backend's products read (backend.WeightPacker),
// once for all lanes: the passes that follow read the packed copy instead
// of packing each weight again in every product of every lane. The copy
// takes up to budget bytes (any amount for a negative budget), as much
// memory as the weights it covers: first the head's and the last layer's,
// whose products have one row per sequence and so cost little next to
// packing their weights, then the other layers in order.
//
// Until release is called the model's weights must not change: the
// passes would go on with the packed copy of the old ones. release frees
// the copy; calling it again does nothing. On a backend that does not
// pack, or with a single lane, PackWeights packs nothing.
func (l *Lanes) PackWeights(budget int64) (release func(), err error) {
	if l.holding {
		return nil, errors.New("weights already packed: call the release function of the last PackWeights first")
	}
	var items []packItem
	var bufs []backend.Buf
	var total int64
	if wp, ok := l.packer(); ok && budget != 0 {
		for _, it := range l.m.packItems() {
			size := int64(wp.PackedSize(it.n, it.k)) * 4
			if budget >= 0 && size > budget {
				break
			}
			budget -= size
			buf, err := l.reps[0].be.Alloc(int(size / 4))
			if err != nil {
				for _, b := range bufs {
					l.reps[0].be.Free(b)
				}
				return nil, fmt.Errorf("pack weights: %w", err)
			}
			items, bufs, total = append(items, it), append(bufs, buf), total+size
		}
	}
	// Each lane packs every len(reps)-th weight, all lanes at once.
	var wg sync.WaitGroup
	for i, r := range l.reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := r.be.(backend.WeightPacker)
			for j := i; j < len(items); j += len(l.reps) {
				p.PackWeight(bufs[j], items[j].w, items[j].k, items[j].n, items[j].k)
			}
		}()
	}
	wg.Wait()
	for _, r := range l.reps {
		for j, it := range items {
			it.set(r, bufs[j])
		}
	}
	l.holding, l.bytes = true, total
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, r := range l.reps {
				for _, it := range items {
					it.set(r, nil)
				}
			}
			for _, b := range bufs {
				l.reps[0].be.Free(b)
			}
			l.holding, l.bytes = false, 0
		})
	}, nil
}

// packer returns the lanes' WeightPacker, if they have one that packs.
func (l *Lanes) packer() (backend.WeightPacker, bool) {
	if len(l.reps) == 0 {
		return nil, false
	}
	wp, ok := l.reps[0].be.(backend.WeightPacker)
	if !ok || wp.PackedSize(l.m.Cfg.Hidden, l.m.Cfg.Hidden) == 0 {
		return nil, false
	}
	return wp, true
}
