package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/train"
)

// Fine-tune a model directory on FlagEmbedding training data for two
// steps; the trained model is written to the output directory.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	be := cpu.New()
	// A tiny randomly initialised model stands in for a real one.
	model := filepath.Join(dir, "tiny")
	if _, err := hfmodel.Init(be, hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT,
		Tokenizer: filepath.Join("..", "examples", "bert-uncased-tokenizer"), Output: model, Seed: 7}); err != nil {
		log.Fatal(err)
	}
	data := filepath.Join(dir, "train.jsonl")
	if err := os.WriteFile(data, []byte(`{"query": "what lowers the risk of a heart attack", "pos": ["Aspirin lowers the risk of myocardial infarction."], "neg": ["The river was calm.", "A wing generates lift."]}
{"query": "what is a wing", "pos": ["A wing generates lift."], "neg": ["Aspirin is a drug.", "The river was calm."]}
`), 0o644); err != nil {
		log.Fatal(err)
	}

	args := train.DefaultArgs()
	args.ModelDir, args.TrainData, args.OutputDir = model, data, filepath.Join(dir, "out")
	args.CacheDir = filepath.Join(dir, "cache") // default: the user's cache directory
	args.TrainGroupSize, args.PerDeviceTrainBatchSize, args.MaxSteps = 2, 2, 2
	args.QueryMaxLen, args.PassageMaxLen = 16, 48
	res, err := train.Run(context.Background(), be, args, train.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("steps:", res.Steps, "losses:", len(res.Losses))
	_, err = os.Stat(filepath.Join(res.ModelDir, "model.safetensors"))
	fmt.Println("model written:", err == nil)
	// Output:
	// steps: 2 losses: 2
	// model written: true
}
