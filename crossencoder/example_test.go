package crossencoder_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// Load a model directory once, then score passages for a query from any
// number of goroutines: their pairs share the forward passes.
func Example() {
	// A tiny randomly initialised model stands in for a real one such as
	// a fine-tuned bge-reranker-base directory.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	model := filepath.Join(dir, "tiny")
	if _, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT,
		Tokenizer: filepath.Join("..", "examples", "bert-uncased-tokenizer"), Output: model, Seed: 7}); err != nil {
		log.Fatal(err)
	}

	m, err := crossencoder.Load(cpu.New(), model, crossencoder.Options{MaxLen: 256, Sigmoid: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	scores, err := m.Rerank(ctx, "what lowers the risk of a heart attack", []string{
		"Aspirin lowers the risk of myocardial infarction.",
		"The river was calm all afternoon.",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(scores), scores[0] > 0 && scores[0] < 1)

	// Pairs of different queries, in one call.
	pairs, err := m.RerankPairs(ctx, []crossencoder.Pair{
		{Query: "what lowers the risk of a heart attack", Passage: "Aspirin lowers the risk of myocardial infarction."},
		{Query: "what is a wing", Passage: "A wing generates lift."},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pairs[0] == scores[0])
	// Output:
	// 2 true
	// true
}
