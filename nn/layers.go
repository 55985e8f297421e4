package nn

import (
	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn/internal/tokrows"
)

// Each layer's forward and backward sit side by side below. Shapes: T
// token rows (N·S, or the real tokens' rows with RunOptions.SkipPadding),
// H hidden, I intermediate. Activations live in m.acts.

// grad returns a parameter's gradient view, or nil when it is frozen.
func grad(p *Param) backend.Buf { return p.G }

// linearForward computes y = x·Wᵀ + b (+ adapter) for rows rows; x and y
// are dense (leading dimensions In and Out).
func (m *Model) linearForward(lin *Linear, x, y backend.Buf, rows int, o RunOptions) error {
	m.gemmBias(rows, lin.Out, lin.In, x, lin.W.W, lin.B.W, y)
	if lin.Adapter != nil {
		return lin.Adapter.Forward(m.be, AdapterForward{X: x, LDX: lin.In, Y: y, LDY: lin.Out, Rows: rows, Train: o.Train, Seed: backend.SubSeed(o.Seed, lin.site)})
	}
	return nil
}

// gemmBias sets y = x·wᵀ + b for rows×in x and out×in w (dense), in one
// pass when the backend can.
func (m *Model) gemmBias(rows, out, in int, x, w, b, y backend.Buf) {
	if m.bg != nil {
		m.bg.GemmBias(rows, out, in, x, in, w, in, b, y, out)
		return
	}
	m.be.Gemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
	m.be.AddBias(y, b, rows, out)
}

// linearBackward accumulates W's and b's gradients from dy and sets (or,
// with accumulate, adds to) dx = dy·W (+ the adapter's input gradient).
func (m *Model) linearBackward(lin *Linear, x, dy, dx backend.Buf, rows int, accumulate bool, o RunOptions) error {
	if g := grad(lin.W); g != nil {
		m.be.Gemm(true, false, lin.Out, lin.In, rows, 1, dy, lin.Out, x, lin.In, 1, g, lin.In)
	}
	if g := grad(lin.B); g != nil {
		m.be.BiasGrad(g, dy, rows, lin.Out)
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	m.be.Gemm(false, false, rows, lin.In, lin.Out, 1, dy, lin.Out, lin.W.W, lin.In, beta, dx, lin.In)
	if lin.Adapter != nil {
		return lin.Adapter.Backward(m.be, AdapterBackward{X: x, LDX: lin.In, DY: dy, LDDY: lin.Out, DX: dx, LDDX: lin.In, Rows: rows, Train: o.Train, Seed: backend.SubSeed(o.Seed, lin.site)})
	}
	return nil
}

func (m *Model) dropoutP(p float32, o RunOptions) float32 {
	if !o.Train {
		return 0
	}
	return p
}

// --- embeddings ---

func (m *Model) embForward(o RunOptions) error {
	a, e, be := &m.acts, &m.emb, m.be
	H := m.Cfg.Hidden
	T := a.rows
	// HF order: (word + token_type) + position.
	be.Embed(a.embSum, e.word.W, a.ids, H, false)
	be.Embed(a.embSum, e.typ.W, a.typ, H, true)
	be.Embed(a.embSum, e.pos.W, a.pos, H, true)
	be.LayerNorm(a.xs[0], a.embMean, a.embRstd, a.embSum, e.lnW.W, e.lnB.W, T, H, m.Cfg.LayerNormEps)
	if p := m.dropoutP(m.Cfg.HiddenDropout, o); p > 0 {
		be.Dropout(a.xs[0], a.xs[0], p, m.seed(o, -1, siteEmb))
	}
	return nil
}

// embBackward takes the gradient of xs[0] from a.dx.
func (m *Model) embBackward(o RunOptions) {
	a, e, be := &m.acts, &m.emb, m.be
	H := m.Cfg.Hidden
	T := a.rows
	if p := m.dropoutP(m.Cfg.HiddenDropout, o); p > 0 {
		be.DropoutBackward(a.dx, a.dx, p, m.seed(o, -1, siteEmb))
	}
	if e.word.G == nil && e.typ.G == nil && e.pos.G == nil && e.lnW.G == nil && e.lnB.G == nil {
		return
	}
	be.LayerNormBackward(a.dxNext, grad(e.lnW), grad(e.lnB), a.dx, a.embSum, a.embMean, a.embRstd, e.lnW.W, T, H)
	if e.word.G != nil {
		be.EmbedBackward(e.word.G, a.dxNext, a.ids, H, e.word.PaddingIdx)
	}
	if e.typ.G != nil {
		be.EmbedBackward(e.typ.G, a.dxNext, a.typ, H, e.typ.PaddingIdx)
	}
	if e.pos.G != nil {
		be.EmbedBackward(e.pos.G, a.dxNext, a.pos, H, e.pos.PaddingIdx)
	}
}

// --- encoder layer ---
//
// A layer runs in two parts. Its attention part (the query, key and value
// projections of every token row, then the attention itself on the padded
// layout [n·s, ·], to which packed rows are spread) feeds its dense part
// (attention output projection, residual and LayerNorm, feed-forward,
// residual and LayerNorm), which runs on the rows the layer outputs:
// every token row, or for the last layer, unless RunOptions.AllPositions,
// position 0 of each sequence alone (all the head reads). rowsOf names
// the dense part's buffers; toRows and fromRows move the attention's
// output and its gradient between the padded layout and those rows.

func (m *Model) attn(o RunOptions, l int) backend.Attn {
	c := m.Cfg
	return backend.Attn{N: m.acts.n, S: m.acts.s, Heads: c.Heads, HeadDim: c.HeadDim(),
		Dropout: m.dropoutP(c.AttentionDropout, o), Seed: m.seed(o, l, siteAttnProbs),
		Tiled: m.acts.tiled, Tile: m.Attention.Tile}
}

// clsOnly reports whether layer l computes past its attention at
// position 0 only: the last layer, unless RunOptions.AllPositions.
func (m *Model) clsOnly(l int, o RunOptions) bool {
	return l == len(m.layers)-1 && !o.AllPositions
}

// denseRows are the buffers of a layer's dense part, at the rows it
// computes.
type denseRows struct {
	n   int  // the number of rows
	cls bool // position 0 of each sequence only
	// ctx and x are the attention output and the layer input at the
	// rows; out is the layer output there.
	ctx, x, out backend.Buf
	// r1, A: attention residual sum, its LayerNorm; f1, f2: intermediate
	// before and after GELU; r2: output residual sum.
	r1, A, f1, f2, r2 backend.Buf
	// Backward scratch: d(out) on entry then d(r1), d(A), d(f1),
	// d(ctx).
	dx, dA, dff, dctx backend.Buf
}

// rowsOf returns the dense part's buffers of layer l.
func (m *Model) rowsOf(l int, o RunOptions) denseRows {
	a := &m.acts
	p := a.layer(l)
	if m.clsOnly(l, o) {
		return denseRows{n: a.n, cls: true, ctx: a.ctxCls, x: a.xCls, out: a.xsCls,
			r1: p.cls.r1, A: p.cls.a, f1: p.cls.f1, f2: p.cls.f2, r2: p.cls.r2,
			dx: a.dxCls, dA: a.dACls, dff: a.dffCls, dctx: a.dctxCls}
	}
	ctx := p.ctx
	if a.packed {
		ctx = a.ctxP
	}
	return denseRows{n: a.rows, ctx: ctx, x: a.xs[l], out: a.xs[l+1],
		r1: p.r1, A: p.a, f1: p.f1, f2: p.f2, r2: p.r2,
		dx: a.dx, dA: a.dA, dff: a.dff, dctx: a.dctx}
}

// toRows gathers layer l's attention output from the padded layout into
// r.ctx (and, at position 0 only, the layer input into r.x). The padded
// layout serves as it is.
func (m *Model) toRows(l int, r denseRows) {
	a := &m.acts
	p := a.layer(l)
	H := m.Cfg.Hidden
	switch {
	case r.cls:
		m.be.Copy2D(r.ctx, H, p.ctx, a.s*H, a.n, H)
		m.clsRows(r.x, a.xs[l], H, false)
	case a.packed:
		m.gatherRows(r.ctx, p.ctx, H)
	}
}

// fromRows spreads d(ctx) from r's rows to the padded layout the
// attention's backward pass reads (zero where nothing was computed), and
// returns it with the padded buffer that pass writes d(qkv) into.
func (m *Model) fromRows(r denseRows) (dctx, dqkv backend.Buf) {
	a := &m.acts
	H := m.Cfg.Hidden
	dctx, dqkv = a.dctx, a.dqkv
	if a.packed {
		dctx, dqkv = a.dctxPad, a.dqkvPad
	}
	switch {
	case r.cls:
		m.be.Fill(dctx, 0)
		m.be.Copy2D(dctx, a.s*H, r.dctx, H, a.n, H)
	case a.packed:
		m.scatterRows(dctx, r.dctx, H)
	}
	return dctx, dqkv
}

// clsRows copies the position-0 row of every sequence between the token
// rows (tok) and a dense [N, width] buffer (cls): gather from tok to cls,
// or, with scatter, from cls into tok, which must have been zeroed.
func (m *Model) clsRows(cls, tok backend.Buf, width int, scatter bool) {
	a, be := &m.acts, m.be
	if !a.packed {
		if scatter {
			be.Copy2D(tok, a.s*width, cls, width, a.n, width)
		} else {
			be.Copy2D(cls, width, tok, a.s*width, a.n, width)
		}
		return
	}
	for i, off := range a.seqOff {
		if scatter {
			m.copy2DAt(tok, off*width, width, cls, i*width, width, 1, width)
		} else {
			m.copy2DAt(cls, i*width, width, tok, off*width, width, 1, width)
		}
	}
}

// layerForward runs layer l: xs[l] → xs[l+1] (its first n rows when
// clsOnly).
func (m *Model) layerForward(l int, o RunOptions) error {
	if err := m.attentionForward(l, o); err != nil {
		return err
	}
	r := m.rowsOf(l, o)
	m.toRows(l, r)
	return m.denseForward(l, o, r)
}

// layerBackward takes d(xs[l+1]) in a.dx and leaves d(xs[l]) in a.dx.
func (m *Model) layerBackward(l int, o RunOptions) error {
	r := m.rowsOf(l, o)
	m.toRows(l, r) // later layers reuse the packed rows' memory
	if err := m.denseBackward(l, o, r); err != nil {
		return err
	}
	return m.attentionBackward(l, o, r)
}

// attentionForward runs layer l's query, key and value projections of
// every token row and its attention, into the padded layout's qkv and
// ctx.
func (m *Model) attentionForward(l int, o RunOptions) error {
	a, be, L := &m.acts, m.be, &m.layers[l]
	p := a.layer(l)
	H := m.Cfg.Hidden
	T := a.rows
	x := a.xs[l]

	// Q, K, V in one product: [T,H]·[3H,H]ᵀ.
	qkv := p.qkv
	if a.packed {
		qkv = a.qkvP
	}
	m.gemmBias(T, 3*H, H, x, L.qkvW, L.qkvB, qkv)
	for j, lin := range []*Linear{&L.q, &L.k, &L.v} {
		if lin.Adapter != nil {
			y := qkv.Slice(j*H, 3*T*H-j*H)
			if err := lin.Adapter.Forward(be, AdapterForward{X: x, LDX: H, Y: y, LDY: 3 * H, Rows: T, Train: o.Train, Seed: backend.SubSeed(o.Seed, lin.site)}); err != nil {
				return err
			}
		}
	}
	// Attention runs on the padded layout; packed rows are spread out to
	// it (skipped positions zero).
	if a.packed {
		m.scatterRows(p.qkv, qkv, 3*H)
	}
	be.Attention(m.attn(o, l), p.qkv, a.mask, p.ctx, p.save)
	return nil
}

// attentionBackward takes d(ctx) at r's rows in r.dctx and d(r1), the
// residual's share of d(x), in r.dx, and leaves d(xs[l]) in a.dx.
func (m *Model) attentionBackward(l int, o RunOptions, r denseRows) error {
	a, be, L := &m.acts, m.be, &m.layers[l]
	p := a.layer(l)
	H := m.Cfg.Hidden
	T := a.rows
	x := a.xs[l]
	dctx, dqkv := m.fromRows(r)
	be.AttentionBackward(m.attn(o, l), p.qkv, a.mask, p.ctx, dctx, p.save, dqkv)
	if a.packed {
		m.gatherRows(a.dqkv, dqkv, 3*H)
	}

	// Q, K, V: weight gradients, then d(x) = d(r1) + dqkv·Wqkv.
	if L.qkvGW != nil {
		be.Gemm(true, false, 3*H, H, T, 1, a.dqkv, 3*H, x, H, 1, L.qkvGW, H)
	}
	if L.qkvGB != nil {
		be.BiasGrad(L.qkvGB, a.dqkv, T, 3*H)
	}
	if r.cls {
		be.Fill(a.dxNext, 0)
		m.clsRows(r.dx, a.dxNext, H, true)
	} else {
		be.Copy2D(a.dxNext, H, r.dx, H, T, H)
	}
	be.Gemm(false, false, T, H, 3*H, 1, a.dqkv, 3*H, L.qkvW, H, 1, a.dxNext, H)
	for j, lin := range []*Linear{&L.q, &L.k, &L.v} {
		if lin.Adapter != nil {
			dy := a.dqkv.Slice(j*H, 3*T*H-j*H)
			if err := lin.Adapter.Backward(be, AdapterBackward{X: x, LDX: H, DY: dy, LDDY: 3 * H, DX: a.dxNext, LDDX: H, Rows: T, Train: o.Train, Seed: backend.SubSeed(o.Seed, lin.site)}); err != nil {
				return err
			}
		}
	}
	a.dx, a.dxNext = a.dxNext, a.dx
	a.dxCls, a.dxNextCls = a.dxNextCls, a.dxCls
	return nil
}

// denseForward runs layer l's dense part on r's rows:
//
//	A   = LayerNorm(dropout(ctx·Woᵀ + bo) + x)
//	out = LayerNorm(dropout(gelu(A·Wiᵀ + bi)·Wdᵀ + bd) + A)
func (m *Model) denseForward(l int, o RunOptions, r denseRows) error {
	be, L := m.be, &m.layers[l]
	p := m.acts.layer(l)
	H := m.Cfg.Hidden
	if err := m.linearForward(&L.ao, r.ctx, r.r1, r.n, o); err != nil {
		return err
	}
	if pd := m.dropoutP(m.Cfg.HiddenDropout, o); pd > 0 {
		be.Dropout(r.r1, r.r1, pd, m.seed(o, l, siteAttnOut))
	}
	m.addLayerNorm(r.A, p.mean1, p.rstd1, r.r1, r.x, L.ln1W.W, L.ln1B.W, r.n, H)
	// GELU in a pass of its own: GeluBackward needs the pre-activation
	// too, and writing both from the product's epilogue
	// (backend.BiasGeluGemmer) measured 7-8 % slower than this (see
	// bench/RESULTS.md); inference (nn/infer) fuses it.
	if err := m.linearForward(&L.inter, r.A, r.f1, r.n, o); err != nil {
		return err
	}
	be.Gelu(r.f2, r.f1)
	if err := m.linearForward(&L.out, r.f2, r.r2, r.n, o); err != nil {
		return err
	}
	if pd := m.dropoutP(m.Cfg.HiddenDropout, o); pd > 0 {
		be.Dropout(r.r2, r.r2, pd, m.seed(o, l, siteFFNOut))
	}
	m.addLayerNorm(r.out, p.mean2, p.rstd2, r.r2, r.A, L.ln2W.W, L.ln2B.W, r.n, H)
	return nil
}

// denseBackward is denseForward's backward pass: it takes d(out) in r.dx
// and leaves d(ctx) in r.dctx and d(r1), which the residual sends on to
// x as it is, in r.dx.
func (m *Model) denseBackward(l int, o RunOptions, r denseRows) error {
	be, L := m.be, &m.layers[l]
	p := m.acts.layer(l)
	H := m.Cfg.Hidden
	pd := m.dropoutP(m.Cfg.HiddenDropout, o)
	// Output LayerNorm: dA = d(r2); the residual sends it on to A as is.
	be.LayerNormBackward(r.dA, grad(L.ln2W), grad(L.ln2B), r.dx, r.r2, p.mean2, p.rstd2, L.ln2W.W, r.n, H)
	dd := r.dx // d(output.dense output), after dropout's backward
	be.DropoutBackward(dd, r.dA, pd, m.seed(o, l, siteFFNOut))
	if err := m.linearBackward(&L.out, r.f2, dd, r.dff, r.n, false, o); err != nil {
		return err
	}
	be.GeluBackward(r.dff, r.dff, r.f1)
	if err := m.linearBackward(&L.inter, r.A, r.dff, r.dA, r.n, true, o); err != nil {
		return err
	}
	// Attention LayerNorm: dx = d(r1), which flows to x and, through
	// dropout, to the attention output projection.
	be.LayerNormBackward(r.dx, grad(L.ln1W), grad(L.ln1B), r.dA, r.r1, p.mean1, p.rstd1, L.ln1W.W, r.n, H)
	be.DropoutBackward(r.dA, r.dx, pd, m.seed(o, l, siteAttnOut))
	return m.linearBackward(&L.ao, r.ctx, r.dA, r.dctx, r.n, false, o)
}

// addLayerNorm sets r += res, then out = LayerNorm(r) (r stays for the
// backward pass), in one pass when the backend can.
func (m *Model) addLayerNorm(out, mean, rstd, r, res, gamma, beta backend.Buf, rows, dim int) {
	eps := m.Cfg.LayerNormEps
	if al, ok := m.be.(backend.AddLayerNormer); ok {
		al.AddLayerNorm(out, mean, rstd, r, r, res, gamma, beta, rows, dim, eps)
		return
	}
	m.be.Add(r, r, res)
	m.be.LayerNorm(out, mean, rstd, r, gamma, beta, rows, dim, eps)
}

// --- head ---

func (m *Model) headForward(o RunOptions) error {
	a, be, hd := &m.acts, m.be, &m.head
	H, n := m.Cfg.Hidden, a.n
	pd := m.dropoutP(m.Cfg.ClassifierDropout, o)
	if last := a.xs[len(a.xs)-1]; o.AllPositions {
		m.clsRows(a.cls, last, H, false)
	} else {
		be.Copy2D(a.cls, H, last, H, n, H) // the last layer computed these rows only
	}
	if hd.dropoutIn && pd > 0 {
		be.Dropout(a.clsD, a.cls, pd, m.seed(o, -1, siteHeadIn))
	} else {
		be.Copy2D(a.clsD, H, a.cls, H, n, H)
	}
	if err := m.linearForward(&hd.dense, a.clsD, a.h, n, o); err != nil {
		return err
	}
	be.Tanh(a.h, a.h)
	if pd > 0 {
		be.Dropout(a.hD, a.h, pd, m.seed(o, -1, siteHeadMid))
	} else {
		be.Copy2D(a.hD, H, a.h, H, n, H)
	}
	return m.linearForward(&hd.out, a.hD, a.logits, n, o)
}

// headBackward takes d(logits) from a.dlogits and leaves d(xs[L]) in a.dx.
func (m *Model) headBackward(o RunOptions) error {
	a, be, hd := &m.acts, m.be, &m.head
	H, n := m.Cfg.Hidden, a.n
	pd := m.dropoutP(m.Cfg.ClassifierDropout, o)
	if err := m.linearBackward(&hd.out, a.hD, a.dlogits, a.dhD, n, false, o); err != nil {
		return err
	}
	be.DropoutBackward(a.dh, a.dhD, pd, m.seed(o, -1, siteHeadMid))
	be.TanhBackward(a.dh, a.dh, a.h)
	if err := m.linearBackward(&hd.dense, a.clsD, a.dh, a.dclsD, n, false, o); err != nil {
		return err
	}
	if hd.dropoutIn {
		be.DropoutBackward(a.dcls, a.dclsD, pd, m.seed(o, -1, siteHeadIn))
	} else {
		be.Copy2D(a.dcls, H, a.dclsD, H, n, H)
	}
	if !o.AllPositions {
		be.Copy2D(a.dx, H, a.dcls, H, n, H)
		return nil
	}
	be.Fill(a.dx, 0)
	m.clsRows(a.dcls, a.dx, H, true)
	return nil
}

// rows moves token rows between the padded and packed layouts (package
// nn/internal/tokrows, shared with nn/infer).
func (m *Model) rows() tokrows.Copier { return tokrows.Copier{Be: m.be, OC: m.oc} }

// scatterRows copies packed token rows (width values each) to the padded
// layout [N·S, width], zeroing the positions that were skipped.
func (m *Model) scatterRows(dst, src backend.Buf, width int) {
	m.rows().Scatter(dst, src, width, m.acts.s, m.acts.seqOff, m.acts.seqLen)
}

// gatherRows copies the computed positions of the padded layout [N·S,
// width] into packed token rows.
func (m *Model) gatherRows(dst, src backend.Buf, width int) {
	m.rows().Gather(dst, src, width, m.acts.s, m.acts.seqOff, m.acts.seqLen)
}

// copy2DAt is tokrows.Copier.Copy2DAt.
func (m *Model) copy2DAt(dst backend.Buf, dstOff, ldd int, src backend.Buf, srcOff, lds, rows, cols int) {
	m.rows().Copy2DAt(dst, dstOff, ldd, src, srcOff, lds, rows, cols)
}

// fillAt is tokrows.Copier.FillAt.
func (m *Model) fillAt(dst backend.Buf, off, n int, v float32) { m.rows().FillAt(dst, off, n, v) }
