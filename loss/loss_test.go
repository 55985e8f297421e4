package loss

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var all = []struct {
	name string
	f    Func
}{{"ce", CE}, {"bce", BCE}, {"distill", Distill}}

func TestGroupSoftmaxCE(t *testing.T) {
	l, g, err := GroupSoftmaxCE([]float32{0, 0, 1, 1}, 2)
	require.NoError(t, err)
	assert.InDelta(t, math.Log(2), l, 1e-6)
	assert.InDeltaSlice(t, []float32{-0.25, 0.25, -0.25, 0.25}, g, 1e-6)
	_, _, err = GroupSoftmaxCE([]float32{1, 2, 3}, 2)
	assert.Error(t, err)
}

func TestValues(t *testing.T) {
	ln := math.Log
	tests := []struct {
		name    string
		loss    Func
		logits  []float32
		g       int
		teacher []float64
		want    float64
	}{
		{"ce uniform", CE, []float32{0, 0, 0, 0}, 4, nil, ln(4)},
		{"ce two groups", CE, []float32{1, 0, 0, 1}, 2, nil, (ln(1+math.Exp(-1)) + ln(1+math.Exp(1))) / 2},
		{"bce zero logits", BCE, []float32{0, 0, 0}, 3, nil, ln(2)},
		{"bce", BCE, []float32{2, -1}, 2, nil, (ln(1+math.Exp(-2)) + ln(1+math.Exp(-1))) / 2},
		// Uniform teacher over equal logits: CE ln 2 plus cross-entropy ln 2.
		{"distill uniform", Distill, []float32{0, 0}, 2, []float64{5, 5}, 2 * ln(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.loss(nil, tc.logits, tc.g, tc.teacher)
			require.NoError(t, err)
			assert.InDelta(t, tc.want, got, 1e-6)
		})
	}
}

// Every loss's gradient matches central finite differences.
func TestGradients(t *testing.T) {
	logits := []float32{0.3, -1.2, 0.8, 0.1, 2.0, -0.5, 0.0, 1.1}
	teacher := []float64{2, 0.5, -1, 0, 1, 3, -2, 0.2}
	tests := []struct {
		name    string
		loss    Func
		g       int
		teacher []float64
	}{
		{"ce", CE, 4, nil},
		{"bce", BCE, 4, nil},
		{"distill", Distill, 4, teacher},
		{"distill groups of 2", Distill, 2, teacher},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, grad, err := tc.loss(nil, logits, tc.g, tc.teacher)
			require.NoError(t, err)
			const h = 1e-2
			for i := range logits {
				x := append([]float32(nil), logits...)
				x[i] += h
				up, _, _ := tc.loss(nil, x, tc.g, tc.teacher)
				x[i] -= 2 * h
				down, _, _ := tc.loss(nil, x, tc.g, tc.teacher)
				assert.InDelta(t, (up-down)/(2*h), grad[i], 1e-4, "logit %d", i)
			}
		})
	}
}

// The gradient goes after what dst holds, which stays as it was, and a
// reused buffer gives the bits of a fresh one.
func TestAppend(t *testing.T) {
	logits := []float32{0.3, -1.2, 0.8, 0.1}
	teacher := []float64{2, 0.5, -1, 0}
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			want, fresh, err := tc.f(nil, logits, 2, teacher)
			require.NoError(t, err)
			dst := []float32{7, 8}
			got, out, err := tc.f(dst, logits, 2, teacher)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, append([]float32{7, 8}, fresh...), out)
			buf := make([]float32, 0, 16)
			for i := range buf[:cap(buf)] {
				buf = append(buf, float32(i)) // garbage from an earlier step
			}
			_, out, err = tc.f(buf[:0], logits, 2, teacher)
			require.NoError(t, err)
			assert.Equal(t, fresh, out)
		})
	}
}

// With a buffer of the batch's size, no loss allocates: a training step
// calls them every micro-step.
func TestAllocateNothing(t *testing.T) {
	logits := make([]float32, 64)
	teacher := make([]float64, 64)
	for i := range logits {
		logits[i], teacher[i] = float32(i%7)-3, float64(i%5)
	}
	buf := make([]float32, 0, len(logits))
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(20, func() {
				var err error
				if _, buf, err = tc.f(buf[:0], logits, 8, teacher); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs)
		})
	}
	assert.Zero(t, testing.AllocsPerRun(20, func() { _, buf, _ = AppendGroupSoftmaxCE(buf[:0], logits, 8) }), "AppendGroupSoftmaxCE")
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		loss    Func
		logits  []float32
		g       int
		teacher []float64
		want    string
	}{
		{"ce ragged", CE, []float32{1, 2, 3}, 2, nil, "groups of 2"},
		{"ce empty", CE, nil, 2, nil, "groups of 2"},
		{"ce zero group", CE, []float32{1}, 0, nil, "groups of 0"},
		{"bce ragged", BCE, []float32{1, 2, 3}, 2, nil, "groups of 2"},
		{"distill ragged", Distill, []float32{1, 2, 3}, 2, []float64{1, 2, 3}, "groups of 2"},
		{"distill no teacher", Distill, []float32{1, 2}, 2, nil, "teacher scores"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []float32{9}
			_, out, err := tc.loss(dst, tc.logits, tc.g, tc.teacher)
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, dst, out, "dst comes back as it was")
		})
	}
}

func TestByName(t *testing.T) {
	for _, name := range Names {
		f, err := ByName(name)
		require.NoError(t, err, name)
		assert.NotNil(t, f, name)
	}
	_, err := ByName("mse")
	require.ErrorContains(t, err, "mse")
}
