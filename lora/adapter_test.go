package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// ref64 is a float64 reference of one adapter on strided matrices.
type ref64 struct {
	rows, in, out, r   int
	ldx, ldy           int
	scaling, p         float64
	seed               uint64
	train              bool
	x, a, b, wy, y0    []float64
	keepScale          []float64 // dropout multiplier per dense x element
	lossW              []float64 // d(loss)/dy, rows×ldy
	xIndex, aIdx, bIdx int
}

// y returns y0 + scaling·(drop(x)·Aᵀ)·Bᵀ at strided positions.
func (f *ref64) forward(x, a, b []float64) []float64 {
	y := append([]float64(nil), f.y0...)
	for i := 0; i < f.rows; i++ {
		u := make([]float64, f.r)
		for k := 0; k < f.r; k++ {
			for c := 0; c < f.in; c++ {
				u[k] += x[i*f.ldx+c] * f.keepScale[i*f.in+c] * a[k*f.in+c]
			}
		}
		for o := 0; o < f.out; o++ {
			s := 0.0
			for k := 0; k < f.r; k++ {
				s += u[k] * b[o*f.r+k]
			}
			y[i*f.ldy+o] += f.scaling * s
		}
	}
	return y
}

func (f *ref64) loss(x, a, b []float64) float64 {
	y := f.forward(x, a, b)
	s := 0.0
	for i := range y {
		s += y[i] * f.lossW[i]
	}
	return s
}

// numGrad is the central difference of loss with respect to v[i].
func numGrad(v []float64, i int, loss func() float64) float64 {
	const h = 1e-3
	old := v[i]
	v[i] = old + h
	lp := loss()
	v[i] = old - h
	lm := loss()
	v[i] = old
	return (lp - lm) / (2 * h)
}

func to32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

func randVec(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(float32(rng.NormFloat64()))
	}
	return v
}

// TestAdapterFiniteDifferences checks Forward against a float64
// reference and Backward (dA, dB, dx) against central differences of that
// reference, on random small shapes with and without strides and dropout.
func TestAdapterFiniteDifferences(t *testing.T) {
	cases := []struct {
		rows, in, out, r  int
		padX, padY, padDX int
		scaling, p        float64
		train             bool
		seed              uint64
		acc               bool // dx already holds values (accumulate)
		name              string
	}{
		{name: "dense", rows: 5, in: 7, out: 6, r: 3, scaling: 2},
		{name: "rank1", rows: 1, in: 4, out: 9, r: 1, scaling: 0.5},
		{name: "qkv_strided_y", rows: 6, in: 8, out: 8, r: 4, padY: 16, scaling: 2, acc: true},
		{name: "strided_everything", rows: 4, in: 5, out: 3, r: 2, padX: 3, padY: 2, padDX: 4, scaling: 1.5, acc: true},
		{name: "dropout_train", rows: 7, in: 9, out: 5, r: 3, p: 0.3, train: true, seed: 42, scaling: 2, acc: true},
		{name: "dropout_strided", rows: 3, in: 6, out: 4, r: 2, padX: 2, padY: 5, padDX: 1, p: 0.5, train: true, seed: 7, scaling: 1},
		{name: "dropout_eval_is_off", rows: 4, in: 6, out: 4, r: 2, p: 0.5, train: false, seed: 7, scaling: 1},
		{name: "rank_above_width", rows: 3, in: 2, out: 3, r: 5, scaling: 0.25},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 99))
			be := cpu.New()
			f := &ref64{rows: tc.rows, in: tc.in, out: tc.out, r: tc.r, ldx: tc.in + tc.padX, ldy: tc.out + tc.padY,
				scaling: tc.scaling, p: tc.p, seed: tc.seed, train: tc.train}
			lddx := tc.in + tc.padDX
			f.x = randVec(rng, tc.rows*f.ldx)
			f.a = randVec(rng, tc.r*tc.in)
			f.b = randVec(rng, tc.out*tc.r)
			f.y0 = randVec(rng, tc.rows*f.ldy)
			f.lossW = make([]float64, tc.rows*f.ldy)
			for i := 0; i < tc.rows; i++ {
				for o := 0; o < tc.out; o++ {
					f.lossW[i*f.ldy+o] = float64(float32(rng.NormFloat64()))
				}
			}
			f.keepScale = make([]float64, tc.rows*tc.in)
			for i := range f.keepScale {
				f.keepScale[i] = 1
				if tc.train && tc.p > 0 {
					f.keepScale[i] = 0
					if backend.Keep(tc.seed, uint64(i), float32(tc.p)) {
						f.keepScale[i] = float64(1 / (1 - float32(tc.p)))
					}
				}
			}

			ad, err := newStandalone(be, "m", tc.in, tc.out, tc.r, float32(tc.scaling), float32(tc.p))
			require.NoError(t, err)
			be.Upload(ad.A.W, to32(f.a))
			be.Upload(ad.B.W, to32(f.b))
			x := cpu.F32(to32(f.x))
			y := cpu.F32(to32(f.y0))
			require.NoError(t, ad.Forward(be, nn.AdapterForward{X: x, LDX: f.ldx, Y: y, LDY: f.ldy, Rows: tc.rows, Train: tc.train, Seed: tc.seed}))
			wantY := f.forward(f.x, f.a, f.b)
			for i := range wantY {
				assert.InDeltaf(t, wantY[i], float64(y[i]), 1e-4*(1+math.Abs(wantY[i])), "y[%d]", i)
			}

			dx0 := make([]float64, tc.rows*lddx)
			if tc.acc {
				dx0 = randVec(rng, len(dx0))
			}
			dx := cpu.F32(to32(dx0))
			require.NoError(t, ad.Backward(be, nn.AdapterBackward{X: x, LDX: f.ldx, DY: cpu.F32(to32(f.lossW)), LDDY: f.ldy, DX: dx, LDDX: lddx, Rows: tc.rows, Train: tc.train, Seed: tc.seed}))
			dA := make([]float32, ad.A.Size())
			dB := make([]float32, ad.B.Size())
			be.Download(dA, ad.A.G)
			be.Download(dB, ad.B.G)
			loss := func() float64 { return f.loss(f.x, f.a, f.b) }
			check := func(what string, got float32, want float64) {
				assert.InDeltaf(t, want, float64(got), 1e-4*(1+math.Abs(want)), "%s", what)
			}
			for i := range f.a {
				check(fmt.Sprintf("dA[%d]", i), dA[i], numGrad(f.a, i, loss))
			}
			for i := range f.b {
				check(fmt.Sprintf("dB[%d]", i), dB[i], numGrad(f.b, i, loss))
			}
			for i := 0; i < tc.rows; i++ {
				for c := 0; c < lddx; c++ {
					got := float64(dx[i*lddx+c]) - float64(float32(dx0[i*lddx+c]))
					want := 0.0
					if c < tc.in {
						want = numGrad(f.x, i*f.ldx+c, loss)
					}
					check(fmt.Sprintf("dx[%d,%d]", i, c), float32(got), want)
				}
			}
		})
	}
}

func TestAdapterBackwardNeedsForward(t *testing.T) {
	be := cpu.New()
	ad, err := newStandalone(be, "m", 3, 3, 1, 1, 0)
	require.NoError(t, err)
	x := make(cpu.F32, 6)
	err = ad.Backward(be, nn.AdapterBackward{X: x, LDX: 3, DY: make(cpu.F32, 6), LDDY: 3, DX: make(cpu.F32, 6), LDDX: 3, Rows: 2})
	require.ErrorContains(t, err, "without a forward pass")
}
