package infer

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/internal/tokrows"
)

// pass computes inference forward passes of a model on one backend (the
// model's own, or one of its lanes) into activations of its own. Each
// layer's forward below reads the weights in place; there is no backward
// pass, so one set of layer activations serves every layer.
//
// Shapes: n sequences of s positions; T = n·s token rows in the padded
// layout, R ≤ T the rows the dense layers compute (each sequence up to
// its last real token, packed one after the other); H hidden, I
// intermediate.
type pass struct {
	m  *nn.Model
	be backend.Backend
	// The optional extensions be implements, asserted once (an assertion
	// to an interface type can allocate).
	bg backend.BiasGemmer
	wp backend.WeightPacker
	gg backend.BiasGeluGemmer
	fq backend.FirstQueryAttender
	oc backend.OffsetCopier
	// qz, while not nil, computes the products whose weights pk holds
	// quantized (Runner.QuantizeWeights); otherwise pk, while not nil,
	// holds them packed (Runner.PackWeights).
	qz backend.Quantizer
	pk *packed

	emb    nn.EmbeddingWeights
	layers []nn.LayerWeights
	head   nn.HeadWeights

	a acts
}

func newPass(m *nn.Model, be backend.Backend) *pass {
	p := &pass{m: m, be: be, emb: m.Embeddings(), head: m.Head()}
	p.bg, _ = be.(backend.BiasGemmer)
	p.wp, _ = be.(backend.WeightPacker)
	p.gg, _ = be.(backend.BiasGeluGemmer)
	p.fq, _ = be.(backend.FirstQueryAttender)
	p.oc, _ = be.(backend.OffsetCopier)
	for l := 0; l < m.Cfg.Layers; l++ {
		p.layers = append(p.layers, m.Layer(l))
	}
	return p
}

// forward runs b (validated) and returns the logits, [N·NumLabels]: p's
// memory, reused by the next pass.
func (p *pass) forward(b *nn.Batch) ([]float32, error) {
	m, a, be := p.m, &p.a, p.be
	c := m.Cfg
	a.hostPos = nn.PositionIDsInto(a.hostPos, c, b)
	for i, pos := range a.hostPos {
		if int(pos) >= c.MaxPositions {
			return nil, fmt.Errorf("row %d: position id %d exceeds max_position_embeddings %d", i/b.S, pos, c.MaxPositions)
		}
	}
	// Each sequence's rows: up to its last real token, packed.
	a.seqOff, a.seqLen = a.seqOff[:0], a.seqLen[:0]
	rows := 0
	for n := 0; n < b.N; n++ {
		l := b.RowLen(n)
		a.seqOff = append(a.seqOff, rows)
		a.seqLen = append(a.seqLen, l)
		rows += l
	}
	packed := rows < b.N*b.S
	if !packed {
		for n := range a.seqLen {
			a.seqOff[n], a.seqLen[n] = n*b.S, b.S
		}
	}
	if err := a.ensure(p, b.N, b.S, rows, packed); err != nil {
		return nil, err
	}
	be.UploadInt(a.mask, b.Mask)
	if packed {
		pk := func(v []int32) []int32 { return tokrows.Pack(&a.hostPacked, v, b.S, a.seqLen) }
		be.UploadInt(a.ids, pk(b.InputIDs))
		be.UploadInt(a.typ, pk(b.TypeIDs))
		be.UploadInt(a.pos, pk(a.hostPos))
	} else {
		be.UploadInt(a.ids, b.InputIDs)
		be.UploadInt(a.typ, b.TypeIDs)
		be.UploadInt(a.pos, a.hostPos)
	}
	// First-query attention leaves the last layer's queries past position
	// 0 out, which an adapter on the query projection would not allow.
	fq := p.fq
	if m.HasAdapters() {
		fq = nil
	}

	p.embForward()
	last := len(p.layers) - 1
	for l := range p.layers {
		var err error
		if l < last {
			err = p.layerForward(l, a.xs[l%2], a.xs[(l+1)%2])
		} else {
			err = p.lastLayerForward(l, a.xs[l%2], a.xsCls[(l+1)%2], fq)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.headForward(a.xsCls[len(p.layers)%2]); err != nil {
		return nil, err
	}
	logits := grow(&a.hostLogits, b.N*c.NumLabels)
	be.Download(logits, a.logits)
	if err := be.Sync(); err != nil {
		return nil, fmt.Errorf("forward on %s: %w", be.Name(), err)
	}
	return logits, nil
}

// linear computes y = x·Wᵀ + b (+ adapter) for rows rows; pw is W packed
// or quantized (nil for none).
func (p *pass) linear(lin *nn.Linear, pw, x, y backend.Buf, rows int) error {
	p.gemmBias(rows, lin.Out, lin.In, x, lin.W.W, pw, lin.B.W, y)
	if lin.Adapter != nil {
		return lin.Adapter.Forward(p.be, nn.AdapterForward{X: x, LDX: lin.In, Y: y, LDY: lin.Out, Rows: rows})
	}
	return nil
}

// linearGelu sets y = gelu(x·Wᵀ + b (+ adapter)) for rows rows, the GELU in
// the product's epilogue where the backend can (backend.BiasGeluGemmer)
// and the layer has no adapter; pw as for linear.
func (p *pass) linearGelu(lin *nn.Linear, pw, x, y backend.Buf, rows int) error {
	if p.gg == nil || lin.Adapter != nil {
		if err := p.linear(lin, pw, x, y, rows); err != nil {
			return err
		}
		p.be.Gelu(y, y)
		return nil
	}
	out, in := lin.Out, lin.In
	switch {
	case pw != nil && p.qz != nil:
		p.gg.GemmBiasQuantizedGelu(rows, out, in, x, in, pw, lin.B.W, nil, y, out)
	case pw != nil:
		p.gg.GemmBiasPackedGelu(rows, out, in, x, in, pw, lin.B.W, nil, y, out)
	default:
		p.gg.GemmBiasGelu(rows, out, in, x, in, lin.W.W, in, lin.B.W, nil, y, out)
	}
	return nil
}

// gemmBias sets y = x·wᵀ + b for rows×in x and out×in w (dense), in one
// pass when the backend can; pw, when not nil, is w packed by the
// backend's WeightPacker or, while p.qz is set, quantized by it.
func (p *pass) gemmBias(rows, out, in int, x, w, pw, b, y backend.Buf) {
	switch {
	case pw != nil && p.qz != nil:
		p.qz.GemmBiasQuantized(rows, out, in, x, in, pw, b, y, out)
	case pw != nil:
		p.wp.GemmBiasPacked(rows, out, in, x, in, pw, b, y, out)
	case p.bg != nil:
		p.bg.GemmBias(rows, out, in, x, in, w, in, b, y, out)
	default:
		p.be.Gemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
		p.be.AddBias(y, b, rows, out)
	}
}

// weights returns layer l's packed (or quantized) weights, all nil when
// there are none.
func (p *pass) weights(l int) packedLayer {
	if p.pk == nil {
		return packedLayer{}
	}
	return p.pk.layers[l]
}

func (p *pass) embForward() {
	a, e, be := &p.a, &p.emb, p.be
	H := p.m.Cfg.Hidden
	// HF order: (word + token_type) + position.
	be.Embed(a.embSum, e.Word.W, a.ids, H, false)
	be.Embed(a.embSum, e.Type.W, a.typ, H, true)
	be.Embed(a.embSum, e.Pos.W, a.pos, H, true)
	be.LayerNorm(a.xs[0], a.embMean, a.embRstd, a.embSum, e.LNW.W, e.LNB.W, a.rows, H, p.m.Cfg.LayerNormEps)
}

func (p *pass) attn() backend.Attn {
	c := p.m.Cfg
	return backend.Attn{N: p.a.n, S: p.a.s, Heads: c.Heads, HeadDim: c.HeadDim(), Tiled: p.a.tiled, Tile: p.m.Attention.Tile}
}

// qkvAttention runs layer l's query, key and value projections of x, R
// rows, and its attention into the padded layout's la.ctx.
func (p *pass) qkvAttention(l int, x backend.Buf) error {
	a, be, L, pw := &p.a, p.be, &p.layers[l], p.weights(l)
	la := &a.layer
	H, R := p.m.Cfg.Hidden, a.rows
	// Q, K, V in one product: [R,H]·[3H,H]ᵀ.
	qkv := la.qkv
	if a.packed {
		qkv = a.qkvP
	}
	p.gemmBias(R, 3*H, H, x, L.QKVW, pw.qkv, L.QKVB, qkv)
	for j, lin := range []*nn.Linear{L.Q, L.K, L.V} {
		if lin.Adapter != nil {
			y := qkv.Slice(j*H, 3*R*H-j*H)
			if err := lin.Adapter.Forward(be, nn.AdapterForward{X: x, LDX: H, Y: y, LDY: 3 * H, Rows: R}); err != nil {
				return err
			}
		}
	}
	// Attention runs on the padded layout; packed rows are spread out to
	// it (skipped positions zero).
	if a.packed {
		p.scatterRows(la.qkv, qkv, 3*H)
	}
	be.Attention(p.attn(), la.qkv, a.mask, la.ctx, la.save)
	return nil
}

// layerForward runs encoder layer l on every computed row: x → out.
func (p *pass) layerForward(l int, x, out backend.Buf) error {
	a, la := &p.a, &p.a.layer
	H := p.m.Cfg.Hidden
	if err := p.qkvAttention(l, x); err != nil {
		return err
	}
	ctx := la.ctx
	if a.packed {
		p.gatherRows(a.ctxP, la.ctx, H)
		ctx = a.ctxP
	}
	return p.denseForward(l, ctx, x, out, a.rows, la.r, la.A, la.f)
}

// lastLayerForward runs the last encoder layer, whose output the head
// reads at position 0 only: past its attention, it computes one row per
// sequence, out [n, H]. With fq, the attention itself runs for the
// position-0 queries alone.
func (p *pass) lastLayerForward(l int, x, out backend.Buf, fq backend.FirstQueryAttender) error {
	a, la := &p.a, &p.a.layer
	H := p.m.Cfg.Hidden
	if fq != nil {
		p.firstQueryAttention(l, x, fq)
	} else {
		if err := p.qkvAttention(l, x); err != nil {
			return err
		}
		p.be.Copy2D(a.ctxCls, H, la.ctx, a.s*H, a.n, H)
		p.clsRows(a.xCls, x, H)
	}
	return p.denseForward(l, a.ctxCls, a.xCls, out, a.n, la.cls.r1, la.cls.A, la.cls.f1)
}

// firstQueryAttention is the last layer's attention for the position-0
// queries alone: keys and values at every row, [R, 2H], from the fused
// weight's last 2H rows, and queries at position 0 only, into a.ctxCls.
// It leaves the position-0 rows of x in a.xCls.
func (p *pass) firstQueryAttention(l int, x backend.Buf, fq backend.FirstQueryAttender) {
	a, L, pw := &p.a, &p.layers[l], p.weights(l)
	la := &a.layer
	H, R, n := p.m.Cfg.Hidden, a.rows, a.n
	p.clsRows(a.xCls, x, H)
	p.gemmBias(n, H, H, a.xCls, L.Q.W.W, pw.q, L.Q.B.W, a.qCls)
	kv := la.kv
	if a.packed {
		kv = a.kvP
	}
	p.gemmBias(R, 2*H, H, x, L.KVW, pw.kv, L.KVB, kv)
	if a.packed {
		kv = la.kvPad
		p.scatterRows(kv, a.qkvP, 2*H)
	}
	fq.AttentionFirstQuery(p.attn(), a.qCls, kv, a.mask, a.ctxCls, la.save)
}

// denseForward runs what follows a layer's attention on rows rows: ctx
// the attention output and x the layer input at those rows, out the
// layer output; r, A and f are the scratch views of rows rows.
//
//	A   = LayerNorm(ctx·Woᵀ + bo + x)
//	out = LayerNorm(gelu(A·Wiᵀ + bi)·Wdᵀ + bd + A)
func (p *pass) denseForward(l int, ctx, x, out backend.Buf, rows int, r, A, f backend.Buf) error {
	la, L, pw := &p.a.layer, &p.layers[l], p.weights(l)
	H := p.m.Cfg.Hidden
	if err := p.linear(L.AttnOut, pw.ao, ctx, r, rows); err != nil {
		return err
	}
	p.addLayerNorm(A, la.mean1, la.rstd1, r, x, L.LN1W.W, L.LN1B.W, rows, H)
	if err := p.linearGelu(L.Inter, pw.inter, A, f, rows); err != nil {
		return err
	}
	// The attention residual's memory takes the output's: it is read no
	// more.
	if err := p.linear(L.Out, pw.out, f, r, rows); err != nil {
		return err
	}
	p.addLayerNorm(out, la.mean2, la.rstd2, r, A, L.LN2W.W, L.LN2B.W, rows, H)
	return nil
}

// addLayerNorm sets r += res, then out = LayerNorm(r), in one pass when
// the backend can.
func (p *pass) addLayerNorm(out, mean, rstd, r, res, gamma, beta backend.Buf, rows, dim int) {
	eps := p.m.Cfg.LayerNormEps
	if al, ok := p.be.(backend.AddLayerNormer); ok {
		al.AddLayerNorm(out, mean, rstd, r, r, res, gamma, beta, rows, dim, eps)
		return
	}
	p.be.Add(r, r, res)
	p.be.LayerNorm(out, mean, rstd, r, gamma, beta, rows, dim, eps)
}

// headForward computes the logits from cls, the last hidden state at
// position 0 of each sequence, [n, H]: out(tanh(dense(cls))).
func (p *pass) headForward(cls backend.Buf) error {
	a, hd := &p.a, &p.head
	n := a.n
	var dense, outW backend.Buf
	if p.pk != nil {
		dense, outW = p.pk.headDense, p.pk.headOut
	}
	if err := p.linear(hd.Dense, dense, cls, a.h, n); err != nil {
		return err
	}
	p.be.Tanh(a.h, a.h)
	return p.linear(hd.Out, outW, a.h, a.logits, n)
}

// clsRows copies the position-0 row of every sequence from the token
// rows tok to the dense [n, width] cls.
func (p *pass) clsRows(cls, tok backend.Buf, width int) {
	a := &p.a
	if !a.packed {
		p.be.Copy2D(cls, width, tok, a.s*width, a.n, width)
		return
	}
	for i, off := range a.seqOff {
		p.copy2DAt(cls, i*width, width, tok, off*width, width, 1, width)
	}
}

// rows moves token rows between the padded and packed layouts (package
// nn/internal/tokrows, shared with nn's training path).
func (p *pass) rows() tokrows.Copier { return tokrows.Copier{Be: p.be, OC: p.oc} }

// scatterRows copies packed token rows (width values each) to the padded
// layout [n·s, width], zeroing the positions that were skipped.
func (p *pass) scatterRows(dst, src backend.Buf, width int) {
	p.rows().Scatter(dst, src, width, p.a.s, p.a.seqOff, p.a.seqLen)
}

// gatherRows copies the computed positions of the padded layout [n·s,
// width] into packed token rows.
func (p *pass) gatherRows(dst, src backend.Buf, width int) {
	p.rows().Gather(dst, src, width, p.a.s, p.a.seqOff, p.a.seqLen)
}

// copy2DAt is tokrows.Copier.Copy2DAt.
func (p *pass) copy2DAt(dst backend.Buf, dstOff, ldd int, src backend.Buf, srcOff, lds, rows, cols int) {
	p.rows().Copy2DAt(dst, dstOff, ldd, src, srcOff, lds, rows, cols)
}

// fillAt is tokrows.Copier.FillAt.
func (p *pass) fillAt(dst backend.Buf, off, n int, v float32) { p.rows().FillAt(dst, off, n, v) }

// grow returns *s resized to n values, reallocated only when its capacity
// is too small.
func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}
