package infer

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// acts holds the activations of an inference pass, carved out of one
// allocation (llm.c style) that grows to the largest batch seen and is
// reused afterwards, so that steady-state passes allocate nothing. No
// backward pass follows: layer inputs alternate between two buffers and
// one set of layer activations serves every layer.
type acts struct {
	mem  backend.Buf
	imem backend.IntBuf

	n, s int // the shape the views are carved for
	// rows is the number of token rows the dense layers compute: n·s, or
	// when packed the real tokens' rows only.
	rows   int
	packed bool
	// tiled: this shape's attention is tiled (Model.Attention), so the
	// save holds a log-sum-exp per query row.
	tiled bool
	// carved is the number of float32 values the views take.
	carved int
	// seqOff[i] is the first row of sequence i in the token rows and
	// seqLen[i] its number of rows (s when not packed).
	seqOff, seqLen []int

	// ids, typ and pos are per token row; mask is [n·s] (padded layout).
	ids, typ, pos, mask backend.IntBuf
	// Embeddings: the sum of the three lookups and its row statistics.
	embSum, embMean, embRstd backend.Buf
	// xs are the layer inputs and outputs, in turn (layer l reads xs[l%2]
	// and writes xs[(l+1)%2]); xsCls are their first n rows, which is all
	// the last layer writes.
	xs, xsCls [2]backend.Buf
	layer     layerActs
	// The position-0 rows of the last layer's input, attention output and
	// (first-query attention) queries.
	xCls, ctxCls, qCls backend.Buf
	// Head: h = tanh(dense(cls)); logits = out(h).
	h, logits backend.Buf
	// Packing scratch (nil when not packed), views of the intermediate's
	// memory: the QKV product and the attention output in token rows;
	// kvP is qkvP's first 2·rows·H values (first-query attention's keys
	// and values).
	qkvP, ctxP, kvP backend.Buf

	// Host memory reused by every pass: position ids, token arrays
	// packed to their real rows, and the logits returned.
	hostPos, hostPacked []int32
	hostLogits          []float32
}

// layerActs is the one set of layer activations.
type layerActs struct {
	qkv, save, ctx backend.Buf // [n·s, 3H], attention save, [n·s, H] (padded layout)
	// r holds the attention residual sum, then the output one; A the
	// attention LayerNorm's output; f the intermediate, GELU in place.
	r, A, f                    backend.Buf
	mean1, rstd1, mean2, rstd2 backend.Buf
	// kv is qkv's first 2·rows·H values and kvPad its first 2·n·s·H
	// (first-query attention's keys and values, packed and padded).
	kv, kvPad backend.Buf
	// cls views r, A and f at their first n rows (the last layer's).
	cls struct{ r1, A, f1 backend.Buf }
}

// shape is what the activation layout depends on.
type shape struct {
	n, s, rows, save int
	packed, tiled    bool
}

// size returns the float32 and int32 values the views of sh take: a
// counting pass of carve.
func size(c nn.Config, sh shape) (floats, ints int) {
	var a acts
	var k backend.Carver
	sh.rows = sh.n * sh.s
	a.carve(&k, c, sh)
	return k.Off, k.IOff
}

// ensure carves the views for an n×s batch whose dense layers compute
// rows token rows, growing the allocation when needed.
func (a *acts) ensure(p *pass, n, s, rows int, packed bool) error {
	tiled := p.m.Attention.Tiled(s)
	if a.mem != nil && a.n == n && a.s == s && a.rows == rows && a.packed == packed && a.tiled == tiled {
		return nil
	}
	c := p.m.Cfg
	save := p.be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: c.Heads, HeadDim: c.HeadDim(), Tiled: tiled})
	sh := shape{n: n, s: s, rows: rows, save: save, packed: packed, tiled: tiled}
	floats, ints := size(c, sh)
	var err error
	if a.mem, err = backend.Grow(p.be, a.mem, floats); err != nil {
		return fmt.Errorf("allocate activations for %d×%d tokens (%d MiB): %w", n, s, floats*4>>20, err)
	}
	if a.imem, err = backend.GrowInt(p.be, a.imem, ints); err != nil {
		return fmt.Errorf("allocate token buffers: %w", err)
	}
	k := backend.Carver{Mem: a.mem, IMem: a.imem}
	a.carve(&k, c, sh)
	a.carved = k.Off
	return nil
}

// carve lays out every view for sh from k: the one place that decides
// what the activations hold and how large they are.
func (a *acts) carve(k *backend.Carver, c nn.Config, sh shape) {
	n, s, R := sh.n, sh.s, sh.rows
	T, H, I := n*s, c.Hidden, c.Intermediate
	take, views := k.Take, k.Mem != nil
	a.ids, a.typ, a.pos, a.mask = k.TakeInt(T, R), k.TakeInt(T, R), k.TakeInt(T, R), k.TakeInt(T, T)
	a.embSum, a.embMean, a.embRstd = take(T*H, R*H), take(T, R), take(T, R)
	for i := range a.xs {
		a.xs[i] = take(T*H, R*H)
		if views {
			a.xsCls[i] = a.xs[i].Slice(0, n*H)
		}
	}
	la := &a.layer
	la.qkv, la.save, la.ctx = take(3*T*H, 3*T*H), take(sh.save, sh.save), take(T*H, T*H)
	fLen := T * I
	if sh.packed {
		fLen = max(fLen, 3*T*H)
	}
	var fMem backend.Buf
	la.r, la.A, fMem = take(T*H, R*H), take(T*H, R*H), take(fLen, fLen)
	la.mean1, la.rstd1, la.mean2, la.rstd2 = take(T, R), take(T, R), take(T, R), take(T, R)
	if views {
		la.f = fMem.Slice(0, R*I)
		la.kv, la.kvPad = la.qkv.Slice(0, 2*R*H), la.qkv.Slice(0, 2*T*H)
		la.cls.r1, la.cls.A, la.cls.f1 = la.r.Slice(0, n*H), la.A.Slice(0, n*H), la.f.Slice(0, n*I)
	}
	a.xCls, a.ctxCls, a.qCls = take(n*H, n*H), take(n*H, n*H), take(n*H, n*H)
	a.h, a.logits = take(n*H, n*H), take(n*c.NumLabels, n*c.NumLabels)
	a.qkvP, a.ctxP, a.kvP = nil, nil, nil
	if sh.packed && views {
		// The packing scratch lives in the intermediate's memory: qkvP is
		// read no more once scattered to la.qkv, before the attention
		// output is gathered to ctxP, and ctxP no more once the attention
		// output product has read it, before the intermediate is written.
		a.qkvP, a.ctxP = fMem.Slice(0, 3*R*H), fMem.Slice(0, R*H)
		a.kvP = a.qkvP.Slice(0, 2*R*H)
	}
	a.n, a.s, a.rows, a.packed, a.tiled = n, s, R, sh.packed, sh.tiled
}

// ActivationBytes is the memory the activations of one n×s inference
// pass take on be (one pass; a Runner holds one set per lane, each sized
// for its share of a batch): the allocations its views are carved from,
// sized by a counting pass of the same code. packed says whether the
// batch has padding to skip: its packing scratch lives in the
// intermediate's memory, so a packed pass takes no more than an unpacked
// one when the intermediate is at least three times the hidden size
// (every BERT and XLM-R shape), at most n·s·(3·hidden − intermediate)
// values more otherwise.
func ActivationBytes(be backend.Backend, cfg nn.Config, n, s int, attention nn.AttentionOptions, packed bool) int64 {
	tiled := attention.Tiled(s)
	save := be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: cfg.Heads, HeadDim: cfg.HeadDim(), Tiled: tiled})
	floats, ints := size(cfg, shape{n: n, s: s, save: save, packed: packed, tiled: tiled})
	return 4*int64(floats) + 4*int64(ints)
}
