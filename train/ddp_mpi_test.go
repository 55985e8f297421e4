//go:build mpi && cgo

package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/mpitest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

// ddpJob is what a test asks its mpirun ranks to do (through the
// environment) and ddpResult what rank 0 reports back.
type ddpJob struct {
	Args    Args
	Out     string // rank 0 writes its ddpResult here
	DieAt   int    // rank 1 kills itself (SIGKILL) after this step
	Timeout time.Duration
}

type ddpResult struct {
	Losses     []float64
	Dev        map[string]float64
	DevBefore  map[string]float64
	AllReduces int
	Buckets    int
}

const ddpJobEnv = "RERANK_DDP_JOB"

// TestMPIWorker is every rank of the jobs below; alone it does nothing.
func TestMPIWorker(t *testing.T) {
	if !mpitest.Worker() {
		t.Skip("a rank of the mpirun jobs of the other TestMPI tests")
	}
	var job ddpJob
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(ddpJobEnv)), &job))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	comm, err := dist.Open(dist.Options{Device: "cpu", Timeout: job.Timeout, Context: ctx})
	require.NoError(t, err)
	opts := Options{Comm: comm}
	if job.DieAt > 0 && comm.Rank() == 1 {
		opts.OnStep = func(s StepInfo) error {
			if s.Step == job.DieAt {
				p, _ := os.FindProcess(os.Getpid())
				p.Signal(syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
			return nil
		}
	}
	res, err := Run(ctx, cpu.New(), job.Args, opts)
	if err != nil {
		fmt.Printf("rank %d error: %v\n", comm.Rank(), err)
		var re *dist.RankError
		if errors.As(err, &re) {
			fmt.Printf("rank %d: a clean RankError\n", comm.Rank())
		}
		os.Exit(2)
	}
	st := comm.Stats()
	if comm.Rank() == 0 {
		js, err := json.Marshal(ddpResult{Losses: res.Losses, Dev: res.Dev, DevBefore: res.DevBefore, AllReduces: st.AllReduces, Buckets: st.Buckets})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(job.Out, js, 0o644))
	}
	require.NoError(t, comm.Close())
}

// runDDP runs job on np ranks and returns rank 0's result (nil when the
// job failed) and the output.
func runDDP(t *testing.T, np int, job ddpJob) (*ddpResult, string, error) {
	t.Helper()
	job.Out = filepath.Join(t.TempDir(), "result.json")
	if job.Timeout == 0 {
		job.Timeout = 20 * time.Second
	}
	js, err := json.Marshal(job)
	require.NoError(t, err)
	out, err := mpitest.Run(t, np, "TestMPIWorker", 90*time.Second, ddpJobEnv+"="+string(js))
	if err != nil {
		return nil, out, err
	}
	data, rerr := os.ReadFile(job.Out)
	require.NoError(t, rerr, out)
	var res ddpResult
	require.NoError(t, json.Unmarshal(data, &res))
	return &res, out, nil
}

// noDropoutModel is microModel without dropout, so that 2 ranks × B and
// 1 process × 2B compute the same function.
func noDropoutModel(t *testing.T) string {
	t.Helper()
	cfg := microConfig()
	cfg.HiddenDropout, cfg.AttentionDropout, cfg.ClassifierDropout = 0, 0, 0
	dir := filepath.Join(t.TempDir(), "model")
	m, err := nn.New(cpu.New(), cfg)
	require.NoError(t, err)
	m.InitRandom(3, 0.02)
	require.NoError(t, hfmodel.Save(m, nil, dir, tokenizerDir()))
	return dir
}

func requireClose(t *testing.T, want, got []float64, rel float64, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		require.InDelta(t, want[i], got[i], rel*math.Max(1e-3, math.Abs(want[i])), "%s %d: want %v got %v", what, i, want, got)
	}
}

// requireSameWeights compares two model.safetensors: every weight within
// rel of the model's largest weight. Parameters whose exact gradient is
// zero under the group softmax (the classifier bias, every attention key
// bias: adding a constant to all logits of a softmax changes nothing) are
// only checked to be within maxStep of each other: their gradients are
// rounding noise, which Adam scales to steps of the learning rate.
func requireSameWeights(t *testing.T, wantDir, gotDir string, rel, maxStep float64) {
	t.Helper()
	a, err := safetensors.Open(filepath.Join(wantDir, "model.safetensors"))
	require.NoError(t, err)
	defer a.Close()
	b, err := safetensors.Open(filepath.Join(gotDir, "model.safetensors"))
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, a.Names(), b.Names())
	want, got := map[string][]float32{}, map[string][]float32{}
	scale := 0.0
	for _, name := range a.Names() {
		x, _, err := a.Float32(name)
		require.NoError(t, err)
		y, _, err := b.Float32(name)
		require.NoError(t, err)
		want[name], got[name] = x, y
		for _, v := range x {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
	}
	for _, name := range a.Names() {
		tol := rel * scale
		if name == "classifier.bias" || strings.HasSuffix(name, "attention.self.key.bias") {
			tol = maxStep
		}
		x, y := want[name], got[name]
		for i := range x {
			if d := math.Abs(float64(x[i]) - float64(y[i])); d > tol {
				t.Fatalf("%s[%d]: one process %v, two ranks %v: |d| %g > %g", name, i, x[i], y[i], d, tol)
			}
		}
	}
}

// TestMPITwoRanksEqualOneProcess: 2 ranks × B equal 1 process × 2B (per
// step losses, final weights, dev metrics), and with accumulation there
// is exactly one all-reduce per optimizer step.
func TestMPITwoRanksEqualOneProcess(t *testing.T) {
	if mpitest.Worker() {
		t.Skip()
	}
	model, data := noDropoutModel(t), microData(t, 12, false)
	for _, accum := range []int{1, 2} {
		t.Run(fmt.Sprintf("accumulation %d", accum), func(t *testing.T) {
			a := microArgs(t, model, data)
			a.GradientAccumulationSteps, a.SaveSteps, a.LearningRate = accum, 0, 5e-3
			if accum == 1 {
				a.DevCandidates, a.DevTopK, a.EvalSteps = data, 6, 3
			}
			one := a
			one.PerDeviceTrainBatchSize = 2 * a.PerDeviceTrainBatchSize
			one.OutputDir = filepath.Join(t.TempDir(), "one")
			ref, err := Run(context.Background(), cpu.New(), one, Options{})
			require.NoError(t, err)

			res, out, err := runDDP(t, 2, ddpJob{Args: a})
			require.NoError(t, err, out)
			requireClose(t, ref.Losses, res.Losses, 1e-5, "loss of step")
			requireSameWeights(t, one.OutputDir, a.OutputDir, 1e-5, 2*a.LearningRate*float64(a.MaxSteps))
			// One all-reduce per optimizer step (plus one per dev
			// evaluation), whatever the accumulation.
			evals := 0
			if a.DevCandidates != "" {
				evals = 3 // before, at step 3, at the end
				for k, v := range ref.Dev {
					assert.InDelta(t, v, res.Dev[k], 1e-12, "dev %s", k)
				}
				for k, v := range ref.DevBefore {
					assert.InDelta(t, v, res.DevBefore[k], 1e-12, "dev before %s", k)
				}
			}
			assert.Equal(t, a.MaxSteps+evals, res.AllReduces)
			assert.Equal(t, a.MaxSteps+evals, res.Buckets, "a tiny model's gradients fit one bucket")
			// Rank 0 alone wrote the log, one line per step, with the
			// global loss.
			w, g := metricLosses(t, one.OutputDir), metricLosses(t, a.OutputDir)
			require.Equal(t, len(w), len(g))
			for i := range w {
				require.InDelta(t, w[i], g[i], 1e-5*math.Abs(w[i]), "metrics.jsonl line %d", i+1)
			}
		})
	}
}

// TestMPIKilledRankThenResume kills rank 1 after step 3: rank 0 stops with
// a clean error within the timeout (no hang), the checkpoint of step 2 is
// whole, and resuming from it gives the uninterrupted losses.
func TestMPIKilledRankThenResume(t *testing.T) {
	if mpitest.Worker() {
		t.Skip()
	}
	model, data := noDropoutModel(t), microData(t, 12, false)
	a := microArgs(t, model, data)
	full, out, err := runDDP(t, 2, ddpJob{Args: a})
	require.NoError(t, err, out)

	b := a
	b.OutputDir = filepath.Join(t.TempDir(), "out")
	t0 := time.Now()
	_, out, err = runDDP(t, 2, ddpJob{Args: b, DieAt: 3, Timeout: 10 * time.Second})
	require.Error(t, err, out)
	assert.Less(t, time.Since(t0), 60*time.Second)
	assert.Contains(t, out, "rank 0: a clean RankError", out)
	assert.Contains(t, out, "rank 1", out)
	ck, err := LatestCheckpoint(b.OutputDir)
	require.NoError(t, err)
	require.Equal(t, "checkpoint-2", filepath.Base(ck))

	b.Resume = "latest"
	resumed, out, err := runDDP(t, 2, ddpJob{Args: b})
	require.NoError(t, err, out)
	requireClose(t, full.Losses[2:], resumed.Losses, 1e-6, "resumed loss of step")

	// Another world size with the same global batch continues exactly;
	// another global batch is refused with what to do.
	c := b
	c.PerDeviceTrainBatchSize = 2 * b.PerDeviceTrainBatchSize
	c.OutputDir = filepath.Join(t.TempDir(), "copy")
	require.NoError(t, os.CopyFS(c.OutputDir, os.DirFS(b.OutputDir)))
	require.NoError(t, os.RemoveAll(CheckpointDir(c.OutputDir, 4)))
	require.NoError(t, os.RemoveAll(CheckpointDir(c.OutputDir, 6)))
	single, err := Run(context.Background(), cpu.New(), c, Options{})
	require.NoError(t, err)
	requireClose(t, full.Losses[2:], single.Losses, 1e-5, "loss of step resumed on one process")
	c.PerDeviceTrainBatchSize, c.Resume = b.PerDeviceTrainBatchSize, CheckpointDir(c.OutputDir, 2)
	_, err = Run(context.Background(), cpu.New(), c, Options{})
	require.ErrorContains(t, err, "was written by 2 processes")
	require.ErrorContains(t, err, "mpirun -np 2")
}

// metricLosses are the losses of metrics.jsonl, -1 where a line has none.
func metricLosses(t *testing.T, dir string) []float64 {
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	var out []float64
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			Loss *float64 `json:"loss"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		if r.Loss == nil {
			out = append(out, -1)
		} else {
			out = append(out, *r.Loss)
		}
	}
	return out
}
