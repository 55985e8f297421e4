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
	// carved is the number of values the views take (the counting pass
	// of carve sized the allocation; tests check that the two agree).
	carved int
	// rows is the number of token rows the dense layers compute: n·s, or
	// with packing the real tokens' rows only.
	rows   int
	ckpt   bool
	packed bool
	// tiled: the attention of this shape is tiled (Model.Attention), so
	// each layer's save holds a log-sum-exp per query row.
	tiled bool
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
	// a single shared set under gradient checkpointing (the backward pass
	// recomputes each layer's into it).
	per []layerActs

	// xCls and ctxCls are the position-0 rows of the last layer's input
	// and attention output, which is all the last layer computes further
	// without RunOptions.AllPositions; dctxCls is the gradient of ctxCls.
	xCls, ctxCls, dctxCls backend.Buf

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
	// cls holds r1, a, f1, f2 and r2 at their first n rows: what the last
	// layer computes above its attention without RunOptions.AllPositions
	// (Buf views are made here once, not at every pass).
	cls struct{ r1, a, f1, f2, r2 backend.Buf }
}

// actShape is what the activation layout depends on.
type actShape struct {
	n, s int
	// rows is the number of token rows the dense layers compute: n·s, or
	// with packing the real tokens' rows only.
	rows                int
	save                int // values of one layer's attention save
	ckpt, packed, tiled bool
}

// actsSize returns the float32 and int32 values the views of an
// activation layout take: a counting pass of carve.
func actsSize(c Config, sh actShape) (floats, ints int) {
	var a acts
	var k backend.Carver
	sh.rows = sh.n * sh.s
	a.carve(&k, c, sh)
	return k.Off, k.IOff
}

// ensure carves the views for an n×s batch whose dense layers compute
// rows token rows (rows < n·s when packed), growing the allocation when
// needed. The allocation is sized for n·s rows, so that batches of the
// same shape never regrow it whatever their lengths.
func (a *acts) ensure(m *Model, n, s, rows int, packed, ckpt bool) error {
	tiled := m.Attention.Tiled(s)
	if a.mem != nil && a.n == n && a.s == s && a.rows == rows && a.ckpt == ckpt && a.packed == packed && a.tiled == tiled {
		return nil
	}
	c := m.Cfg
	save := m.be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: c.Heads, HeadDim: c.HeadDim(), Tiled: tiled})
	sh := actShape{n: n, s: s, rows: rows, save: save, ckpt: ckpt, packed: packed, tiled: tiled}
	size, isize := actsSize(c, sh)
	var err error
	if a.mem, err = backend.Grow(m.be, a.mem, size); err != nil {
		return fmt.Errorf("allocate activations for %d×%d tokens (%d MiB): %w", n, s, size*4>>20, err)
	}
	if a.imem, err = backend.GrowInt(m.be, a.imem, isize); err != nil {
		return fmt.Errorf("allocate token buffers: %w", err)
	}
	k := backend.Carver{Mem: a.mem, IMem: a.imem}
	a.carve(&k, c, sh)
	a.carved = k.Off
	return nil
}

// carve lays out every view of the activations for sh, one after the
// other, from k: the one place that decides what the activations hold
// and how large they are.
func (a *acts) carve(k *backend.Carver, c Config, sh actShape) {
	n, s, R := sh.n, sh.s, sh.rows
	T, H, I, L := n*s, c.Hidden, c.Intermediate, c.Layers
	take := k.Take
	nPer := L
	if sh.ckpt {
		nPer = 1
	}
	a.ids, a.typ, a.pos, a.mask = k.TakeInt(T, R), k.TakeInt(T, R), k.TakeInt(T, R), k.TakeInt(T, T)
	a.embSum, a.embMean, a.embRstd = take(T*H, R*H), take(T, R), take(T, R)
	if len(a.xs) != L+1 {
		a.xs = make([]backend.Buf, L+1)
	}
	for l := range a.xs {
		a.xs[l] = take(T*H, R*H)
	}
	a.xsCls = nil
	if a.xs[L] != nil {
		a.xsCls = a.xs[L].Slice(0, n*H)
	}
	if len(a.per) != nPer {
		a.per = make([]layerActs, nPer)
	}
	for i := range a.per {
		p := &a.per[i]
		p.qkv, p.save, p.ctx = take(3*T*H, 3*T*H), take(sh.save, sh.save), take(T*H, T*H)
		p.r1, p.mean1, p.rstd1, p.a = take(T*H, R*H), take(T, R), take(T, R), take(T*H, R*H)
		p.f1, p.f2 = take(T*I, R*I), take(T*I, R*I)
		p.r2, p.mean2, p.rstd2 = take(T*H, R*H), take(T, R), take(T, R)
		if k.Mem != nil {
			p.cls.r1, p.cls.a, p.cls.f1 = p.r1.Slice(0, n*H), p.a.Slice(0, n*H), p.f1.Slice(0, n*I)
			p.cls.f2, p.cls.r2 = p.f2.Slice(0, n*I), p.r2.Slice(0, n*H)
		}
	}
	a.xCls, a.ctxCls, a.dctxCls = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.cls, a.clsD, a.h, a.hD = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.logits = take(n*c.NumLabels, n*c.NumLabels)
	// Backward scratch.
	a.dlogits = take(n*c.NumLabels, n*c.NumLabels)
	a.dhD, a.dh, a.dclsD, a.dcls = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.dx, a.dxNext, a.dA, a.dctx = take(T*H, R*H), take(T*H, R*H), take(T*H, R*H), take(T*H, R*H)
	a.dqkv = take(3*T*H, 3*R*H)
	a.dff = take(T*I, R*I)
	a.dxCls, a.dxNextCls, a.dACls, a.dffCls = nil, nil, nil, nil
	if k.Mem != nil {
		a.dxCls, a.dxNextCls = a.dx.Slice(0, n*H), a.dxNext.Slice(0, n*H)
		a.dACls, a.dffCls = a.dA.Slice(0, n*H), a.dff.Slice(0, n*I)
	}
	a.qkvP, a.ctxP, a.dctxPad, a.dqkvPad = nil, nil, nil, nil
	if sh.packed {
		a.qkvP, a.ctxP = take(3*T*H, 3*R*H), take(T*H, R*H)
		a.dctxPad, a.dqkvPad = take(T*H, T*H), take(3*T*H, 3*T*H)
	}
	a.n, a.s, a.rows, a.ckpt, a.packed, a.tiled = n, s, R, sh.ckpt, sh.packed, sh.tiled
}

// layerActs returns the activation set layer l writes.
func (a *acts) layer(l int) *layerActs {
	if len(a.per) == 1 {
		return &a.per[0]
	}
	return &a.per[l]
}
