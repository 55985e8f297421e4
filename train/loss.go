package train

import (
	"github.com/rerank-go/rerank/loss"
)

// Loss turns the logits of B groups of G candidates (positive first) into
// a loss, appending d(loss)/d(logits) to dst (package loss, where every
// loss lives).
type Loss = loss.Func

// LossByName returns the loss Args.Loss names: ce, bce or distill
// (loss.ByName).
func LossByName(name string) (Loss, error) { return loss.ByName(name) }
