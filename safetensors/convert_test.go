package safetensors

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func f32(bits uint32) float32 { return math.Float32frombits(bits) }

func TestF32ToBF16(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"tie rounds down to even", f32(0x3f808000), 0x3f80},
		{"tie rounds up to even", f32(0x3f818000), 0x3f82},
		{"above tie rounds up", f32(0x3f808001), 0x3f81},
		{"below tie rounds down", f32(0x3f807fff), 0x3f80},
		{"max float32 overflows to inf", math.MaxFloat32, 0x7f80},
		{"largest bf16 stays", f32(0x7f7f0000), 0x7f7f},
		{"+inf", float32(math.Inf(1)), 0x7f80},
		{"-inf", float32(math.Inf(-1)), 0xff80},
		{"f32 subnormal kept", f32(0x00010000), 0x0001},
		{"smallest f32 subnormal to zero", f32(0x00000001), 0x0000},
		{"subnormal tie to even zero", f32(0x00008000), 0x0000},
		{"subnormal tie to even two", f32(0x00018000), 0x0002},
		{"subnormal rounds into normal", f32(0x007fffff), 0x0080},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equalf(t, c.want, F32ToBF16(c.in), "got %#04x", F32ToBF16(c.in))
		})
	}
}

func TestBF16NaN(t *testing.T) {
	for _, bits := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7f800100, 0xff812345} {
		h := F32ToBF16(f32(bits))
		got := BF16ToF32(h)
		assert.Truef(t, math.IsNaN(float64(got)), "%#08x -> %#04x is not NaN", bits, h)
		assert.Equal(t, bits>>31, math.Float32bits(got)>>31, "sign kept")
	}
}

func TestBF16AllPatternsRoundTrip(t *testing.T) {
	for u := 0; u <= 0xffff; u++ {
		f := BF16ToF32(uint16(u))
		if math.IsNaN(float64(f)) {
			require.True(t, math.IsNaN(float64(BF16ToF32(F32ToBF16(f)))))
			continue
		}
		require.Equalf(t, uint16(u), F32ToBF16(f), "pattern %#04x", u)
	}
}

func TestF32ToF16(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"max half", 65504, 0x7bff},
		{"just below overflow tie", 65519.99, 0x7bff},
		{"overflow tie goes to inf (even)", 65520, 0x7c00},
		{"large overflows", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"tie rounds down to even", 1 + 1.0/2048, 0x3c00},
		{"tie rounds up to even", 1 + 3.0/2048, 0x3c02},
		{"above tie rounds up", f32(0x3f801001), 0x3c01},
		{"smallest normal", 1.0 / 16384, 0x0400},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff},
		{"half smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000},
		{"above half smallest subnormal", 1.5 / (1 << 25) * 1.01, 0x0001},
		{"subnormal tie to even two", 3.0 / (1 << 25), 0x0002},
		{"subnormal tie to even two (down)", 5.0 / (1 << 25), 0x0002},
		{"subnormal rounds up into normal", 1023.75 / (1 << 24), 0x0400},
		{"quarter smallest subnormal", 1.0 / (1 << 26), 0x0000},
		{"f32 subnormal to zero", f32(0x00000001), 0x0000},
		{"negative subnormal", -1.0 / (1 << 24), 0x8001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equalf(t, c.want, F32ToF16(c.in), "got %#04x", F32ToF16(c.in))
		})
	}
}

func TestF16ToF32(t *testing.T) {
	cases := []struct {
		in   uint16
		want float32
	}{
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},
		{0x0001, 1.0 / (1 << 24)},
		{0x8001, -1.0 / (1 << 24)},
		{0x03ff, 1023.0 / (1 << 24)},
		{0x0400, 1.0 / 16384},
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
		{0x8000, float32(math.Copysign(0, -1))},
	}
	for _, c := range cases {
		assert.Equalf(t, math.Float32bits(c.want), math.Float32bits(F16ToF32(c.in)), "%#04x", c.in)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		assert.Truef(t, math.IsNaN(float64(F16ToF32(h))), "%#04x", h)
		assert.Truef(t, math.IsNaN(float64(F16ToF32(F32ToF16(F16ToF32(h))))), "%#04x round trip", h)
	}
}

func TestF16AllPatternsRoundTrip(t *testing.T) {
	for u := 0; u <= 0xffff; u++ {
		f := F16ToF32(uint16(u))
		if math.IsNaN(float64(f)) {
			continue
		}
		require.Equalf(t, uint16(u), F32ToF16(f), "pattern %#04x", u)
	}
}

// TestF16NearestEven checks F32ToF16 against its definition on random
// float32 values: no half value is closer, and ties go to the even one.
func TestF16NearestEven(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		// Exponents concentrated around the half range.
		bits := rng.Uint32()&0x807fffff | uint32(127-27+rng.Intn(45))<<23
		if i%7 == 0 {
			bits &^= 0x1fff // exact and tie cases
			bits |= uint32(rng.Intn(2)) << 12
		}
		x := float64(f32(bits))
		h := F32ToF16(float32(x))
		got := float64(F16ToF32(h))
		if math.IsInf(got, 0) {
			require.GreaterOrEqualf(t, math.Abs(x), 65520.0, "%v rounded to inf", x)
			continue
		}
		d := math.Abs(got - x)
		for _, nb := range []uint16{h + 1, h - 1} {
			if nb&0x7fff > 0x7c00 || (h&0x7fff == 0 && nb == h-1) {
				continue
			}
			alt := float64(F16ToF32(nb))
			if math.Signbit(alt) != math.Signbit(got) && alt != 0 && got != 0 {
				continue
			}
			da := math.Abs(alt - x)
			require.LessOrEqualf(t, d, da, "%v -> %#04x (%v), but %#04x (%v) is closer", x, h, got, nb, alt)
			if d == da {
				require.Zerof(t, h&1, "%v: tie not rounded to even", x)
			}
		}
	}
}
