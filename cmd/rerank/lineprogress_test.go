package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLineProgress: into a file or a pipe, progress is plain lines, at
// most one per interval and one when the step completes (not twice), each
// ending in a newline.
func TestLineProgress(t *testing.T) {
	type step struct {
		at          time.Duration // since the first call
		done, total int
	}
	for _, tc := range []struct {
		name   string
		steps  []step
		finish bool
		want   []string
	}{
		{"quick step: the completing line only", []step{{0, 0, 10}, {time.Second, 5, 10}, {2 * time.Second, 10, 10}}, true,
			[]string{"score 10/10 pairs (100%), 5.0 pairs/s, 2s"}},
		{"a line per interval", []step{{0, 0, 100}, {5 * time.Second, 10, 100}, {10 * time.Second, 20, 100}, {15 * time.Second, 30, 100}, {20 * time.Second, 40, 100}, {25 * time.Second, 100, 100}}, false,
			[]string{"score 20/100 pairs (20%), 2.0 pairs/s, 10s", "score 40/100 pairs (40%), 2.0 pairs/s, 20s", "score 100/100 pairs (100%), 4.0 pairs/s, 25s"}},
		{"finish after an incomplete step says where it stopped", []step{{0, 0, 10}, {time.Second, 4, 10}}, true,
			[]string{"score 4/10 pairs (40%), 4.0 pairs/s, 1s"}},
		{"never started: nothing", nil, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newLineProgress(&buf, "score", "pairs")
			t0 := time.Unix(1000, 0)
			now := t0
			p.now = func() time.Time { return now }
			for _, s := range tc.steps {
				now = t0.Add(s.at)
				p.set(s.done, s.total)
			}
			if tc.finish {
				p.finish()
				p.finish()
			}
			assert.NotContains(t, buf.String(), "\r")
			var got []string
			if s := buf.String(); s != "" {
				require.True(t, strings.HasSuffix(s, "\n"), "%q", s)
				got = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestScoreProgressIntoAPipe: rerank score's progress into a file or a
// pipe is a plain line, not a bar's carriage returns.
func TestScoreProgressIntoAPipe(t *testing.T) {
	model := tinyModel(t)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"query":"wing","passages":["lift of a wing","heat","shock"]}`+"\n"), 0o644))
	_, stderr, err := runTrainCLI(t, "score", "--model", model, "--input", in, "--output", filepath.Join(t.TempDir(), "o.jsonl"))
	require.NoError(t, err)
	assert.NotContains(t, stderr, "\r")
	assert.Contains(t, stderr, "score 3/3 pairs (100%)")
}
