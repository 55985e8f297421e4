package lora_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

// Attach PEFT-compatible LoRA adapters to a model: only they (and the
// head PEFT saves with them) train; Save writes adapter_config.json and
// adapter_model.safetensors, Merge folds them into the weights.
func Example() {
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	m, err := nn.New(cpu.New(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	m.InitRandom(1, 0.02)

	lc := lora.DefaultConfig()
	lc.R, lc.Alpha = 4, 8
	ad, err := lora.Attach(m, lc, 42)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ad.WrappedModules())
	fmt.Println(len(ad.List()), "adapters,", ad.NumTrainable(), "trainable parameters")
	if err := ad.Merge(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("merged:", ad.Merged())
	// Output:
	// [bert.encoder.layer.0.attention.self.query bert.encoder.layer.0.attention.self.value bert.encoder.layer.1.attention.self.query bert.encoder.layer.1.attention.self.value]
	// 4 adapters, 1057 trainable parameters
	// merged: true
}
