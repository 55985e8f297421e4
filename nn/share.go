package nn

import "fmt"

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
