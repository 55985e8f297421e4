//go:build cuda

package cuda_test

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/cuda"
)

// Open GPU 0 as a backend.Backend (the CPU backend where there is none):
// models, scoring and training take either.
func Example() {
	var be backend.Backend
	if g, err := cuda.New(cuda.Options{Device: 0}); err == nil {
		defer g.Close()
		be = g
	} else {
		be = cpu.New()
	}
	a, _ := be.Alloc(4)
	c, _ := be.Alloc(4)
	be.Upload(a, []float32{1, 2, 3, 4})
	be.Gemm(false, true, 2, 2, 2, 1, a, 2, a, 2, 0, c, 2) // C = A·Aᵀ
	out := make([]float32, 4)
	be.Download(out, c)
	fmt.Println(out)
	// Output:
	// [5 11 11 25]
}
