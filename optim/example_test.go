package optim_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
)

// The update of a training step as Hugging Face Trainer makes it: clip
// the gradients' global norm, take the learning rate from the warmup and
// linear-decay schedule, and step AdamW (weight decay on weights only, not
// on biases and LayerNorm parameters).
func Example() {
	be := cpu.New()
	m, err := nn.New(be, nn.Config{Arch: nn.BERT, VocabSize: 100, Hidden: 32, Layers: 1, Heads: 2, Intermediate: 64,
		MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1})
	if err != nil {
		log.Fatal(err)
	}
	m.InitRandom(1, 0.02)
	if err := m.EnableGrads(nil); err != nil {
		log.Fatal(err)
	}
	// ... Forward and Backward fill the gradients (see package nn) ...
	for _, p := range m.Params() {
		be.Fill(p.G, 0.01)
	}

	opt, err := optim.NewAdamW(be, m.Params(), 0.01)
	if err != nil {
		log.Fatal(err)
	}
	sched := optim.LinearSchedule{Peak: 2e-5, Warmup: optim.WarmupSteps(0.1, 100), Total: 100}
	norm := optim.ClipGradNorm(be, m.Params(), 1.0)
	if err := opt.Step(float32(sched.LR(1))); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("grad norm before clipping %.3f; lr at step 1 %.0e, at step 10 %.0e, at step 55 %.0e\n",
		norm, sched.LR(1), sched.LR(10), sched.LR(55))
	// Output:
	// grad norm before clipping 1.225; lr at step 1 2e-06, at step 10 2e-05, at step 55 1e-05
}
