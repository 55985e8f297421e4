package nn

import (
	"errors"
	"fmt"
	"sync"

	"github.com/rerank-go/rerank/backend"
)

// Lanes runs forward and backward passes of one model split across the
// lanes of its backend (backend.Laner): each lane computes a share of a
// batch's sequences on a replica of the model that shares its weights, all
// lanes at once. On a backend without lanes, for a batch too small to
// split, or while the model has adapters, the model runs the pass itself.
//
// In training, the replicas' parameter gradients add up into the model's:
// the first lane writes into the model's gradient buffers, the others into
// their own, summed in after each Backward. Each lane draws its dropout
// masks from its own seed (backend.SubSeed(o.Seed, lane)), so masks, and
// float sums, depend on the number of lanes; with dropout off, losses and
// gradients equal the single pass's up to float rounding.
//
// The replicas read the model's weights as they are at each pass, so an
// optimizer may update them between passes. A Lanes is not safe for
// concurrent use.
type Lanes struct {
	m    *Model
	reps []*Model
	own  []backend.Buf // gradient buffers of lanes 1.., allocated on first use

	// The shares of the last Forward, and whether the model ran it alone.
	shares [][2]int
	alone  bool
	train  bool
}

// NewLanes returns the lanes of m's backend, with one replica of m each.
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
	l.own = make([]backend.Buf, len(l.reps))
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

// useGrads points r's gradients at g, laid out like m's gradient buffer,
// for the parameters m trains; nil g leaves r without gradients.
func (r *Model) useGrads(m *Model, g backend.Buf) {
	r.grads = g
	H := r.Cfg.Hidden
	for i, p := range r.params {
		p.G, p.goff = nil, 0
		if q := m.params[i]; g != nil && q.G != nil {
			p.G, p.goff = g.Slice(q.goff, p.Size()), q.goff
		}
	}
	for i := range r.layers {
		L := &r.layers[i]
		L.qkvGW, L.qkvGB = nil, nil
		if L.q.W.G != nil {
			L.qkvGW = g.Slice(L.q.W.goff, 3*H*H)
		}
		if L.q.B.G != nil {
			L.qkvGB = g.Slice(L.q.B.goff, 3*H)
		}
	}
}

// Forward runs a pass with b's sequences split across the lanes in
// contiguous shares of about equal real length, and returns the logits in
// row order, [N*NumLabels]. With o.Train the model must have gradient
// buffers (EnableGrads), and Backward may follow.
func (l *Lanes) Forward(b *Batch, o RunOptions) ([]float32, error) {
	m := l.m
	l.shares = nil
	if err := b.Validate(m.Cfg); err != nil {
		return nil, err
	}
	if o.Train && m.grads == nil && !m.hasAdapters() {
		return nil, errors.New("training pass on lanes of a model without gradient buffers: call EnableGrads first")
	}
	shares := splitRows(b, len(l.reps))
	l.alone, l.train = len(shares) <= 1 || m.hasAdapters(), o.Train
	if l.alone {
		return m.Forward(b, o)
	}
	for i, r := range l.reps[:len(shares)] {
		switch {
		case !o.Train:
			r.useGrads(m, nil)
		case i == 0:
			r.useGrads(m, m.grads)
		default:
			if l.own[i] == nil || l.own[i].Len() < m.grads.Len() {
				g, err := r.be.Alloc(m.grads.Len())
				if err != nil {
					return nil, fmt.Errorf("lane %d: allocate %d gradients: %w", i, m.grads.Len(), err)
				}
				l.own[i] = g
			}
			r.useGrads(m, l.own[i].Slice(0, m.grads.Len()))
		}
		r.GradientCheckpointing = m.GradientCheckpointing
	}
	labels := m.Cfg.NumLabels
	out := make([]float32, b.N*labels)
	err := l.run(shares, func(i int, r *Model, lo, hi int) error {
		S := b.S
		sub := &Batch{N: hi - lo, S: S, InputIDs: b.InputIDs[lo*S : hi*S], TypeIDs: b.TypeIDs[lo*S : hi*S], Mask: b.Mask[lo*S : hi*S]}
		ro := o
		if o.Train {
			ro.Seed = backend.SubSeed(o.Seed, uint64(i))
		}
		logits, err := r.Forward(sub, ro)
		copy(out[lo*labels:hi*labels], logits)
		return err
	})
	if err != nil {
		return nil, err
	}
	l.shares = shares
	return out, nil
}

// Backward takes d(loss)/d(logits) for the batch of the last training
// Forward and adds every trainable parameter's gradient into the model's
// gradient buffers, as Model.Backward does.
func (l *Lanes) Backward(dlogits []float32) error {
	if l.alone {
		return l.m.Backward(dlogits)
	}
	if l.shares == nil || !l.train {
		return errors.New("lanes backward without a successful training forward pass")
	}
	labels := l.m.Cfg.NumLabels
	if n := l.shares[len(l.shares)-1][1] * labels; len(dlogits) != n {
		return fmt.Errorf("backward: %d logit gradients for %d logits", len(dlogits), n)
	}
	err := l.run(l.shares, func(i int, r *Model, lo, hi int) error {
		if i > 0 {
			r.ZeroGrads()
		}
		return r.Backward(dlogits[lo*labels : hi*labels])
	})
	if err != nil {
		return err
	}
	for i := 1; i < len(l.shares); i++ {
		l.m.be.Axpy(1, l.reps[i].grads, l.m.grads)
	}
	return l.m.be.Sync()
}

// run calls fn for each share on its lane's replica, all at once.
func (l *Lanes) run(shares [][2]int, fn func(i int, r *Model, lo, hi int) error) error {
	errs := make([]error, len(shares))
	var wg sync.WaitGroup
	for i, sh := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i, l.reps[i], sh[0], sh[1]); err != nil {
				errs[i] = fmt.Errorf("lane %d (rows %d-%d): %w", i, sh[0], sh[1]-1, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// splitRows cuts b's rows into at most lanes contiguous [lo, hi) shares of
// about equal real length (Batch.RowLen), each share at least one row.
func splitRows(b *Batch, lanes int) [][2]int {
	lanes = min(lanes, b.N)
	if lanes <= 1 {
		return [][2]int{{0, b.N}}
	}
	cum := make([]int, b.N+1)
	for n := 0; n < b.N; n++ {
		cum[n+1] = cum[n] + b.RowLen(n)
	}
	var out [][2]int
	lo := 0
	for i := 1; i <= lanes; i++ {
		hi := b.N
		if i < lanes {
			// The first row boundary at or past share i's end, leaving at
			// least one row for each share after it.
			target := cum[b.N] * i / lanes
			hi = lo + 1
			for hi < b.N-(lanes-i) && cum[hi] < target {
				hi++
			}
		}
		out = append(out, [2]int{lo, hi})
		lo = hi
	}
	return out
}
