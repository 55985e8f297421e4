package infer_test

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/nntest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// TestInt8WeightsWhileLoading: weights quantized as they load
// (Int8Weights.Loaded after each parameter, as hfmodel.Load and
// InitRandomEach report them) score with QuantizeWeights' bits, and with
// Drop the float32 encoder is never in memory whole: the pages of its
// linear weights resident at once (mincore, what RSS counts) stay within
// about two layers'. A loader that fills every weight before reporting
// any (one that does not stream) holds them all, and so does one that
// keeps them.
func TestInt8WeightsWhileLoading(t *testing.T) {
	c := tinyConfig(nn.BERT)
	c.Hidden, c.Intermediate, c.Heads, c.Layers = 256, 1024, 4, 6
	var layer int64 // one encoder layer's linear weights, bytes
	for _, n := range []int{4 * c.Hidden * c.Hidden, 2 * c.Hidden * c.Intermediate} {
		layer += int64(n) * 4
	}
	whole := int64(c.Layers) * layer
	r := rand.New(rand.NewPCG(3, 3))
	batches := []*nn.Batch{randomBatch(r, c, 5, 16), randomBatch(r, c, 1, 9)}

	// The reference: the model drawn whole, then QuantizeWeights.
	ref, err := nn.New(cpu.NewWorkers(2), c)
	require.NoError(t, err)
	ref.InitRandom(5, 0.2)
	refRun, err := infer.New(ref)
	require.NoError(t, err)
	release, err := refRun.QuantizeWeights()
	require.NoError(t, err)
	defer release()
	var want [][]float32
	for _, b := range batches {
		logits, err := refRun.Forward(b)
		require.NoError(t, err)
		want = append(want, slices.Clone(logits))
	}

	linux := runtime.GOOS == "linux" // cpu.Backend discards only there
	for _, tc := range []struct {
		name      string
		drop      bool
		streaming bool // Loaded after each parameter, else after all
		// bounds on the float32 linear weights held at once: resident
		// pages, and Int8Weights' own count
		maxResident, minResident, maxCount int64
	}{
		{name: "streaming, dropping", drop: true, streaming: true, maxResident: 2 * layer, maxCount: 2 * layer},
		{name: "streaming, keeping", drop: false, streaming: true, maxResident: whole, minResident: whole * 9 / 10, maxCount: whole},
		{name: "whole model first", drop: true, streaming: false, maxResident: whole, minResident: whole * 9 / 10, maxCount: 2 * layer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := cpu.NewWorkers(2)
			m, err := nn.New(be, c)
			require.NoError(t, err)
			var linear []*nn.Param
			for l := range c.Layers {
				L := m.Layer(l)
				for _, lin := range []*nn.Linear{L.Q, L.K, L.V, L.AttnOut, L.Inter, L.Out} {
					linear = append(linear, lin.W)
				}
			}
			nntest.DiscardAll(be, m.Params()) // as fresh memory: nothing resident
			q, err := infer.NewInt8Weights(m, infer.Int8Options{Drop: tc.drop})
			require.NoError(t, err)
			var resident int64
			loaded := func(p *nn.Param) error {
				resident = max(resident, nntest.ResidentBytes(linear))
				return q.Loaded(p)
			}
			if tc.streaming {
				require.NoError(t, m.InitRandomEach(5, 0.2, loaded))
			} else {
				m.InitRandom(5, 0.2)
				for _, p := range m.Params() {
					require.NoError(t, loaded(p))
				}
			}
			require.NoError(t, q.Wait())
			if nntest.ResidentSupported {
				assert.LessOrEqual(t, resident, tc.maxResident, "float32 linear weights resident at once")
				assert.GreaterOrEqual(t, resident, tc.minResident, "float32 linear weights resident at once")
			}
			assert.LessOrEqual(t, q.PeakFloat32Bytes(), tc.maxCount)
			if tc.drop && linux {
				assert.True(t, m.LinearWeightsDropped())
				assert.Greater(t, q.DroppedBytes(), whole*9/10)
			} else {
				assert.False(t, m.LinearWeightsDropped())
				assert.Zero(t, q.DroppedBytes())
			}

			run, err := infer.New(m)
			require.NoError(t, err)
			release, err := run.UseInt8Weights(q)
			require.NoError(t, err)
			defer release()
			assert.Equal(t, q.Bytes(), run.PackedBytes())
			assert.Equal(t, q.DroppedBytes(), run.DroppedBytes())
			for i, b := range batches {
				got, err := run.Forward(b)
				require.NoError(t, err)
				assert.Equal(t, want[i], got, "batch %d: logits differ from QuantizeWeights'", i)
			}
			// The runner took the weights over.
			other, err := infer.New(m)
			require.NoError(t, err)
			_, err = other.UseInt8Weights(q)
			assert.ErrorContains(t, err, "already in use")
			assert.ErrorContains(t, q.Loaded(m.Layer(0).Inter.W), "loaded twice")
		})
	}
}

// TestInt8WeightsRefusals: the mistakes Int8Weights reports.
func TestInt8WeightsRefusals(t *testing.T) {
	c := tinyConfig(nn.BERT)
	newModel := func() *nn.Model {
		m, err := nn.New(cpu.New(), c)
		require.NoError(t, err)
		return m
	}
	for _, tc := range []struct {
		name string
		run  func(m *nn.Model, q *infer.Int8Weights) error
		want string
	}{
		{name: "a weight never loaded", run: func(m *nn.Model, q *infer.Int8Weights) error {
			for _, p := range m.Params() {
				if p != m.Layer(1).Out.W {
					if err := q.Loaded(p); err != nil {
						return err
					}
				}
			}
			return q.Wait()
		}, want: m1Out(c) + " was never loaded"},
		{name: "loaded twice", run: func(m *nn.Model, q *infer.Int8Weights) error {
			if err := q.Loaded(m.Layer(0).Q.W); err != nil {
				return err
			}
			return q.Loaded(m.Layer(0).Q.W)
		}, want: "loaded twice"},
		{name: "another model's runner", run: func(m *nn.Model, q *infer.Int8Weights) error {
			for _, p := range m.Params() {
				if err := q.Loaded(p); err != nil {
					return err
				}
			}
			run, err := infer.New(newModel())
			if err != nil {
				return err
			}
			_, err = run.UseInt8Weights(q)
			return err
		}, want: "another model"},
		{name: "a runner already holding weights", run: func(m *nn.Model, q *infer.Int8Weights) error {
			require.NoError(t, m.InitRandomEach(1, 0.1, q.Loaded))
			run, err := infer.New(m)
			if err != nil {
				return err
			}
			if _, err := run.QuantizeWeights(); err != nil {
				return err
			}
			_, err = run.UseInt8Weights(q)
			return err
		}, want: "already packed or quantized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel()
			q, err := infer.NewInt8Weights(m, infer.Int8Options{})
			require.NoError(t, err)
			assert.ErrorContains(t, tc.run(m, q), tc.want)
		})
	}
}

func m1Out(c nn.Config) string {
	return c.Arch.Prefix() + ".encoder.layer.1.output.dense.weight"
}
