package crossencoder

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

// TestLoadInt8Streams: int8 scoring by one worker quantizes each weight
// while the checkpoint streams in and drops its float32 copy at once:
// after Load the float32 linear weights are gone (at most about two
// layers' were ever held at once) and the int8 ones wait for the first
// pass, whose scores have the bits of quantizing at the first pass
// (KeepFloat32). KeepFloat32, several workers and an adapter merged at
// load (which needs the float32 model whole) take the first-pass path.
func TestLoadInt8Streams(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "six")
	_, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT, Tokenizer: bundledTokenizer(t), Output: dir, Seed: 3})
	require.NoError(t, err)
	// Six layers instead of the preset's two: a layer is a small part.
	net, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{})
	require.NoError(t, err)
	c := net.Cfg
	c.Layers = 6
	six, err := nn.New(cpu.New(), c)
	require.NoError(t, err)
	six.InitRandom(8, 0.05)
	require.NoError(t, hfmodel.Save(six, info.Config, dir, ""))
	var layer int64
	L := six.Layer(0)
	for _, lin := range []*nn.Linear{L.Q, L.K, L.V, L.AttnOut, L.Inter, L.Out} {
		layer += int64(lin.W.Size()) * 4
	}

	ad := filepath.Join(t.TempDir(), "adapter")
	cfg := lora.DefaultConfig()
	cfg.Init = lora.InitRandom
	a, err := lora.Attach(six, cfg, 5)
	require.NoError(t, err)
	require.NoError(t, a.Save(ad, dir))

	q, ps := "does aspirin reduce the risk of heart attack", testPassages(7, 4)
	score := func(o Options) []float32 {
		m, err := Load(cpu.NewWorkers(2), dir, o)
		require.NoError(t, err)
		defer m.Close()
		got, err := m.Rerank(context.Background(), q, ps)
		require.NoError(t, err)
		return got
	}
	linux := runtime.GOOS == "linux"
	for _, tc := range []struct {
		name   string
		opts   Options
		stream bool
	}{
		{name: "one worker", opts: Options{MaxLen: 64, BatchSize: 3, Int8: true}, stream: true},
		{name: "keep float32", opts: Options{MaxLen: 64, BatchSize: 3, Int8: true, KeepFloat32: true}},
		{name: "two workers", opts: Options{MaxLen: 64, BatchSize: 3, Int8: true, Workers: 2}},
		{name: "adapter merged", opts: Options{MaxLen: 64, BatchSize: 3, Int8: true, Adapter: ad}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(cpu.NewWorkers(2), dir, tc.opts)
			require.NoError(t, err)
			defer m.Close()
			q8 := m.eng.q8
			if !tc.stream {
				assert.Nil(t, q8, "quantized while loading")
				assert.False(t, m.Net.LinearWeightsDropped(), "float32 weights dropped before the first pass")
			} else {
				require.NotNil(t, q8, "not quantized while loading")
				require.NoError(t, q8.Wait())
				assert.LessOrEqual(t, q8.PeakFloat32Bytes(), 2*layer, "float32 linear weights held at once while loading")
				assert.Equal(t, linux, m.Net.LinearWeightsDropped(), "float32 weights dropped at load")
				if linux {
					assert.Greater(t, q8.DroppedBytes(), 5*layer)
				}
			}
			got, err := m.Rerank(context.Background(), q, ps)
			require.NoError(t, err)
			ref := tc.opts
			ref.KeepFloat32, ref.Workers = true, 1
			assert.Equal(t, score(ref), got, "scores differ from quantizing at the first pass")
			assert.Nil(t, m.eng.q8)
			dropped := linux && !tc.opts.KeepFloat32 && tc.opts.Workers <= 1
			assert.Equal(t, dropped, m.Net.LinearWeightsDropped())
		})
	}
}
