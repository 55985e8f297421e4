// Package nntest holds the fixtures that the tests of the training path
// (nn) and of the inference runner (nn/infer) share, so that both run the
// same tiny models on the same batches.
package nntest

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/nn"
)

// TinyConfig is a two-layer model of hidden size 16 of the architecture,
// with XLM-R's padding id, type vocabulary and position offset.
func TinyConfig(arch nn.Arch) nn.Config {
	c := nn.Config{Arch: arch, VocabSize: 50, Hidden: 16, Layers: 2, Heads: 4, Intermediate: 24,
		MaxPositions: 40, TypeVocab: 2, PadID: 0, LayerNormEps: 1e-12,
		HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1}
	if arch == nn.XLMRoberta {
		c.TypeVocab, c.PadID, c.LayerNormEps, c.MaxPositions = 1, 1, 1e-5, 42
	}
	return c
}

// RandomBatch builds n rows of at most s tokens with right padding (each
// row at least s/2 tokens long; the second half of a row has type 1 where
// the model has two types).
func RandomBatch(r *rand.Rand, c nn.Config, n, s int) *nn.Batch {
	b := &nn.Batch{N: n, S: s, InputIDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
	for i := 0; i < n; i++ {
		l := s - r.IntN(s/2)
		for j := 0; j < s; j++ {
			k := i*s + j
			if j >= l {
				b.InputIDs[k] = int32(c.PadID)
				continue
			}
			b.InputIDs[k] = int32(2 + r.IntN(c.VocabSize-2))
			b.Mask[k] = 1
			if c.TypeVocab > 1 && j > l/2 {
				b.TypeIDs[k] = 1
			}
		}
	}
	return b
}

// NoSteadyAllocs fails t unless some window of three calls of step
// allocates nothing, out of ten windows. Call step once before, to size
// the buffers and start the workers.
//
// Every allocation of a window is counted (testing.AllocsPerRun rounds the
// mean down and runs on one P). The Go runtime allocates on its own for a
// while: a sudog when a goroutine blocks while its P's cache is empty (the
// caches even out between Ps after some hundred waits), an M when a cgo
// call outlasts sysmon's patience. So a few windows may allocate, but one
// must not: a step that allocates fails every window.
func NoSteadyAllocs(t testing.TB, step func() error) {
	t.Helper()
	const steps, windows = 3, 10
	allocs := make([]uint64, 0, windows)
	for range windows {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range steps {
			require.NoError(t, step())
		}
		runtime.ReadMemStats(&after)
		allocs = append(allocs, after.Mallocs-before.Mallocs)
		if allocs[len(allocs)-1] == 0 {
			break
		}
	}
	assert.Zero(t, allocs[len(allocs)-1], "allocations in each window of %d steps: %v", steps, allocs)
}
