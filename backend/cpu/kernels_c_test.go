//go:build cgo && !noblas && amd64

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
)

// withGo runs fn on the pure-Go paths (as a noblas build or a CPU without
// AVX2 would), then restores the C kernels.
func withGo(fn func()) {
	haveC = false
	defer func() { haveC = true }()
	fn()
}

func init() {
	attnRoutes = append(attnRoutes, struct {
		name string
		run  func(func())
	}{"go", withGo})
}

// maxRel is the largest |a-b| / max(1, |b|).
func maxRel(a, b []float32) float64 {
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

// TestKernelsMatchGo holds every C kernel to its pure-Go path on sizes
// that are not multiples of the 8-lane vectors.
func TestKernelsMatchGo(t *testing.T) {
	require.True(t, haveC, "this amd64 machine has no AVX2/FMA: the C kernels are untested")
	r := rand.New(rand.NewPCG(3, 4))
	type op struct {
		name string
		tol  float64
		run  func(be *Backend) []float32
	}
	x := randVec(r, 4099, 3)
	dout := randVec(r, 4099, 1)
	const rows, dim = 37, 389
	lx, ldy := randVec(r, rows*dim, 2), randVec(r, rows*dim, 1)
	lg, lb := randVec(r, dim, 1), randVec(r, dim, 1)
	ops := []op{
		{"gelu", 2e-6, func(be *Backend) []float32 {
			out := make(F32, len(x))
			be.Gelu(out, F32(x))
			return out
		}},
		{"gelu backward", 2e-6, func(be *Backend) []float32 {
			out := make(F32, len(x))
			be.GeluBackward(out, F32(dout), F32(x))
			return out
		}},
		{"dropout", 0, func(be *Backend) []float32 {
			out := make(F32, len(x))
			be.Dropout(out, F32(x), 0.1, 77)
			return out
		}},
		{"dropout p=0.5", 0, func(be *Backend) []float32 {
			out := make(F32, len(x))
			be.DropoutBackward(out, F32(x), 0.5, 78)
			return out
		}},
		{"dropout 64-bit seed", 0, func(be *Backend) []float32 {
			out := make(F32, len(x))
			be.Dropout(out, F32(x), 0.3, 0xDEADBEEFCAFEBABE)
			return out
		}},
		{"add bias", 0, func(be *Backend) []float32 {
			y := append(F32(nil), lx...)
			be.AddBias(y, F32(lb), rows, dim)
			return y
		}},
		{"bias grad", 1e-6, func(be *Backend) []float32 {
			db := make(F32, dim)
			be.BiasGrad(db, F32(ldy), rows, dim)
			return db
		}},
		{"layernorm", 1e-6, func(be *Backend) []float32 {
			out, mean, rstd := make(F32, rows*dim), make(F32, rows), make(F32, rows)
			be.LayerNorm(out, mean, rstd, F32(lx), F32(lg), F32(lb), rows, dim, 1e-12)
			return append(append(out, mean...), rstd...)
		}},
		{"layernorm backward", 1e-5, func(be *Backend) []float32 {
			out, mean, rstd := make(F32, rows*dim), make(F32, rows), make(F32, rows)
			be.LayerNorm(out, mean, rstd, F32(lx), F32(lg), F32(lb), rows, dim, 1e-12)
			dx, dg, db := make(F32, rows*dim), make(F32, dim), make(F32, dim)
			be.LayerNormBackward(dx, dg, db, F32(ldy), F32(lx), mean, rstd, F32(lg), rows, dim)
			return append(append(dx, dg...), db...)
		}},
		{"adamw", 0, func(be *Backend) []float32 {
			p, m, v := append(F32(nil), x...), make(F32, len(x)), make(F32, len(x))
			for step := 1; step <= 3; step++ {
				be.AdamW(p, F32(dout), m, v, backend.AdamWStep{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: step})
			}
			return append(append(p, m...), v...)
		}},
	}
	for _, tc := range []struct {
		name  string
		a     backend.Attn
		lens  []int
		holes bool // padding inside the sequences too
	}{
		{"attention", backend.Attn{N: 3, S: 37, Heads: 2, HeadDim: 12}, []int{37, 20, 9}, false},
		{"attention dropout holes", backend.Attn{N: 3, S: 33, Heads: 3, HeadDim: 8, Dropout: 0.2, Seed: 5}, []int{33, 17, 0}, true},
		{"attention minilm head", backend.Attn{N: 2, S: 128, Heads: 2, HeadDim: 32}, []int{128, 70}, false},
		{"attention base head dropout", backend.Attn{N: 2, S: 131, Heads: 1, HeadDim: 64, Dropout: 0.1, Seed: 3}, []int{131, 1}, true},
		{"tiled attention dropout holes", backend.Attn{N: 3, S: 33, Heads: 3, HeadDim: 8, Dropout: 0.2, Seed: 5, Tiled: true, Tile: 11}, []int{33, 17, 0}, true},
		{"tiled attention base head", backend.Attn{N: 2, S: 300, Heads: 1, HeadDim: 64, Tiled: true}, []int{300, 140}, false},
	} {
		a := tc.a
		T, H := a.N*a.S, a.H()
		qkv, g := randVec(r, T*3*H, 1), randVec(r, T*H, 1)
		mask := make(I32, T)
		for n, l := range tc.lens {
			for s := 0; s < l; s++ {
				if !tc.holes || s%5 != 3 {
					mask[n*a.S+s] = 1
				}
			}
		}
		ops = append(ops, op{tc.name, 2e-6, func(be *Backend) []float32 {
			ctx, save, dqkv := make(F32, T*H), make(F32, be.AttentionSaveLen(a)), make(F32, T*3*H)
			be.Attention(a, F32(qkv), mask, ctx, save)
			be.AttentionBackward(a, F32(qkv), mask, ctx, F32(g), save, dqkv)
			return append(append(ctx, save...), dqkv...)
		}})
	}
	for _, tc := range ops {
		for _, r := range vecRoutes() {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				defer r.use()()
				be := New()
				got := tc.run(be)
				var want []float32
				withGo(func() { want = tc.run(be) })
				require.Len(t, got, len(want))
				assert.LessOrEqual(t, maxRel(got, want), tc.tol)
			})
		}
	}
}

type vecRoute struct {
	name string
	use  func() (restore func())
}

// vecRoutes lists the variants of the GELU and softmax kernels this CPU
// can run: AVX2, and AVX-512 where it has AVX-512F.
func vecRoutes() []vecRoute {
	set := func(on bool) func() func() {
		return func() func() {
			old := use512
			setUse512(on)
			return func() { setUse512(old) }
		}
	}
	rs := []vecRoute{{"avx2", set(false)}}
	if haveAVX512 {
		rs = append(rs, vecRoute{"avx512", set(true)})
	}
	return rs
}

// TestGeluAccuracy checks the C GELU and its derivative against float64
// math.Erfc over the range where they matter, in relative terms.
func TestGeluAccuracy(t *testing.T) {
	for _, r := range vecRoutes() {
		t.Run(r.name, func(t *testing.T) {
			defer r.use()()
			checkGeluAccuracy(t)
		})
	}
}

func checkGeluAccuracy(t *testing.T) {
	n := 200001
	x, one := make(F32, n), make(F32, n)
	for i := range x {
		x[i] = float32(-10 + 20*float64(i)/float64(n-1))
		one[i] = 1
	}
	be := New()
	y, d := make(F32, n), make(F32, n)
	be.Gelu(y, x)
	be.GeluBackward(d, one, x)
	worst, worstD := 0.0, 0.0
	for i, v := range x {
		xf := float64(v)
		cdf := 0.5 * math.Erfc(-xf/math.Sqrt2)
		want := xf * cdf
		wantD := cdf + xf*math.Exp(-0.5*xf*xf)/math.Sqrt(2*math.Pi)
		// Relative all the way: exp(-x²/2) is taken of an exactly split
		// x²/2, so the left tail (gelu(-10) ≈ -7.6e-23) keeps its
		// digits. gelu' crosses 0 near x = -0.75, so it is held in
		// absolute terms.
		if want != 0 {
			worst = math.Max(worst, math.Abs(float64(y[i])-want)/math.Abs(want))
		}
		worstD = math.Max(worstD, math.Abs(float64(d[i])-wantD))
	}
	// On a 2M-point grid: gelu 4.7e-7 (the erfcc kernel before it: 8.6e-6
	// at x = -9.8, 1.3e-6 on [-3, 10]); gelu' 2.3e-7 (before: 2.35e-7).
	assert.LessOrEqual(t, worst, 1e-6, "gelu")
	assert.LessOrEqual(t, worstD, 2.5e-7, "gelu' (absolute)")
}

// TestGeluEdges pins GELU and its derivative at special and saturating
// inputs, on every route and on the pure-Go path.
func TestGeluEdges(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	tests := []struct {
		name       string
		x          float32
		gelu, grad float32 // NaN means NaN
		tol        float64 // relative
	}{
		{"NaN", nan, nan, nan, 0},
		{"+Inf", inf, inf, nan, 0},
		{"-Inf", -inf, nan, nan, 0}, // -Inf·Φ(-Inf) = -Inf·0
		{"+0", 0, 0, 0.5, 2e-7},
		{"-0", negZero, negZero, 0.5, 2e-7},
		{"tiny", 1e-30, 5e-31, 0.5, 2e-7},
		{"x=6 saturates", 6, 6, 1, 0},
		{"x=20", 20, 20, 1, 0},
		{"x=1e30", 1e30, 1e30, 1, 0},
		{"max float", math.MaxFloat32, math.MaxFloat32, 1, 0},
		{"x=-13 (tail)", -13, -7.9523e-38, -1.0337e-36, 1e-4},
		{"x=-20 underflows", -20, 0, 0, 0},
		{"x=-1e30", -1e30, 0, 0, 0},
		{"lowest float", -math.MaxFloat32, 0, 0, 0},
	}
	check := func(t *testing.T, got, want float32, tol float64) {
		t.Helper()
		switch {
		case math.IsNaN(float64(want)):
			assert.True(t, math.IsNaN(float64(got)), "got %v, want NaN", got)
		case tol == 0:
			assert.Equal(t, want, got)
		default:
			assert.InDelta(t, want, got, tol*math.Abs(float64(want)))
			if want == 0 {
				assert.Equal(t, math.Signbit(float64(want)), math.Signbit(float64(got)), "sign of zero")
			}
		}
	}
	paths := append(vecRoutes(), vecRoute{"go", func() func() { haveC = false; return func() { haveC = true } }})
	for _, p := range paths {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				defer p.use()()
				// A full vector and a tail element of each kernel.
				x := make(F32, 19)
				for i := range x {
					x[i] = tc.x
				}
				y, d, one := make(F32, len(x)), make(F32, len(x)), make(F32, len(x))
				for i := range one {
					one[i] = 1
				}
				be := NewWorkers(1)
				be.Gelu(y, x)
				be.GeluBackward(d, one, x)
				for i := range x {
					check(t, y[i], tc.gelu, tc.tol)
					check(t, d[i], tc.grad, tc.tol)
				}
			})
		}
	}
}

// TestAddLayerNorm holds the fused residual add and LayerNorm to Add then
// LayerNorm, bit for bit, on every route, for widths that do and do not
// fill whole vectors and with sum aliasing either input (as nn does).
func TestAddLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	paths := append(vecRoutes(), vecRoute{"go", func() func() { haveC = false; return func() { haveC = true } }})
	tests := []struct {
		name      string
		rows, dim int
		alias     string // "", "x" or "res": the buffer sum shares
	}{
		{"minilm", 37, 384, ""},
		{"odd width", 19, 389, ""},
		{"narrow", 40, 7, ""},
		{"one vector", 5, 16, ""},
		{"width 1", 3, 1, ""},
		{"sum is x", 33, 389, "x"},
		{"sum is res", 33, 384, "res"},
	}
	for _, p := range paths {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				defer p.use()()
				n := tc.rows * tc.dim
				x, res := randVec(r, n, 2), randVec(r, n, 1)
				g, bt := randVec(r, tc.dim, 1), randVec(r, tc.dim, 1)
				be := New()

				wantSum, want := make(F32, n), make(F32, n)
				wantMean, wantRstd := make(F32, tc.rows), make(F32, tc.rows)
				be.Add(wantSum, F32(x), F32(res))
				be.LayerNorm(want, wantMean, wantRstd, wantSum, F32(g), F32(bt), tc.rows, tc.dim, 1e-12)

				xb, rb := append(F32(nil), x...), append(F32(nil), res...)
				sum := make(F32, n)
				switch tc.alias {
				case "x":
					sum = xb
				case "res":
					sum = rb
				}
				got, mean, rstd := make(F32, n), make(F32, tc.rows), make(F32, tc.rows)
				be.AddLayerNorm(got, mean, rstd, sum, xb, rb, F32(g), F32(bt), tc.rows, tc.dim, 1e-12)
				assert.Equal(t, wantSum, sum, "sum")
				assert.Equal(t, want, got, "out")
				assert.Equal(t, wantMean, mean, "mean")
				assert.Equal(t, wantRstd, rstd, "rstd")
			})
		}
	}
}
