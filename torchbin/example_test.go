package torchbin_test

import (
	"fmt"
	"log"
	"path/filepath"
	"strings"

	"github.com/rerank-go/rerank/torchbin"
)

// Read a PEFT adapter_model.bin written by torch.save: list its tensors,
// then read one as float32. Nothing in the pickle is executed. A model
// directory's pytorch_model.bin (or its shards) opens with OpenDir.
func Example() {
	f, err := torchbin.Open(filepath.Join("testdata", "bert_tiny_lora_qkv-2.x.bin"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	names := f.Names()
	fmt.Println(len(names), "tensors")
	for _, name := range names {
		if !strings.Contains(name, "layer.0.attention.self.query") && !strings.Contains(name, "classifier") {
			continue
		}
		t, err := f.Info(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, t.DType, t.Shape)
	}
	w, shape, err := f.Float32("base_model.model.classifier.weight")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v %.4f\n", shape, w[:3])
	// Output:
	// 14 tensors
	// base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight F32 [4 32]
	// base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight F32 [32 4]
	// base_model.model.classifier.bias F32 [1]
	// base_model.model.classifier.weight F32 [1 32]
	// [1 32] [-0.2236 -0.0950 -0.1082]
}
