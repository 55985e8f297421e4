package nn

import (
	"errors"
	"fmt"
	"sort"
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
	subs []Batch // each lane's share of the last batch, arrays reused
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
	r := &Model{Cfg: m.Cfg, be: be, byName: map[string]*Param{}, weights: m.weights}
	r.params = layout(m.Cfg)
	for _, p := range r.params {
		p.W = m.weights.Slice(p.off, p.Size())
		r.byName[p.Name] = p
	}
	r.wire()
	return r, nil
}

// Forward runs an inference pass (o.Train must be false) with b's
// sequences dealt to the lanes so that each gets about the same number of
// real tokens, and returns the logits in row order, [N*NumLabels]. Each
// lane's sequences are cut to the longest of them: the positions after a
// sequence's last real token are padding, which changes no logit.
func (l *Lanes) Forward(b *Batch, o RunOptions) ([]float32, error) {
	if o.Train {
		return nil, errors.New("lanes run inference only: o.Train must be false")
	}
	if err := b.Validate(l.m.Cfg); err != nil {
		return nil, err
	}
	shares := assignRows(b, len(l.reps))
	if len(shares) <= 1 || l.m.hasAdapters() {
		return l.m.Forward(b, o)
	}
	if len(l.subs) < len(shares) {
		l.subs = make([]Batch, len(shares))
	}
	labels := l.m.Cfg.NumLabels
	out := make([]float32, b.N*labels)
	errs := make([]error, len(shares))
	var wg sync.WaitGroup
	for i, rows := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := &l.subs[i]
			gatherRows(sub, b, rows)
			logits, err := l.reps[i].Forward(sub, o)
			if err != nil {
				errs[i] = fmt.Errorf("lane %d (rows %v): %w", i, rows, err)
				return
			}
			for k, n := range rows {
				copy(out[n*labels:(n+1)*labels], logits[k*labels:(k+1)*labels])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
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

// assignRows deals b's rows to at most lanes lanes, longest first, each
// to the lane with the fewest real tokens so far (ties to the lower lane);
// each lane lists its rows in batch order and gets at least one.
func assignRows(b *Batch, lanes int) [][]int {
	lanes = min(lanes, b.N)
	if lanes <= 1 {
		rows := make([]int, b.N)
		for i := range rows {
			rows[i] = i
		}
		return [][]int{rows}
	}
	order := make([]int, b.N)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return b.RowLen(order[x]) > b.RowLen(order[y]) })
	out, load := make([][]int, lanes), make([]int, lanes)
	for _, n := range order {
		best := 0
		for i := range load {
			if load[i] < load[best] {
				best = i
			}
		}
		out[best] = append(out[best], n)
		load[best] += b.RowLen(n)
	}
	for _, rows := range out {
		sort.Ints(rows)
	}
	return out
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
	items := []packItem{
		lin(func(r *Model) *Linear { return &r.head.dense }),
		lin(func(r *Model) *Linear { return &r.head.out }),
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
