package nn

import (
	"errors"
	"fmt"

	"github.com/rerank-go/rerank/backend"
)

// Share returns a model on m's backend that reads m's weights in place
// (no copy) and has its own activations, no gradient buffers and no
// adapters, so that it can run passes while m runs others: several
// scorers over one copy of the weights. With ownHead, the classification
// head (HeadParams) is a copy of m's in memory of its own instead, which
// an adapter's head may then replace (lora.Load) without touching m's.
//
// The shared weights must not change while either model runs a pass.
func (m *Model) Share(ownHead bool) (*Model, error) {
	r, err := m.replica(m.be)
	if err != nil {
		return nil, err
	}
	if !ownHead {
		return r, nil
	}
	head := r.HeadParams()
	total := 0
	for _, p := range head {
		total += p.Size()
	}
	buf, err := m.be.Alloc(total)
	if err != nil {
		return nil, fmt.Errorf("share: allocate a head of %d values: %w", total, err)
	}
	off := 0
	for _, p := range head {
		v := make([]float32, p.Size())
		m.be.Download(v, m.byName[p.Name].W)
		p.W = buf.Slice(off, p.Size())
		m.be.Upload(p.W, v)
		off += p.Size()
	}
	return r, nil
}

// replica returns a model on be that shares m's weights and has its own
// activations, no gradient buffers and no adapters.
func (m *Model) replica(be backend.Backend) (*Model, error) {
	if m.weights == nil {
		return nil, errors.New("replica of a model without weights")
	}
	r := &Model{Cfg: m.Cfg, be: be, byName: map[string]*Param{}, weights: m.weights, Attention: m.Attention, dropped: m.dropped}
	r.params = layout(m.Cfg)
	for _, p := range r.params {
		p.W = m.byName[p.Name].W // m's weights, or the head of its own (Share)
		r.byName[p.Name] = p
	}
	r.wire()
	return r, nil
}
