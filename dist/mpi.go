//go:build mpi && cgo

package dist

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

static int rk_mpi_init(int *provided) {
	int done = 0;
	MPI_Initialized(&done);
	if (done) { MPI_Query_thread(provided); return MPI_SUCCESS; }
	int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
	if (rc != MPI_SUCCESS) return rc;
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int rk_mpi_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int rk_mpi_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int rk_mpi_iallreduce(float *buf, int n, MPI_Request *req) {
	return MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req);
}
static int rk_mpi_ibcast(float *buf, int n, int root, MPI_Request *req) {
	return MPI_Ibcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD, req);
}
static int rk_mpi_ibarrier(MPI_Request *req) { return MPI_Ibarrier(MPI_COMM_WORLD, req); }
static int rk_mpi_test(MPI_Request *req, int *flag) { return MPI_Test(req, flag, MPI_STATUS_IGNORE); }
static void rk_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int rk_mpi_finalize(void) { return MPI_Finalize(); }
static void rk_mpi_error_string(int rc, char *buf, int n) {
	int len = 0;
	if (MPI_Error_string(rc, buf, &len) != MPI_SUCCESS || len >= n) { buf[0] = 0; }
}
static int rk_mpi_version(char *buf, int n) {
	int len = 0;
	char v[MPI_MAX_LIBRARY_VERSION_STRING];
	MPI_Get_library_version(v, &len);
	int i = 0;
	for (; i < n - 1 && i < len && v[i] && v[i] != '\n' && v[i] != ','; i++) buf[i] = v[i];
	buf[i] = 0;
	return i;
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// mpiComm is Comm over Open MPI's MPI_COMM_WORLD. Collectives are the
// non-blocking MPI ones, polled until done, so that a timeout can end the
// wait: a peer that died or hangs gives an error, never a hang.
type mpiComm struct {
	mu        sync.Mutex
	rank      int
	size      int
	localRank int
	timeout   time.Duration
	done      <-chan struct{}
	stats     Stats
	err       error
	closed    bool
}

func mpiError(rc C.int) error {
	var buf [512]C.char
	C.rk_mpi_error_string(rc, &buf[0], C.int(len(buf)))
	return fmt.Errorf("MPI error %d: %s", int(rc), C.GoString(&buf[0]))
}

// MPIVersion is the MPI library's version line (e.g. "Open MPI v4.1.4").
func MPIVersion() string {
	var buf [256]C.char
	C.rk_mpi_version(&buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

func openMPI(l Launch, opts Options) (Comm, error) {
	var provided C.int
	if rc := C.rk_mpi_init(&provided); rc != 0 {
		return nil, fmt.Errorf("MPI_Init_thread: %w", mpiError(rc))
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		return nil, fmt.Errorf("MPI_Init_thread: the MPI library gives thread level %d, rerank needs MPI_THREAD_SERIALIZED (%d)", int(provided), int(C.MPI_THREAD_SERIALIZED))
	}
	var r, s C.int
	if rc := C.rk_mpi_rank(&r); rc != 0 {
		return nil, fmt.Errorf("MPI_Comm_rank: %w", mpiError(rc))
	}
	if rc := C.rk_mpi_size(&s); rc != 0 {
		return nil, fmt.Errorf("MPI_Comm_size: %w", mpiError(rc))
	}
	c := &mpiComm{rank: int(r), size: int(s), localRank: l.LocalRank, timeout: opts.Timeout}
	if opts.Context != nil {
		c.done = opts.Context.Done()
	}
	if l.Launcher == "mpirun" && (l.Rank != c.rank || l.Size != c.size) {
		return nil, fmt.Errorf("MPI says rank %d of %d, OMPI_COMM_WORLD_* say %d of %d: is this rerank linked against the Open MPI of this mpirun?", c.rank, c.size, l.Rank, l.Size)
	}
	return c, nil
}

func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.size }
func (c *mpiComm) LocalRank() int { return c.localRank }
func (c *mpiComm) Name() string   { return MPI }
func (c *mpiComm) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// wait polls req until it completes, the timeout passes, the stop
// context is done or MPI fails. Open MPI moves a non-blocking collective
// forward only inside MPI calls, so wait calls MPI_Test back to back
// (yielding to other goroutines) for the first seconds, the time a
// reduction of a large model takes, and only then backs off to one test
// per millisecond: a rank far behind costs little CPU.
func (c *mpiComm) wait(op string, req *C.MPI_Request) error {
	t0 := time.Now()
	deadline, spin := t0.Add(c.timeout), t0.Add(spinFor)
	pause := time.Duration(0)
	for {
		var flag C.int
		if rc := C.rk_mpi_test(req, &flag); rc != 0 {
			return &RankError{Op: op, Rank: -1, Err: mpiError(rc)}
		}
		if flag != 0 {
			return nil
		}
		select {
		case <-c.done:
			return &RankError{Op: op, Rank: -1, Err: errStopped}
		default:
		}
		now := time.Now()
		if now.After(deadline) {
			return &RankError{Op: op, Rank: -1, Timeout: c.timeout}
		}
		if now.Before(spin) {
			runtime.Gosched()
			continue
		}
		pause = min(max(pause*2, 10*time.Microsecond), time.Millisecond)
		time.Sleep(pause)
	}
}

// spinFor is how long wait polls without sleeping.
const spinFor = 5 * time.Second

// collective runs one non-blocking collective started by start on buf
// (pinned while MPI holds it) and waits for it.
func (c *mpiComm) collective(op string, buf []float32, start func(p *C.float, n C.int, req *C.MPI_Request) C.int) error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return fmt.Errorf("%s on a closed MPI communicator", op)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	var p *C.float
	if len(buf) > 0 {
		pin.Pin(&buf[0])
		p = (*C.float)(unsafe.Pointer(&buf[0]))
	}
	req := (*C.MPI_Request)(C.malloc(C.size_t(unsafe.Sizeof(C.MPI_Request(nil)))))
	defer C.free(unsafe.Pointer(req))
	if rc := start(p, C.int(len(buf)), req); rc != 0 {
		c.err = &RankError{Op: op, Rank: -1, Err: mpiError(rc)}
		return c.err
	}
	if err := c.wait(op, req); err != nil {
		c.err = err
		return err
	}
	return nil
}

func (c *mpiComm) AllReduce(buf []float32, op Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t0 := time.Now()
	c.stats.AllReduces++
	const bucket = BucketBytes / 4
	for off := 0; off < len(buf) || off == 0; off += bucket {
		part := buf[off:min(off+bucket, len(buf))]
		c.stats.Buckets++
		c.stats.Bytes += int64(4 * len(part))
		if err := c.collective("all-reduce", part, func(p *C.float, n C.int, req *C.MPI_Request) C.int {
			return C.rk_mpi_iallreduce(p, n, req)
		}); err != nil {
			return err
		}
		if len(buf) == 0 {
			break
		}
	}
	if op == Mean && c.size > 1 {
		s := 1 / float32(c.size)
		for i := range buf {
			buf[i] *= s
		}
	}
	c.stats.Time += time.Since(t0)
	return nil
}

func (c *mpiComm) Broadcast(buf []float32, root int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if root < 0 || root >= c.size {
		return fmt.Errorf("broadcast from rank %d in a world of %d", root, c.size)
	}
	const bucket = BucketBytes / 4
	for off := 0; off < len(buf); off += bucket {
		part := buf[off:min(off+bucket, len(buf))]
		if err := c.collective("broadcast", part, func(p *C.float, n C.int, req *C.MPI_Request) C.int {
			return C.rk_mpi_ibcast(p, n, C.int(root), req)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *mpiComm) Barrier() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.collective("barrier", nil, func(_ *C.float, _ C.int, req *C.MPI_Request) C.int {
		return C.rk_mpi_ibarrier(req)
	})
}

// Abort prints err with this rank and ends every process of the job
// (MPI_Abort: mpirun then names this rank and stops the others).
func (c *mpiComm) Abort(err error) {
	fmt.Fprintf(os.Stderr, "rerank: rank %d of %d: %v: stopping every rank\n", c.rank, c.size, err)
	C.rk_mpi_abort(1)
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.err != nil {
		return nil // after a failure, MPI_Finalize could wait for the dead
	}
	if rc := C.rk_mpi_finalize(); rc != 0 {
		return fmt.Errorf("MPI_Finalize: %w", mpiError(rc))
	}
	return nil
}
