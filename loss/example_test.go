package loss_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/loss"
)

// A training step's loss: two groups of a positive and a negative, the
// gradient written into a buffer the loop reuses.
func Example() {
	ce, err := loss.ByName("ce")
	if err != nil {
		log.Fatal(err)
	}
	logits := []float32{2, 0, 0, 0}
	grad := make([]float32, 0, len(logits))
	l, grad, err := ce(grad[:0], logits, 2, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loss %.3f, d/dlogits %.3f\n", l, grad)
	// Output:
	// loss 0.410, d/dlogits [-0.060 0.060 -0.250 0.250]
}
