package safetensors

import "math"

// BF16ToF32 converts a bfloat16 bit pattern to float32 (exact).
func BF16ToF32(u uint16) float32 { return math.Float32frombits(uint32(u) << 16) }

// F32ToBF16 converts f to the nearest bfloat16, ties to even (as PyTorch
// does). Values beyond the bfloat16 range round to ±Inf; a NaN stays a NaN
// (sign and leading payload bits kept, quiet bit set).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: truncation could give Inf
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToF32 converts an IEEE 754 half-precision bit pattern to float32
// (exact, including subnormals, infinities and NaN payloads).
func F16ToF32(u uint16) float32 {
	sign := uint32(u&0x8000) << 16
	exp := uint32(u>>10) & 0x1f
	mant := uint32(u & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal: mant × 2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		return -v
	}
	return v
}

// F32ToF16 converts f to the nearest IEEE 754 half-precision value, ties to
// even. Values beyond the half range round to ±Inf, tiny values to
// subnormals or ±0; a NaN stays a NaN (sign and leading payload bits kept,
// quiet bit set).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e >= 1 { // normal half
		h := uint32(e)<<10 | mant>>13
		rem := mant & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to Inf: correct
		}
		return sign | uint16(h)
	}
	// Subnormal half (or zero): value / 2^-24 = M × 2^(exp-126) with the
	// 24-bit significand M; float32 subnormals (exp 0) are far below range.
	if exp == 0 {
		return sign
	}
	m := mant | 0x800000
	shift := uint(126 - exp) // ≥ 14
	if shift > 24 {
		return sign // below half the smallest subnormal
	}
	q := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++ // may become 0x400, the smallest normal: correct
	}
	return sign | uint16(q)
}
