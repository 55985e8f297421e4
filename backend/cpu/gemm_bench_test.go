package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rerank-go/rerank/backend"
)

// gemmShape is one product of a transformer layer, named as in gemmPar.
type gemmShape struct {
	name    string
	ta, tb  bool
	m, n, k int
}

// layerShapes returns, for each (out, in) projection and T token rows, the
// forward product (C = X·Wᵀ + bias), the weight gradient (dW += dYᵀ·X)
// and the input gradient (dX = dY·W).
func layerShapes(T int, layers ...[2]int) []gemmShape {
	var s []gemmShape
	for _, l := range layers {
		out, in := l[0], l[1]
		s = append(s,
			gemmShape{"fwd", false, true, T, out, in},
			gemmShape{"dW", true, false, out, in, T},
			gemmShape{"dx", false, false, T, in, out})
	}
	return s
}

// benchShapes are the projections of MiniLM-L6 (hidden 384) and of
// BERT-base (hidden 768) on a 16×128-token batch.
var benchShapes = append(
	layerShapes(2048, [2]int{1152, 384}, [2]int{384, 384}, [2]int{1536, 384}, [2]int{384, 1536}),
	layerShapes(2048, [2]int{2304, 768}, [2]int{768, 768}, [2]int{3072, 768}, [2]int{768, 3072})...)

// gemmBench holds the operands of one benchShapes product.
type gemmBench struct {
	s             gemmShape
	a, w, bias, c []float32
	lda, ldb      int
}

func newGemmBench(r *rand.Rand, s gemmShape) *gemmBench {
	g := &gemmBench{s: s, a: randVec(r, s.m*s.k, 1), w: randVec(r, s.n*s.k, 1), bias: randVec(r, s.n, 1),
		c: make([]float32, s.m*s.n), lda: s.k, ldb: s.n}
	if s.ta {
		g.lda = s.m
	}
	if s.tb {
		g.ldb = s.k
	}
	return g
}

// run computes the product as a training step does: the forward one
// through GemmBias, weight gradients accumulating (beta = 1).
func (g *gemmBench) run(bk *Backend) {
	s := g.s
	switch s.name {
	case "fwd":
		bk.GemmBias(s.m, s.n, s.k, F32(g.a), g.lda, F32(g.w), g.ldb, F32(g.bias), F32(g.c), s.n)
	case "dW":
		bk.gemmPar(s.ta, s.tb, s.m, s.n, s.k, 1e-3, g.a, g.lda, g.w, g.ldb, 1, g.c, s.n)
	default:
		bk.gemmPar(s.ta, s.tb, s.m, s.n, s.k, 1, g.a, g.lda, g.w, g.ldb, 0, g.c, s.n)
	}
}

// BenchmarkGemm compares the GEMM routes of this build side by side on the
// projection shapes of a training step, on GOMAXPROCS workers (use -cpu
// 1,2 for both) and reports GFLOP/s. Forward products go through
// GemmBias, weight gradients accumulate (beta = 1).
//
//	go test ./backend/cpu -run XXX -bench Gemm -cpu 1,2 -count 5
func BenchmarkGemm(b *testing.B) {
	routes := GemmRoutes()
	if len(routes) > 1 {
		routes = routes[:len(routes)-1] // not the pure-Go one
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		g := newGemmBench(r, s)
		flops := 2 * float64(s.m*s.n*s.k)
		for _, rt := range routes {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", s.name, s.m, s.n, s.k, rt), func(b *testing.B) {
				// -cpu sets GOMAXPROCS for each sub-benchmark.
				bk, err := NewWithOptions(Options{Gemm: rt})
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < b.N; i++ {
					g.run(bk)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkAttention compares the per-head attention products on OpenBLAS
// and on the AVX-512 kernel (forward and backward of a MiniLM layer on
// 16×128 tokens, 12 heads of 32), on GOMAXPROCS workers.
func BenchmarkAttention(b *testing.B) {
	if !haveC {
		b.Skip("no C attention kernels in this build")
	}
	defer cAttnUseBest()
	a := backend.Attn{N: 16, S: 128, Heads: 12, HeadDim: 32, Dropout: 0.1, Seed: 1}
	T, H := a.N*a.S, a.H()
	r := rand.New(rand.NewPCG(2, 2))
	qkv, g := randVec(r, T*3*H, 1), randVec(r, T*H, 1)
	mask := make(I32, T)
	for n := 0; n < a.N; n++ {
		for s := 0; s < a.S-5*n; s++ {
			mask[n*a.S+s] = 1
		}
	}
	routes := []string{"openblas"}
	if haveAVX512 {
		routes = append(routes, "avx512")
	}
	ctx, dqkv := make(F32, T*H), make(F32, T*3*H)
	for _, rt := range routes {
		b.Run(rt, func(b *testing.B) {
			bk := &Backend{workers: runtime.GOMAXPROCS(0)}
			save := make(F32, bk.AttentionSaveLen(a))
			cAttnUseAVX512(rt == "avx512")
			for i := 0; i < b.N; i++ {
				bk.Attention(a, F32(qkv), mask, ctx, save)
				bk.AttentionBackward(a, F32(qkv), mask, ctx, F32(g), save, dqkv)
			}
		})
	}
}

// TestGemmRoutesAB is a benchmark for a noisy, shared machine: for each
// shape of benchShapes it alternates single calls of the OpenBLAS route
// and a blocked kernel (RERANK_GEMM_AB_KERNEL=avx512, the default, or
// avx2), RERANK_GEMM_AB times each (after two warm-up calls), on
// GOMAXPROCS workers, and logs the median GFLOP/s of each, their ratio and
// the best call of each. RERANK_GEMM_AB_ONLY=fwd|dW|dx picks one kind.
//
//	RERANK_GEMM_AB=25 go test ./backend/cpu -run GemmRoutesAB -v -cpu 2
func TestGemmRoutesAB(t *testing.T) {
	reps, _ := strconv.Atoi(os.Getenv("RERANK_GEMM_AB"))
	if reps <= 0 {
		t.Skip("set RERANK_GEMM_AB to the number of interleaved calls per route")
	}
	kname := os.Getenv("RERANK_GEMM_AB_KERNEL")
	if kname == "" {
		kname = GemmAVX512
	}
	w := runtime.GOMAXPROCS(0)
	base, err := NewWithOptions(Options{Workers: w, Gemm: GemmOpenBLAS})
	if err != nil {
		t.Skip(err)
	}
	avx, err := NewWithOptions(Options{Workers: w, Gemm: kname})
	if err != nil {
		t.Skip(err)
	}
	bks := []*Backend{base, avx}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		if f := os.Getenv("RERANK_GEMM_AB_ONLY"); f != "" && s.name != f {
			continue
		}
		g := newGemmBench(r, s)
		flops := 2 * float64(s.m*s.n*s.k)
		var ts [2][]float64
		for i := 0; i < reps+2; i++ {
			for j, bk := range bks {
				t0 := time.Now()
				g.run(bk)
				if i >= 2 {
					ts[j] = append(ts[j], flops/time.Since(t0).Seconds()/1e9)
				}
			}
		}
		med := func(x []float64) float64 { sort.Float64s(x); return x[len(x)/2] }
		mx := func(x []float64) float64 { sort.Float64s(x); return x[len(x)-1] }
		o, v := med(append([]float64(nil), ts[0]...)), med(append([]float64(nil), ts[1]...))
		t.Logf("%-4s %5dx%5dx%5d  w=%d  openblas %6.1f  %s %6.1f  ratio %.2f   (best %6.1f / %6.1f)\n", s.name, s.m, s.n, s.k, w, o, kname, v, v/o, mx(ts[0]), mx(ts[1]))
	}
}
