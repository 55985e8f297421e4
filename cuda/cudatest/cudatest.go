//go:build cuda

// Package cudatest opens the GPU for the cuda-tagged tests of other
// packages (lora, nn, ...), so that every one behaves alike: without a
// usable GPU the test is skipped with a message starting "no usable GPU"
// and containing "no CUDA device"; with RERANK_REQUIRE_GPU=1 (set by
// scripts/gpu-check.sh on a GPU machine) it fails instead, so a GPU run
// can never pass by skipping.
package cudatest

import (
	"os"
	"testing"

	"github.com/rerank-go/rerank/cuda"
)

// Open returns a backend on the GPU, closed when the test ends, or skips
// (fails under RERANK_REQUIRE_GPU=1) when there is none.
func Open(t testing.TB, opt cuda.Options) *cuda.Backend {
	t.Helper()
	b, err := cuda.New(opt)
	if err != nil {
		if os.Getenv("RERANK_REQUIRE_GPU") == "1" {
			t.Fatalf("no usable GPU (RERANK_REQUIRE_GPU=1): %v", err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
