//go:build mpi && cgo

package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/mpitest"
	"github.com/rerank-go/rerank/nn"
)

// benchShapes are the MiniLM (ms-marco-MiniLM-L-6) and base
// (bge-reranker-base) shapes with the bundled BERT vocabulary.
var benchShapes = map[string]nn.Config{
	"minilm": {Arch: nn.BERT, VocabSize: 30522, Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536, MaxPositions: 512, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1},
	"base":   {Arch: nn.BERT, VocabSize: 30522, Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, MaxPositions: 512, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1},
}

const benchJobEnv = "RERANK_DDP_BENCH"

type benchJob struct {
	Args  Args
	Out   string
	Warm  int // steps left out of the timing
	Steps int
}

type benchResult struct {
	StepSeconds      float64 // mean wall time of a timed step, rank 0
	AllReduceSeconds float64 // mean time in the step's all-reduce (incl. waiting for the other rank)
	Bytes            int64   // reduced per step
}

// TestMPIBenchWorker is a rank of BenchmarkMPIAllReduceShare.
func TestMPIBenchWorker(t *testing.T) {
	if !mpitest.Worker() || os.Getenv(benchJobEnv) == "" {
		t.Skip("a rank of BenchmarkMPIAllReduceShare")
	}
	var job benchJob
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(benchJobEnv)), &job))
	comm, err := dist.Open(dist.Options{Device: "cpu", Timeout: 10 * time.Minute})
	require.NoError(t, err)
	var t0 time.Time
	var s0 dist.Stats
	opts := Options{Comm: comm, OnStep: func(s StepInfo) error {
		if s.Step == job.Warm {
			t0, s0 = time.Now(), comm.Stats()
		}
		return nil
	}}
	job.Args.MaxSteps = job.Warm + job.Steps
	_, err = Run(context.Background(), cpu.New(), job.Args, opts)
	require.NoError(t, err)
	el, s1 := time.Since(t0), comm.Stats()
	n := float64(job.Steps)
	r := benchResult{StepSeconds: el.Seconds() / n, AllReduceSeconds: (s1.Time - s0.Time).Seconds() / n, Bytes: (s1.Bytes - s0.Bytes) / int64(job.Steps)}
	if comm.Rank() == 0 {
		js, _ := json.Marshal(r)
		require.NoError(t, os.WriteFile(job.Out, js, 0o644))
	}
	require.NoError(t, comm.Close())
}

// BenchmarkMPIAllReduceShare trains 2 CPU ranks (mpirun -np 2) on the
// MiniLM and base shapes and reports the all-reduce's share of the step
// time: go test -tags mpi -run '^$' -bench MPIAllReduceShare -benchtime 1x ./train/
func BenchmarkMPIAllReduceShare(b *testing.B) {
	if mpitest.Worker() {
		b.Skip()
	}
	data := microData(b, 64, false)
	for _, name := range []string{"minilm", "base"} {
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "model")
			m, err := nn.New(cpu.New(), benchShapes[name])
			require.NoError(b, err)
			m.InitRandom(3, 0.02)
			require.NoError(b, hfmodel.Save(m, nil, dir, tokenizerDir()))
			a := DefaultArgs()
			a.ModelDir, a.TrainData, a.OutputDir = dir, data, filepath.Join(b.TempDir(), "out")
			a.TrainGroupSize, a.QueryMaxLen, a.PassageMaxLen = 8, 16, 48
			a.PerDeviceTrainBatchSize, a.LearningRate, a.SaveSteps, a.LoggingSteps = 1, 1e-5, 0, 100
			for i := 0; i < b.N; i++ {
				job := benchJob{Args: a, Out: filepath.Join(b.TempDir(), "r.json"), Warm: 1, Steps: 3}
				js, _ := json.Marshal(job)
				out, err := mpitest.Run(b, 2, "TestMPIBenchWorker", 10*time.Minute, benchJobEnv+"="+string(js))
				require.NoError(b, err, out)
				var r benchResult
				data, err := os.ReadFile(job.Out)
				require.NoError(b, err, out)
				require.NoError(b, json.Unmarshal(data, &r))
				b.ReportMetric(r.StepSeconds, "s/step")
				b.ReportMetric(r.AllReduceSeconds, "s-allreduce/step")
				b.ReportMetric(100*r.AllReduceSeconds/r.StepSeconds, "%allreduce")
				b.ReportMetric(float64(r.Bytes)/1e6, "MB/step")
				fmt.Fprintf(os.Stderr, "%s: step %.3fs, all-reduce %.3fs (%.1f%%), %.1f MB\n", name, r.StepSeconds, r.AllReduceSeconds, 100*r.AllReduceSeconds/r.StepSeconds, float64(r.Bytes)/1e6)
			}
		})
	}
}
