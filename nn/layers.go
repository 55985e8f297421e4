package nn

import (
	"github.com/rerank-go/rerank/backend"
)

// Each layer's forward and backward sit side by side below. Shapes: T
// token rows (N·S, or the real tokens' rows with RunOptions.SkipPadding),
// H hidden, I intermediate. Activations live in m.acts.

// grad returns a parameter's gradient view, or nil when it is frozen.
func grad(p *Param) backend.Buf { return p.G }

// linearForward computes y = x·Wᵀ + b (+ adapter) for rows rows; x and y
// are dense (leading dimensions In and Out).
func (m *Model) linearForward(lin *Linear, x, y backend.Buf, rows int, o RunOptions) error {
	m.gemmBias(rows, lin.Out, lin.In, x, lin.W.W, lin.packed, lin.B.W, y)
	if lin.Adapter != nil {
		return lin.Adapter.Forward(m.be, x, lin.In, y, lin.Out, rows, o.Train, backend.SubSeed(o.Seed, lin.site))
	}
	return nil
}

// gemmBias sets y = x·wᵀ + b for rows×in x and out×in w (dense), in one
// pass when the backend can; pw, when not nil, is w packed by the
// backend's WeightPacker (see Lanes.PackWeights) or, while m.qz is set, w
// quantized by it (Lanes.QuantizeWeights).
func (m *Model) gemmBias(rows, out, in int, x, w, pw, b, y backend.Buf) {
	if pw != nil && m.qz != nil {
		m.qz.GemmBiasQuantized(rows, out, in, x, in, pw, b, y, out)
		return
	}
	if pw != nil {
		m.be.(backend.WeightPacker).GemmBiasPacked(rows, out, in, x, in, pw, b, y, out)
		return
	}
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
		return lin.Adapter.Backward(m.be, x, lin.In, dy, lin.Out, dx, lin.In, rows, o.Train, backend.SubSeed(o.Seed, lin.site))
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

// attentionForward runs layer l's query, key and value projections and
// its attention. It returns the attention output and the layer input at
// the rows the rest of the layer computes, and their number: every token
// row, or position 0 of each sequence (clsOnly).
func (m *Model) attentionForward(l int, o RunOptions) (ctx, x backend.Buf, rows int, err error) {
	a, be, L := &m.acts, m.be, &m.layers[l]
	p := a.layer(l)
	H := m.Cfg.Hidden
	T := a.rows
	x = a.xs[l]
	if m.fq != nil && m.clsOnly(l, o) && a.noGrad && !o.Train {
		ctx, x, rows = m.firstQueryAttention(l, o, m.fq)
		return ctx, x, rows, nil
	}

	// Q, K, V in one product: [T,H]·[3H,H]ᵀ.
	qkv := p.qkv
	if a.packed {
		qkv = a.qkvP
	}
	m.gemmBias(T, 3*H, H, x, L.qkvW, L.pk.qkv, L.qkvB, qkv)
	for j, lin := range []*Linear{&L.q, &L.k, &L.v} {
		if lin.Adapter != nil {
			y := qkv.Slice(j*H, 3*T*H-j*H)
			if err := lin.Adapter.Forward(be, x, H, y, 3*H, T, o.Train, backend.SubSeed(o.Seed, lin.site)); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	// Attention runs on the padded layout; packed rows are spread out to
	// it (skipped positions zero) and the output gathered back.
	if a.packed {
		m.scatterRows(p.qkv, qkv, 3*H)
	}
	be.Attention(m.attn(o, l), p.qkv, a.mask, p.ctx, p.save)
	switch {
	case m.clsOnly(l, o):
		// From here on only position 0 matters: one row per sequence.
		be.Copy2D(a.ctxCls, H, p.ctx, a.s*H, a.n, H)
		m.clsRows(a.xCls, x, H, false)
		return a.ctxCls, a.xCls, a.n, nil
	case a.packed:
		m.gatherRows(a.ctxP, p.ctx, H)
		return a.ctxP, x, T, nil
	}
	return p.ctx, x, T, nil
}

// firstQueryAttention is attentionForward for a last layer that computes
// position 0 alone, in inference on a backend that can attend for those
// queries only: keys and values at every position, [T, 2H], from the
// fused weight's last 2H rows, and queries at position 0 only. Pure
// inference (acts.noGrad) means there are no adapters.
func (m *Model) firstQueryAttention(l int, o RunOptions, fq backend.FirstQueryAttender) (ctx, x backend.Buf, rows int) {
	a, L := &m.acts, &m.layers[l]
	p := a.layer(l)
	H, T, n := m.Cfg.Hidden, a.rows, a.n
	x = a.xs[l]
	m.clsRows(a.xCls, x, H, false)
	m.gemmBias(n, H, H, a.xCls, L.q.W.W, L.pk.q, L.q.B.W, a.qCls)
	kv := p.kv
	if a.packed {
		kv = a.kvP
	}
	m.gemmBias(T, 2*H, H, x, L.kvW, L.pk.kv, L.kvB, kv)
	if a.packed {
		kv = p.kvPad
		m.scatterRows(kv, a.qkvP, 2*H)
	}
	fq.AttentionFirstQuery(m.attn(o, l), a.qCls, kv, a.mask, a.ctxCls, p.save)
	return a.ctxCls, a.xCls, n
}

func (m *Model) layerForward(l int, o RunOptions) error {
	a, be, L := &m.acts, m.be, &m.layers[l]
	p := a.layer(l)
	H := m.Cfg.Hidden
	ctx, x, T, err := m.attentionForward(l, o)
	if err != nil {
		return err
	}
	// The views of T rows: every token row, or position 0 of each
	// sequence (clsOnly).
	r1, A, f1, f2, r2, xNext := p.r1, p.a, p.f1, p.f2, p.r2, a.xs[l+1]
	if T != a.rows {
		r1, A, f1, f2, r2, xNext = p.cls.r1, p.cls.a, p.cls.f1, p.cls.f2, p.cls.r2, a.xsCls
	}

	// A = LayerNorm(dropout(ctx·Woᵀ + bo) + x).
	if err := m.linearForward(&L.ao, ctx, r1, T, o); err != nil {
		return err
	}
	if pd := m.dropoutP(m.Cfg.HiddenDropout, o); pd > 0 {
		be.Dropout(r1, r1, pd, m.seed(o, l, siteAttnOut))
	}
	m.addLayerNorm(A, p.mean1, p.rstd1, r1, x, L.ln1W.W, L.ln1B.W, T, H)

	// X' = LayerNorm(dropout(gelu(A·Wiᵀ + bi)·Wdᵀ + bd) + A).
	if err := m.linearForward(&L.inter, A, f1, T, o); err != nil {
		return err
	}
	be.Gelu(f2, f1)
	if err := m.linearForward(&L.out, f2, r2, T, o); err != nil {
		return err
	}
	if pd := m.dropoutP(m.Cfg.HiddenDropout, o); pd > 0 {
		be.Dropout(r2, r2, pd, m.seed(o, l, siteFFNOut))
	}
	m.addLayerNorm(xNext, p.mean2, p.rstd2, r2, A, L.ln2W.W, L.ln2B.W, T, H)
	return nil
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

// layerBackward takes d(xs[l+1]) in a.dx and leaves d(xs[l]) in a.dx.
func (m *Model) layerBackward(l int, o RunOptions) error {
	a, be, L := &m.acts, m.be, &m.layers[l]
	p := a.layer(l)
	H := m.Cfg.Hidden
	T := a.rows
	x := a.xs[l]
	cls := m.clsOnly(l, o)
	R := T // rows above the attention
	if cls {
		R = a.n
	}
	// The views of R rows.
	dx, dA, dff := a.dx, a.dA, a.dff
	r1, A, f1, f2, r2 := p.r1, p.a, p.f1, p.f2, p.r2
	if R != T {
		dx, dA, dff = a.dxCls, a.dACls, a.dffCls
		r1, A, f1, f2, r2 = p.cls.r1, p.cls.a, p.cls.f1, p.cls.f2, p.cls.r2
	}

	// Output LayerNorm: dA = d(r2); the residual sends it on to A as is.
	be.LayerNormBackward(dA, grad(L.ln2W), grad(L.ln2B), dx, r2, p.mean2, p.rstd2, L.ln2W.W, R, H)
	dd := dx // d(output.dense output), after dropout's backward
	be.DropoutBackward(dd, dA, m.dropoutP(m.Cfg.HiddenDropout, o), m.seed(o, l, siteFFNOut))
	if err := m.linearBackward(&L.out, f2, dd, dff, R, false, o); err != nil {
		return err
	}
	be.GeluBackward(dff, dff, f1)
	if err := m.linearBackward(&L.inter, A, dff, dA, R, true, o); err != nil {
		return err
	}

	// Attention LayerNorm: dx = d(r1), which flows to x and, through
	// dropout, to the attention output projection.
	be.LayerNormBackward(dx, grad(L.ln1W), grad(L.ln1B), dA, r1, p.mean1, p.rstd1, L.ln1W.W, R, H)
	be.DropoutBackward(dA, dx, m.dropoutP(m.Cfg.HiddenDropout, o), m.seed(o, l, siteAttnOut))
	switch {
	case cls:
		// Only position 0 of each sequence has an attention-output
		// gradient; the attention backward spreads it to every key and
		// value.
		if err := m.linearBackward(&L.ao, a.ctxCls, dA, a.dctxCls, R, false, o); err != nil {
			return err
		}
		dctx, dqkv := a.dctx, a.dqkv
		if a.packed {
			dctx, dqkv = a.dctxPad, a.dqkvPad
		}
		be.Fill(dctx, 0)
		be.Copy2D(dctx, a.s*H, a.dctxCls, H, a.n, H)
		be.AttentionBackward(m.attn(o, l), p.qkv, a.mask, p.ctx, dctx, p.save, dqkv)
		if a.packed {
			m.gatherRows(a.dqkv, a.dqkvPad, 3*H)
		}
	case a.packed:
		m.gatherRows(a.ctxP, p.ctx, H)
		if err := m.linearBackward(&L.ao, a.ctxP, a.dA, a.dctx, T, false, o); err != nil {
			return err
		}
		m.scatterRows(a.dctxPad, a.dctx, H)
		be.AttentionBackward(m.attn(o, l), p.qkv, a.mask, p.ctx, a.dctxPad, p.save, a.dqkvPad)
		m.gatherRows(a.dqkv, a.dqkvPad, 3*H)
	default:
		if err := m.linearBackward(&L.ao, p.ctx, a.dA, a.dctx, T, false, o); err != nil {
			return err
		}
		be.AttentionBackward(m.attn(o, l), p.qkv, a.mask, p.ctx, a.dctx, p.save, a.dqkv)
	}

	// Q, K, V: weight gradients, then d(x) = d(r1) + dqkv·Wqkv.
	if L.qkvGW != nil {
		be.Gemm(true, false, 3*H, H, T, 1, a.dqkv, 3*H, x, H, 1, L.qkvGW, H)
	}
	if L.qkvGB != nil {
		be.BiasGrad(L.qkvGB, a.dqkv, T, 3*H)
	}
	if cls {
		be.Fill(a.dxNext, 0)
		m.clsRows(dx, a.dxNext, H, true)
	} else {
		be.Copy2D(a.dxNext, H, a.dx, H, T, H)
	}
	be.Gemm(false, false, T, H, 3*H, 1, a.dqkv, 3*H, L.qkvW, H, 1, a.dxNext, H)
	for j, lin := range []*Linear{&L.q, &L.k, &L.v} {
		if lin.Adapter != nil {
			dy := a.dqkv.Slice(j*H, 3*T*H-j*H)
			if err := lin.Adapter.Backward(be, x, H, dy, 3*H, a.dxNext, H, T, o.Train, backend.SubSeed(o.Seed, lin.site)); err != nil {
				return err
			}
		}
	}
	a.dx, a.dxNext = a.dxNext, a.dx
	a.dxCls, a.dxNextCls = a.dxNextCls, a.dxCls
	return nil
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

// scatterRows copies packed token rows (width values each) to the padded
// layout [N·S, width], zeroing the positions that were skipped.
func (m *Model) scatterRows(dst, src backend.Buf, width int) {
	a := &m.acts
	S := a.s
	for i, off := range a.seqOff {
		l := a.seqLen[i]
		m.copy2DAt(dst, i*S*width, width, src, off*width, width, l, width)
		if l < S {
			m.fillAt(dst, (i*S+l)*width, (S-l)*width, 0)
		}
	}
}

// gatherRows copies the computed positions of the padded layout [N·S,
// width] into packed token rows.
func (m *Model) gatherRows(dst, src backend.Buf, width int) {
	a := &m.acts
	for i, off := range a.seqOff {
		l := a.seqLen[i]
		m.copy2DAt(dst, off*width, width, src, i*a.s*width, width, l, width)
	}
}

// copy2DAt copies rows×cols values from src at srcOff to dst at dstOff
// (leading dimensions lds and ldd) without a view where the backend can
// (backend.OffsetCopier).
func (m *Model) copy2DAt(dst backend.Buf, dstOff, ldd int, src backend.Buf, srcOff, lds, rows, cols int) {
	if m.oc != nil {
		m.oc.Copy2DAt(dst, dstOff, ldd, src, srcOff, lds, rows, cols)
		return
	}
	n := func(ld int) int { return max(0, (rows-1)*ld+cols) }
	m.be.Copy2D(dst.Slice(dstOff, n(ldd)), ldd, src.Slice(srcOff, n(lds)), lds, rows, cols)
}

// fillAt sets n values of dst from off on to v, without a view where the
// backend can (backend.OffsetCopier).
func (m *Model) fillAt(dst backend.Buf, off, n int, v float32) {
	if m.oc != nil {
		m.oc.FillAt(dst, off, n, v)
		return
	}
	m.be.Fill(dst.Slice(off, n), v)
}
