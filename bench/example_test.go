package bench_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/bench"
)

// Measure training steps of a model shape (as `rerank bench` does):
// timing, throughput, FLOPs and allocations per step.
func Example() {
	res, err := bench.Run("train", bench.Options{Shape: "minilm-l6", Layers: 1, Seq: 16, Batch: 4, Group: 2,
		Warmup: 1, Steps: 2, LR: 1e-5, Seed: 1, Backend: cpu.New()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Mode, res.Shape, res.Preset.Hidden, res.N, "sequences of", res.Seq, "tokens")
	fmt.Println(res.StepMedian > 0, res.PairsPerS > 0)
	// Output:
	// train minilm-l6 384 4 sequences of 16 tokens
	// true true
}
