// Command routes exits 0 when this build and CPU can take the GEMM route
// named by its argument (cpu.GemmRoutes), 1 otherwise; make
// gotest-routes uses it to skip the routes a CI machine lacks.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/rerank-go/rerank/backend/cpu"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: routes avx512|avx2|openblas|go")
		os.Exit(2)
	}
	if !slices.Contains(cpu.GemmRoutes(), os.Args[1]) {
		os.Exit(1)
	}
}
