package bm25

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collections lists the BEIR directories under the shared data folder.
func collections(t testing.TB) []string {
	data := sharedtest.Data(t)
	m, err := filepath.Glob(filepath.Join(data, "*", "corpus.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, m, "no collections in %s", data)
	var out []string
	for _, p := range m {
		out = append(out, filepath.Dir(p))
	}
	sort.Strings(out)
	return out
}

// TestReproduceSharedCandidates retrieves every split that has both
// qrels/NAME.tsv and bm25/NAME.top100.jsonl (so a held-back test split is
// checked wherever it is present) and compares with the provided lists.
func TestReproduceSharedCandidates(t *testing.T) {
	for _, dir := range collections(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := OpenBEIR(dir)
			require.NoError(t, err)
			ix, err := Build(context.Background(), b.Corpus.Docs(), BuildOptions{})
			require.NoError(t, err)
			splits, err := Splits(dir)
			require.NoError(t, err)
			checked := 0
			for _, split := range splits {
				refPath := filepath.Join(dir, "bm25", split+".top100.jsonl")
				if _, err := os.Stat(refPath); err != nil {
					continue
				}
				checked++
				ref, err := ReadRun(refPath)
				require.NoError(t, err)
				_, qs, err := b.Split(split)
				require.NoError(t, err)
				require.Len(t, qs, len(ref), "%s: queries in the split", split)
				texts := make([]string, len(qs))
				for i, q := range qs {
					texts[i] = q.Text
				}
				hits, err := ix.SearchAll(context.Background(), texts, 100, 0, nil)
				require.NoError(t, err)
				var overlap float64
				identical, roundedOff, maxDiff := 0, 0, 0.0
				for i, r := range ref {
					got := NewRunLine(qs[i].ID, qs[i].Text, hits[i])
					require.Equal(t, r.QID, got.QID)
					require.Equal(t, r.Query, got.Query)
					want := map[string]bool{}
					for _, id := range r.DocIDs {
						want[id] = true
					}
					n := 0
					for _, id := range got.DocIDs {
						if want[id] {
							n++
						}
					}
					if len(r.DocIDs) > 0 {
						overlap += float64(n) / float64(len(r.DocIDs))
					} else if len(got.DocIDs) == 0 {
						overlap++
					}
					same := len(r.DocIDs) == len(got.DocIDs)
					for j := range got.DocIDs {
						if j < len(r.DocIDs) && r.DocIDs[j] == got.DocIDs[j] {
							maxDiff = math.Max(maxDiff, math.Abs(r.Scores[j]-got.Scores[j]))
							if FormatScore(r.Scores[j]) != FormatScore(got.Scores[j]) {
								roundedOff++
							}
						} else {
							same = false
						}
					}
					if same {
						identical++
					}
				}
				mean := overlap / float64(len(ref))
				t.Logf("%s/%s: %d queries, mean overlap@100 %.4f, identical id lists %d/%d, scores differing after rounding to 4 decimals %d, max |score diff| %.2g",
					name, split, len(ref), mean, identical, len(ref), roundedOff, maxDiff)
				assert.GreaterOrEqual(t, mean, 0.99, "%s/%s overlap@100", name, split)
				assert.LessOrEqual(t, maxDiff, 5e-5+1e-9, "%s/%s scores (the reference is rounded to 4 decimals)", name, split)
				assert.LessOrEqual(t, float64(roundedOff), 0.001*float64(len(ref)*100), "%s/%s rounded scores", name, split)
			}
			assert.Positive(t, checked, "no split with both qrels and candidates")
		})
	}
}
