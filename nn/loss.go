package nn

import (
	"fmt"
	"math"
	"slices"

	"github.com/rerank-go/rerank/internal/mathx"
)

// GroupSoftmaxCE is FlagEmbedding's cross-encoder loss: the logits of N =
// B·G rows are reshaped to [B, G], candidate 0 of each group is the
// positive, and the loss is mean_b(logsumexp(scores[b]) − scores[b,0]),
// i.e. nn.CrossEntropyLoss with target 0. It returns the loss and
// d(loss)/d(logits), computed in float64.
func GroupSoftmaxCE(logits []float32, groupSize int) (float32, []float32, error) {
	return AppendGroupSoftmaxCE(nil, logits, groupSize)
}

// AppendGroupSoftmaxCE is GroupSoftmaxCE appending d(loss)/d(logits) to
// dst and returning the extended slice, so that a training loop can reuse
// one buffer (pass buf[:0]).
func AppendGroupSoftmaxCE(dst, logits []float32, groupSize int) (float32, []float32, error) {
	if groupSize <= 0 || len(logits) == 0 || len(logits)%groupSize != 0 {
		return 0, dst, fmt.Errorf("group softmax: %d logits do not split into groups of %d", len(logits), groupSize)
	}
	B := len(logits) / groupSize
	dst = slices.Grow(dst, len(logits))
	grad := dst[len(dst) : len(dst)+len(logits)]
	var loss float64
	for b := 0; b < B; b++ {
		row := logits[b*groupSize : (b+1)*groupSize]
		lse := mathx.LogSumExp(row)
		loss += lse - float64(row[0])
		for j, v := range row {
			g := math.Exp(float64(v)-lse) / float64(B)
			if j == 0 {
				g -= 1 / float64(B)
			}
			grad[b*groupSize+j] = float32(g)
		}
	}
	return float32(loss / float64(B)), dst[:len(dst)+len(logits)], nil
}
