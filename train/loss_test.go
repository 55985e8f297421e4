package train

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The loss names of Args.Loss resolve (package loss tests the losses).
func TestLossByName(t *testing.T) {
	for _, name := range []string{"ce", "bce", "distill"} {
		f, err := LossByName(name)
		require.NoError(t, err, name)
		assert.NotNil(t, f, name)
	}
	_, err := LossByName("mse")
	require.ErrorContains(t, err, "mse")
}

func FuzzReadArgsFile(f *testing.F) {
	f.Add([]byte(`{"learning_rate": 1e-3, "seed": 3}`))
	f.Add([]byte(`{"target_modules": ["query"], "lora_rank": 4}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte("{\n\"seed\": -1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "cfg.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := ReadArgsFile(p, DefaultArgs())
		if err == nil {
			_ = a.Validate()
		}
	})
}
