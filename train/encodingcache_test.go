package train

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
)

// TestEncodingCacheOutsideModel: the tokenized-data cache (MBs) stays out
// of the output directory, which is the saved model's, and a resumed run
// finds it there (it reads it and has nothing new to write).
func TestEncodingCacheOutsideModel(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 4, 2
	_, err := Run(context.Background(), cpu.New(), a, Options{OnStep: func(s StepInfo) error {
		if s.Step == 2 {
			return errInterrupted
		}
		return nil
	}})
	require.ErrorIs(t, err, errInterrupted)
	require.NoError(t, filepath.WalkDir(a.OutputDir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		assert.NotContains(t, d.Name(), "cache", "%s: a cache in the model directory", p)
		return nil
	}))
	cache, err := EncodingCachePath(a)
	require.NoError(t, err)
	assert.Equal(t, a.CacheDir, filepath.Dir(cache))
	old := time.Unix(1e9, 0)
	require.NoError(t, os.Chtimes(cache, old, old))

	a.Resume = "latest"
	res, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	assert.Equal(t, 4, res.Steps)
	fi, err := os.Stat(cache)
	require.NoError(t, err)
	assert.Equal(t, old, fi.ModTime(), "the resumed run found every encoding in the cache")
	_, err = os.Stat(filepath.Join(a.OutputDir, EncodingCacheFile))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// Another output directory gets its own file; a relative path is the
	// same directory as its absolute form.
	b := a
	b.OutputDir = a.OutputDir + "-2"
	other, err := EncodingCachePath(b)
	require.NoError(t, err)
	assert.NotEqual(t, cache, other)
	wd, err := os.Getwd()
	require.NoError(t, err)
	if rel, err := filepath.Rel(wd, a.OutputDir); err == nil {
		c := a
		c.OutputDir = rel
		same, err := EncodingCachePath(c)
		require.NoError(t, err)
		assert.Equal(t, cache, same)
	}
}
