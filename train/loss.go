package train

import (
	"fmt"
	"math"

	"github.com/rerank-go/rerank/internal/mathx"
	"github.com/rerank-go/rerank/nn"
)

// Loss turns the logits of B groups of G candidates (positive first) into
// a loss and d(loss)/d(logits). teacher, when not nil, holds one teacher
// score per logit.
type Loss func(logits []float32, groupSize int, teacher []float64) (float64, []float32, error)

// LossByName returns ce, bce or distill.
func LossByName(name string) (Loss, error) {
	switch name {
	case "ce":
		return CELoss, nil
	case "bce":
		return BCELoss, nil
	case "distill":
		return DistillLoss, nil
	}
	return nil, fmt.Errorf("loss %q: want ce, bce or distill", name)
}

// CELoss is FlagEmbedding's group softmax cross-entropy with target 0
// (nn.GroupSoftmaxCE).
func CELoss(logits []float32, groupSize int, _ []float64) (float64, []float32, error) {
	l, g, err := nn.GroupSoftmaxCE(logits, groupSize)
	return float64(l), g, err
}

// BCELoss is pointwise binary cross-entropy with logits, averaged over
// every pair (sentence-transformers' CrossEncoder default): label 1 for
// the first candidate of each group, 0 for the rest.
func BCELoss(logits []float32, groupSize int, _ []float64) (float64, []float32, error) {
	if groupSize <= 0 || len(logits) == 0 || len(logits)%groupSize != 0 {
		return 0, nil, fmt.Errorf("bce: %d logits do not split into groups of %d", len(logits), groupSize)
	}
	n := float64(len(logits))
	grad := make([]float32, len(logits))
	var loss float64
	for i, v := range logits {
		x := float64(v)
		y := 0.0
		if i%groupSize == 0 {
			y = 1
		}
		// max(x,0) - x·y + log(1 + exp(-|x|)), as torch computes it.
		loss += math.Max(x, 0) - x*y + math.Log1p(math.Exp(-math.Abs(x)))
		grad[i] = float32((sigmoid(x) - y) / n)
	}
	return loss / n, grad, nil
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// DistillLoss is FlagEmbedding's reranker loss with teacher scores: the
// group cross-entropy plus mean_b(-Σ_j softmax(teacher_b)_j ·
// log_softmax(logits_b)_j).
func DistillLoss(logits []float32, groupSize int, teacher []float64) (float64, []float32, error) {
	ce, grad, err := CELoss(logits, groupSize, nil)
	if err != nil {
		return 0, nil, err
	}
	if len(teacher) != len(logits) {
		return 0, nil, fmt.Errorf("distill: %d teacher scores for %d logits (every line needs pos_scores and neg_scores)", len(teacher), len(logits))
	}
	B := len(logits) / groupSize
	var kd float64
	for b := 0; b < B; b++ {
		s := logits[b*groupSize : (b+1)*groupSize]
		tch := teacher[b*groupSize : (b+1)*groupSize]
		// teacher softmax, student log-softmax
		tlse, lse := mathx.LogSumExp(tch), mathx.LogSumExp(s)
		for j := range s {
			t := math.Exp(tch[j] - tlse)
			kd -= t * (float64(s[j]) - lse)
			// d/ds_j of -Σ t·log_softmax(s) = softmax(s)_j - t_j (Σt = 1)
			grad[b*groupSize+j] += float32((math.Exp(float64(s[j])-lse) - t) / float64(B))
		}
	}
	return ce + kd/float64(B), grad, nil
}
