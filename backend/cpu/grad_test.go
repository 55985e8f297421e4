package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
)

// Every backward op is checked against central finite differences of a
// float64 reference forward: for a scalar L = Σ w·out with random w, the
// op's backward fed dout = w must give dL/dinput.

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func to64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

// fdGrad returns dL/dx by central differences of the float64 function L.
func fdGrad(x []float64, L func([]float64) float64) []float64 {
	g := make([]float64, len(x))
	const h = 1e-6
	for i := range x {
		old := x[i]
		x[i] = old + h
		up := L(x)
		x[i] = old - h
		down := L(x)
		x[i] = old
		g[i] = (up - down) / (2 * h)
	}
	return g
}

func dot(w []float32, v []float64) float64 {
	s := 0.0
	for i := range v {
		s += float64(w[i]) * v[i]
	}
	return s
}

func assertGrad(t *testing.T, name string, want []float64, got []float32, tol float64) {
	t.Helper()
	require.Len(t, got, len(want), name)
	worst := 0.0
	for i := range want {
		d := math.Abs(want[i]-float64(got[i])) / math.Max(1, math.Abs(want[i]))
		worst = math.Max(worst, d)
	}
	assert.LessOrEqualf(t, worst, tol, "%s: max relative error %.3g", name, worst)
}

func refLayerNorm(x, g, b []float64, rows, dim int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := x[r*dim : r*dim+dim]
		m, v := 0.0, 0.0
		for _, a := range row {
			m += a
		}
		m /= float64(dim)
		for _, a := range row {
			v += (a - m) * (a - m)
		}
		v /= float64(dim)
		for c, a := range row {
			out[r*dim+c] = (a-m)/math.Sqrt(v+eps)*g[c] + b[c]
		}
	}
	return out
}

func TestLayerNormBackward(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rows, dim int
		eps       float32
	}{{"bert eps", 3, 8, 1e-12}, {"xlmr eps", 5, 16, 1e-5}, {"wide", 2, 48, 1e-12}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.dim)))
			be := New()
			n := tc.rows * tc.dim
			x, g, b, w := randVec(r, n, 1), randVec(r, tc.dim, 1), randVec(r, tc.dim, 1), randVec(r, n, 1)
			out, mean, rstd := make(F32, n), make(F32, tc.rows), make(F32, tc.rows)
			be.LayerNorm(out, mean, rstd, F32(x), F32(g), F32(b), tc.rows, tc.dim, tc.eps)
			assertGrad(t, "forward", refLayerNorm(to64(x), to64(g), to64(b), tc.rows, tc.dim, float64(tc.eps)), out, 1e-5)

			dx, dg, db := make(F32, n), make(F32, tc.dim), make(F32, tc.dim)
			be.LayerNormBackward(dx, dg, db, F32(w), F32(x), mean, rstd, F32(g), tc.rows, tc.dim)
			x64, g64, b64 := to64(x), to64(g), to64(b)
			eps := float64(tc.eps)
			assertGrad(t, "dx", fdGrad(x64, func(v []float64) float64 { return dot(w, refLayerNorm(v, g64, b64, tc.rows, tc.dim, eps)) }), dx, 1e-4)
			assertGrad(t, "dgamma", fdGrad(g64, func(v []float64) float64 { return dot(w, refLayerNorm(x64, v, b64, tc.rows, tc.dim, eps)) }), dg, 1e-4)
			assertGrad(t, "dbeta", fdGrad(b64, func(v []float64) float64 { return dot(w, refLayerNorm(x64, g64, v, tc.rows, tc.dim, eps)) }), db, 1e-4)
		})
	}
}

func TestElementwiseBackward(t *testing.T) {
	gelu := func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	for _, tc := range []struct {
		name string
		ref  func(float64) float64
		fwd  func(be *Backend, out, x F32)
		bwd  func(be *Backend, dx, dout, x, y F32)
	}{
		{"gelu", gelu,
			func(be *Backend, out, x F32) { be.Gelu(out, x) },
			func(be *Backend, dx, dout, x, _ F32) { be.GeluBackward(dx, dout, x) }},
		{"tanh", math.Tanh,
			func(be *Backend, out, x F32) { be.Tanh(out, x) },
			func(be *Backend, dx, dout, _, y F32) { be.TanhBackward(dx, dout, y) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(2, 3))
			be := New()
			x, w := randVec(r, 257, 2), randVec(r, 257, 1)
			y := make(F32, len(x))
			tc.fwd(be, y, F32(x))
			ref := func(v []float64) []float64 {
				o := make([]float64, len(v))
				for i, a := range v {
					o[i] = tc.ref(a)
				}
				return o
			}
			assertGrad(t, "forward", ref(to64(x)), y, 1e-6)
			dx := make(F32, len(x))
			tc.bwd(be, dx, F32(w), F32(x), y)
			assertGrad(t, "dx", fdGrad(to64(x), func(v []float64) float64 { return dot(w, ref(v)) }), dx, 1e-5)
		})
	}
}

func TestDropoutBackwardMatchesMask(t *testing.T) {
	be := New()
	r := rand.New(rand.NewPCG(4, 5))
	x := randVec(r, 10000, 1)
	out, dx := make(F32, len(x)), make(F32, len(x))
	be.Dropout(out, F32(x), 0.1, 42)
	ones := make(F32, len(x))
	be.Fill(ones, 1)
	be.DropoutBackward(dx, ones, 0.1, 42)
	dropped := 0
	for i := range x {
		if out[i] == 0 {
			dropped++
			assert.Zero(t, dx[i])
		} else {
			assert.InDelta(t, x[i]/0.9, out[i], 1e-6)
			assert.InDelta(t, 1/0.9, dx[i], 1e-6)
		}
	}
	assert.InDelta(t, 1000, dropped, 120, "about 10%% dropped")
}

// refAttention is the float64 reference: per sequence and head,
// softmax(QKᵀ/√d + mask)·V, with dropout on the probabilities.
func refAttention(a backend.Attn, qkv []float64, mask []int32) []float64 {
	S, d, H := a.S, a.HeadDim, a.H()
	ctx := make([]float64, a.N*S*H)
	for n := 0; n < a.N; n++ {
		for h := 0; h < a.Heads; h++ {
			for i := 0; i < S; i++ {
				p := make([]float64, S)
				mx := math.Inf(-1)
				for j := 0; j < S; j++ {
					if mask[n*S+j] == 0 {
						continue
					}
					s := 0.0
					for c := 0; c < d; c++ {
						s += qkv[(n*S+i)*3*H+h*d+c] * qkv[(n*S+j)*3*H+H+h*d+c]
					}
					p[j] = s / math.Sqrt(float64(d))
					mx = math.Max(mx, p[j])
				}
				sum := 0.0
				for j := range p {
					if mask[n*S+j] == 0 {
						p[j] = 0
						continue
					}
					p[j] = math.Exp(p[j] - mx)
					sum += p[j]
				}
				for j := range p {
					p[j] /= sum
					if a.Dropout > 0 {
						idx := uint64(((n*a.Heads+h)*S+i)*S + j)
						if backend.Keep(a.Seed, idx, a.Dropout) {
							p[j] /= 1 - float64(a.Dropout)
						} else {
							p[j] = 0
						}
					}
				}
				for c := 0; c < d; c++ {
					s := 0.0
					for j := 0; j < S; j++ {
						s += p[j] * qkv[(n*S+j)*3*H+2*H+h*d+c]
					}
					ctx[(n*S+i)*H+h*d+c] = s
				}
			}
		}
	}
	return ctx
}

func TestAttentionBackward(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    backend.Attn
		lens []int
	}{
		{"no padding", backend.Attn{N: 1, S: 5, Heads: 2, HeadDim: 4}, []int{5}},
		{"padding", backend.Attn{N: 2, S: 6, Heads: 3, HeadDim: 2}, []int{6, 3}},
		{"dropout", backend.Attn{N: 2, S: 4, Heads: 2, HeadDim: 3, Dropout: 0.3, Seed: 99}, []int{4, 2}},
		// Blocks of 2 queries × 2 keys: several per head, one cut short.
		{"tiled padding", backend.Attn{N: 2, S: 5, Heads: 2, HeadDim: 3, Tiled: true, Tile: 2}, []int{5, 3}},
		{"tiled dropout", backend.Attn{N: 2, S: 5, Heads: 2, HeadDim: 3, Dropout: 0.3, Seed: 99, Tiled: true, Tile: 2}, []int{5, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			r := rand.New(rand.NewPCG(6, uint64(a.S)))
			be := New()
			T, H := a.N*a.S, a.H()
			qkv, w := randVec(r, T*3*H, 1), randVec(r, T*H, 1)
			mask := make(I32, T)
			for n, l := range tc.lens {
				for s := 0; s < l; s++ {
					mask[n*a.S+s] = 1
				}
			}
			ctx, save := make(F32, T*H), make(F32, be.AttentionSaveLen(a))
			be.Attention(a, F32(qkv), mask, ctx, save)
			assertGrad(t, "forward", refAttention(a, to64(qkv), mask), ctx, 1e-5)
			dqkv := make(F32, T*3*H)
			for i := range dqkv {
				dqkv[i] = float32(math.NaN()) // every element must be written
			}
			be.AttentionBackward(a, F32(qkv), mask, ctx, F32(w), save, dqkv)
			want := fdGrad(to64(qkv), func(v []float64) float64 { return dot(w, refAttention(a, v, mask)) })
			assertGrad(t, "dqkv", want, dqkv, 1e-4)
		})
	}
}

func TestEmbedBackwardSkipsPadding(t *testing.T) {
	be := New()
	table := make(F32, 4*3)
	dout := F32{1, 1, 1, 2, 2, 2, 3, 3, 3}
	be.EmbedBackward(table, dout, I32{1, 0, 1}, 3, 0)
	assert.Equal(t, F32{0, 0, 0, 4, 4, 4, 0, 0, 0, 0, 0, 0}, table)
	out := make(F32, 6)
	be.Embed(out, F32{0, 0, 1, 2, 3, 4}, I32{2, 1}, 2, false)
	be.Embed(out, F32{10, 10, 20, 20, 30, 30}, I32{0, 0}, 2, true)
	assert.Equal(t, F32{13, 14, 11, 12}, out[:4])
}

// refGemm returns op(A)·op(B) in float64 and, per element, the same sum
// over absolute values (the scale of its rounding error).
func refGemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int) (c, abs []float64) {
	c, abs = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s, sa := 0.0, 0.0
			for p := 0; p < k; p++ {
				var av, bv float32
				if ta {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tb {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				sa += math.Abs(float64(av) * float64(bv))
			}
			c[i*n+j], abs[i*n+j] = s, sa
		}
	}
	return c, abs
}

func TestGemmTransposes(t *testing.T) {
	be := New()
	r := rand.New(rand.NewPCG(7, 8))
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			m, n, k := 7, 5, 9
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			a, b := randVec(r, m*k, 1), randVec(r, k*n, 1)
			c := F32(randVec(r, m*n, 1))
			c0 := append(F32(nil), c...)
			be.Gemm(ta, tb, m, n, k, 0.5, F32(a), lda, F32(b), ldb, 2, c, n)
			want, _ := refGemm(ta, tb, m, n, k, a, lda, b, ldb)
			for i := range want {
				want[i] = 0.5*want[i] + 2*float64(c0[i])
			}
			assertGrad(t, "gemm", want, c, 1e-5)
			goC := append(F32(nil), c0...)
			goGemm(ta, tb, 0, m, n, k, 0.5, a, lda, b, ldb, 2, goC, n)
			assertGrad(t, "pure-Go gemm", want, goC, 1e-5)
		}
	}
}

func TestBiasGradAndAdamW(t *testing.T) {
	be := New()
	db := F32{1, 1}
	be.BiasGrad(db, F32{1, 2, 3, 4, 5, 6}, 3, 2)
	assert.Equal(t, F32{10, 13}, db)

	// One torch.optim.AdamW step from m = v = 0: p ← p(1−lr·wd) − lr·g/(|g|+eps·…).
	p, g, m, v := F32{1, -2}, F32{0.5, -0.25}, make(F32, 2), make(F32, 2)
	be.AdamW(p, g, m, v, backend.AdamWStep{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1})
	assert.InDelta(t, 1*(1-1e-5)-1e-3, p[0], 1e-7)
	assert.InDelta(t, -2*(1-1e-5)+1e-3, p[1], 1e-7)
}
