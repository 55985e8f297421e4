//go:build cuda && !cudaemu

package dist

/*
// The few CUDA runtime calls NCCL's stream and events need, declared here
// (cudart is linked by package cuda) so that no CUDA header is needed.
extern int cudaSetDevice(int device);
extern int cudaStreamCreateWithFlags(void **stream, unsigned int flags);
extern int cudaStreamDestroy(void *stream);
extern int cudaEventCreateWithFlags(void **event, unsigned int flags);
extern int cudaEventDestroy(void *event);
extern int cudaEventRecord(void *event, void *stream);
extern int cudaEventQuery(void *event);
extern int cudaStreamWaitEvent(void *stream, void *event, unsigned int flags);
extern const char *cudaGetErrorString(int err);

// cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2, cudaErrorNotReady = 600.
static int rk_dist_stream(void **s) { return cudaStreamCreateWithFlags(s, 1); }
static int rk_dist_event(void **e) { return cudaEventCreateWithFlags(e, 2); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/cuda"
)

func cudaError(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (CUDA error %d)", op, C.GoString(C.cudaGetErrorString(rc)), int(rc))
}

// ncclComm is Comm and DeviceComm over NCCL. Reductions run on the
// communicator's own stream: an event recorded on the backend's stream
// starts them after the gradients they reduce, and an event recorded
// after them holds the backend's stream until they are done. Wait polls
// that event and NCCL's asynchronous error, and aborts the communicator
// after the timeout, so a dead peer ends in an error, not a hang.
type ncclComm struct {
	rank, size, local int
	gpu               *cuda.Backend
	comm              unsafe.Pointer // ncclComm_t
	stream            unsafe.Pointer // the communicator's stream
	ready, done       unsafe.Pointer // events
	timeout           time.Duration
	stop              <-chan struct{}
	pending           []backend.Buf
	pendingOp         Op
	scratch           backend.Buf
	stats             Stats
	err               error
	boot              Comm // the MPI communicator of the id exchange under mpirun
}

func openNCCL(l Launch, opts Options) (Comm, error) {
	v, err := LoadNCCL(NCCLLibrary())
	if err != nil {
		return nil, err
	}
	gpu, ok := opts.GPU.(*cuda.Backend)
	if !ok || gpu == nil {
		return nil, errors.New("--ddp-backend nccl needs --device cuda")
	}
	if v < 21000 { // codes before 2.9 were 2708 for 2.7.8: all below

		return nil, fmt.Errorf("NCCL %s is too old: rerank needs 2.10 or newer", ncclVersionString(v))
	}
	c := &ncclComm{rank: l.Rank, size: max(l.Size, 1), local: l.LocalRank, gpu: gpu, timeout: opts.Timeout}
	if opts.Context != nil {
		c.stop = opts.Context.Done()
	}
	if err := cudaError("cudaSetDevice", C.cudaSetDevice(C.int(gpu.Device()))); err != nil {
		return nil, err
	}

	// NCCL's unique id: from NCCL_COMM_ID (NCCL bootstraps itself), else
	// made by rank 0 and sent through MPI (mpirun) or the TCP rendezvous.
	var id []byte
	switch {
	case l.NCCLCommID != "" || c.size == 1:
		if id, err = ncclUniqueID(); err != nil {
			return nil, err
		}
	case l.Launcher == "mpirun":
		boot, err := openMPI(l, opts)
		if err != nil {
			if errors.Is(err, ErrNoMPI) {
				return nil, fmt.Errorf("NCCL under mpirun sends its id through MPI, and %v; or set NCCL_COMM_ID=host:port, or MASTER_ADDR and MASTER_PORT", err)
			}
			return nil, err
		}
		c.boot = boot
		buf := make([]float32, ncclIDBytes/4)
		if c.rank == 0 {
			if id, err = ncclUniqueID(); err != nil {
				return nil, err
			}
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), ncclIDBytes), id)
		}
		if err := boot.Broadcast(buf, 0); err != nil {
			return nil, fmt.Errorf("NCCL id exchange: %w", err)
		}
		id = append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), ncclIDBytes)...)
	default:
		addr, err := RendezvousAddr(l)
		if err != nil {
			return nil, err
		}
		mine := make([]byte, ncclIDBytes)
		if c.rank == 0 {
			if mine, err = ncclUniqueID(); err != nil {
				return nil, err
			}
		}
		if id, err = ShareID(addr, c.rank, c.size, mine, opts.Timeout); err != nil {
			return nil, err
		}
	}

	// ncclCommInitRank blocks until every rank has joined: bound it.
	type initRes struct {
		comm unsafe.Pointer
		err  error
	}
	ch := make(chan initRes, 1)
	go func() {
		C.cudaSetDevice(C.int(gpu.Device())) // this goroutine's thread
		comm, err := ncclInitRank(c.size, id, c.rank)
		ch <- initRes{comm, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("NCCL %s, rank %d of %d: %w", ncclVersionString(v), c.rank, c.size, r.err)
		}
		c.comm = r.comm
	case <-time.After(opts.Timeout):
		return nil, &RankError{Op: "NCCL init", Rank: -1, Timeout: opts.Timeout}
	}
	if err := cudaError("cudaStreamCreate", C.rk_dist_stream(&c.stream)); err != nil {
		return nil, err
	}
	if err := cudaError("cudaEventCreate", C.rk_dist_event(&c.ready)); err != nil {
		return nil, err
	}
	if err := cudaError("cudaEventCreate", C.rk_dist_event(&c.done)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *ncclComm) Rank() int      { return c.rank }
func (c *ncclComm) Size() int      { return c.size }
func (c *ncclComm) LocalRank() int { return c.local }
func (c *ncclComm) Name() string   { return NCCL }
func (c *ncclComm) Stats() Stats   { return c.stats }

// after makes the communicator's stream wait for the work queued on the
// backend's stream so far.
func (c *ncclComm) after() error {
	if err := cudaError("cudaEventRecord", C.cudaEventRecord(c.ready, c.gpu.Stream())); err != nil {
		return err
	}
	return cudaError("cudaStreamWaitEvent", C.cudaStreamWaitEvent(c.stream, c.ready, 0))
}

func (c *ncclComm) AllReduceAsync(op Op, bufs ...backend.Buf) error {
	if c.err != nil {
		return c.err
	}
	if len(c.pending) > 0 && op != c.pendingOp {
		return errors.New("nccl: reductions with different ops between two Waits")
	}
	if err := c.after(); err != nil {
		return c.fail(err)
	}
	if err := ncclGroupStart(); err != nil {
		return c.fail(err)
	}
	for _, b := range bufs {
		p, n := cuda.DevicePtr(b)
		if err := ncclAllReduceF32(p, n, c.comm, c.stream); err != nil {
			ncclGroupEnd()
			return c.fail(err)
		}
		c.stats.Bytes += int64(4 * n)
	}
	if err := ncclGroupEnd(); err != nil {
		return c.fail(err)
	}
	c.stats.Buckets++
	c.pending, c.pendingOp = append(c.pending, bufs...), op
	return nil
}

func (c *ncclComm) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return c.err
}

// Wait holds the backend's stream until the started reductions are done
// and waits for them, watching NCCL's asynchronous errors, the timeout
// and the stop context; on a failure it aborts the communicator, which
// ends NCCL's kernels so neither stream stays blocked.
func (c *ncclComm) Wait() error {
	if c.err != nil {
		return c.err
	}
	if len(c.pending) == 0 {
		return nil
	}
	t0 := time.Now()
	if err := cudaError("cudaEventRecord", C.cudaEventRecord(c.done, c.stream)); err != nil {
		return c.fail(err)
	}
	if err := cudaError("cudaStreamWaitEvent", C.cudaStreamWaitEvent(c.gpu.Stream(), c.done, 0)); err != nil {
		return c.fail(err)
	}
	deadline := t0.Add(c.timeout)
	for pause := time.Duration(0); ; pause = min(max(2*pause, 10*time.Microsecond), time.Millisecond) {
		rc := C.cudaEventQuery(c.done)
		if rc == 0 {
			break
		}
		if rc != 600 { // cudaErrorNotReady
			return c.fail(cudaError("NCCL reduction", rc))
		}
		var cause error
		if err := ncclAsyncError(c.comm); err != nil {
			cause = &RankError{Op: "all-reduce", Rank: -1, Err: err}
		} else if time.Now().After(deadline) {
			cause = &RankError{Op: "all-reduce", Rank: -1, Timeout: c.timeout}
		} else {
			select {
			case <-c.stop:
				cause = &RankError{Op: "all-reduce", Rank: -1, Err: errStopped}
			default:
			}
		}
		if cause != nil {
			ncclAbort(c.comm)
			c.comm = nil
			return c.fail(cause)
		}
		time.Sleep(pause)
	}
	if c.pendingOp == Mean && c.size > 1 {
		for _, b := range c.pending {
			c.gpu.Scale(b, 1/float32(c.size))
		}
	}
	c.pending = c.pending[:0]
	c.stats.AllReduces++
	c.stats.Time += time.Since(t0)
	return nil
}

// staged runs a collective on host values through a device buffer.
func (c *ncclComm) staged(buf []float32, run func(dev backend.Buf) error) error {
	if c.err != nil {
		return c.err
	}
	if len(buf) == 0 {
		return nil
	}
	if c.scratch == nil || c.scratch.Len() < len(buf) {
		if c.scratch != nil {
			c.gpu.Free(c.scratch)
		}
		s, err := c.gpu.Alloc(len(buf))
		if err != nil {
			return c.fail(err)
		}
		c.scratch = s
	}
	dev := c.scratch.Slice(0, len(buf))
	c.gpu.Upload(dev, buf)
	if err := run(dev); err != nil {
		return err
	}
	c.gpu.Download(buf, dev)
	return c.gpu.Sync()
}

func (c *ncclComm) AllReduce(buf []float32, op Op) error {
	return c.staged(buf, func(dev backend.Buf) error {
		if err := c.AllReduceAsync(op, dev); err != nil {
			return err
		}
		return c.Wait()
	})
}

func (c *ncclComm) Broadcast(buf []float32, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("broadcast from rank %d in a world of %d", root, c.size)
	}
	return c.staged(buf, func(dev backend.Buf) error {
		if err := c.after(); err != nil {
			return c.fail(err)
		}
		p, n := cuda.DevicePtr(dev)
		if err := ncclBroadcastF32(p, n, root, c.comm, c.stream); err != nil {
			return c.fail(err)
		}
		// Wait's bookkeeping with nothing to scale: an op of Sum.
		c.pending, c.pendingOp = append(c.pending, dev), Sum
		err := c.Wait()
		c.stats.AllReduces--
		return err
	})
}

func (c *ncclComm) Barrier() error {
	return c.AllReduce([]float32{0}, Sum)
}

// Abort prints err with this rank and aborts the communicator: the other
// ranks' NCCL operations fail (or time out) and they stop; under mpirun
// the whole job is ended.
func (c *ncclComm) Abort(err error) {
	fmt.Fprintf(os.Stderr, "rerank: rank %d of %d: %v: stopping every rank\n", c.rank, c.size, err)
	if c.comm != nil {
		ncclAbort(c.comm)
		c.comm = nil
	}
	if c.boot != nil {
		c.boot.Abort(err)
	}
}

func (c *ncclComm) Close() error {
	var err error
	if c.comm != nil {
		if c.err == nil {
			err = ncclDestroy(c.comm)
		} else {
			ncclAbort(c.comm)
		}
		c.comm = nil
	}
	if c.scratch != nil {
		c.gpu.Free(c.scratch)
		c.scratch = nil
	}
	for _, e := range []*unsafe.Pointer{&c.ready, &c.done} {
		if *e != nil {
			C.cudaEventDestroy(*e)
			*e = nil
		}
	}
	if c.stream != nil {
		C.cudaStreamDestroy(c.stream)
		c.stream = nil
	}
	if c.boot != nil {
		if e := c.boot.Close(); err == nil {
			err = e
		}
	}
	return err
}
