package hfmodel_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// Load a Hugging Face model directory (config.json, model.safetensors)
// onto a backend, as the nn.Model that scoring and training run.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A tiny randomly initialised BERT reranker stands in for a real one
	// such as a bge-reranker-base directory.
	model := filepath.Join(dir, "tiny")
	if _, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT,
		Tokenizer: filepath.Join("..", "examples", "bert-uncased-tokenizer"), Output: model, Seed: 7}); err != nil {
		log.Fatal(err)
	}

	m, info, err := hfmodel.Load(cpu.New(), model, hfmodel.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Config.Architectures, m.Cfg.Layers, "layers of", m.Cfg.Hidden)
	// Output:
	// [BertForSequenceClassification] 2 layers of 128
}
