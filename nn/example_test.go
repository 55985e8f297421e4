package nn_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
)

// One training step by hand: forward, group softmax cross-entropy,
// backward, AdamW. (train.Run does this over a data set, with schedules,
// clipping and checkpoints; hfmodel.Load reads real weights.)
func Example() {
	be := cpu.New()
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	m, err := nn.New(be, cfg)
	if err != nil {
		log.Fatal(err)
	}
	m.InitRandom(1, 0.02)
	if err := m.EnableGrads(nil); err != nil { // every parameter trains
		log.Fatal(err)
	}
	opt, err := optim.NewAdamW(be, m.Params(), 0.01)
	if err != nil {
		log.Fatal(err)
	}

	// Two queries, each with its positive then one negative (groups of 2),
	// as token ids: [CLS] query [SEP] passage [SEP], 6 tokens, no padding.
	b := &nn.Batch{N: 4, S: 6}
	for i := range b.N {
		b.InputIDs = append(b.InputIDs, 1, int32(10+i/2), 2, int32(20+i), int32(30+i), 2)
		b.TypeIDs = append(b.TypeIDs, 0, 0, 0, 1, 1, 1)
		b.Mask = append(b.Mask, 1, 1, 1, 1, 1, 1)
	}
	logits, err := m.Forward(b, nn.RunOptions{Train: true})
	if err != nil {
		log.Fatal(err)
	}
	ce, dlogits, err := loss.GroupSoftmaxCE(logits, 2)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Backward(dlogits); err != nil {
		log.Fatal(err)
	}
	if err := opt.Step(1e-3); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d logits, loss %.1f (ln 2 at random init), %d optimizer step\n", len(logits), ce, opt.StepCount())
	// Output:
	// 4 logits, loss 0.7 (ln 2 at random init), 1 optimizer step
}
