//go:build cgo && !noblas && amd64

package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/rerank-go/rerank/backend"
)

// The benchmarks below time the fused C kernels of kernels_amd64.c on one
// worker, at MiniLM-L6's inference shapes (16 sequences of 128 tokens,
// hidden 384, intermediate 1536, 12 heads of 32), and report ns per
// element so that routes and commits compare directly:
//
//	go test ./backend/cpu -run '^$' -bench 'Gelu|Softmax|AddLayerNorm' -count 5

const benchT, benchH, benchI = 16 * 128, 384, 1536

// BenchmarkGelu times GELU and its backward on a [T, I] activation of
// standard normal values, on each route this CPU has.
func BenchmarkGelu(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	x, g := randVec(r, benchT*benchI, 2), randVec(r, benchT*benchI, 1)
	out := make(F32, len(x))
	be := NewWorkers(1)
	for _, rt := range vecRoutes() {
		b.Run("fwd/"+rt.name, func(b *testing.B) {
			defer rt.use()()
			for i := 0; i < b.N; i++ {
				be.Gelu(out, F32(x))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
		b.Run("bwd/"+rt.name, func(b *testing.B) {
			defer rt.use()()
			for i := 0; i < b.N; i++ {
				be.GeluBackward(out, F32(g), F32(x))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
	}
}

// BenchmarkSoftmax times the forward attention of one MiniLM layer
// (products and softmax) without dropout, on each softmax route; ns/elem
// is per probability. The products are the same on both routes, so the
// difference is the softmax's.
func BenchmarkSoftmax(b *testing.B) {
	a := backend.Attn{N: 16, S: 128, Heads: 12, HeadDim: 32}
	T, H := a.N*a.S, a.H()
	r := rand.New(rand.NewPCG(6, 6))
	qkv := randVec(r, T*3*H, 1)
	mask := make(I32, T)
	for n := 0; n < a.N; n++ {
		for s := 0; s < a.S-5*n; s++ {
			mask[n*a.S+s] = 1
		}
	}
	be := NewWorkers(1)
	ctx, save := make(F32, T*H), make(F32, be.AttentionSaveLen(a))
	for _, rt := range vecRoutes() {
		b.Run(rt.name, func(b *testing.B) {
			defer rt.use()()
			for i := 0; i < b.N; i++ {
				be.Attention(a, F32(qkv), mask, ctx, save)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(save)), "ns/elem")
		})
	}
}

// BenchmarkAddLayerNorm times the residual add and LayerNorm of a [T, H]
// block: Add then LayerNorm, and the fused AddLayerNorm.
func BenchmarkAddLayerNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	x, res := randVec(r, benchT*benchH, 1), randVec(r, benchT*benchH, 1)
	gm, bt := randVec(r, benchH, 1), randVec(r, benchH, 1)
	sum, out := make(F32, len(x)), make(F32, len(x))
	mean, rstd := make(F32, benchT), make(F32, benchT)
	be := NewWorkers(1)
	b.Run("add+layernorm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			be.Add(sum, F32(x), F32(res))
			be.LayerNorm(out, mean, rstd, sum, F32(gm), F32(bt), benchT, benchH, 1e-12)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
	b.Run("fused", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			be.AddLayerNorm(out, mean, rstd, sum, F32(x), F32(res), F32(gm), F32(bt), benchT, benchH, 1e-12)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
}
