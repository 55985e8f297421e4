package lora

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

var _ nn.Adapter = (*Adapter)(nil)

// input returns dropout(x) as a dense rows×In matrix with its leading
// dimension: x itself when dropout is off, else the shared scratch filled
// with the mask that is a pure function of seed and the element index of
// the dense layout (so Backward regenerates it).
func (ad *Adapter) input(be backend.Backend, x backend.Buf, ldx, rows int, train bool, seed uint64) (backend.Buf, int, error) {
	if !train || ad.Dropout <= 0 {
		return x, ldx, nil
	}
	xd, err := ad.set.scratch(&ad.set.scratchX, rows*ad.In)
	if err != nil {
		return nil, 0, err
	}
	if ldx == ad.In {
		be.Dropout(xd, x.Slice(0, rows*ad.In), ad.Dropout, seed)
	} else {
		be.Copy2D(xd, ad.In, x, ldx, rows, ad.In)
		be.Dropout(xd, xd, ad.Dropout, seed)
	}
	return xd, ad.In, nil
}

// Forward implements nn.Adapter: y += scaling·(dropout(x)·Aᵀ)·Bᵀ. It keeps
// u = dropout(x)·Aᵀ (rows×R) for Backward.
func (ad *Adapter) Forward(be backend.Backend, f nn.AdapterForward) error {
	x, ldx, y, ldy, rows, train, seed := f.X, f.LDX, f.Y, f.LDY, f.Rows, f.Train, f.Seed
	if rows <= 0 {
		return nil
	}
	xd, ldxd, err := ad.input(be, x, ldx, rows, train, seed)
	if err != nil {
		return fmt.Errorf("lora %s: %w", ad.Module, err)
	}
	if ad.u == nil || ad.u.Len() < rows*ad.R {
		if ad.u != nil {
			be.Free(ad.u)
			ad.u = nil
		}
		u, err := be.Alloc(rows * ad.R)
		if err != nil {
			return fmt.Errorf("lora %s: allocate %d values: %w", ad.Module, rows*ad.R, err)
		}
		ad.u = u
	}
	u := ad.u.Slice(0, rows*ad.R)
	be.Gemm(false, true, rows, ad.R, ad.In, 1, xd, ldxd, ad.A.W, ad.In, 0, u, ad.R)
	be.Gemm(false, true, rows, ad.Out, ad.R, ad.Scaling, u, ad.R, ad.B.W, ad.R, 1, y, ldy)
	ad.uRows = rows
	return nil
}

// Backward implements nn.Adapter. With g = dy·B (rows×R):
//
//	dB += scaling·dyᵀ·u
//	dA += scaling·gᵀ·dropout(x)
//	dx += dropout'(scaling·g·A)
func (ad *Adapter) Backward(be backend.Backend, b nn.AdapterBackward) error {
	x, ldx, dy, ldy, dx, lddx, rows, train, seed := b.X, b.LDX, b.DY, b.LDDY, b.DX, b.LDDX, b.Rows, b.Train, b.Seed
	if rows <= 0 {
		return nil
	}
	if ad.uRows != rows || ad.u == nil {
		return fmt.Errorf("lora %s: backward over %d rows without a forward pass over them", ad.Module, rows)
	}
	u := ad.u.Slice(0, rows*ad.R)
	s := ad.Scaling
	if ad.B.G != nil {
		be.Gemm(true, false, ad.Out, ad.R, rows, s, dy, ldy, u, ad.R, 1, ad.B.G, ad.R)
	}
	g, err := ad.set.scratch(&ad.set.scratchG, rows*ad.R)
	if err != nil {
		return fmt.Errorf("lora %s: %w", ad.Module, err)
	}
	be.Gemm(false, false, rows, ad.R, ad.Out, 1, dy, ldy, ad.B.W, ad.R, 0, g, ad.R)
	if ad.A.G != nil {
		xd, ldxd, err := ad.input(be, x, ldx, rows, train, seed)
		if err != nil {
			return fmt.Errorf("lora %s: %w", ad.Module, err)
		}
		be.Gemm(true, false, ad.R, ad.In, rows, s, g, ad.R, xd, ldxd, 1, ad.A.G, ad.In)
	}
	if dx == nil {
		return nil
	}
	if !train || ad.Dropout <= 0 {
		be.Gemm(false, false, rows, ad.In, ad.R, s, g, ad.R, ad.A.W, ad.In, 1, dx, lddx)
		return nil
	}
	// The masked input gradient goes through the scratch (dropout(x) is
	// no longer needed), then is added to dx.
	t, err := ad.set.scratch(&ad.set.scratchX, rows*ad.In)
	if err != nil {
		return fmt.Errorf("lora %s: %w", ad.Module, err)
	}
	be.Gemm(false, false, rows, ad.In, ad.R, s, g, ad.R, ad.A.W, ad.In, 0, t, ad.In)
	be.DropoutBackward(t, t, ad.Dropout, seed)
	if lddx == ad.In {
		be.Axpy(1, t, dx.Slice(0, rows*ad.In))
		return nil
	}
	for r := 0; r < rows; r++ {
		be.Axpy(1, t.Slice(r*ad.In, ad.In), dx.Slice(r*lddx, ad.In))
	}
	return nil
}

// newStandalone builds one adapter outside a model (for tests): its
// parameters are fresh buffers named after module.
func newStandalone(be backend.Backend, module string, in, out, r int, scaling, dropout float32) (*Adapter, error) {
	set := &Adapters{be: be}
	ad := &Adapter{Module: module, In: in, Out: out, R: r, Scaling: scaling, Dropout: dropout, set: set}
	mk := func(name string, rows, cols int) (*nn.Param, error) {
		w, err := be.Alloc(rows * cols)
		if err != nil {
			return nil, err
		}
		g, err := be.Alloc(rows * cols)
		if err != nil {
			return nil, err
		}
		return &nn.Param{Name: name, Shape: []int{rows, cols}, W: w, G: g, Decay: true, PaddingIdx: -1}, nil
	}
	var err error
	if ad.A, err = mk(module+".lora_A.weight", r, in); err != nil {
		return nil, err
	}
	if ad.B, err = mk(module+".lora_B.weight", out, r); err != nil {
		return nil, err
	}
	set.list = []*Adapter{ad}
	return ad, nil
}
