package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/safetensors"
)

// Write tensors in Hugging Face's safetensors format and read them back,
// converted to float32 whatever their stored dtype.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	err = safetensors.Write(path, []safetensors.Tensor{
		safetensors.BF16Tensor("classifier.weight", []int{1, 4}, []float32{0.5, -1, 2, 0.25}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	f, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	v, shape, err := f.Float32("classifier.weight")
	if err != nil {
		log.Fatal(err)
	}
	info, _ := f.Info("classifier.weight")
	fmt.Println(f.Names(), info.DType, shape, v)
	// Output:
	// [classifier.weight] BF16 [1 4] [0.5 -1 2 0.25]
}
