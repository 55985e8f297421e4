package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
)

// gemmCase is one product for TestAVX512Gemm; pad widens every leading
// dimension past its matrix.
type gemmCase struct {
	m, n, k     int
	alpha, beta float32
	bias        bool
	pad         int
}

// refGemmFull returns alpha·op(A)·op(B) + beta·C0 + bias in float64 and, per
// element, the scale of its rounding error: the same sum over absolute
// values.
func refGemmFull(ta, tb bool, tc gemmCase, a []float32, lda int, b []float32, ldb int, c0 []float32, ldc int, bias []float32) (want, scale []float64) {
	sum, abs := refGemm(ta, tb, tc.m, tc.n, tc.k, a, lda, b, ldb)
	want, scale = make([]float64, tc.m*tc.n), make([]float64, tc.m*tc.n)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			s, sa := sum[i*tc.n+j], abs[i*tc.n+j]
			v, e := float64(tc.alpha)*s, math.Abs(float64(tc.alpha))*sa
			if tc.beta != 0 {
				v += float64(tc.beta) * float64(c0[i*ldc+j])
				e += math.Abs(float64(tc.beta) * float64(c0[i*ldc+j]))
			}
			if bias != nil {
				v += float64(bias[j])
				e += math.Abs(float64(bias[j]))
			}
			want[i*tc.n+j], scale[i*tc.n+j] = v, e
		}
	}
	return want, scale
}

// kernels are the blocked kernels, each with a reason to skip it where
// this build or CPU cannot run it.
var kernels = []struct {
	name string
	kern func() *kernel
}{
	{GemmAVX512, func() *kernel { return kernAVX512 }},
	{GemmAVX2, func() *kernel { return kernAVX2 }},
}

// forKernels runs f as a subtest for each blocked kernel, skipping (and
// saying so) those this build or CPU cannot run.
func forKernels(t *testing.T, f func(t *testing.T, kn *kernel)) {
	for _, k := range kernels {
		t.Run(k.name, func(t *testing.T) {
			kn := k.kern()
			if kn == nil {
				t.Skipf("skipped: no %s kernel in this build or on this CPU", k.name)
			}
			f(t, kn)
		})
	}
}

// TestKernelGemm holds each blocked kernel to a float64 reference on edge
// sizes around the micro-tiles (12×32 for AVX-512, 6×16 for AVX2) and
// the k and column blocks, all four transpositions, alpha and beta (beta
// = 0 must ignore a NaN-filled C), leading dimensions past the width and
// the bias; checks that 1, 2 and 3 workers give the same bits as one
// call, and that the kernels give the same bits as one another.
func TestKernelGemm(t *testing.T) {
	var cases []gemmCase
	sizes := []int{1, 2, 5, 6, 7, 12, 13, 17, 32, 33, 97}
	i := 0
	for _, m := range sizes {
		for _, n := range sizes {
			k := sizes[(i*7+3)%len(sizes)] + i%3
			ab := [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}, {1, -1}}[i%4]
			cases = append(cases, gemmCase{m, n, k, ab[0], ab[1], i%3 == 1, (i % 5) * 3})
			i++
		}
	}
	cases = append(cases,
		gemmCase{0, 5, 7, 1, 0, false, 0},
		gemmCase{5, 0, 7, 1, 0, false, 0},
		gemmCase{13, 33, 0, 1, 0, false, 2},
		gemmCase{13, 33, 0, 1, 0.5, true, 1},
		gemmCase{7, 9, 0, 2, 0, true, 0},
		gemmCase{130, 1100, 800, 1, 0, true, 5},   // several k and column blocks
		gemmCase{300, 250, 40, 0.75, 1, false, 3}, // split by rows
		gemmCase{30, 1100, 100, 1, 0, true, 0},    // split by columns
		gemmCase{61, 67, 389, -1, 0.5, false, 7},  // primes, two k blocks
		gemmCase{2048 / 8, 384, 1536, 1, 0, true, 0},
		gemmCase{50, 70, 1000, 1, 0.5, false, 24}, // lda = 1024: A packed, not read in place
		gemmCase{800, 45, 70, 1, 1, true, 1},
	)
	// Every height of a last, partial tile of rows, after a whole row block.
	for mr := 1; mr < 12; mr++ {
		cases = append(cases, gemmCase{96 + mr, 40, 50, 1, 0.5, mr%2 == 0, mr % 3})
	}
	// first holds each case's result on the first kernel that ran it,
	// refs its float64 reference.
	first, refs := map[string][]float32{}, map[string][2][]float64{}
	forKernels(t, func(t *testing.T, kn *kernel) {
		testKernelGemm(t, kn, cases, first, refs)
	})
}

func testKernelGemm(t *testing.T, kn *kernel, cases []gemmCase, first map[string][]float32, refs map[string][2][]float64) {
	for ci, tc := range cases {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			ta, tb := tr[0], tr[1]
			name := fmt.Sprintf("%dx%dx%d/ta=%v,tb=%v/a=%g,b=%g,bias=%v,pad=%d", tc.m, tc.n, tc.k, ta, tb, tc.alpha, tc.beta, tc.bias, tc.pad)
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			ar, ac := tc.m, tc.k
			if ta {
				ar, ac = tc.k, tc.m
			}
			br, bc := tc.k, tc.n
			if tb {
				br, bc = tc.n, tc.k
			}
			lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
			a, b := randVec(r, max(ar*lda, 1), 1), randVec(r, max(br*ldb, 1), 1)
			c0 := randVec(r, max(tc.m*ldc, 1), 1)
			if tc.beta == 0 {
				for i := range c0 {
					c0[i] = float32(math.NaN())
				}
			}
			var bias []float32
			if tc.bias {
				bias = randVec(r, max(tc.n, 1), 1)
			}
			ref, ok := refs[name]
			if !ok {
				ref[0], ref[1] = refGemmFull(ta, tb, tc, a, lda, b, ldb, c0, ldc, bias)
				refs[name] = ref
			}
			want, scale := ref[0], ref[1]

			got := append([]float32(nil), c0...)
			kn.sgemm(ta, tb, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc, bias, nil)
			bad := 0
			for i := 0; i < tc.m; i++ {
				for j := 0; j < ldc; j++ {
					g := got[i*ldc+j]
					if j >= tc.n {
						if math.Float32bits(g) != math.Float32bits(c0[i*ldc+j]) {
							bad++
						}
						continue
					}
					w, s := want[i*tc.n+j], scale[i*tc.n+j]
					if !(math.Abs(float64(g)-w) <= 1e-5*s+1e-30) {
						if bad == 0 {
							t.Errorf("%s: C[%d,%d] = %g, want %g (scale %g)", name, i, j, g, w, s)
						}
						bad++
					}
				}
			}
			require.Zerof(t, bad, "%s: %d bad elements", name, bad)
			if f, ok := first[name]; ok {
				require.Truef(t, sameBits(f, got), "%s: the kernels differ", name)
			} else {
				first[name] = got
			}

			for _, w := range []int{1, 2, 3} {
				bk := &Backend{workers: w, route: kn.name, kern: kn}
				par := append([]float32(nil), c0...)
				bk.avxGemmPar(ta, tb, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, par, ldc, bias, nil, nil)
				assert.Truef(t, sameBits(par, got), "%s: %d workers differ from one call", name, w)
			}
		}
	}
}

// sameBits says whether a and b hold the same bits.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestKernelGemmRoutes: Gemm and GemmBias of a backend on a
// blocked kernel agree with the pure-Go route.
func TestKernelGemmRoutes(t *testing.T) {
	forKernels(t, testKernelGemmRoutes)
}

func testKernelGemmRoutes(t *testing.T, kn *kernel) {
	avx, base := &Backend{workers: 2, route: kn.name, kern: kn}, &Backend{workers: 2, route: GemmGo}
	r := rand.New(rand.NewPCG(3, 3))
	m, n, k := 515, 257, 129
	a, w, bias := randVec(r, m*k, 1), randVec(r, n*k, 1), randVec(r, n, 1)
	want, got := make(F32, m*n), make(F32, m*n)
	base.GemmBias(m, n, k, F32(a), k, F32(w), k, F32(bias), want, n)
	avx.GemmBias(m, n, k, F32(a), k, F32(w), k, F32(bias), got, n)
	assertGrad(t, "GemmBias", to64(want), got, 1e-4)
	base.Gemm(false, true, m, n, k, 0.5, F32(a), k, F32(w), k, 0, want, n)
	avx.Gemm(false, true, m, n, k, 0.5, F32(a), k, F32(w), k, 0, got, n)
	assertGrad(t, "Gemm", to64(want), got, 1e-4)
}

// TestKernelAttention: the C attention kernels give the same results
// (to rounding) with their products on each blocked kernel the CPU runs
// as on OpenBLAS, on a MiniLM-sized head with padding and dropout.
func TestKernelAttention(t *testing.T) {
	if !haveC {
		t.Skip("skipped: no C kernels in this build or on this CPU")
	}
	modes := []int{0, 2} // OpenBLAS, AVX2
	if haveAVX512 {
		modes = append(modes, 1)
	} else {
		t.Log("skipped avx512: not on this CPU")
	}
	defer cAttnUseBest()
	a := backend.Attn{N: 3, S: 128, Heads: 4, HeadDim: 32, Dropout: 0.1, Seed: 5}
	T, H := a.N*a.S, a.H()
	r := rand.New(rand.NewPCG(8, 8))
	qkv, g := randVec(r, T*3*H, 1), randVec(r, T*H, 1)
	mask := make(I32, T)
	for n, l := range []int{128, 77, 1} {
		for s := 0; s < l; s++ {
			mask[n*a.S+s] = 1
		}
	}
	bk := New()
	ctx, dqkv := make([]F32, len(modes)), make([]F32, len(modes))
	for i, mode := range modes {
		cAttnKernel(mode)
		ctx[i], dqkv[i] = make(F32, T*H), make(F32, T*3*H)
		save := make(F32, bk.AttentionSaveLen(a))
		bk.Attention(a, F32(qkv), mask, ctx[i], save)
		bk.AttentionBackward(a, F32(qkv), mask, ctx[i], F32(g), save, dqkv[i])
	}
	for i := 1; i < len(modes); i++ {
		assertGrad(t, fmt.Sprintf("ctx, kernel %d", modes[i]), to64(ctx[0]), ctx[i], 1e-5)
		assertGrad(t, fmt.Sprintf("dqkv, kernel %d", modes[i]), to64(dqkv[0]), dqkv[i], 1e-4)
	}
}

// TestKernelGemmNoAlloc: a steady stream of products allocates nothing.
func TestKernelGemmNoAlloc(t *testing.T) { forKernels(t, testKernelGemmNoAlloc) }

func testKernelGemmNoAlloc(t *testing.T, kn *kernel) {
	bk := &Backend{workers: 2, route: kn.name, kern: kn}
	r := rand.New(rand.NewPCG(4, 4))
	m, n, k := 512, 384, 384
	a, w, c := randVec(r, m*k, 1), randVec(r, n*k, 1), make([]float32, m*n)
	bk.gemmPar(false, true, m, n, k, 1, a, k, w, k, 0, c, n)
	allocs := testing.AllocsPerRun(20, func() {
		kn.sgemm(false, true, 64, n, k, 1, a, k, w, k, 0, c, n, nil, nil)
	})
	assert.Zero(t, allocs, "single-goroutine product")
}

// TestPackedWeights: GemmBiasPacked on a weight packed by PackWeight gives
// GemmBias's bits, on one worker and several, for shapes with partial
// panels and k-blocks and for a weight inside a wider matrix (ldw > k);
// a backend on another route packs nothing.
func TestPackedWeights(t *testing.T) {
	assert.Zero(t, (&Backend{workers: 1, route: GemmGo}).PackedSize(64, 64), "a backend off the blocked kernels packs nothing")
	forKernels(t, testPackedWeights)
}

func testPackedWeights(t *testing.T, kn *kernel) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		name        string
		m, n, k, ld int
	}{
		{"one row, one output", 1, 1, 7, 7},
		{"minilm qkv", 256, 1152, 384, 384},
		{"partial panel and tile", 37, 45, 33, 33},
		{"two k-blocks", 130, 96, 768, 768},
		{"deep k, wide ld", 64, 40, 1000, 1030},
		{"large, split across workers", 600, 512, 384, 384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := randVec(r, tc.m*tc.k, 1)
			w, bias := randVec(r, tc.n*tc.ld, 1), randVec(r, tc.n, 1)
			for _, workers := range []int{1, 2, 3} {
				bk := &Backend{workers: workers, route: kn.name, kern: kn}
				size := bk.PackedSize(tc.n, tc.k)
				require.GreaterOrEqual(t, size, tc.n*tc.k)
				pw := make(F32, size)
				bk.PackWeight(pw, F32(w), tc.ld, tc.n, tc.k)
				want, got := make(F32, tc.m*tc.n), make(F32, tc.m*tc.n)
				bk.GemmBias(tc.m, tc.n, tc.k, F32(a), tc.k, F32(w), tc.ld, F32(bias), want, tc.n)
				for i := range got {
					got[i] = float32(math.NaN()) // C is not read
				}
				bk.GemmBiasPacked(tc.m, tc.n, tc.k, F32(a), tc.k, pw, F32(bias), got, tc.n)
				require.Equal(t, want, got, "%d workers", workers)
			}
		})
	}
}

// TestCrewShares: a lane that has finished its share of a pass computes
// blocks of another lane's product with packed weights, float32 or int8 (with
// GELU or without); the product has the bits of one lane alone, and the
// finished lane returns once the other is done too.
func TestCrewShares(t *testing.T) { forKernels(t, testCrewShares) }

func testCrewShares(t *testing.T, kn *kernel) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, tc := range []struct {
		name    string
		m, n, k int
	}{
		{"too small to split", 150, 64, 40},
		{"minilm ffn", 1024, 1536, 384},
		{"ragged", 777, 45, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lanes := (&Backend{workers: 3, route: kn.name, kern: kn}).Lanes()
			owner, lender, idle := lanes[0].(*Backend), lanes[1].(*Backend), lanes[2].(*Backend)
			a, w, bias := randVec(r, tc.m*tc.k, 1), randVec(r, tc.n*tc.k, 1), randVec(r, tc.n, 1)
			pw := make(F32, owner.PackedSize(tc.n, tc.k))
			owner.PackWeight(pw, F32(w), tc.k, tc.n, tc.k)
			want, got := make(F32, tc.m*tc.n), make(F32, tc.m*tc.n)
			(&Backend{workers: 1, route: kn.name, kern: kn}).GemmBias(tc.m, tc.n, tc.k, F32(a), tc.k, F32(w), tc.k, F32(bias), want, tc.n)

			owner.LanesBegin(3)
			var wg sync.WaitGroup
			for _, l := range []*Backend{lender, idle} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.LanesDone()
				}()
			}
			for owner.crew.lenders.Load() < 2 {
				runtime.Gosched()
			}
			owner.GemmBiasPacked(tc.m, tc.n, tc.k, F32(a), tc.k, pw, F32(bias), got, tc.n)
			assert.Equal(t, want, got)
			// Sharing again allocates nothing (the runtime itself may, now
			// and then: one window of three products must not).
			var allocs []uint64
			for range 10 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range 3 {
					owner.GemmBiasPacked(tc.m, tc.n, tc.k, F32(a), tc.k, pw, F32(bias), got, tc.n)
				}
				runtime.ReadMemStats(&after)
				if allocs = append(allocs, after.Mallocs-before.Mallocs); allocs[len(allocs)-1] == 0 {
					break
				}
			}
			assert.Zero(t, allocs[len(allocs)-1], "allocations per window: %v", allocs)
			assert.Equal(t, want, got)
			// The GELU in the epilogue of a shared product.
			wantAct, gotAct := make(F32, tc.m*tc.n), make(F32, tc.m*tc.n)
			owner.Gelu(wantAct, want)
			owner.GemmBiasPackedGelu(tc.m, tc.n, tc.k, F32(a), tc.k, pw, F32(bias), nil, gotAct, tc.n)
			assert.True(t, sameBits(wantAct, gotAct), "GemmBiasPackedGelu shared differs from GemmBias then Gelu")
			// An int8 product, shared the same way.
			qw := make(F32, owner.QuantizedSize(tc.n, tc.k))
			owner.QuantizeWeight(qw, F32(w), tc.k, tc.n, tc.k)
			wantQ, gotQ := make(F32, tc.m*tc.n), make(F32, tc.m*tc.n)
			(&Backend{workers: 1, route: kn.name, kern: kn}).GemmBiasQuantized(tc.m, tc.n, tc.k, F32(a), tc.k, qw, F32(bias), wantQ, tc.n)
			owner.GemmBiasQuantized(tc.m, tc.n, tc.k, F32(a), tc.k, qw, F32(bias), gotQ, tc.n)
			assert.True(t, sameBits(wantQ, gotQ), "GemmBiasQuantized shared differs from one lane's")
			owner.Gelu(wantQ, wantQ)
			owner.GemmBiasQuantizedGelu(tc.m, tc.n, tc.k, F32(a), tc.k, qw, F32(bias), nil, gotQ, tc.n)
			assert.True(t, sameBits(wantQ, gotQ), "GemmBiasQuantizedGelu shared differs from one lane's")
			assert.Empty(t, owner.crew.jobs, "a finished product is still open")
			assert.EqualValues(t, 2, owner.crew.lenders.Load(), "the lenders left before the pass ended")
			owner.LanesDone()
			wg.Wait()
			assert.Zero(t, owner.crew.lenders.Load())
		})
	}
}
