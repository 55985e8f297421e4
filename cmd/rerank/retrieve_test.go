package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/internal/testdir"
)

// runCmd runs one rerank command in-process.
func runCmd(t *testing.T, cmd *cli.Command, args ...string) (string, string, error) {
	t.Helper()
	return runCommands(t, []*cli.Command{cmd}, append([]string{cmd.Name}, args...)...)
}

// beirFixture writes a tiny BEIR directory.
func beirFixture(t *testing.T) string {
	t.Helper()
	files := map[string]string{
		"corpus.jsonl": `{"_id":"d1","title":"","text":"nothing at all"}
{"_id":"d2","title":"Wing","text":"lift of a wing in flight"}
{"_id":"d3","title":"","text":"heat"}
{"_id":"d4","title":"","text":"heat transfer in slabs"}
{"_id":"d5","title":"Wings","text":"wing flutter and heat"}
`,
		"queries.jsonl": `{"_id":"q1","text":"wing lift"}
{"_id":"q2","text":"heat transfer"}
{"_id":"q3","text":"unjudged"}
`,
		"qrels/dev.tsv":   "query-id\tcorpus-id\tscore\nq1\td2\t2\nq2\td4\t1\n",
		"qrels/train.tsv": "query-id\tcorpus-id\tscore\nq2\td4\t1\n",
	}
	return testdir.Write(t, files)
}

func TestRetrieveCommand(t *testing.T) {
	dir := beirFixture(t)
	tests := []struct {
		name  string
		args  []string
		lines []string
	}{
		{"jsonl", []string{"--split", "dev", "--top-k", "2"}, []string{
			`{"qid": "q1", "query": "wing lift", "doc_ids": ["d2", "d5"], "bm25_scores": [`,
			`{"qid": "q2", "query": "heat transfer", "doc_ids": ["d4", "d3"], "bm25_scores": [`,
		}},
		{"trec", []string{"--split", "dev", "--top-k", "1", "--format", "trec", "--run-tag", "x"}, []string{
			"q1 Q0 d2 1 ", "q2 Q0 d4 1 ",
		}},
		{"train split", []string{"--split", "train"}, []string{`{"qid": "q2"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run.out")
			stdout, _, err := runCmd(t, newRetrieveCommand(), append([]string{"-q", "--beir", dir, "--output", out}, tc.args...)...)
			require.NoError(t, err)
			assert.Contains(t, stdout, "retrieved top-")
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			require.Len(t, got, len(tc.lines))
			for i, l := range tc.lines {
				assert.True(t, strings.HasPrefix(got[i], l), "line %d: %s", i, got[i])
			}
		})
	}

	t.Run("standard output is the file's bytes", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run.out")
		_, _, err := runCmd(t, newRetrieveCommand(), "-q", "--beir", dir, "--output", out)
		require.NoError(t, err)
		want, err := os.ReadFile(out)
		require.NoError(t, err)
		for _, args := range [][]string{{"--output", "-"}, nil} { // - and the default
			stdout, stderr, err := runCmd(t, newRetrieveCommand(), append([]string{"-q", "--beir", dir}, args...)...)
			require.NoError(t, err)
			assert.Equal(t, string(want), stdout, "only the run on standard output")
			assert.Contains(t, stderr, "-> standard output")
		}
	})

	t.Run("saved index gives the same run", func(t *testing.T) {
		tmp := t.TempDir()
		a, b, ix := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "ix")
		_, _, err := runCmd(t, newRetrieveCommand(), "-q", "--beir", dir, "--output", a, "--save-index", ix)
		require.NoError(t, err)
		_, _, err = runCmd(t, newRetrieveCommand(), "-q", "--beir", dir, "--output", b, "--index", ix)
		require.NoError(t, err)
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		assert.Equal(t, string(ab), string(bb))
	})

	errTests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown split", []string{"--beir", dir, "--split", "test"}, `split "test"`},
		{"bad format", []string{"--beir", dir, "--format", "csv"}, "jsonl or trec"},
		{"bad top-k", []string{"--beir", dir, "--top-k", "0"}, "--top-k"},
		{"missing dir", []string{"--beir", filepath.Join(dir, "nope")}, "corpus.jsonl"},
		{"bad index", []string{"--beir", dir, "--index", filepath.Join(dir, "corpus.jsonl")}, "not a BM25 index"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, newRetrieveCommand(), append([]string{"-q", "--output", filepath.Join(t.TempDir(), "o")}, tc.args...)...)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestRetrieveReproducesSharedFiles checks the command writes files
// byte-identical to the provided candidate lists, for every split whose
// qrels and candidates are both present (a held-back test split
// included).
func TestRetrieveReproducesSharedFiles(t *testing.T) {
	data := sharedtest.Data(t)
	for _, name := range []string{"med", "cacm", "npl"} {
		dir := filepath.Join(data, name)
		refs, _ := filepath.Glob(filepath.Join(dir, "bm25", "*.top100.jsonl"))
		require.NotEmpty(t, refs, name)
		for _, ref := range refs {
			split := strings.TrimSuffix(filepath.Base(ref), ".top100.jsonl")
			if _, err := os.Stat(filepath.Join(dir, "qrels", split+".tsv")); err != nil {
				continue
			}
			t.Run(name+"/"+split, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "run.jsonl")
				_, _, err := runCmd(t, newRetrieveCommand(), "-q", "--beir", dir, "--split", split, "--top-k", "100", "--output", out)
				require.NoError(t, err)
				got, _ := os.ReadFile(out)
				want, _ := os.ReadFile(ref)
				assert.True(t, bytes.Equal(want, got), "%s differs from %s", out, ref)
			})
		}
	}
}
