package nn

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
)

// acts holds every activation of a forward pass and the scratch of the
// backward pass, carved out of one allocation (llm.c style) that grows to
// the largest batch seen and is reused afterwards, so steady-state steps
// allocate nothing.
type acts struct {
	mem  backend.Buf
	imem backend.IntBuf

	n, s int // shape the views are carved for
	// carved is the number of values the views take (actsSize; tests
	// check that the two agree).
	carved int
	// rows is the number of token rows the dense layers compute: n·s, or
	// with packing the real tokens' rows only.
	rows   int
	ckpt   bool
	packed bool
	// tiled: the attention of this shape is tiled (Model.Attention), so
	// each layer's save holds a log-sum-exp per query row.
	tiled bool
	// noGrad: no backward pass can follow (no gradient buffers, no
	// adapters), so one set of layer activations is shared by all layers
	// and there is no backward scratch.
	noGrad bool
	// seqOff[i] is the first row of sequence i in the token rows and
	// seqLen[i] its number of rows (s when not packed; with packing, up to
	// and including its last real token, at least 1).
	seqOff, seqLen []int

	// ids, typ and pos are per token row; mask is [n·s] (padded layout).
	ids, typ, pos, mask backend.IntBuf

	// Embeddings: sum of the three lookups (LayerNorm input), its row
	// statistics; the output after LayerNorm and dropout is xs[0].
	embSum, embMean, embRstd backend.Buf
	// xs[l] is the input of layer l; xs[L] is the last hidden state.
	xs []backend.Buf
	// xsCls is xs[L] at its first n rows, all the last layer computes
	// without RunOptions.AllPositions.
	xsCls backend.Buf
	// per holds each layer's internal activations: one set per layer, or
	// a single shared set under gradient checkpointing.
	per []layerActs

	// xCls and ctxCls are the position-0 rows of the last layer's input
	// and attention output, which is all the last layer computes further
	// without RunOptions.AllPositions; dctxCls is the gradient of ctxCls.
	// qCls holds the position-0 queries when the backend attends for them
	// alone (backend.FirstQueryAttender, inference only).
	xCls, ctxCls, dctxCls, qCls backend.Buf

	// Head: cls = xs[L][:,0]; clsD = dropout(cls) (XLM-R) or cls (BERT);
	// h = tanh(dense(clsD)); hD = dropout(h); logits = out(hD).
	cls, clsD, h, hD, logits backend.Buf

	// Backward scratch.
	dlogits, dhD, dh, dclsD, dcls backend.Buf
	dx, dxNext, dA, dctx          backend.Buf
	dqkv, dff                     backend.Buf
	// The same at their first n rows, for the last layer's position-0
	// rows (dxCls and dxNextCls swap along with dx and dxNext).
	dxCls, dxNextCls, dACls, dffCls backend.Buf

	// Packing scratch (nil when not packed): the QKV product and the
	// attention output in token rows, and the padded-layout gradients of
	// the attention. Each layer's qkv and ctx stay in the padded layout
	// the attention works on.
	qkvP, ctxP, dctxPad, dqkvPad backend.Buf
	// kvP is qkvP's first 2H columns' worth of values, [rows, 2H]
	// (firstQueryAttention).
	kvP backend.Buf

	// Host memory reused by every pass: position ids, token arrays
	// packed to their real rows, and the logits Forward returns.
	hostPos, hostPacked []int32
	hostLogits          []float32
}

type layerActs struct {
	qkv, save, ctx      backend.Buf // [n·s,3H], attention save, [n·s,H] (padded layout)
	r1, mean1, rstd1, a backend.Buf // attention residual sum, its stats, LayerNorm output
	f1, f2              backend.Buf // intermediate pre- and post-GELU, [T,I]
	r2, mean2, rstd2    backend.Buf // output residual sum and stats
	// kv is qkv's first 2·rows·H values (keys and values in the rows the
	// dense layers compute, firstQueryAttention) and kvPad its first
	// 2·n·s·H (the same in the padded layout).
	kv, kvPad backend.Buf
	// cls holds r1, a, f1, f2 and r2 at their first n rows: what the last
	// layer computes above its attention without RunOptions.AllPositions
	// (Buf views are made here once, not at every pass).
	cls struct{ r1, a, f1, f2, r2 backend.Buf }
}

// ensure carves the views for an n×s batch whose dense layers compute
// rows token rows (rows < n·s when packed), growing the allocation when
// needed. The allocation is sized for n·s rows, so that batches of the
// same shape never regrow it whatever their lengths.
func (a *acts) ensure(m *Model, n, s, rows int, packed, noGrad bool) error {
	ckpt, tiled := m.GradientCheckpointing, m.Attention.Tiled(s)
	if a.mem != nil && a.n == n && a.s == s && a.rows == rows && a.ckpt == ckpt && a.packed == packed && a.noGrad == noGrad && a.tiled == tiled {
		return nil
	}
	c := m.Cfg
	T, H, I, L := n*s, c.Hidden, c.Intermediate, c.Layers
	save := m.be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: c.Heads, HeadDim: c.HeadDim(), Tiled: tiled})
	nPer := L
	if ckpt || noGrad {
		nPer = 1
	}
	size := actsSize(c, n, s, save, ckpt, packed, noGrad)
	if a.mem == nil || a.mem.Len() < size {
		if a.mem != nil {
			m.be.Free(a.mem)
		}
		mem, err := m.be.Alloc(size)
		if err != nil {
			return fmt.Errorf("allocate activations for %d×%d tokens (%d MiB): %w", n, s, size*4>>20, err)
		}
		a.mem = mem
	}
	if a.imem == nil || a.imem.Len() < 4*T {
		if a.imem != nil {
			m.be.Free(a.imem)
		}
		im, err := m.be.AllocInt(4 * T)
		if err != nil {
			return fmt.Errorf("allocate token buffers: %w", err)
		}
		a.imem = im
	}
	off := 0
	// take carves k values; buffers with a token dimension are carved at
	// full size (T) so that their offsets do not depend on rows, and viewed
	// at their used size.
	take := func(k, used int) backend.Buf {
		v := a.mem.Slice(off, used)
		off += k
		return v
	}
	R := rows
	a.ids, a.typ, a.pos, a.mask = a.imem.Slice(0, R), a.imem.Slice(T, R), a.imem.Slice(2*T, R), a.imem.Slice(3*T, T)
	a.embSum, a.embMean, a.embRstd = take(T*H, R*H), take(T, R), take(T, R)
	if len(a.xs) != L+1 {
		a.xs = make([]backend.Buf, L+1)
	}
	for l := range a.xs {
		a.xs[l] = take(T*H, R*H)
	}
	a.xsCls = a.xs[L].Slice(0, n*H)
	if len(a.per) != nPer {
		a.per = make([]layerActs, nPer)
	}
	for i := range a.per {
		p := &a.per[i]
		p.qkv, p.save, p.ctx = take(3*T*H, 3*T*H), take(save, save), take(T*H, T*H)
		p.r1, p.mean1, p.rstd1, p.a = take(T*H, R*H), take(T, R), take(T, R), take(T*H, R*H)
		if noGrad {
			p.f1 = take(T*I, R*I)
			p.f2 = p.f1
			p.r2, p.mean2, p.rstd2 = p.r1, take(T, R), take(T, R)
		} else {
			p.f1, p.f2 = take(T*I, R*I), take(T*I, R*I)
			p.r2, p.mean2, p.rstd2 = take(T*H, R*H), take(T, R), take(T, R)
		}
		p.kv, p.kvPad = p.qkv.Slice(0, 2*R*H), p.qkv.Slice(0, 2*T*H)
		p.cls.r1, p.cls.a, p.cls.f1 = p.r1.Slice(0, n*H), p.a.Slice(0, n*H), p.f1.Slice(0, n*I)
		p.cls.f2, p.cls.r2 = p.f2.Slice(0, n*I), p.r2.Slice(0, n*H)
	}
	a.xCls, a.ctxCls, a.dctxCls, a.qCls = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.cls, a.clsD, a.h, a.hD = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.logits = take(n*c.NumLabels, n*c.NumLabels)
	a.dlogits, a.dhD, a.dh, a.dclsD, a.dcls = nil, nil, nil, nil, nil
	a.dx, a.dxNext, a.dA, a.dctx, a.dqkv, a.dff = nil, nil, nil, nil, nil, nil
	a.dxCls, a.dxNextCls, a.dACls, a.dffCls = nil, nil, nil, nil
	if !noGrad {
		a.dlogits = take(n*c.NumLabels, n*c.NumLabels)
		a.dhD, a.dh, a.dclsD, a.dcls = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
		a.dx, a.dxNext, a.dA, a.dctx = take(T*H, R*H), take(T*H, R*H), take(T*H, R*H), take(T*H, R*H)
		a.dqkv = take(3*T*H, 3*R*H)
		a.dff = take(T*I, R*I)
		a.dxCls, a.dxNextCls = a.dx.Slice(0, n*H), a.dxNext.Slice(0, n*H)
		a.dACls, a.dffCls = a.dA.Slice(0, n*H), a.dff.Slice(0, n*I)
	}
	a.qkvP, a.ctxP, a.dctxPad, a.dqkvPad, a.kvP = nil, nil, nil, nil, nil
	if packed {
		a.qkvP, a.ctxP = take(3*T*H, 3*R*H), take(T*H, R*H)
		a.kvP = a.qkvP.Slice(0, 2*R*H)
		if !noGrad {
			a.dctxPad, a.dqkvPad = take(T*H, T*H), take(3*T*H, 3*T*H)
		}
	}
	a.n, a.s, a.rows, a.ckpt, a.packed, a.noGrad, a.tiled = n, s, rows, ckpt, packed, noGrad, tiled
	a.carved = off
	return nil
}

// layerActs returns the activation set layer l writes.
func (a *acts) layer(l int) *layerActs {
	if len(a.per) == 1 {
		return &a.per[0]
	}
	return &a.per[l]
}
