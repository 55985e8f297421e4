package flagdata

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func makeExamples(n, npos, nneg int, scores bool) []Example {
	exs := make([]Example, n)
	for i := range exs {
		e := &exs[i]
		e.Query = fmt.Sprintf("q%d", i)
		if scores {
			e.PosScores, e.NegScores = []float64{}, []float64{}
		}
		for j := 0; j < npos; j++ {
			e.Pos = append(e.Pos, fmt.Sprintf("q%d-pos%d", i, j))
			if scores {
				e.PosScores = append(e.PosScores, float64(100*i+j))
			}
		}
		for j := 0; j < nneg; j++ {
			e.Neg = append(e.Neg, fmt.Sprintf("q%d-neg%d", i, j))
			if scores {
				e.NegScores = append(e.NegScores, float64(-100*i-j))
			}
		}
	}
	return exs
}

func TestSamplerGroups(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		npos      int
		nneg      int
		group     int
		batch     int
		steps     int
		repeating bool
	}{
		{"enough negatives", 10, 3, 15, 8, 4, 2, false},
		{"exactly enough", 6, 1, 7, 8, 3, 2, false},
		{"too few negatives repeat", 5, 2, 3, 8, 2, 2, true},
		{"one negative", 4, 1, 1, 4, 4, 1, true},
		{"group of one", 7, 2, 0, 1, 2, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs := makeExamples(tc.n, tc.npos, tc.nneg, true)
			s, err := NewSampler(exs, SamplerConfig{GroupSize: tc.group, BatchSize: tc.batch, Seed: 3, Distill: true})
			require.NoError(t, err)
			assert.Equal(t, tc.steps, s.StepsPerEpoch())
			for step := 0; step < 3*tc.steps; step++ {
				b := s.Next()
				assert.Equal(t, step/tc.steps, b.Epoch)
				assert.Equal(t, step%tc.steps, b.Step)
				require.Len(t, b.Groups, tc.batch)
				for _, g := range b.Groups {
					e := exs[g.Example]
					require.Len(t, g.Passages, tc.group)
					assert.Equal(t, e.Query, g.Query)
					assert.Equal(t, e.Pos[g.PosIndex], g.Passages[0], "positive first")
					assert.Len(t, g.NegIndex, tc.group-1)
					counts := map[int]int{}
					for k, j := range g.NegIndex {
						assert.Equal(t, e.Neg[j], g.Passages[k+1])
						counts[j]++
					}
					maxRep := 1
					if tc.repeating {
						maxRep = (tc.group - 1 + tc.nneg - 1) / tc.nneg
					}
					for j, c := range counts {
						assert.LessOrEqual(t, c, maxRep, "negative %d drawn %d times", j, c)
					}
					require.Len(t, g.TeacherScores, tc.group)
					assert.Equal(t, e.PosScores[g.PosIndex], g.TeacherScores[0])
					for k, j := range g.NegIndex {
						assert.Equal(t, e.NegScores[j], g.TeacherScores[k+1])
					}
				}
			}
		})
	}
}

func TestSamplerEpochs(t *testing.T) {
	exs := makeExamples(10, 2, 10, false)
	s, err := NewSampler(exs, SamplerConfig{GroupSize: 4, BatchSize: 3, Seed: 11})
	require.NoError(t, err)
	epochs := make([][]int, 3)
	for step := 0; step < 3*s.StepsPerEpoch(); step++ {
		b := s.Next()
		assert.Nil(t, b.Groups[0].TeacherScores)
		for _, g := range b.Groups {
			epochs[b.Epoch] = append(epochs[b.Epoch], g.Example)
		}
	}
	for e, ids := range epochs {
		assert.Len(t, ids, 9, "epoch %d drops the remainder", e)
		seen := map[int]bool{}
		for _, id := range ids {
			assert.False(t, seen[id], "epoch %d repeats example %d", e, id)
			seen[id] = true
		}
	}
	assert.NotEqual(t, epochs[0], epochs[1], "each epoch reshuffles")

	t.Run("no shuffle keeps order", func(t *testing.T) {
		s, err := NewSampler(exs, SamplerConfig{GroupSize: 2, BatchSize: 5, NoShuffle: true})
		require.NoError(t, err)
		b := s.Next()
		for k, g := range b.Groups {
			assert.Equal(t, k, g.Example)
		}
	})
	t.Run("same seed same batches, other seed other batches", func(t *testing.T) {
		a, _ := NewSampler(exs, SamplerConfig{GroupSize: 4, BatchSize: 3, Seed: 11})
		b, _ := NewSampler(exs, SamplerConfig{GroupSize: 4, BatchSize: 3, Seed: 11})
		c, _ := NewSampler(exs, SamplerConfig{GroupSize: 4, BatchSize: 3, Seed: 12})
		same, diff := true, false
		for i := 0; i < 6; i++ {
			x, y, z := a.Next(), b.Next(), c.Next()
			same = same && assert.ObjectsAreEqual(x, y)
			diff = diff || !assert.ObjectsAreEqual(x, z)
		}
		assert.True(t, same)
		assert.True(t, diff)
	})
}

func TestSamplerPositiveUniform(t *testing.T) {
	exs := makeExamples(1, 4, 20, false)
	s, err := NewSampler(exs, SamplerConfig{GroupSize: 3, BatchSize: 1, Seed: 1})
	require.NoError(t, err)
	pos := make([]int, 4)
	neg := make([]int, 20)
	const n = 8000
	for i := 0; i < n; i++ {
		g := s.Next().Groups[0]
		pos[g.PosIndex]++
		for _, j := range g.NegIndex {
			neg[j]++
		}
	}
	for _, c := range pos {
		assert.InDelta(t, n/4, c, n/4*0.1)
	}
	for _, c := range neg {
		assert.InDelta(t, n*2/20, c, n*2/20*0.15)
	}
}

// TestSamplerResume stops mid-epoch, saves the state through JSON,
// restores it in a fresh sampler and checks the batches are identical to
// an uninterrupted run.
func TestSamplerResume(t *testing.T) {
	exs := makeExamples(23, 3, 5, true)
	cfg := SamplerConfig{GroupSize: 8, BatchSize: 4, Seed: 42, Distill: true}
	tests := []struct {
		name  string
		after int
	}{
		{"at start", 0}, {"mid first epoch", 2}, {"end of epoch", 5}, {"mid later epoch", 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := NewSampler(exs, cfg)
			require.NoError(t, err)
			var want []StepGroups
			for i := 0; i < tc.after+12; i++ {
				want = append(want, ref.Next())
			}
			run, _ := NewSampler(exs, cfg)
			for i := 0; i < tc.after; i++ {
				run.Next()
			}
			blob, err := MarshalState(run.State())
			require.NoError(t, err)
			st, err := UnmarshalState(blob)
			require.NoError(t, err)
			resumed, _ := NewSampler(exs, cfg)
			require.NoError(t, resumed.Restore(st))
			for i := tc.after; i < len(want); i++ {
				require.Equal(t, want[i], resumed.Next(), "batch %d", i)
			}
		})
	}
}

func TestSamplerErrors(t *testing.T) {
	good := makeExamples(4, 1, 2, false)
	tests := []struct {
		name string
		exs  []Example
		cfg  SamplerConfig
		want string
	}{
		{"group size", good, SamplerConfig{GroupSize: 0, BatchSize: 1}, "group size"},
		{"batch size", good, SamplerConfig{GroupSize: 2, BatchSize: 0}, "batch size"},
		{"too few examples", good, SamplerConfig{GroupSize: 2, BatchSize: 5}, "fewer than one batch"},
		{"no negatives", makeExamples(2, 1, 0, false), SamplerConfig{GroupSize: 2, BatchSize: 1}, "neg is empty"},
		{"no scores", good, SamplerConfig{GroupSize: 2, BatchSize: 1, Distill: true}, "distillation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSampler(tc.exs, tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}

	s, _ := NewSampler(good, SamplerConfig{GroupSize: 2, BatchSize: 2, Seed: 1})
	st := s.State()
	restoreTests := []struct {
		name   string
		mutate func(*SamplerState)
		want   string
	}{
		{"other data", func(s *SamplerState) { s.Examples = 9 }, "same training data"},
		{"other seed", func(s *SamplerState) { s.Seed = 2 }, "same --seed"},
		{"other batch", func(s *SamplerState) { s.BatchSize = 1 }, "same settings"},
		{"bad position", func(s *SamplerState) { s.Position = 99 }, "out of range"},
		{"bad rng", func(s *SamplerState) { s.RNG = []byte("x") }, "RNG"},
	}
	for _, tc := range restoreTests {
		t.Run(tc.name, func(t *testing.T) {
			c := st
			tc.mutate(&c)
			assert.ErrorContains(t, s.Restore(c), tc.want)
		})
	}
	_, err := UnmarshalState([]byte(`{"epoch":1}`))
	assert.ErrorContains(t, err, "rng")
}
