package backend_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
)

// Every op goes through a Backend: memory lives on the device, and the
// host moves data in and out with Upload and Download. The CPU backend is
// one; the CUDA backend (package cuda, build tag cuda) is another.
func Example() {
	var be backend.Backend = cpu.New()
	a, err := be.Alloc(2 * 3) // a 2×3 matrix
	if err != nil {
		log.Fatal(err)
	}
	b, _ := be.Alloc(2 * 3) // a second 2×3 matrix
	c, _ := be.Alloc(2 * 2)
	be.Upload(a, []float32{1, 2, 3, 4, 5, 6})
	be.Upload(b, []float32{1, 0, 0, 0, 1, 0})
	// C = A·Bᵀ: row-major, with B transposed, as a Linear layer computes it.
	be.Gemm(false, true, 2, 2, 3, 1, a, 3, b, 3, 0, c, 2)
	out := make([]float32, 4)
	be.Download(out, c)
	fmt.Println(be.Name(), out)
	// Output:
	// cpu [1 2 4 5]
}
