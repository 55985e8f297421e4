// Package dist runs data-parallel training across processes: the
// communicator the trainer uses (rank, world size, all-reduce, broadcast,
// barrier, abort) and the launch environment it reads.
//
// Three communicators implement Comm:
//
//   - Single, the default: one process, every collective a no-op.
//   - MPI, for CPU processes started by mpirun: Open MPI through cgo,
//     compiled only with the build tag mpi (go build -tags mpi), so the
//     default build needs no MPI.
//   - NCCL, for GPUs: libnccl.so.2 loaded at run time through a small C
//     shim, compiled with the build tag cuda like the CUDA backend, so that
//     building and vetting need neither nccl.h nor the library.
//
// rerank does no collective communication of its own: it uses the
// engines clusters already run, launched as users already launch them
// (mpirun, torchrun). See Detect for the environment variables read.
package dist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rerank-go/rerank/backend"
)

// Op is the reduction of an all-reduce.
type Op int

const (
	// Sum adds the ranks' values.
	Sum Op = iota
	// Mean adds them and divides by the world size.
	Mean
)

func (o Op) String() string {
	if o == Mean {
		return "mean"
	}
	return "sum"
}

// Comm is a communicator over the processes of one training run. Every
// rank must call the collectives (AllReduce, Broadcast, Barrier) in the
// same order with the same lengths. Methods return an error, never hang
// for longer than the communicator's timeout, and after the first error
// the communicator is unusable.
type Comm interface {
	// Rank is this process's 0-based rank; 0 writes checkpoints and logs.
	Rank() int
	// Size is the number of processes (the world size).
	Size() int
	// LocalRank is the rank among the processes of this machine; on GPUs
	// it picks the device.
	LocalRank() int
	// Name is the backend: "none", "mpi" or "nccl".
	Name() string
	// AllReduce reduces buf in place over all ranks (float32, in buckets
	// of about BucketBytes).
	AllReduce(buf []float32, op Op) error
	// Broadcast copies root's buf to every rank's buf.
	Broadcast(buf []float32, root int) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Abort stops every rank of the run: this one returns, the others get
	// an error (or are stopped by the launcher) naming this rank and err.
	Abort(err error)
	// Stats are the counts and time of the collectives so far.
	Stats() Stats
	// Close releases the communicator (collectively, after a success).
	Close() error
}

// Stats count a communicator's collectives.
type Stats struct {
	AllReduces int           // AllReduce calls
	Buckets    int           // the reductions they were split into
	Bytes      int64         // bytes reduced
	Time       time.Duration // wall time spent in AllReduce
}

// BucketBytes is the size of the pieces AllReduce reduces one after the
// other: 25 MB, the default bucket_cap_mb of torch's DistributedDataParallel.
const BucketBytes = 25 << 20

// Backend names for Options.Backend (--ddp-backend).
const (
	Auto = ""     // from the launch: nccl on GPUs, mpi on CPUs, none for one process
	None = "none" // one process
	MPI  = "mpi"
	NCCL = "nccl"
)

// DefaultTimeout is torch.distributed's default collective timeout.
const DefaultTimeout = 30 * time.Minute

// Options configure Open.
type Options struct {
	// Backend is Auto, None, MPI or NCCL.
	Backend string
	// Device is the training device kind, "cpu" or "cuda"; it decides the
	// automatic backend.
	Device string
	// Timeout bounds every collective (DefaultTimeout when 0).
	Timeout time.Duration
	// Launch is the launch environment (Detect(os.Getenv) when nil).
	Launch *Launch
	// GPU is the CUDA backend NCCL runs beside (a *cuda.Backend); only
	// NCCL uses it.
	GPU any
	// Context, when done, ends a collective that is waiting with an
	// error: a launcher that stops the job (mpirun sends SIGTERM to every
	// rank when one dies) then gets a clean error, not a kill mid-wait.
	Context context.Context
}

// ErrNoMPI is returned when MPI is asked for in a build without it.
var ErrNoMPI = errors.New("this rerank was built without MPI: rebuild with `go build -tags mpi ./cmd/rerank` (needs Debian's libopenmpi-dev)")

// ErrNoNCCL is returned when NCCL is asked for in a build without CUDA.
var ErrNoNCCL = errors.New("this rerank was built without CUDA, so without NCCL: rebuild with -tags cuda (see README), or use --ddp-backend mpi on CPUs")

// Open returns the communicator the launch environment and opts ask
// for. A single process (no launcher, or a world of 1 without an explicit
// backend) gets Single.
func Open(opts Options) (Comm, error) {
	l := opts.Launch
	if l == nil {
		d, err := Detect(os.Getenv)
		if err != nil {
			return nil, err
		}
		l = &d
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	name := strings.ToLower(opts.Backend)
	switch name {
	case Auto:
		switch {
		case l.Size <= 1:
			name = None
		case strings.HasPrefix(opts.Device, "cuda"):
			name = NCCL
		case l.Launcher == "torchrun":
			return nil, fmt.Errorf("%d processes on the cpu under torchrun: the cpu backend is MPI, start them with `mpirun -np %d rerank train ...`", l.Size, l.Size)
		default:
			name = MPI
		}
	case None, MPI, NCCL:
	default:
		return nil, fmt.Errorf("--ddp-backend %q: want nccl, mpi or none", opts.Backend)
	}
	switch name {
	case None:
		if l.Size > 1 {
			return nil, fmt.Errorf("--ddp-backend none with a world of %d processes (%s): every process would train alone and they would write the same files; drop --ddp-backend or start one process", l.Size, l.Launcher)
		}
		return Single{}, nil
	case MPI:
		if l.Launcher != "mpirun" && l.Size > 1 {
			return nil, fmt.Errorf("--ddp-backend mpi needs processes started by mpirun (OMPI_COMM_WORLD_RANK is not set; launcher: %s)", l.Launcher)
		}
		return openMPI(*l, opts)
	default:
		return openNCCL(*l, opts)
	}
}

// Single is the communicator of one process: rank 0 of 1, with every
// collective a no-op.
type Single struct{}

func (Single) Rank() int                      { return 0 }
func (Single) Size() int                      { return 1 }
func (Single) LocalRank() int                 { return 0 }
func (Single) Name() string                   { return None }
func (Single) AllReduce([]float32, Op) error  { return nil }
func (Single) Broadcast([]float32, int) error { return nil }
func (Single) Barrier() error                 { return nil }
func (Single) Abort(error)                    {}
func (Single) Stats() Stats                   { return Stats{} }
func (Single) Close() error                   { return nil }

// RankError is the error of a collective that failed because of another
// rank: it dead, stopped or too slow.
type RankError struct {
	Op      string // the collective, e.g. "all-reduce"
	Rank    int    // the rank at fault, or -1 when unknown
	Timeout time.Duration
	Err     error
}

func (e *RankError) Error() string {
	who := "another rank"
	if e.Rank >= 0 {
		who = fmt.Sprintf("rank %d", e.Rank)
	}
	if e.Timeout > 0 && e.Err == nil {
		return fmt.Sprintf("%s: no answer from %s within %v (--ddp-timeout): it died, hangs or is far behind; the last checkpoint is whole, continue with --resume latest", e.Op, who, e.Timeout)
	}
	return fmt.Sprintf("%s: %s failed: %v; the last checkpoint is whole, continue with --resume latest", e.Op, who, e.Err)
}

func (e *RankError) Unwrap() error { return e.Err }

// errStopped is the cause of a collective ended by Options.Context.
var errStopped = errors.New("stopped while waiting (a launcher stops every rank when one dies or fails: its message names that rank)")

// DeviceComm is a communicator that reduces the backend's own buffers
// where they live (NCCL: GPU memory), on its own stream, while the
// backend goes on computing. The trainer starts the reductions of the
// gradient buckets during the backward pass as they become final, then
// calls Wait before the optimizer step.
type DeviceComm interface {
	Comm
	// AllReduceAsync starts reducing bufs (buffers of the backend) in
	// place, in one group, after the work queued on the backend so far.
	AllReduceAsync(op Op, bufs ...backend.Buf) error
	// Wait makes the backend's later work wait (with events) for every
	// reduction started since the last Wait, and returns once they are
	// done: with an error naming the cause when a rank failed or the
	// timeout passed. It counts one all-reduce in Stats.
	Wait() error
}
