package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/bm25/mine"
	"github.com/rerank-go/rerank/flagdata"
)

// plantedScorer scores the positives of beirFixture's dev split 8 and
// the planted false negative of q1 (d5, "wing flutter") almost as high.
type plantedScorer struct{}

func (plantedScorer) Score(_ context.Context, _ string, passages []string) ([]float32, error) {
	out := make([]float32, len(passages))
	for i, p := range passages {
		switch {
		case strings.Contains(p, "lift of a wing"), strings.Contains(p, "slabs"): // the positives
			out[i] = 8
		case strings.Contains(p, "flutter"):
			out[i] = 7.9
		default:
			out[i] = -3
		}
	}
	return out, nil
}

func negIDs(t *testing.T, ex flagdata.Example) []string {
	var ids []string
	require.NoError(t, json.Unmarshal(ex.Extra["neg_ids"], &ids))
	return ids
}

func TestMineCommand(t *testing.T) {
	dir := beirFixture(t)
	t.Run("beir split, output trains", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "mined.jsonl")
		stdout, _, err := runCmd(t, newMineCommand(engineMineScorer), "-q", "--beir", dir, "--split", "dev", "--output", out,
			"--range-for-sampling", "0-10", "--negative-number", "2", "--fill-random=false")
		require.NoError(t, err)
		assert.Contains(t, stdout, "mined 2 queries")
		exs, err := flagdata.Load(out, flagdata.Options{})
		require.NoError(t, err, "the output must be valid training data")
		require.Len(t, exs, 2)
		assert.Equal(t, []string{"Wing lift of a wing in flight"}, exs[0].Pos)
		assert.NotContains(t, negIDs(t, exs[0]), "d2")
		_, err = flagdata.NewSampler(exs, flagdata.SamplerConfig{GroupSize: 4, BatchSize: 2})
		assert.NoError(t, err)
	})
	t.Run("flagembedding input with a corpus, seeded", func(t *testing.T) {
		tmp := t.TempDir()
		in := filepath.Join(tmp, "pairs.jsonl")
		require.NoError(t, os.WriteFile(in, []byte(`{"query":"wing lift","pos":["Wing lift of a wing in flight"],"qid":"q1"}`+"\n"), 0o644))
		run := func(seed string) string {
			out := filepath.Join(tmp, "out"+seed+".jsonl")
			_, _, err := runCmd(t, newMineCommand(engineMineScorer), "-q", "--input", in, "--corpus", filepath.Join(dir, "corpus.jsonl"),
				"--output", out, "--range-for-sampling", "0-10", "--negative-number", "3", "--seed", seed)
			require.NoError(t, err)
			b, _ := os.ReadFile(out)
			return string(b)
		}
		a := run("5")
		assert.Equal(t, a, run("5"))
		exs, err := flagdata.Parse(strings.NewReader(a), "out.jsonl", flagdata.Options{})
		require.NoError(t, err)
		assert.Len(t, exs[0].Neg, 3)
		assert.NotContains(t, exs[0].Neg, "Wing lift of a wing in flight")
		assert.JSONEq(t, `"q1"`, string(exs[0].Extra["qid"]))
	})
	t.Run("rescoring drops the planted false negative and writes teacher scores", func(t *testing.T) {
		planted := func(model, adapter string, opts scorerOptions) (mine.Scorer, error) {
			assert.Equal(t, "teacher-dir", model)
			assert.Equal(t, "lora-dir", adapter)
			return plantedScorer{}, nil
		}
		for _, tc := range []struct {
			margin string
			kept   bool
		}{{"0", true}, {"0.5", false}} {
			out := filepath.Join(t.TempDir(), "mined.jsonl")
			stdout, _, err := runCmd(t, newMineCommand(planted), "-q", "--beir", dir, "--split", "dev", "--output", out,
				"--range-for-sampling", "0-10", "--negative-number", "5", "--fill-random=false",
				"--rescore-model", "teacher-dir", "--adapter", "lora-dir", "--absolute-margin", tc.margin, "--teacher-scores")
			require.NoError(t, err)
			exs, err := flagdata.Load(out, flagdata.Options{RequireScores: true})
			require.NoError(t, err)
			var all []string
			for _, ex := range exs {
				all = append(all, negIDs(t, ex)...)
				assert.Equal(t, []float64{8}, ex.PosScores)
				for _, s := range ex.NegScores {
					assert.Less(t, s, 8.0)
				}
			}
			assert.Equal(t, tc.kept, containsID(all, "d5"), "margin %s: %v", tc.margin, all)
			if !tc.kept {
				// d5 is a candidate of both queries; q1 has no other
				// candidate and is left out.
				assert.Contains(t, stdout, "false negatives (cross-encoder): 2")
				assert.Contains(t, stdout, "1 queries got no negative")
			}
		}
	})
	t.Run("a missing rescoring model is named", func(t *testing.T) {
		model := filepath.Join(t.TempDir(), "no-model")
		_, _, err := runCmd(t, newMineCommand(engineMineScorer), "-q", "--beir", dir, "--split", "dev", "--output", filepath.Join(t.TempDir(), "o"),
			"--rescore-model", model)
		assert.ErrorContains(t, err, model)
	})

	errTests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", nil, "exactly one of --input"},
		{"both inputs", []string{"--input", "x", "--beir", dir}, "exactly one of --input"},
		{"bad range", []string{"--beir", dir, "--range-for-sampling", "10-2"}, "--range-for-sampling"},
		{"teacher without model", []string{"--beir", dir, "--teacher-scores"}, "--teacher-scores needs --rescore-model"},
		{"adapter without model", []string{"--beir", dir, "--adapter", "a"}, "--adapter needs --rescore-model"},
		{"invalid input", []string{"--input", filepath.Join(dir, "queries.jsonl")}, `field "query": missing`},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, newMineCommand(engineMineScorer), append([]string{"-q", "--output", filepath.Join(t.TempDir(), "o")}, tc.args...)...)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func containsID(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
