package cpu

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
)

// TestOpsAllocateNothing: every op the model runs allocates nothing once
// its scratch has grown, on one worker and on two (at sizes where each op
// splits its work).
func TestOpsAllocateNothing(t *testing.T) {
	const rows, cols = 512, 256
	r := rand.New(rand.NewPCG(1, 1))
	vec := func(n int) backend.Buf { return F32(randVec(r, n, 1)) }
	x, y, z, dz := vec(rows*cols), vec(rows*cols), vec(rows*cols), vec(rows*cols)
	w, bias, g, m, v := vec(cols*cols), vec(cols), vec(cols*cols), vec(cols*cols), vec(cols*cols)
	mean, rstd := vec(rows), vec(rows)
	ids := make(I32, rows)
	for i := range ids {
		ids[i] = int32(i % cols)
	}
	a := backend.Attn{N: 8, S: 64, Heads: 4, HeadDim: 16, Dropout: 0.1, Seed: 3}
	T, H := a.N*a.S, a.H()
	qkv, ctx, dctx, dqkv := vec(3*T*H), vec(T*H), vec(T*H), vec(3*T*H)
	save := make(F32, a.N*a.Heads*a.S*a.S)
	mask := make(I32, T)
	for i := range mask {
		mask[i] = int32(min(1, i%a.S%40))
	}
	q, kv := vec(a.N*H), vec(2*T*H)
	for _, workers := range []int{1, 2} {
		b := NewWorkers(workers)
		var pw backend.Buf // w packed, where products pack
		if size := b.PackedSize(cols, cols); size > 0 {
			pw = make(F32, size)
			b.PackWeight(pw, w, cols, cols, cols)
		}
		for _, op := range []struct {
			name string
			run  func()
		}{
			{"Fill", func() { b.Fill(z, 0) }},
			{"FillAt", func() { b.FillAt(z, 5, rows*cols-5, 1) }},
			{"Copy2D", func() { b.Copy2D(z, cols, x, cols, rows, cols) }},
			{"Copy2DAt", func() { b.Copy2DAt(z, cols, cols, x, 0, cols, rows-1, cols) }},
			{"AddBias", func() { b.AddBias(z, bias, rows, cols) }},
			{"BiasGrad", func() { b.BiasGrad(bias, x, rows, cols) }},
			{"Add", func() { b.Add(z, x, y) }},
			{"Axpy", func() { b.Axpy(0.5, x, z) }},
			{"Scale", func() { b.Scale(z, 0.5) }},
			{"Embed", func() { b.Embed(z, w, ids, cols, true) }},
			{"LayerNorm", func() { b.LayerNorm(z, mean, rstd, x, bias, bias, rows, cols, 1e-12) }},
			{"AddLayerNorm", func() { b.AddLayerNorm(z, mean, rstd, dz, x, y, bias, bias, rows, cols, 1e-12) }},
			{"LayerNormBackward", func() { b.LayerNormBackward(dz, bias, bias, y, x, mean, rstd, bias, rows, cols) }},
			{"Gelu", func() { b.Gelu(z, x) }},
			{"GeluBackward", func() { b.GeluBackward(dz, y, x) }},
			{"Dropout", func() { b.Dropout(z, x, 0.1, 7) }},
			{"AdamW", func() {
				b.AdamW(w, g, m, v, backend.AdamWStep{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1})
			}},
			{"Gemm", func() { b.Gemm(false, true, rows, cols, cols, 1, x, cols, w, cols, 0, z, cols) }},
			{"Gemm weight gradient", func() { b.Gemm(true, false, cols, cols, rows, 1, x, cols, y, cols, 1, g, cols) }},
			{"GemmBias", func() { b.GemmBias(rows, cols, cols, x, cols, w, cols, bias, z, cols) }},
			{"GemmBiasPacked", func() {
				if pw != nil {
					b.GemmBiasPacked(rows, cols, cols, x, cols, pw, bias, z, cols)
				}
			}},
			{"Attention", func() { b.Attention(a, qkv, mask, ctx, save) }},
			{"AttentionBackward", func() { b.AttentionBackward(a, qkv, mask, ctx, dctx, save, dqkv) }},
			{"AttentionFirstQuery", func() { b.AttentionFirstQuery(a, q, kv, mask, ctx, save) }},
		} {
			op.run()
			assert.Zero(t, testing.AllocsPerRun(20, op.run), "%s on %d workers", op.name, workers)
		}
	}
}

// TestConcurrentUse: ops of several goroutines on one backend take turns
// and give the results they give alone.
func TestConcurrentUse(t *testing.T) {
	const n, callers = 1 << 16, 4
	b := NewWorkers(2)
	r := rand.New(rand.NewPCG(2, 2))
	x, y := randVec(r, n, 1), randVec(r, n, 1)
	want := make([]float32, n)
	b.Add(F32(want), F32(x), F32(y))
	got := make([][]float32, callers)
	var wg sync.WaitGroup
	for i := range got {
		got[i] = make([]float32, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				b.Add(F32(got[i]), F32(x), F32(y))
			}
		}()
	}
	wg.Wait()
	for i := range got {
		assert.Equal(t, want, got[i], "caller %d", i)
	}
}

// TestWorkersStop: a backend's workers end once it is unreachable.
func TestWorkersStop(t *testing.T) {
	// Workers of backends that earlier tests dropped end at some garbage
	// collection: count from where they have.
	settle := func() int {
		for prev := -1; ; {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			n := runtime.NumGoroutine()
			if n == prev {
				return n
			}
			prev = n
		}
	}
	before := settle()
	func() {
		for range 5 {
			b := NewWorkers(4)
			b.Fill(make(F32, 1<<20), 1) // starts the workers
		}
	}()
	require.Greater(t, runtime.NumGoroutine(), before, "the workers started")
	// The finalizers that stop them run on the GC's schedule: under
	// extreme load (a parallel make test) that took more than 5 s once.
	// 30 s still fails a backend whose workers never stop.
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left running")
}
