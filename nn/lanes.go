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
}

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
