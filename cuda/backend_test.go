//go:build cuda

package cuda

// Every operation of the CUDA backend against the CPU backend, in the
// manner of ggml's test-backend-ops: fresh random inputs for every case,
// outputs poisoned with NaN before the call (so every element must be
// written), and the norm-wise relative error ‖gpu − cpu‖/‖cpu‖ held under
// 1e-5 for fp32 and 1e-2 for bf16.
//
// Without a visible GPU the tests skip, unless RERANK_REQUIRE_GPU=1 (set by
// scripts/gpu-check.sh), when they fail. With the extra tag cudaemu they run
// on the CPU emulation of the kernels (make cuda-emu-test), which checks the
// bindings and the SIMT kernels' logic but not the tensor-core path.

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
)

const (
	tolF32  = 1e-5
	tolBF16 = 1e-2
)

func openGPU(t *testing.T, opt Options) *Backend {
	t.Helper()
	g, err := New(opt)
	if err != nil {
		if os.Getenv("RERANK_REQUIRE_GPU") == "1" {
			t.Fatalf("no usable GPU: %v", err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// env pairs a GPU and a CPU backend with one random source.
type env struct {
	t   *testing.T
	g   *Backend
	c   *cpu.Backend
	rng *rand.Rand
}

func newEnv(t *testing.T, g *Backend, seed int64) *env {
	return &env{t: t, g: g, c: cpu.New(), rng: rand.New(rand.NewSource(seed))}
}

func (e *env) randVals(n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = scale * float32(e.rng.NormFloat64())
	}
	return x
}

// pair returns GPU and CPU buffers holding the same values.
func (e *env) pair(vals []float32) (backend.Buf, backend.Buf) {
	e.t.Helper()
	gb, err := e.g.Alloc(len(vals))
	require.NoError(e.t, err)
	e.g.Upload(gb, vals)
	cb, _ := e.c.Alloc(len(vals))
	e.c.Upload(cb, vals)
	return gb, cb
}

func (e *env) rand(n int, scale float32) (backend.Buf, backend.Buf) {
	return e.pair(e.randVals(n, scale))
}

// out returns an output pair: the GPU one filled with NaN, the CPU one with
// zeros, so an element the GPU leaves unwritten fails the comparison.
func (e *env) out(n int) (backend.Buf, backend.Buf) {
	e.t.Helper()
	gb, err := e.g.Alloc(n)
	require.NoError(e.t, err)
	e.g.Fill(gb, float32(math.NaN()))
	cb, _ := e.c.Alloc(n)
	return gb, cb
}

func (e *env) ints(vals []int32) (backend.IntBuf, backend.IntBuf) {
	e.t.Helper()
	gb, err := e.g.AllocInt(len(vals))
	require.NoError(e.t, err)
	e.g.UploadInt(gb, vals)
	cb, _ := e.c.AllocInt(len(vals))
	e.c.UploadInt(cb, vals)
	return gb, cb
}

func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		if math.IsNaN(float64(got[i])) || math.IsInf(float64(got[i]), 0) {
			return math.Inf(1)
		}
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// expect compares a GPU buffer with its CPU counterpart.
func (e *env) expect(what string, gb, cb backend.Buf, tol float64) {
	e.t.Helper()
	require.NoError(e.t, e.g.Sync(), what)
	got := make([]float32, gb.Len())
	e.g.Download(got, gb)
	require.NoError(e.t, e.g.Sync(), what)
	want := make([]float32, cb.Len())
	e.c.Download(want, cb)
	for i, v := range got {
		if math.IsNaN(float64(v)) {
			e.t.Fatalf("%s: element %d of %d left unwritten (NaN)", what, i, len(got))
		}
	}
	r := relErr(got, want)
	assert.LessOrEqual(e.t, r, tol, "%s: relative error %.3g over %.1g", what, r, tol)
}

type opCase struct {
	name string
	bf16 bool
	run  func(e *env, tol float64)
}

func gemmCase(ta, tb bool, m, n, k int, alpha, beta float32, bf16 bool) opCase {
	return opCase{
		name: fmt.Sprintf("gemm/ta=%v,tb=%v,%dx%dx%d,beta=%g,bf16=%v", ta, tb, m, n, k, beta, bf16),
		bf16: bf16,
		run: func(e *env, tol float64) {
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			ga, ca := e.rand(m*k, 1)
			gb, cb := e.rand(k*n, 1)
			var gc, cc backend.Buf
			if beta == 0 {
				gc, cc = e.out(m * n)
			} else {
				gc, cc = e.rand(m*n, 1)
			}
			e.g.Gemm(ta, tb, m, n, k, alpha, ga, lda, gb, ldb, beta, gc, n)
			e.c.Gemm(ta, tb, m, n, k, alpha, ca, lda, cb, ldb, beta, cc, n)
			e.expect("C", gc, cc, tol)
		},
	}
}

// cpuGemmBatched is gemmBatched's reference: batch products on the CPU
// backend, matrix i of A starting at i*strideA, and likewise for B and C.
func cpuGemmBatched(c *cpu.Backend, transA, transB bool, m, n, k int, alpha float32, a backend.Buf, lda, strideA int, b backend.Buf, ldb, strideB int, beta float32, out backend.Buf, ldc, strideC, batch int) {
	tail := func(x backend.Buf, off int) backend.Buf { return x.Slice(off, x.Len()-off) }
	for i := 0; i < batch; i++ {
		c.Gemm(transA, transB, m, n, k, alpha, tail(a, i*strideA), lda, tail(b, i*strideB), ldb, beta, tail(out, i*strideC), ldc)
	}
}

func batchedCase(bf16 bool) opCase {
	return opCase{
		name: fmt.Sprintf("gemm_batched/bf16=%v", bf16),
		bf16: bf16,
		run: func(e *env, tol float64) {
			// Attention-like: 3 sequences, heads side by side in wide rows.
			const batch, S, d, ld = 3, 40, 32, 96
			ga, ca := e.rand(batch*S*ld, 1)
			gc, cc := e.out(batch * S * S)
			e.g.gemmBatched(false, true, S, S, d, 0.25, ga, ld, S*ld, ga.Slice(d, ga.Len()-d), ld, S*ld, 0, gc, S, S*S, batch)
			cpuGemmBatched(e.c, false, true, S, S, d, 0.25, ca, ld, S*ld, ca.Slice(d, ca.Len()-d), ld, S*ld, 0, cc, S, S*S, batch)
			e.expect("scores", gc, cc, tol)
			gd, cd := e.out(batch * S * ld)
			e.g.Fill(gd, 0)
			e.g.gemmBatched(false, false, S, d, S, 1, gc, S, S*S, ga, ld, S*ld, 0, gd, ld, S*ld, batch)
			cpuGemmBatched(e.c, false, false, S, d, S, 1, cc, S, S*S, ca, ld, S*ld, 0, cd, ld, S*ld, batch)
			e.expect("context", gd, cd, tol)
		},
	}
}

func attentionCase(n, s, heads, d int, dropout float32, maskKind string) opCase {
	return attentionCaseP(n, s, heads, d, dropout, maskKind, false)
}

func attentionCaseP(n, s, heads, d int, dropout float32, maskKind string, bf16 bool) opCase {
	return opCase{
		name: fmt.Sprintf("attention/N%d,S%d,h%d,d%d,p%g,%s,bf16=%v", n, s, heads, d, dropout, maskKind, bf16),
		bf16: bf16,
		run: func(e *env, tol float64) {
			a := backend.Attn{N: n, S: s, Heads: heads, HeadDim: d, Dropout: dropout, Seed: e.rng.Uint64()}
			H := a.H()
			mask := make([]int32, n*s)
			for i := 0; i < n; i++ {
				valid := s
				switch maskKind {
				case "padded":
					valid = s - (i*s)/(2*n) - i%3
				case "one-empty":
					if i == n-1 {
						valid = 0
					}
				}
				for j := 0; j < s; j++ {
					if j < valid {
						mask[i*s+j] = 1
					}
				}
			}
			gm, cm := e.ints(mask)
			gq, cq := e.rand(n*s*3*H, 1)
			gctx, cctx := e.out(n * s * H)
			gsave, _ := e.g.Alloc(e.g.AttentionSaveLen(a))
			csave, _ := e.c.Alloc(e.c.AttentionSaveLen(a))
			e.g.Attention(a, gq, gm, gctx, gsave)
			e.c.Attention(a, cq, cm, cctx, csave)
			e.expect("ctx", gctx, cctx, tol)
			gdc, cdc := e.rand(n*s*H, 1)
			gdq, cdq := e.out(n * s * 3 * H)
			e.g.AttentionBackward(a, gq, gm, gctx, gdc, gsave, gdq)
			e.c.AttentionBackward(a, cq, cm, cctx, cdc, csave, cdq)
			e.expect("dqkv", gdq, cdq, tol)
		},
	}
}

func elementwise(name string, n int, run func(b backend.Backend, out, x, y backend.Buf)) opCase {
	return opCase{
		name: name,
		run: func(e *env, tol float64) {
			gx, cx := e.rand(n, 2)
			gy, cy := e.rand(n, 2)
			go_, co := e.out(n)
			run(e.g, go_, gx, gy)
			run(e.c, co, cx, cy)
			e.expect(name, go_, co, tol)
		},
	}
}

func cases() []opCase {
	cs := []opCase{}
	for _, bf := range []bool{false, true} {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			cs = append(cs, gemmCase(tr[0], tr[1], 128, 192, 96, 1, 0, bf)) // tensor-core path in bf16
			cs = append(cs, gemmCase(tr[0], tr[1], 37, 53, 29, 0.5, 0, bf)) // edges, SIMT fallback
			cs = append(cs, gemmCase(tr[0], tr[1], 300, 260, 72, 1, 0.75, bf))
		}
		cs = append(cs, batchedCase(bf))
	}
	if emulated {
		cs = append(cs, gemmCase(false, true, 256, 520, 40, 1, 0, false)) // 128x128 tiles, fewer of them
	} else {
		cs = append(cs, gemmCase(false, true, 512, 1152, 384, 1, 0, false)) // 128x128 tiles
	}

	for _, d := range []int{32, 64, 128} {
		cs = append(cs, attentionCase(3, 77, 2, d, 0, "padded"))
	}
	cs = append(cs,
		attentionCase(2, 64, 4, 64, 0, "full"),
		attentionCase(3, 45, 2, 32, 0, "one-empty"),
		attentionCase(2, 96, 2, 64, 0.1, "padded"),
		attentionCase(2, 33, 1, 128, 0.3, "one-empty"),
		attentionCase(3, 16, 4, 8, 0, "padded"), // tiny golden models
		attentionCase(2, 40, 2, 48, 0.2, "one-empty"),
		attentionCaseP(2, 20, 3, 8, 0, "padded", true), // BF16 mode falls back to fp32 here
		attentionCaseP(3, 77, 2, 64, 0, "padded", true),
		attentionCaseP(2, 96, 2, 32, 0.1, "one-empty", true),
	)

	const n = 3*4096 + 17
	cs = append(cs,
		elementwise("add", n, func(b backend.Backend, o, x, y backend.Buf) { b.Add(o, x, y) }),
		elementwise("add/alias", n, func(b backend.Backend, o, x, y backend.Buf) { b.Copy2D(o, 1, x, 1, n, 1); b.Add(o, o, y) }),
		elementwise("axpy", n, func(b backend.Backend, o, x, y backend.Buf) { b.Copy2D(o, 1, y, 1, n, 1); b.Axpy(-0.3, x, o) }),
		elementwise("scale", n, func(b backend.Backend, o, x, y backend.Buf) { b.Copy2D(o, 1, x, 1, n, 1); b.Scale(o, 1.7) }),
		elementwise("fill", n, func(b backend.Backend, o, x, y backend.Buf) { b.Fill(o, 0.125) }),
		elementwise("copy2d", 60*70, func(b backend.Backend, o, x, y backend.Buf) {
			b.Fill(o, 0)
			b.Copy2D(o, 70, x, 60, 60, 50)
		}),
		elementwise("gelu", n, func(b backend.Backend, o, x, y backend.Buf) { b.Gelu(o, x) }),
		elementwise("gelu/alias", n, func(b backend.Backend, o, x, y backend.Buf) { b.Copy2D(o, 1, x, 1, n, 1); b.Gelu(o, o) }),
		elementwise("gelu_backward", n, func(b backend.Backend, o, x, y backend.Buf) { b.GeluBackward(o, y, x) }),
		elementwise("tanh", n, func(b backend.Backend, o, x, y backend.Buf) { b.Tanh(o, x) }),
		elementwise("tanh_backward", n, func(b backend.Backend, o, x, y backend.Buf) { b.Tanh(x, x); b.TanhBackward(o, y, x) }),
		elementwise("dropout", n, func(b backend.Backend, o, x, y backend.Buf) { b.Dropout(o, x, 0.1, 0xfeed) }),
		elementwise("dropout/p0", n, func(b backend.Backend, o, x, y backend.Buf) { b.Dropout(o, x, 0, 7) }),
		elementwise("dropout_backward", n, func(b backend.Backend, o, x, y backend.Buf) {
			b.Copy2D(o, 1, y, 1, n, 1)
			b.DropoutBackward(o, o, 0.25, backend.SubSeed(42, 3))
		}),
		opCase{name: "add_bias", run: func(e *env, tol float64) {
			const rows, cols = 130, 96
			gy, cy := e.rand(rows*cols, 1)
			gb, cb := e.rand(cols, 1)
			e.g.AddBias(gy, gb, rows, cols)
			e.c.AddBias(cy, cb, rows, cols)
			e.expect("y", gy, cy, tol)
		}},
		opCase{name: "bias_grad", run: func(e *env, tol float64) {
			const rows, cols = 1000, 77
			gy, cy := e.rand(rows*cols, 1)
			gb, cb := e.rand(cols, 1) // accumulates onto existing values
			e.g.BiasGrad(gb, gy, rows, cols)
			e.c.BiasGrad(cb, cy, rows, cols)
			e.expect("db", gb, cb, tol)
		}},
		opCase{name: "embed", run: func(e *env, tol float64) {
			const vocab, dim, count = 50, 24, 300
			ids := make([]int32, count)
			for i := range ids {
				ids[i] = int32(e.rng.Intn(vocab))
			}
			gi, ci := e.ints(ids)
			gt, ct := e.rand(vocab*dim, 1)
			go_, co := e.out(count * dim)
			e.g.Embed(go_, gt, gi, dim, false)
			e.c.Embed(co, ct, ci, dim, false)
			e.expect("out", go_, co, tol)
			gp, cp := e.rand(count*dim, 1)
			e.g.Embed(gp, gt, gi, dim, true)
			e.c.Embed(cp, ct, ci, dim, true)
			e.expect("out+=", gp, cp, tol)
		}},
		opCase{name: "embed_backward", run: func(e *env, tol float64) {
			const vocab, dim, count = 40, 32, 500 // many repeated ids
			ids := make([]int32, count)
			for i := range ids {
				ids[i] = int32(e.rng.Intn(vocab))
			}
			gi, ci := e.ints(ids)
			gd, cd := e.rand(count*dim, 1)
			gt, ct := e.rand(vocab*dim, 1)
			e.g.EmbedBackward(gt, gd, gi, dim, 1)
			e.c.EmbedBackward(ct, cd, ci, dim, 1)
			e.expect("dtable", gt, ct, tol)
		}},
		opCase{name: "layernorm", run: func(e *env, tol float64) {
			const rows, dim = 67, 384
			gx, cx := e.rand(rows*dim, 3)
			gg, cg := e.rand(dim, 1)
			gb, cb := e.rand(dim, 1)
			go_, co := e.out(rows * dim)
			gm, cm := e.out(rows)
			gr, cr := e.out(rows)
			e.g.LayerNorm(go_, gm, gr, gx, gg, gb, rows, dim, 1e-12)
			e.c.LayerNorm(co, cm, cr, cx, cg, cb, rows, dim, 1e-12)
			e.expect("out", go_, co, tol)
			e.expect("mean", gm, cm, tol)
			e.expect("rstd", gr, cr, tol)
			gdo, cdo := e.rand(rows*dim, 1)
			gdx, cdx := e.out(rows * dim)
			gdg, cdg := e.rand(dim, 1)
			gdb, cdb := e.rand(dim, 1)
			e.g.LayerNormBackward(gdx, gdg, gdb, gdo, gx, gm, gr, gg, rows, dim)
			e.c.LayerNormBackward(cdx, cdg, cdb, cdo, cx, cm, cr, cg, rows, dim)
			e.expect("dx", gdx, cdx, tol)
			e.expect("dgamma", gdg, cdg, tol)
			e.expect("dbeta", gdb, cdb, tol)
			// dx aliasing dout, frozen gamma/beta (nil gradients).
			e.g.LayerNormBackward(gdo, nil, nil, gdo, gx, gm, gr, gg, rows, dim)
			e.c.LayerNormBackward(cdo, nil, nil, cdo, cx, cm, cr, cg, rows, dim)
			e.expect("dx/alias", gdo, cdo, tol)
		}},
		opCase{name: "adamw", run: func(e *env, tol float64) {
			const n = 10007
			gp, cp := e.rand(n, 1)
			gm, cm := e.rand(n, 0.1)
			vals := e.randVals(n, 0.1)
			for i := range vals {
				vals[i] *= vals[i]
			}
			gv, cv := e.pair(vals)
			for step := 1; step <= 3; step++ {
				gg, cg := e.rand(n, 0.5)
				s := backend.AdamWStep{LR: 2e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: step}
				e.g.AdamW(gp, gg, gm, gv, s)
				e.c.AdamW(cp, cg, cm, cv, s)
			}
			e.expect("p", gp, cp, tol)
			e.expect("m", gm, cm, tol)
			e.expect("v", gv, cv, tol)
		}},
		opCase{name: "sum_squares", run: func(e *env, tol float64) {
			n := 1<<20 + 3
			if emulated {
				n = 1<<14 + 3
			}
			gx, cx := e.rand(n, 1)
			got, want := e.g.SumSquares(gx), e.c.SumSquares(cx)
			require.NoError(e.t, e.g.Sync())
			assert.InDelta(e.t, want, got, tol*want)
		}},
		opCase{name: "lora_merge", run: func(e *env, tol float64) {
			for _, sh := range [][3]int{{96, 128, 8}, {77, 130, 40}} {
				out, in, r := sh[0], sh[1], sh[2]
				gw, cw := e.rand(out*in, 1)
				ga, ca := e.rand(r*in, 1)
				gb, cb := e.rand(out*r, 1)
				e.g.LoraMerge(gw, ga, gb, out, in, r, 0.5)
				e.c.LoraMerge(cw, ca, cb, out, in, r, 0.5)
				e.expect("merged", gw, cw, tol)
				e.g.LoraMerge(gw, ga, gb, out, in, r, -0.5)
				e.c.LoraMerge(cw, ca, cb, out, in, r, -0.5)
				e.expect("unmerged", gw, cw, tol)
			}
		}},
	)
	return cs
}

func TestOpsAgainstCPU(t *testing.T) {
	g32 := openGPU(t, Options{})
	g16 := openGPU(t, Options{BF16: true})
	for i, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			g, tol := g32, tolF32
			if tc.bf16 {
				g, tol = g16, tolBF16
			}
			tc.run(newEnv(t, g, int64(1000+i)), tol)
		})
	}
}

func TestErrorsAreStickyAndNamed(t *testing.T) {
	g := openGPU(t, Options{})
	tests := []struct {
		name string
		run  func(b *Backend, small backend.Buf)
		want string
	}{
		{"gemm-too-small", func(b *Backend, s backend.Buf) { b.Gemm(false, false, 64, 64, 64, 1, s, 64, s, 64, 0, s, 64) }, "Gemm"},
		{"attention-head-dim", func(b *Backend, s backend.Buf) {
			m, _ := b.AllocInt(4)
			b.Attention(backend.Attn{N: 1, S: 4, Heads: 1, HeadDim: 160}, s, m, s, s)
		}, "Attention"},
		{"layernorm-short", func(b *Backend, s backend.Buf) { b.LayerNorm(s, s, s, s, s, s, 100, 100, 1e-5) }, "LayerNorm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			small, err := g.Alloc(16)
			require.NoError(t, err)
			tc.run(g, small)
			g.Fill(small, 1) // skipped: an error is pending
			err = g.Sync()
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.want), "error %q should name %s", err, tc.want)
			assert.NoError(t, g.Sync(), "Sync clears the reported error")
			got := make([]float32, 16)
			g.Download(got, small)
			require.NoError(t, g.Sync())
			assert.Equal(t, make([]float32, 16), got, "work after the error must be skipped")
		})
	}
}

func TestAllocatorReusesAndZeroes(t *testing.T) {
	g := openGPU(t, Options{})
	tests := []struct {
		name string
		n    int
	}{{"small", 1000}, {"large", 300_000}} // 1.2 MB: past the 1 MiB small-block limit
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := g.Alloc(tc.n)
			require.NoError(t, err)
			g.Fill(a, 5)
			before := g.MemStats().Allocs
			g.Free(a)
			b, err := g.Alloc(tc.n)
			require.NoError(t, err)
			assert.Equal(t, before, g.MemStats().Allocs, "freed block must be reused")
			got := make([]float32, tc.n)
			g.Download(got, b)
			require.NoError(t, g.Sync())
			assert.Equal(t, float32(0), got[0])
			assert.Equal(t, float32(0), got[tc.n-1])
			g.Free(b)
		})
	}
}
