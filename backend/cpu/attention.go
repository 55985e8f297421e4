package cpu

import (
	"math"

	"github.com/rerank-go/rerank/backend"
)

// AttentionSaveLen implements backend.Backend: the CPU backend keeps the
// softmax probabilities, [N, Heads, S, S] (before dropout), or with
// a.Tiled each query row's log-sum-exp, [N, Heads, S] (attention_tiled.go).
func (*Backend) AttentionSaveLen(a backend.Attn) int {
	if a.Tiled {
		return tiledSaveLen(a)
	}
	return a.N * a.Heads * a.S * a.S
}

// Probabilities returns the attention probabilities kept in save by
// untiled Attention, laid out [N, Heads, S, S]. It exists for tests and
// tools that inspect attention maps; it is specific to the CPU backend.
func Probabilities(save backend.Buf) []float32 { return f(save) }

// Attention work is split into (sequence, head) tasks that the workers
// take in turn; each task runs single-threaded matrix products (see
// gemm_blas.go), so the two levels of parallelism never oversubscribe the
// cores. Keys at and after a sequence's last real token are padding with
// exactly zero probability, so each task's products stop at that length
// (keyLen); queries at padded positions are still computed, as Hugging
// Face does.

// keyLens sets lens[n] to 1 + the position of sequence n's last real token
// (0 when it has none) and madd[n*S+j] to 0 for a real key, -Inf for
// padding.
func keyLens(m []int32, n, S int, lens []int, madd []float32) {
	ninf := float32(math.Inf(-1))
	for i := 0; i < n; i++ {
		msk := m[i*S : i*S+S]
		lens[i] = 0
		for j, v := range msk {
			if v != 0 {
				lens[i] = j + 1
				madd[i*S+j] = 0
			} else {
				madd[i*S+j] = ninf
			}
		}
	}
}

// forTasks runs each(t, scratch, i) for i in [0, n) on up to b.workers
// goroutines that take tasks in turn; each goroutine gets its own scratch
// of scratchLen values. Tasks must write disjoint outputs. The caller
// holds p.mu and has set the operands in p.t.
func (p *pool) forTasks(n, scratchLen int, each func(t *task, scratch []float32, i int)) {
	t := &p.t
	t.each, t.tasks, t.scratchLen = each, n, scratchLen
	t.next.Store(0)
	t.work = func(t *task, slot int) {
		s := grow(&t.scratch[slot], t.scratchLen)
		for {
			i := int(t.next.Add(1) - 1)
			if i >= t.tasks {
				return
			}
			t.each(t, s, i)
		}
	}
	p.fork(min(len(p.wake), n))
}

// attnSetup sets the per-sequence key lengths and additive masks of
// p.t.attn for a's batch, and its scale.
func (p *pool) attnSetup(a backend.Attn, mask backend.IntBuf) *attnOp {
	op := &p.t.attn
	op.a = a
	op.scale = float32(1 / math.Sqrt(float64(a.HeadDim)))
	keyLens(ints(mask), a.N, a.S, grow(&op.lens, a.N), grow(&op.madd, a.N*a.S))
	return op
}

// Attention implements backend.Backend.
func (b *Backend) Attention(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	if a.Tiled {
		b.attentionTiled(a, qkv, mask, ctx, save)
		return
	}
	p := b.lock()
	defer p.unlock()
	op := p.attnSetup(a, mask)
	op.qkv, op.ctx, op.save = f(qkv), f(ctx), f(save)
	p.forTasks(a.N*a.Heads, a.S*a.S, func(t *task, scratch []float32, i int) {
		op := &t.attn
		a := &op.a
		S, d, H := a.S, a.HeadDim, a.H()
		ld := 3 * H
		x, out, probs := op.qkv, op.ctx, op.save
		n, h := i/a.Heads, i%a.Heads
		base := n * S * ld
		off := i * S * S
		hd := headArgs{S: S, L: op.lens[n], d: d, ld: ld, ldc: H, scale: op.scale, pd: a.Dropout, seed: a.Seed, base: uint64(off)}
		q, k, v := x[base+h*d:], x[base+H+h*d:], x[base+2*H+h*d:]
		pr, c, m := probs[off:off+S*S], out[n*S*H+h*d:], op.madd[n*S:n*S+S]
		if haveC {
			cAttnFwd(&hd, q, k, v, pr, c, m, scratch)
		} else {
			goAttnFwd(&hd, q, k, v, pr, c, m, scratch)
		}
	})
}

// AttentionBackward implements backend.Backend.
func (b *Backend) AttentionBackward(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf) {
	if a.Tiled {
		b.attentionBackwardTiled(a, qkv, mask, ctx, dctx, save, dqkv)
		return
	}
	p := b.lock()
	defer p.unlock()
	op := p.attnSetup(a, mask)
	op.qkv, op.g, op.save, op.dqkv = f(qkv), f(dctx), f(save), f(dqkv)
	p.forTasks(a.N*a.Heads, 2*a.S*a.S, func(t *task, scratch []float32, i int) {
		op := &t.attn
		a := &op.a
		S, d, H := a.S, a.HeadDim, a.H()
		ld := 3 * H
		x, dx, dc, probs := op.qkv, op.dqkv, op.g, op.save
		n, h := i/a.Heads, i%a.Heads
		base := n * S * ld
		off := i * S * S
		hd := headArgs{S: S, L: op.lens[n], d: d, ld: ld, ldc: H, scale: op.scale, pd: a.Dropout, seed: a.Seed, base: uint64(off)}
		q, k, v := x[base+h*d:], x[base+H+h*d:], x[base+2*H+h*d:]
		dq, dk, dv := dx[base+h*d:], dx[base+H+h*d:], dx[base+2*H+h*d:]
		pr, g := probs[off:off+S*S], dc[n*S*H+h*d:]
		if haveC {
			cAttnBwd(&hd, q, k, v, pr, g, dq, dk, dv, scratch)
		} else {
			goAttnBwd(&hd, q, k, v, pr, g, dq, dk, dv, scratch)
		}
	})
}

// AttentionFirstQuery implements backend.FirstQueryAttender with the
// products and softmax of Attention, for one query row per head.
func (b *Backend) AttentionFirstQuery(a backend.Attn, q, kv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	p := b.lock()
	defer p.unlock()
	op := p.attnSetup(a, mask)
	op.q, op.qkv, op.ctx, op.save = f(q), f(kv), f(ctx), f(save)
	p.forTasks(a.N*a.Heads, 0, func(t *task, _ []float32, i int) {
		op := &t.attn
		a := &op.a
		S, d, H := a.S, a.HeadDim, a.H()
		qq, x, out, probs := op.q, op.qkv, op.ctx, op.save
		n, h := i/a.Heads, i%a.Heads
		L := op.lens[n]
		p := probs[i*S : i*S+S]
		k, v := x[n*S*2*H+h*d:], x[n*S*2*H+H+h*d:]
		if L == 0 {
			for j := range p {
				p[j] = 1 / float32(S)
			}
			L = S
		} else {
			sgemm(false, true, 1, L, d, op.scale, qq[n*H+h*d:], d, k, 2*H, 0, p, S)
			softmaxRow(p, op.madd[n*S:n*S+S], L)
		}
		sgemm(false, false, 1, d, L, 1, p, S, v, 2*H, 0, out[n*H+h*d:], H)
	})
}

// goAttnFwd is the pure-Go twin of rr_attn_fwd (kernels_amd64.c).
func goAttnFwd(h *headArgs, q, k, v, p, ctx, madd, scratch []float32) {
	S, L, d, ld := h.S, h.L, h.d, h.ld
	if L == 0 {
		// Every key is padding: Hugging Face's additive mask makes each
		// row uniform over all S keys.
		for i := range p[:S*S] {
			p[i] = 1 / float32(S)
		}
		L = S
	} else {
		sgemm(false, true, S, L, d, h.scale, q, ld, k, ld, 0, p, S)
		for i := 0; i < S; i++ {
			softmaxRow(p[i*S:i*S+S], madd, L)
		}
	}
	pv := p
	if h.pd > 0 {
		dropped(scratch, p, S, L, h.pd, h.seed, h.base)
		pv = scratch
	}
	sgemm(false, false, S, d, L, 1, pv, S, v, ld, 0, ctx, h.ldc)
}

// softmaxRow applies the additive key mask and a softmax to row[:L] and
// zeroes row[L:].
func softmaxRow(row, madd []float32, L int) {
	mx := float32(math.Inf(-1))
	for j := 0; j < L; j++ {
		row[j] += madd[j]
		mx = max(mx, row[j])
	}
	var sum float64
	for j := 0; j < L; j++ {
		if math.IsInf(float64(row[j]), -1) {
			row[j] = 0
			continue
		}
		e := float32(math.Exp(float64(row[j] - mx)))
		row[j] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for j := 0; j < L; j++ {
		row[j] *= inv
	}
	clear(row[L:])
}

// dropped writes pv = keep ? p/(1-pd) : 0 for the first L columns of the
// S×S probabilities of one head, whose element (i,j) has dropout index
// base + i·S + j.
func dropped(pv, p []float32, S, L int, pd float32, seed, base uint64) {
	scale := 1 / (1 - pd)
	for i := 0; i < S; i++ {
		for j := 0; j < L; j++ {
			e := i*S + j
			if backend.Keep(seed, base+uint64(e), pd) {
				pv[e] = p[e] * scale
			} else {
				pv[e] = 0
			}
		}
	}
}

func zeroRows(x []float32, ld, from, to, d int) {
	for i := from; i < to; i++ {
		clear(x[i*ld : i*ld+d])
	}
}

// goAttnBwd is the pure-Go twin of rr_attn_bwd (kernels_amd64.c).
func goAttnBwd(h *headArgs, q, k, v, p, g, dq, dk, dv, scratch []float32) {
	S, L, d, ld, ldg := h.S, h.L, h.d, h.ld, h.ldc
	if L == 0 {
		L = S
	}
	pv, dp := p, scratch[:S*S]
	if h.pd > 0 {
		pv = scratch[S*S : 2*S*S]
		dropped(pv, p, S, L, h.pd, h.seed, h.base)
	}
	// dV = P'ᵀ·g over the first L keys; the rest get nothing.
	sgemm(true, false, L, d, S, 1, pv, S, g, ldg, 0, dv, ld)
	zeroRows(dv, ld, L, S, d)
	// dP' = g·Vᵀ; with dropout, P⊙dP = P'⊙dP' (a dropped element has
	// P' = 0). Softmax backward: dS = P'⊙dP' − P·rowsum(P'⊙dP').
	sgemm(false, true, S, L, d, 1, g, ldg, v, ld, 0, dp, S)
	for i := 0; i < S; i++ {
		pr, pvr, dr := p[i*S:i*S+L], pv[i*S:i*S+L], dp[i*S:i*S+L]
		var dot float32
		for j := range dr {
			dr[j] *= pvr[j]
			dot += dr[j]
		}
		for j := range dr {
			dr[j] -= pr[j] * dot
		}
	}
	sgemm(false, false, S, d, L, h.scale, dp, S, k, ld, 0, dq, ld)
	sgemm(true, false, L, d, S, h.scale, dp, S, q, ld, 0, dk, ld)
	zeroRows(dk, ld, L, S, d)
}
