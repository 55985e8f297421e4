package infer_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// Scoring pairs with a runner: the batch's sequences are split across the
// CPU's lanes and packed to their real tokens; the runner reads the
// model's weights in place. (crossencoder.Load and Score do this from
// text, with a tokenizer and a queue; hfmodel.Load reads real weights.)
func Example() {
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	m, err := nn.New(cpu.NewWorkers(2), cfg)
	if err != nil {
		log.Fatal(err)
	}
	m.InitRandom(1, 0.02)
	run, err := infer.New(m)
	if err != nil {
		log.Fatal(err)
	}
	// Weights packed once for the passes that follow (a no-op where the
	// CPU does not pack); release before the weights change.
	release, err := run.PackWeights(infer.DefaultPackBudget)
	if err != nil {
		log.Fatal(err)
	}
	defer release()

	// Three pairs, [CLS] query [SEP] passage [SEP], the last one padded.
	b := &nn.Batch{N: 3, S: 6}
	for i := range b.N {
		b.InputIDs = append(b.InputIDs, 1, 10, 2, int32(20+i), int32(30+i), 2)
		b.TypeIDs = append(b.TypeIDs, 0, 0, 0, 1, 1, 1)
		b.Mask = append(b.Mask, 1, 1, 1, 1, 1, 1)
	}
	b.InputIDs[2*6+4], b.InputIDs[2*6+5], b.Mask[2*6+4], b.Mask[2*6+5] = 0, 0, 0, 0
	logits, err := run.Forward(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d scores on %d lanes\n", len(logits), run.Count())
	// Output:
	// 3 scores on 2 lanes
}
