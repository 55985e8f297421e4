//go:build cgo && amd64

package bench

/*
#cgo CFLAGS: -O2
float rr_fma_loop(long iters, float seed);
int rr_bench_has_fma(void);
*/
import "C"

// fmaFLOPsPerIter is the float32 FLOPs of one rr_fma_loop iteration.
const fmaFLOPsPerIter = 12 * 8 * 2

func fmaAvailable() bool { return C.rr_bench_has_fma() != 0 }

func fmaLoop(iters int) float32 { return float32(C.rr_fma_loop(C.long(iters), 1)) }
