// Package loss holds the training losses of a cross-encoder reranker, all
// in one place: the logits of B groups of G candidates (positive first,
// FlagEmbedding's layout) become a loss and d(loss)/d(logits).
//
// Every loss appends its gradient to a caller's buffer (pass buf[:0]) and
// allocates nothing once that buffer is large enough, so that a training
// step allocates nothing (CONTRIBUTING.md's allocation rule). Sums are in
// float64; log-sum-exp is internal/mathx's.
//
//	ce, _ := loss.ByName("ce")
//	l, grad, err := ce(grad[:0], logits, groupSize, nil)
package loss

import (
	"fmt"
	"math"
	"slices"

	"github.com/rerank-go/rerank/internal/mathx"
)

// Func turns the logits of B groups of groupSize candidates (positive
// first) into a loss, appending d(loss)/d(logits) to dst and returning the
// extended slice. teacher, when not nil, holds one teacher score per
// logit (Distill needs it; the others ignore it).
type Func func(dst, logits []float32, groupSize int, teacher []float64) (float64, []float32, error)

// Names lists the losses ByName knows.
var Names = []string{"ce", "bce", "distill"}

// ByName returns CE ("ce"), BCE ("bce") or Distill ("distill").
func ByName(name string) (Func, error) {
	switch name {
	case "ce":
		return CE, nil
	case "bce":
		return BCE, nil
	case "distill":
		return Distill, nil
	}
	return nil, fmt.Errorf("loss %q: want ce, bce or distill", name)
}

// groups checks that n logits split into groups of groupSize.
func groups(what string, n, groupSize int) error {
	if groupSize <= 0 || n == 0 || n%groupSize != 0 {
		return fmt.Errorf("%s: %d logits do not split into groups of %d", what, n, groupSize)
	}
	return nil
}

// GroupSoftmaxCE is FlagEmbedding's cross-encoder loss: the logits of N =
// B·G rows are reshaped to [B, G], candidate 0 of each group is the
// positive, and the loss is mean_b(logsumexp(scores[b]) − scores[b,0]),
// i.e. torch.nn.CrossEntropyLoss with target 0. It returns the loss and a
// new slice of d(loss)/d(logits); a training loop uses
// AppendGroupSoftmaxCE or CE instead.
func GroupSoftmaxCE(logits []float32, groupSize int) (float32, []float32, error) {
	return AppendGroupSoftmaxCE(nil, logits, groupSize)
}

// AppendGroupSoftmaxCE is GroupSoftmaxCE appending d(loss)/d(logits) to
// dst and returning the extended slice.
func AppendGroupSoftmaxCE(dst, logits []float32, groupSize int) (float32, []float32, error) {
	if err := groups("group softmax", len(logits), groupSize); err != nil {
		return 0, dst, err
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

// CE is AppendGroupSoftmaxCE as a Func: FlagEmbedding's group softmax
// cross-entropy with target 0 (the loss rounded to float32, as the
// reference computes it).
func CE(dst, logits []float32, groupSize int, _ []float64) (float64, []float32, error) {
	l, g, err := AppendGroupSoftmaxCE(dst, logits, groupSize)
	return float64(l), g, err
}

// BCE is pointwise binary cross-entropy with logits, averaged over every
// pair (sentence-transformers' CrossEncoder default): label 1 for the
// first candidate of each group, 0 for the rest.
func BCE(dst, logits []float32, groupSize int, _ []float64) (float64, []float32, error) {
	if err := groups("bce", len(logits), groupSize); err != nil {
		return 0, dst, err
	}
	n := float64(len(logits))
	dst = slices.Grow(dst, len(logits))
	grad := dst[len(dst) : len(dst)+len(logits)]
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
	return loss / n, dst[:len(dst)+len(logits)], nil
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// Distill is FlagEmbedding's reranker loss with teacher scores: CE plus
// mean_b(−Σ_j softmax(teacher_b)_j · log_softmax(logits_b)_j).
func Distill(dst, logits []float32, groupSize int, teacher []float64) (float64, []float32, error) {
	start := len(dst)
	ce, dst, err := CE(dst, logits, groupSize, nil)
	if err != nil {
		return 0, dst, err
	}
	if len(teacher) != len(logits) {
		return 0, dst[:start], fmt.Errorf("distill: %d teacher scores for %d logits (every line needs pos_scores and neg_scores)", len(teacher), len(logits))
	}
	grad := dst[start:]
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
	return ce + kd/float64(B), dst, nil
}
