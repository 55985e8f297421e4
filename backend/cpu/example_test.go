package cpu_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
)

// A CPU backend with a chosen number of workers and the portable pure-Go
// matrix products (the default takes the fastest route the CPU runs:
// AVX-512, AVX2 or OpenBLAS; GemmRoutes lists them).
func Example() {
	be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: cpu.GemmGo})
	if err != nil {
		log.Fatal(err)
	}
	x := cpu.F32{1, 2, 3, 4}
	y := cpu.F32{10, 20, 30, 40}
	z := make(cpu.F32, 4)
	be.Add(z, x, y)
	fmt.Println(z)
	// Output:
	// [11 22 33 44]
}
