package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
)

// attnRoutes are the ways attention runs in this build: its default (the
// C kernels where they exist) and, with them, the pure-Go twins
// (kernels_c_test.go adds that route).
var attnRoutes = []struct {
	name string
	run  func(func())
}{{"default", func(fn func()) { fn() }}}

// relErr is the largest |a-b| / max(1, |b|).
func relErr(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / math.Max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	return worst
}

// TestTiledAttentionMatchesStored holds tiled attention to the untiled
// kernels on the same inputs: outputs and input gradients to float
// rounding, dropout masks included, and the log-sum-exp it keeps to the
// stored probabilities (exp(score − lse) sums to 1 over each row's keys).
func TestTiledAttentionMatchesStored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		a     backend.Attn
		lens  []int
		holes bool // padding inside the sequences too
	}{
		{"one block", backend.Attn{N: 2, S: 19, Heads: 2, HeadDim: 8}, []int{19, 7}, false},
		{"blocks cut short", backend.Attn{N: 2, S: 19, Heads: 2, HeadDim: 8, Tile: 4}, []int{19, 7}, false},
		{"holes and all padding", backend.Attn{N: 3, S: 23, Heads: 2, HeadDim: 5, Tile: 3}, []int{23, 11, 0}, true},
		{"a block of padding first", backend.Attn{N: 1, S: 12, Heads: 1, HeadDim: 4, Tile: 2}, []int{12}, true},
		{"dropout", backend.Attn{N: 2, S: 40, Heads: 3, HeadDim: 16, Dropout: 0.25, Seed: 11, Tile: 16}, []int{40, 29}, true},
		{"default blocks", backend.Attn{N: 1, S: 600, Heads: 2, HeadDim: 64, Dropout: 0.1, Seed: 2}, []int{550}, false},
	} {
		for _, route := range attnRoutes {
			t.Run(tc.name+"/"+route.name, func(t *testing.T) {
				a := tc.a
				r := rand.New(rand.NewPCG(3, uint64(a.S)))
				T, H := a.N*a.S, a.H()
				qkv, g := F32(randVec(r, T*3*H, 1)), F32(randVec(r, T*H, 1))
				mask := make(I32, T)
				for n, l := range tc.lens {
					for s := 0; s < l; s++ {
						if !tc.holes || s%4 != 1 {
							mask[n*a.S+s] = 1
						}
					}
				}
				if tc.name == "a block of padding first" {
					mask[0], mask[1], mask[2], mask[3] = 0, 0, 0, 0
				}
				be := New()
				run := func(a backend.Attn) (ctx, save, dqkv F32) {
					ctx, save, dqkv = make(F32, T*H), make(F32, be.AttentionSaveLen(a)), make(F32, T*3*H)
					for i := range dqkv {
						dqkv[i] = float32(math.NaN()) // every element must be written
					}
					route.run(func() {
						be.Attention(a, qkv, mask, ctx, save)
						be.AttentionBackward(a, qkv, mask, ctx, g, save, dqkv)
					})
					return ctx, save, dqkv
				}
				ctx0, probs, dqkv0 := run(a)
				tiled := a
				tiled.Tiled = true
				require.Equal(t, a.N*a.Heads*a.S, be.AttentionSaveLen(tiled))
				ctx1, lse, dqkv1 := run(tiled)
				assert.LessOrEqual(t, relErr(ctx1, ctx0), 2e-6, "ctx")
				assert.LessOrEqual(t, relErr(dqkv1, dqkv0), 5e-6, "dqkv")
				// The stored probabilities are exp(score − lse): check one
				// row per head through its largest probability's score.
				S, d := a.S, a.HeadDim
				for i := 0; i < a.N*a.Heads; i++ {
					n, h := i/a.Heads, i%a.Heads
					if tc.lens[n] == 0 {
						assert.InDelta(t, math.Log(float64(S)), lse[i*S], 1e-5, "uniform rows")
						continue
					}
					row := probs[i*S*S : i*S*S+S]
					j := 0
					for k := range row {
						if row[k] > row[j] {
							j = k
						}
					}
					var sc float64
					for c := 0; c < d; c++ {
						sc += float64(qkv[(n*S)*3*H+h*d+c]) * float64(qkv[(n*S+j)*3*H+H+h*d+c])
					}
					sc /= math.Sqrt(float64(d))
					assert.InDelta(t, math.Log(float64(row[j])), sc-float64(lse[i*S]), 1e-5, "lse of head %d", i)
				}
			})
		}
	}
}

// BenchmarkAttentionTiling times one layer's attention forward and
// backward (16 heads of 64, no dropout) stored and tiled, on one core;
// ns/score is per query-key pair.
func BenchmarkAttentionTiling(b *testing.B) {
	for _, sh := range []struct{ n, s int }{{8, 128}, {2, 512}, {1, 2048}} {
		for _, tiled := range []bool{false, true} {
			a := backend.Attn{N: sh.n, S: sh.s, Heads: 16, HeadDim: 64, Tiled: tiled}
			T, H := a.N*a.S, a.H()
			r := rand.New(rand.NewPCG(6, 6))
			qkv, g := F32(randVec(r, T*3*H, 1)), F32(randVec(r, T*H, 1))
			mask := make(I32, T)
			for i := range mask {
				mask[i] = 1
			}
			be := NewWorkers(1)
			ctx, save, dqkv := make(F32, T*H), make(F32, be.AttentionSaveLen(a)), make(F32, T*3*H)
			name := map[bool]string{false: "stored", true: "tiled"}[tiled]
			per := float64(a.N * a.Heads * a.S * a.S)
			b.Run(fmt.Sprintf("S=%d/%s/fwd", sh.s, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					be.Attention(a, qkv, mask, ctx, save)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/per, "ns/score")
			})
			b.Run(fmt.Sprintf("S=%d/%s/bwd", sh.s, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					be.AttentionBackward(a, qkv, mask, ctx, g, save, dqkv)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/per, "ns/score")
			})
		}
	}
}
