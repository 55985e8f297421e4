//go:build mpi && cgo

package dist

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/mpitest"
)

func TestMPICollectives(t *testing.T) {
	if !mpitest.Worker() {
		out, err := mpitest.Run(t, 2, t.Name(), time.Minute)
		require.NoError(t, err, out)
		require.Contains(t, out, "rank 0 ok")
		require.Contains(t, out, "rank 1 ok")
		return
	}
	c, err := Open(Options{Backend: MPI, Timeout: 20 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	r := c.Rank()
	require.Equal(t, 2, c.Size())
	buf := []float32{float32(r + 1), float32(10 * (r + 1)), 0.5}
	require.NoError(t, c.AllReduce(buf, Sum))
	require.Equal(t, []float32{3, 30, 1}, buf)
	buf = []float32{float32(r + 1), float32(10 * (r + 1))}
	require.NoError(t, c.AllReduce(buf, Mean))
	require.Equal(t, []float32{1.5, 15}, buf)
	// More than one bucket.
	big := make([]float32, BucketBytes/4+3)
	for i := range big {
		big[i] = float32(r)
	}
	require.NoError(t, c.AllReduce(big, Sum))
	require.Equal(t, float32(1), big[0])
	require.Equal(t, float32(1), big[len(big)-1])
	require.Equal(t, 3, c.Stats().AllReduces)
	require.Equal(t, 4, c.Stats().Buckets)
	b := []float32{float32(r), float32(r)}
	require.NoError(t, c.Broadcast(b, 1))
	require.Equal(t, []float32{1, 1}, b)
	require.NoError(t, c.Barrier())
	// Go's own signal handling still works after MPI_Init: a nil
	// dereference is a panic that recovers, not Open MPI's crash handler.
	require.Panics(t, func() {
		var p *int
		_ = *p
	})
	fmt.Printf("rank %d ok\n", r)
}

// TestMPIDeadRank kills rank 1 in the middle of a collective: rank 0 must
// end with an error within the timeout, and mpirun must name rank 1.
func TestMPIDeadRank(t *testing.T) {
	if !mpitest.Worker() {
		t0 := time.Now()
		out, err := mpitest.Run(t, 2, t.Name(), time.Minute)
		require.Error(t, err, out)
		require.Less(t, time.Since(t0), 40*time.Second, out)
		require.Contains(t, out, "rank 0 error: all-reduce: another rank failed: stopped while waiting", out)
		require.Contains(t, out, "process rank 1", out) // mpirun names the dead rank
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	c, err := Open(Options{Backend: MPI, Timeout: 5 * time.Second, Context: ctx})
	require.NoError(t, err)
	require.NoError(t, c.Barrier())
	if c.Rank() == 1 {
		p, _ := os.FindProcess(os.Getpid())
		p.Kill()
		time.Sleep(time.Hour)
	}
	buf := make([]float32, 4)
	err = c.AllReduce(buf, Sum)
	fmt.Printf("rank 0 error: %v\n", err)
	require.Error(t, err)
	os.Exit(3)
}

// TestMPITimeout: rank 1 is alive but never joins the all-reduce; rank 0
// gives up after its timeout with an error saying so.
func TestMPITimeout(t *testing.T) {
	if !mpitest.Worker() {
		t0 := time.Now()
		out, err := mpitest.Run(t, 2, t.Name(), time.Minute)
		require.Error(t, err, out)
		require.Contains(t, out, "rank 0 error: all-reduce: no answer from another rank within 1s (--ddp-timeout)", out)
		require.Less(t, time.Since(t0), 30*time.Second, out)
		return
	}
	c, err := Open(Options{Backend: MPI, Timeout: time.Second})
	require.NoError(t, err)
	if c.Rank() == 1 {
		time.Sleep(20 * time.Second)
		os.Exit(0)
	}
	err = c.AllReduce(make([]float32, 4), Sum)
	fmt.Printf("rank 0 error: %v\n", err)
	os.Exit(3)
}

// TestMPIAllReduceTimeWorker times all-reduces of RERANK_MPI_BENCH_MB
// megabytes between 2 ranks that are both ready (after a barrier).
func TestMPIAllReduceTimeWorker(t *testing.T) {
	mb := os.Getenv("RERANK_MPI_BENCH_MB")
	if !mpitest.Worker() || mb == "" {
		t.Skip("a rank of BenchmarkMPIAllReduce")
	}
	var n int
	_, err := fmt.Sscan(mb, &n)
	require.NoError(t, err)
	c, err := Open(Options{Backend: MPI, Timeout: time.Minute})
	require.NoError(t, err)
	buf := make([]float32, n<<20/4)
	require.NoError(t, c.AllReduce(buf, Mean)) // warm: connections, pages
	var total time.Duration
	const reps = 3
	for range reps {
		require.NoError(t, c.Barrier())
		t0 := time.Now()
		require.NoError(t, c.AllReduce(buf, Mean))
		total += time.Since(t0)
	}
	if c.Rank() == 0 {
		fmt.Printf("allreduce-seconds %.4f\n", total.Seconds()/reps)
	}
	require.NoError(t, c.Close())
}

// BenchmarkMPIAllReduce: the all-reduce of MiniLM's (91 MB) and base's
// (438 MB) gradients between 2 ranks on this machine (TCP over loopback):
// go test -tags mpi -run '^$' -bench MPIAllReduce -benchtime 1x ./dist/
func BenchmarkMPIAllReduce(b *testing.B) {
	if mpitest.Worker() {
		b.Skip()
	}
	for _, mb := range []int{91, 438} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out, err := mpitest.Run(b, 2, "TestMPIAllReduceTimeWorker", 5*time.Minute, fmt.Sprintf("RERANK_MPI_BENCH_MB=%d", mb))
				require.NoError(b, err, out)
				var s float64
				for _, line := range strings.Split(out, "\n") {
					if v, ok := strings.CutPrefix(line, "allreduce-seconds "); ok {
						fmt.Sscan(v, &s)
					}
				}
				require.Positive(b, s, out)
				b.ReportMetric(s, "s/allreduce")
				b.ReportMetric(float64(mb)/s, "MB/s")
			}
		})
	}
}
