package train

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// longData writes n examples whose queries and passages are longer than
// any max length, so that every batch has the full length.
func longData(t *testing.T, n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	text := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = words[r.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	var ex []flagdata.Example
	for i := 0; i < n; i++ {
		e := flagdata.Example{Query: text(40), Pos: []string{text(300)}}
		for k := 0; k < 8; k++ {
			e.Neg = append(e.Neg, text(300))
		}
		ex = append(ex, e)
	}
	path := filepath.Join(t.TempDir(), "long.jsonl")
	require.NoError(t, flagdata.WriteFile(path, ex))
	return path
}

// TestMemoryEstimateMatchesPeak trains the tiny preset in a child process
// (this test binary, re-run) and compares the estimate with the child's
// measured peak resident memory: within 25%. bench/RESULTS.md records the
// same comparison for mini and base.
func TestMemoryEstimateMatchesPeak(t *testing.T) {
	if dir := os.Getenv("RERANK_MEMORY_CHILD"); dir != "" {
		var a Args
		require.NoError(t, readJSON(filepath.Join(dir, "args.json"), &a))
		_, err := Run(context.Background(), cpu.New(), a, Options{})
		require.NoError(t, err)
		return
	}
	if testing.Short() {
		t.Skip("trains in a child process")
	}
	model := filepath.Join(t.TempDir(), "tiny")
	_, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT, Tokenizer: tokenizerDir(), Output: model, Seed: 1})
	require.NoError(t, err)
	data := longData(t, 16)
	for _, tc := range []struct {
		name         string
		batch, group int
		qlen, plen   int
		ckpt         bool
	}{
		{"batch 4x8, 256 tokens", 4, 8, 32, 224, false},
		{"batch 2x8, 128 tokens, checkpointing", 2, 8, 16, 112, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultArgs()
			a.ModelDir, a.TrainData, a.OutputDir = model, data, filepath.Join(t.TempDir(), "out")
			a.PerDeviceTrainBatchSize, a.TrainGroupSize, a.QueryMaxLen, a.PassageMaxLen = tc.batch, tc.group, tc.qlen, tc.plen
			a.MaxSteps, a.SaveSteps, a.GradientCheckpointing = 2, 0, tc.ckpt
			cfg, err := hfmodel.ReadConfig(model)
			require.NoError(t, err)
			est, err := EstimateMemory(cpu.New(), cfg.Config, a)
			require.NoError(t, err)

			dir := t.TempDir()
			require.NoError(t, writeArgs(filepath.Join(dir, "args.json"), a))
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryEstimateMatchesPeak$", "-test.count=1")
			cmd.Env = append(os.Environ(), "RERANK_MEMORY_CHILD="+dir)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			ratio := float64(est.Total()) / float64(peak)
			t.Logf("estimate %s, measured peak %s: %.2f", est, fmtBytes(peak), ratio)
			assert.InDelta(t, 1, ratio, 0.25, "estimate %s against a measured peak of %s", fmtBytes(est.Total()), fmtBytes(peak))
		})
	}
}

// TestMemoryRefusal: a batch that cannot fit is refused before anything
// is allocated, with the estimate and the available memory.
func TestMemoryRefusal(t *testing.T) {
	model, data := microModel(t), microData(t, 10, false)
	a := microArgs(t, model, data)
	a.TrainGroupSize = 20000
	_, err := Run(context.Background(), cpu.New(), a, Options{AvailableMemory: 1 << 30})
	require.Error(t, err)
	for _, w := range []string{"per_device_train_batch_size: this run needs about ", "GiB of memory, but 1.0 GiB is available", "train_group_size (20000)"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.NoDirExists(t, filepath.Join(a.OutputDir, "checkpoint-2"))
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
