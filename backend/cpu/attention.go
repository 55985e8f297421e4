package cpu

import (
	"math"

	"github.com/rerank-go/rerank/backend"
)

// AttentionSaveLen implements backend.Backend: the CPU backend keeps the
// softmax probabilities, [N, Heads, S, S] (before dropout).
func (*Backend) AttentionSaveLen(a backend.Attn) int { return a.N * a.Heads * a.S * a.S }

// Probabilities returns the attention probabilities kept in save by
// Attention, laid out [N, Heads, S, S]. It exists for tests and tools that
// inspect attention maps; it is specific to the CPU backend.
func Probabilities(save backend.Buf) []float32 { return f(save) }

// Attention implements backend.Backend.
func (b *Backend) Attention(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, save backend.Buf) {
	S, d, H := a.S, a.HeadDim, a.H()
	ld := 3 * H
	x, m, out, probs := f(qkv), ints(mask), f(ctx), f(save)
	scale := float32(1 / math.Sqrt(float64(d)))
	var drop []float32
	if a.Dropout > 0 {
		drop = make([]float32, S*S)
	}
	for n := 0; n < a.N; n++ {
		base := n * S * ld
		msk := m[n*S : n*S+S]
		for h := 0; h < a.Heads; h++ {
			off := ((n*a.Heads + h) * S * S)
			p := probs[off : off+S*S]
			q := x[base+h*d:]
			k := x[base+H+h*d:]
			v := x[base+2*H+h*d:]
			sgemm(false, true, S, S, d, scale, q, ld, k, ld, 0, p, S)
			maskedSoftmax(p, msk, S)
			pv := p
			if drop != nil {
				for i := range drop {
					if backend.Keep(a.Seed, uint64(off+i), a.Dropout) {
						drop[i] = p[i] / (1 - a.Dropout)
					} else {
						drop[i] = 0
					}
				}
				pv = drop
			}
			sgemm(false, false, S, d, S, 1, pv, S, v, ld, 0, out[n*S*H+h*d:], H)
		}
	}
}

// maskedSoftmax applies the key padding mask and a softmax to each row of
// the S×S score matrix p, in place. Masked keys get exactly 0; a row
// whose keys are all masked becomes uniform, as Hugging Face's additive
// float32-minimum mask gives.
func maskedSoftmax(p []float32, mask []int32, S int) {
	for i := 0; i < S; i++ {
		row := p[i*S : i*S+S]
		mx := float32(math.Inf(-1))
		for j, v := range row {
			if mask[j] != 0 && v > mx {
				mx = v
			}
		}
		if math.IsInf(float64(mx), -1) {
			for j := range row {
				row[j] = 1 / float32(S)
			}
			continue
		}
		var sum float64
		for j, v := range row {
			if mask[j] == 0 {
				row[j] = 0
				continue
			}
			e := float32(math.Exp(float64(v - mx)))
			row[j] = e
			sum += float64(e)
		}
		inv := float32(1 / sum)
		for j := range row {
			row[j] *= inv
		}
	}
}

// AttentionBackward implements backend.Backend.
func (b *Backend) AttentionBackward(a backend.Attn, qkv backend.Buf, mask backend.IntBuf, ctx, dctx, save, dqkv backend.Buf) {
	S, d, H := a.S, a.HeadDim, a.H()
	ld := 3 * H
	x, dx, dc, probs := f(qkv), f(dqkv), f(dctx), f(save)
	scale := float32(1 / math.Sqrt(float64(d)))
	dp := make([]float32, S*S)
	var drop []float32
	var keep []bool
	if a.Dropout > 0 {
		drop = make([]float32, S*S)
		keep = make([]bool, S*S)
	}
	for n := 0; n < a.N; n++ {
		base := n * S * ld
		for h := 0; h < a.Heads; h++ {
			off := (n*a.Heads + h) * S * S
			p := probs[off : off+S*S]
			q, k, v := x[base+h*d:], x[base+H+h*d:], x[base+2*H+h*d:]
			dq, dk, dv := dx[base+h*d:], dx[base+H+h*d:], dx[base+2*H+h*d:]
			g := dc[n*S*H+h*d:]
			pv := p
			if drop != nil {
				inv := 1 / (1 - a.Dropout)
				for i := range drop {
					keep[i] = backend.Keep(a.Seed, uint64(off+i), a.Dropout)
					if keep[i] {
						drop[i] = p[i] * inv
					} else {
						drop[i] = 0
					}
				}
				pv = drop
			}
			// dV = P'ᵀ·dctx, dP' = dctx·Vᵀ.
			sgemm(true, false, S, d, S, 1, pv, S, g, H, 0, dv, ld)
			sgemm(false, true, S, S, d, 1, g, H, v, ld, 0, dp, S)
			if drop != nil {
				for i := range dp {
					if !keep[i] {
						dp[i] = 0
					} else {
						dp[i] /= 1 - a.Dropout
					}
				}
			}
			// Softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)).
			for i := 0; i < S; i++ {
				pr, dr := p[i*S:i*S+S], dp[i*S:i*S+S]
				var dot float64
				for j := range pr {
					dot += float64(pr[j] * dr[j])
				}
				for j := range pr {
					dr[j] = pr[j] * (dr[j] - float32(dot))
				}
			}
			sgemm(false, false, S, d, S, scale, dp, S, k, ld, 0, dq, ld)
			sgemm(true, false, S, d, S, scale, dp, S, q, ld, 0, dk, ld)
		}
	}
}
