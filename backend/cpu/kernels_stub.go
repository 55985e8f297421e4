//go:build !cgo || noblas || !amd64

package cpu

// Without cgo, OpenBLAS or amd64 there are no C kernels: every op takes
// its pure-Go path.
const haveC = false

// geluWide: no AVX-512 GELU without the C kernels.
func (*Backend) geluWide() bool { return false }

type tileArgs struct {
	ld, rows, cols, S int
	pd                float32
	seed, base        uint64
}

type headArgs struct {
	S, L, d, ld, ldc int
	scale, pd        float32
	seed, base       uint64
}

func cGelu(out, x []float32, wide bool)                              { panic("cpu: no C kernels") }
func cGeluBackward(dx, dout, x []float32, wide bool)                 { panic("cpu: no C kernels") }
func cDropout(out, x []float32, p, scale float32, seed, base uint64) { panic("cpu: no C kernels") }
func cAddBias(y, b []float32, rows, cols int)                        { panic("cpu: no C kernels") }
func cColSums(acc []float64, x []float32, rows, cols int)            { panic("cpu: no C kernels") }
func cAddLayerNorm(out, mean, rstd, sum, x, res, g, b []float32, rows, dim int, eps float32) {
	panic("cpu: no C kernels")
}
func cLayerNormBackward(dx []float32, ag, ab []float64, dy, x, mean, rstd, g []float32, rows, dim int) {
	panic("cpu: no C kernels")
}
func cAdamW(p, g, m, v []float32, decay float32, useDecay bool, b1, b2, om1, om2, bc2sqrt, step, eps float32) {
	panic("cpu: no C kernels")
}
func cAttnUseAVX512(on bool)                                             { panic("cpu: no C kernels") }
func cAttnUseBest()                                                      { panic("cpu: no C kernels") }
func cAttnKernel(k int)                                                  { panic("cpu: no C kernels") }
func cAttnFwd(h *headArgs, q, k, v, p, ctx, madd, scratch []float32)     { panic("cpu: no C kernels") }
func cAttnBwd(h *headArgs, q, k, v, p, g, dq, dk, dv, scratch []float32) { panic("cpu: no C kernels") }
func cTileFwd(t *tileArgs, s, madd, m, l, acc []float32, ldacc, d int)   { panic("cpu: no C kernels") }
func cTileP(t *tileArgs, s, pv, madd, lse []float32)                     { panic("cpu: no C kernels") }
func cTileDS(t *tileArgs, dp, p, pv, D []float32)                        { panic("cpu: no C kernels") }
