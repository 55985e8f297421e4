package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
)

// TestInfoAdapter: rerank info describes a LoRA adapter directory: base,
// rank, alpha, targets and trainable parameters (issue 19 §6).
func TestInfoAdapter(t *testing.T) {
	model := tinyModel(t)
	for _, tc := range []struct {
		name string
		cfg  lora.Config
		base string
		want []string
	}{
		{"targets", lora.Config{R: 4, Alpha: 16, TargetModules: []string{"query", "value"}}, model,
			[]string{"base model:     " + model, "rank:           4", "alpha:          16 (scaling 4", "targets:        query, value"}},
		{"regex, no base", lora.Config{R: 2, Alpha: 2, TargetRegex: `.*\.dense`}, "",
			[]string{"base model:     not recorded", "rank:           2", "targets:        modules matching .*\\.dense"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := hfmodel.Load(cpu.New(), model, hfmodel.LoadOptions{})
			require.NoError(t, err)
			a, err := lora.Attach(m, tc.cfg, 1)
			require.NoError(t, err)
			dir := filepath.Join(t.TempDir(), "adapter")
			require.NoError(t, a.Save(dir, tc.base))
			total, loraN := 0, 0
			for _, p := range a.Params() {
				loraN += p.Size()
			}
			for _, p := range a.Trainable() {
				total += p.Size()
			}
			out, _, err := runTrainCLI(t, "info", dir)
			require.NoError(t, err)
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
			assert.Contains(t, out, fmt.Sprintf("trainable:      %d parameters (%d in %d LoRA modules", total, loraN, len(a.List())))
		})
	}
}
