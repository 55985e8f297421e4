package hfmodel_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

// TestLoadOnParamStreams: LoadOptions.OnParam sees each parameter once,
// in Params order, holding its checkpoint values, while every later
// parameter is still unread (zero): the weights stream in, so that a
// caller can quantize and drop each before the next arrives
// (crossencoder's int8 load). Both weight formats, both architectures, a
// headless checkpoint's drawn head included; an error from the hook
// stops Load.
func TestLoadOnParamStreams(t *testing.T) {
	fresh := func(arch nn.Arch, headless bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := tinyConfig(arch)
			c.Layers = 3
			m, err := nn.New(cpu.New(), c)
			require.NoError(t, err)
			m.InitRandom(4, 0.5)
			dir := t.TempDir()
			require.NoError(t, hfmodel.Save(m, nil, dir, ""))
			if headless {
				// A plain encoder's checkpoint: no head, no pooler.
				writeSafetensors(t, dir, m, func(name string) bool {
					return !isHeadName(name)
				})
			}
			return dir
		}
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{name: "bert safetensors", dir: fresh(nn.BERT, false)},
		{name: "xlm-roberta safetensors", dir: fresh(nn.XLMRoberta, false)},
		{name: "headless bert", dir: fresh(nn.BERT, true)},
		{name: "pytorch_model.bin", dir: func(t *testing.T) string {
			src := filepath.Join(sharedtest.Golden(t), "bert_tiny", "model")
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join(src, "config.json"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
			bin, err := os.ReadFile("../torchbin/testdata/bert_tiny-1.13.bin")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), bin, 0o644))
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			want, _, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Seed: 9})
			require.NoError(t, err)
			wantW := weights(t, want)
			var seen []string
			got, _, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Seed: 9, OnParam: func(m *nn.Model, p *nn.Param) error {
				ps := m.Params()
				k := len(seen)
				require.Less(t, k, len(ps))
				assert.Same(t, ps[k], p, "parameter %d out of order", k)
				seen = append(seen, p.Name)
				v := make([]float32, p.Size())
				m.Backend().Download(v, p.W)
				assert.Equal(t, wantW[p.Name], v, "%s is not in place when reported", p.Name)
				for _, later := range ps[k+1:] {
					v := make([]float32, later.Size())
					m.Backend().Download(v, later.W)
					if !assert.Equal(t, make([]float32, len(v)), v, "%s is read before %s is reported: the weights do not stream", later.Name, p.Name) {
						break
					}
				}
				return nil
			}})
			require.NoError(t, err)
			assert.Len(t, seen, len(got.Params()))
			assert.Equal(t, wantW, weights(t, got))

			stop := errors.New("stop here")
			_, _, err = hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{OnParam: func(m *nn.Model, p *nn.Param) error {
				if p == m.Layer(0).Inter.W {
					return stop
				}
				return nil
			}})
			assert.ErrorIs(t, err, stop)
		})
	}
}

// isHeadName reports whether a tensor belongs to the head a plain encoder
// checkpoint lacks (BERT's pooler included).
func isHeadName(name string) bool {
	return len(name) >= 11 && name[:11] == "classifier." || name == "bert.pooler.dense.weight" || name == "bert.pooler.dense.bias"
}

// writeSafetensors rewrites dir/model.safetensors with m's tensors that
// keep selects.
func writeSafetensors(t *testing.T, dir string, m *nn.Model, keep func(string) bool) {
	var ts []safetensors.Tensor
	for name, v := range weights(t, m) {
		if keep(name) {
			ts = append(ts, safetensors.F32Tensor(name, m.Param(name).Shape, v))
		}
	}
	require.NoError(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))
}
