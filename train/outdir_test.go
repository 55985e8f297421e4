package train

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
)

// TestOutputDirLocked: a second writer of an output directory is refused,
// naming the holder's pid; the lock goes when its run ends.
func TestOutputDirLocked(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 1, 0
	lock, err := LockOutputDir(a.OutputDir)
	require.NoError(t, err)
	_, err = Run(context.Background(), cpu.New(), a, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "output_dir: ")
	assert.Contains(t, err.Error(), "in use by process "+strconv.Itoa(os.Getpid()))
	lock.Unlock()
	assert.NoFileExists(t, filepath.Join(a.OutputDir, LockFile), "Unlock removes the lock file")
	_, err = Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(a.OutputDir, LockFile), "a finished output directory holds only what the run wrote")
	again, err := LockOutputDir(a.OutputDir)
	require.NoError(t, err, "a finished run releases the lock")
	_, err = LockOutputDir(a.OutputDir)
	assert.ErrorContains(t, err, "in use by process", "a lock made after a removal excludes as before")
	again.Unlock()
}

// TestStaleTemporariesRemoved: the partial checkpoint directories and
// files of a killed writer are removed when the next run takes the lock.
func TestStaleTemporariesRemoved(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 1, 0
	stale := []string{".checkpoint-4.tmp-123", ".model.safetensors.tmp-456"}
	require.NoError(t, os.MkdirAll(filepath.Join(a.OutputDir, stale[0]), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a.OutputDir, stale[0], "model.safetensors"), make([]byte, 1<<10), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a.OutputDir, stale[1]), []byte("half"), 0o644))
	var p recorder
	_, err := Run(context.Background(), cpu.New(), a, Options{Progress: &p})
	require.NoError(t, err)
	for _, s := range stale {
		assert.NoFileExists(t, filepath.Join(a.OutputDir, s))
		assert.NoDirExists(t, filepath.Join(a.OutputDir, s))
	}
	assert.Contains(t, p.msgs, "removed 2 temporaries left by an interrupted run (.checkpoint-4.tmp-123)")
}

// TestShortGroupsAreSaid: examples with fewer negatives than the group
// size takes are reported, with the first one's place.
func TestShortGroupsAreSaid(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps, a.TrainGroupSize = 1, 0, 8
	var p recorder
	_, err := Run(context.Background(), cpu.New(), a, Options{Progress: &p})
	require.NoError(t, err)
	assert.Contains(t, p.msgs, "10 of 10 training examples have fewer than the 7 negatives {train_group_size} 8 takes (the first: "+data+":1 has 5): their negatives are repeated, as FlagEmbedding does")
}

// TestOverwriteOutputDir: a non-empty output directory is refused; with
// OverwriteOutputDir the earlier run's files go and other files stay.
func TestOverwriteOutputDir(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 2, 1
	_, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.OutputDir, "notes.txt"), []byte("mine"), 0o644))
	before, err := os.ReadFile(filepath.Join(a.OutputDir, "model.safetensors"))
	require.NoError(t, err)

	a.MaxSteps, a.SaveSteps, a.Seed = 1, 0, 7
	_, err = Run(context.Background(), cpu.New(), a, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checkpoints of an earlier run")
	after, err := os.ReadFile(filepath.Join(a.OutputDir, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused run touches nothing")

	a.OverwriteOutputDir = true
	_, err = Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)
	cks, err := Checkpoints(a.OutputDir)
	require.NoError(t, err)
	assert.Empty(t, cks, "the earlier run's checkpoints are gone")
	assert.Equal(t, []string{"1 loss lr pps"}, metricKeys(t, a.OutputDir))
	assert.FileExists(t, filepath.Join(a.OutputDir, "notes.txt"))
}

// TestResumeRefusesChangedArgs: resuming with arguments that change the
// run is refused, naming them, unless ResumeOverride names them.
func TestResumeRefusesChangedArgs(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.MaxSteps, a.SaveSteps = 2, 1
	_, err := Run(context.Background(), cpu.New(), a, Options{})
	require.NoError(t, err)

	b := a
	b.Resume, b.LearningRate, b.Loss, b.LoggingSteps = CheckpointDir(a.OutputDir, 1), 2e-3, "bce", 5
	_, err = Run(context.Background(), cpu.New(), b, Options{})
	require.Error(t, err)
	for _, w := range []string{"resume_from_checkpoint: ", "learning_rate 0.001 -> 0.002", `loss "ce" -> "bce"`, "resume_override"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.NotContains(t, err.Error(), "logging_steps", "logging may change")

	b.ResumeOverride = []string{"learning_rate", "loss"}
	res, err := Run(context.Background(), cpu.New(), b, Options{})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Steps)
}
