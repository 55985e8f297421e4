package cpu

import (
	"math"

	"github.com/rerank-go/rerank/backend"
)

// Tiled attention (backend.Attn.Tiled): each (sequence, head) task walks
// blocks of at most tileQ queries × tileK keys. The forward pass keeps a
// running maximum m and sum l per query row (an online softmax) and an
// accumulator of the output rows, rescaled whenever m grows, so no block
// outlives its step; it keeps each row's log-sum-exp, m + log l, in save.
// The backward pass recomputes each block's probabilities from its scores
// and that log-sum-exp (FlashAttention-2's backward), with
// D = rowsum(dctx ⊙ ctx) standing for rowsum(P ⊙ dP): memory per task is
// a few blocks whatever the length, against S² values per head untiled.
//
// Products run single-threaded (sgemm) inside a task, as in attention.go;
// the elementwise steps take the C kernels (rr_attn_tile_*) where they
// exist and their Go twins below otherwise.

// The default block lengths, the fastest of 64-256 × 256-512 on this
// machine's Zen 4 cores (BenchmarkAttentionTiling): a block of scores is
// 256 KiB and stays in the L2 cache with the rows it meets.
const (
	tileQ = 256
	tileK = 256
)

// tiles returns the query and key block lengths of a.
func tiles(a backend.Attn) (bq, bk int) {
	if a.Tile > 0 {
		return a.Tile, a.Tile
	}
	return tileQ, tileK
}

// tiledSaveLen is what tiled attention keeps: one log-sum-exp per query
// row, [N, Heads, S].
func tiledSaveLen(a backend.Attn) int { return a.N * a.Heads * a.S }

// attentionTiled is Attention for a.Tiled.
func (b *Backend) attentionTiled(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	p := b.lock()
	defer p.unlock()
	op := p.attnSetup(a, mask)
	op.qkv, op.ctx, op.save = f(qkv), f(ctx), f(save)
	bq, bk := tiles(a)
	p.forTasks(a.N*a.Heads, bq*bk+bq*a.HeadDim+2*bq+bk, func(t *task, scratch []float32, i int) {
		op := &t.attn
		a := &op.a
		S, d, H := a.S, a.HeadDim, a.H()
		ld := 3 * H
		n, h := i/a.Heads, i%a.Heads
		base := n * S * ld
		hd := headArgs{S: S, L: op.lens[n], d: d, ld: ld, ldc: H, scale: op.scale, pd: a.Dropout, seed: a.Seed, base: uint64(i * S * S)}
		x := op.qkv
		tiledFwd(&hd, a, x[base+h*d:], x[base+H+h*d:], x[base+2*H+h*d:], op.ctx[n*S*H+h*d:], op.save[i*S:i*S+S], op.madd[n*S:n*S+S], scratch)
	})
}

// attentionBackwardTiled is AttentionBackward for a.Tiled.
func (b *Backend) attentionBackwardTiled(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf) {
	p := b.lock()
	defer p.unlock()
	op := p.attnSetup(a, mask)
	op.qkv, op.ctx, op.g, op.save, op.dqkv = f(qkv), f(ctx), f(dctx), f(save), f(dqkv)
	bq, bk := tiles(a)
	p.forTasks(a.N*a.Heads, 3*bq*bk+a.S+bk, func(t *task, scratch []float32, i int) {
		op := &t.attn
		a := &op.a
		S, d, H := a.S, a.HeadDim, a.H()
		ld := 3 * H
		n, h := i/a.Heads, i%a.Heads
		base := n * S * ld
		hd := headArgs{S: S, L: op.lens[n], d: d, ld: ld, ldc: H, scale: op.scale, pd: a.Dropout, seed: a.Seed, base: uint64(i * S * S)}
		x, dx := op.qkv, op.dqkv
		o := n*S*H + h*d
		tiledBwd(&hd, a, x[base+h*d:], x[base+H+h*d:], x[base+2*H+h*d:], op.ctx[o:], op.g[o:],
			dx[base+h*d:], dx[base+H+h*d:], dx[base+2*H+h*d:], op.save[i*S:i*S+S], op.madd[n*S:n*S+S], scratch)
	})
}

// tiledFwd computes one (sequence, head): ctx (leading dimension h.ldc)
// and the rows' log-sum-exp lse, from q, k, v (leading dimension h.ld).
func tiledFwd(h *headArgs, a *backend.Attn, q, k, v, ctx, lse, madd, scratch []float32) {
	S, L, d, ld := h.S, h.L, h.d, h.ld
	bq, bk := tiles(*a)
	s, acc := scratch[:bq*bk], scratch[bq*bk:bq*bk+bq*d]
	rest := scratch[bq*bk+bq*d:]
	m, l, zeros := rest[:bq], rest[bq:2*bq], rest[2*bq:2*bq+bk]
	uniform := L == 0
	if uniform {
		// Every key is padding: Hugging Face's additive mask makes each row
		// uniform over all S keys, as scores that are all zero do.
		L = S
		clear(zeros)
	}
	for i0 := 0; i0 < S; i0 += bq {
		rows := min(bq, S-i0)
		for r := 0; r < rows; r++ {
			m[r], l[r] = float32(math.Inf(-1)), 0
		}
		clear(acc[:rows*d])
		for j0 := 0; j0 < L; j0 += bk {
			cols := min(bk, L-j0)
			mk := madd[j0 : j0+cols]
			if uniform {
				clear(s[:rows*bk])
				mk = zeros[:cols]
			} else {
				sgemm(false, true, rows, cols, d, h.scale, q[i0*ld:], ld, k[j0*ld:], ld, 0, s, bk)
			}
			t := tileArgs{ld: bk, rows: rows, cols: cols, S: S, pd: h.pd, seed: h.seed, base: h.base + uint64(i0*S+j0)}
			if haveC {
				cTileFwd(&t, s, mk, m, l, acc, d, d)
			} else {
				goTileFwd(&t, s, mk, m, l, acc, d, d)
			}
			sgemm(false, false, rows, d, cols, 1, s, bk, v[j0*ld:], ld, 1, acc, d)
		}
		for r := 0; r < rows; r++ {
			inv := 1 / l[r]
			out, in := ctx[(i0+r)*h.ldc:(i0+r)*h.ldc+d], acc[r*d:r*d+d]
			for c := range out {
				out[c] = in[c] * inv
			}
			lse[i0+r] = m[r] + float32(math.Log(float64(l[r])))
		}
	}
}

// tiledBwd sets dq, dk, dv (leading dimension h.ld) of one (sequence,
// head) from the output ctx, its gradient g (leading dimension h.ldc) and
// the rows' log-sum-exp.
func tiledBwd(h *headArgs, a *backend.Attn, q, k, v, ctx, g, dq, dk, dv, lse, madd, scratch []float32) {
	S, L, d, ld, ldg := h.S, h.L, h.d, h.ld, h.ldc
	bq, bk := tiles(*a)
	p, pv, dp := scratch[:bq*bk], scratch[bq*bk:2*bq*bk], scratch[2*bq*bk:3*bq*bk]
	D, zeros := scratch[3*bq*bk:3*bq*bk+S], scratch[3*bq*bk+S:3*bq*bk+S+bk]
	uniform := L == 0
	if uniform {
		L = S
		clear(zeros)
	}
	if h.pd == 0 {
		pv = p
	}
	// D = rowsum(P' ⊙ dP') = g·ctx per row (ctx = P'·V).
	for r := 0; r < S; r++ {
		gr, cr := g[r*ldg:r*ldg+d], ctx[r*ldg:r*ldg+d]
		var dot float32
		for c := range gr {
			dot += gr[c] * cr[c]
		}
		D[r] = dot
	}
	zeroRows(dq, ld, 0, S, d)
	zeroRows(dk, ld, 0, S, d)
	zeroRows(dv, ld, 0, S, d)
	for i0 := 0; i0 < S; i0 += bq {
		rows := min(bq, S-i0)
		for j0 := 0; j0 < L; j0 += bk {
			cols := min(bk, L-j0)
			mk := madd[j0 : j0+cols]
			if uniform {
				clear(p[:rows*bk])
				mk = zeros[:cols]
			} else {
				sgemm(false, true, rows, cols, d, h.scale, q[i0*ld:], ld, k[j0*ld:], ld, 0, p, bk)
			}
			t := tileArgs{ld: bk, rows: rows, cols: cols, S: S, pd: h.pd, seed: h.seed, base: h.base + uint64(i0*S+j0)}
			if haveC {
				cTileP(&t, p, pv, mk, lse[i0:])
			} else {
				goTileP(&t, p, pv, mk, lse[i0:])
			}
			// dV += P'ᵀ·g; dP' = g·Vᵀ; dS = P'⊙dP' − P·D; dQ += dS·K·scale;
			// dK += dSᵀ·Q·scale.
			sgemm(true, false, cols, d, rows, 1, pv, bk, g[i0*ldg:], ldg, 1, dv[j0*ld:], ld)
			sgemm(false, true, rows, cols, d, 1, g[i0*ldg:], ldg, v[j0*ld:], ld, 0, dp, bk)
			if haveC {
				cTileDS(&t, dp, p, pv, D[i0:])
			} else {
				goTileDS(&t, dp, p, pv, D[i0:])
			}
			sgemm(false, false, rows, d, cols, h.scale, dp, bk, k[j0*ld:], ld, 1, dq[i0*ld:], ld)
			sgemm(true, false, cols, d, rows, h.scale, dp, bk, q[i0*ld:], ld, 1, dk[j0*ld:], ld)
		}
	}
}

// goTileFwd is the pure-Go twin of rr_attn_tile_fwd.
func goTileFwd(t *tileArgs, s, madd, m, l, acc []float32, ldacc, d int) {
	ninf := float32(math.Inf(-1))
	for i := 0; i < t.rows; i++ {
		row := s[i*t.ld : i*t.ld+t.cols]
		mx := ninf
		for j := range row {
			row[j] += madd[j]
			mx = max(mx, row[j])
		}
		mo := m[i]
		mn := max(mo, mx)
		if mn == ninf {
			clear(row)
			continue
		}
		alpha := float32(0)
		if mo != ninf {
			alpha = float32(math.Exp(float64(mo - mn)))
		}
		var sum float32
		for j, x := range row {
			e := float32(0)
			if x != ninf {
				e = float32(math.Exp(float64(x - mn)))
			}
			row[j] = e
			sum += e
		}
		l[i] = l[i]*alpha + sum
		m[i] = mn
		if alpha != 1 {
			a := acc[i*ldacc : i*ldacc+d]
			for c := range a {
				a[c] *= alpha
			}
		}
		if t.pd > 0 {
			dropRow(row, row, t.pd, t.seed, t.base+uint64(i*t.S))
		}
	}
}

// goTileP is the pure-Go twin of rr_attn_tile_p.
func goTileP(t *tileArgs, s, pv, madd, lse []float32) {
	for i := 0; i < t.rows; i++ {
		row := s[i*t.ld : i*t.ld+t.cols]
		for j := range row {
			x := row[j] + madd[j]
			if math.IsInf(float64(x), -1) {
				row[j] = 0
				continue
			}
			row[j] = float32(math.Exp(float64(x - lse[i])))
		}
		if t.pd > 0 {
			dropRow(pv[i*t.ld:i*t.ld+t.cols], row, t.pd, t.seed, t.base+uint64(i*t.S))
		}
	}
}

// goTileDS is the pure-Go twin of rr_attn_tile_ds.
func goTileDS(t *tileArgs, dp, p, pv, D []float32) {
	for i := 0; i < t.rows; i++ {
		o := i * t.ld
		for j := 0; j < t.cols; j++ {
			dp[o+j] = pv[o+j]*dp[o+j] - p[o+j]*D[i]
		}
	}
}

// dropRow sets out[j] = keep ? x[j]/(1−pd) : 0 with element j's mask
// drawn at index base + j; out may alias x.
func dropRow(out, x []float32, pd float32, seed, base uint64) {
	scale := 1 / (1 - pd)
	for j := range x {
		if backend.Keep(seed, base+uint64(j), pd) {
			out[j] = x[j] * scale
		} else {
			out[j] = 0
		}
	}
}
