package backend

// Uniform returns a float32 in [0, 1) that depends only on seed and the
// element index i. Every backend draws dropout masks from it, so a mask is
// regenerated instead of stored, and the CPU and CUDA backends agree bit
// for bit. The generator is SplitMix64's finaliser over seed + i·φ, taking
// the top 24 bits.
func Uniform(seed, i uint64) float32 {
	z := seed + (i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float32(z>>40) * (1.0 / (1 << 24))
}

// Keep reports whether dropout with probability p keeps element i.
func Keep(seed, i uint64, p float32) bool { return Uniform(seed, i) >= p }

// SubSeed derives an independent stream for one dropout site from a
// step seed and a site number, so that each layer and each dropout call
// in it draws its own mask.
func SubSeed(seed uint64, site uint64) uint64 {
	z := seed ^ (site+1)*0xD1B54A32D192ED03
	z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCD
	z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53
	return z ^ (z >> 33)
}
