package train

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLossValues(t *testing.T) {
	ln := math.Log
	tests := []struct {
		name    string
		loss    Loss
		logits  []float32
		g       int
		teacher []float64
		want    float64
	}{
		{"ce uniform", CELoss, []float32{0, 0, 0, 0}, 4, nil, ln(4)},
		{"ce two groups", CELoss, []float32{1, 0, 0, 1}, 2, nil, (ln(1+math.Exp(-1)) + ln(1+math.Exp(1))) / 2},
		{"bce zero logits", BCELoss, []float32{0, 0, 0}, 3, nil, ln(2)},
		{"bce", BCELoss, []float32{2, -1}, 2, nil, (ln(1+math.Exp(-2)) + ln(1+math.Exp(-1))) / 2},
		// Uniform teacher over equal logits: CE ln 2 plus cross-entropy ln 2.
		{"distill uniform", DistillLoss, []float32{0, 0}, 2, []float64{5, 5}, 2 * ln(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.loss(tc.logits, tc.g, tc.teacher)
			require.NoError(t, err)
			assert.InDelta(t, tc.want, got, 1e-6)
		})
	}
}

// Every loss's gradient matches central finite differences.
func TestLossGradients(t *testing.T) {
	logits := []float32{0.3, -1.2, 0.8, 0.1, 2.0, -0.5, 0.0, 1.1}
	teacher := []float64{2, 0.5, -1, 0, 1, 3, -2, 0.2}
	tests := []struct {
		name    string
		loss    Loss
		g       int
		teacher []float64
	}{
		{"ce", CELoss, 4, nil},
		{"bce", BCELoss, 4, nil},
		{"distill", DistillLoss, 4, teacher},
		{"distill groups of 2", DistillLoss, 2, teacher},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, grad, err := tc.loss(logits, tc.g, tc.teacher)
			require.NoError(t, err)
			const h = 1e-2
			for i := range logits {
				x := append([]float32(nil), logits...)
				x[i] += h
				up, _, _ := tc.loss(x, tc.g, tc.teacher)
				x[i] -= 2 * h
				down, _, _ := tc.loss(x, tc.g, tc.teacher)
				assert.InDelta(t, (up-down)/(2*h), grad[i], 1e-4, "logit %d", i)
			}
		})
	}
}

func TestLossErrors(t *testing.T) {
	tests := []struct {
		name    string
		loss    Loss
		logits  []float32
		g       int
		teacher []float64
		want    string
	}{
		{"ce ragged", CELoss, []float32{1, 2, 3}, 2, nil, "groups of 2"},
		{"bce ragged", BCELoss, []float32{1, 2, 3}, 2, nil, "groups of 2"},
		{"distill no teacher", DistillLoss, []float32{1, 2}, 2, nil, "teacher scores"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.loss(tc.logits, tc.g, tc.teacher)
			require.ErrorContains(t, err, tc.want)
		})
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
