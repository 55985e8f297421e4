package nn

import (
	"errors"
	"fmt"
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
// sequences split across the lanes in contiguous shares of about equal
// real length, and returns the logits in row order, [N*NumLabels].
func (l *Lanes) Forward(b *Batch, o RunOptions) ([]float32, error) {
	if o.Train {
		return nil, errors.New("lanes run inference only: o.Train must be false")
	}
	if err := b.Validate(l.m.Cfg); err != nil {
		return nil, err
	}
	shares := splitRows(b, len(l.reps))
	if len(shares) <= 1 || l.m.hasAdapters() {
		return l.m.Forward(b, o)
	}
	labels := l.m.Cfg.NumLabels
	out := make([]float32, b.N*labels)
	errs := make([]error, len(shares))
	var wg sync.WaitGroup
	for i, sh := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi, S := sh[0], sh[1], b.S
			sub := &Batch{N: hi - lo, S: S, InputIDs: b.InputIDs[lo*S : hi*S], TypeIDs: b.TypeIDs[lo*S : hi*S], Mask: b.Mask[lo*S : hi*S]}
			logits, err := l.reps[i].Forward(sub, o)
			if err != nil {
				errs[i] = fmt.Errorf("lane %d (rows %d-%d): %w", i, lo, hi-1, err)
				return
			}
			copy(out[lo*labels:hi*labels], logits)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// splitRows cuts b's rows into at most lanes contiguous [lo, hi) shares of
// about equal real length (up to each row's last real token), each share
// at least one row.
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
