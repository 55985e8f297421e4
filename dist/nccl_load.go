//go:build cgo

package dist

// The NCCL shim: libnccl.so.2 is opened at run time with dlopen and the
// few functions rerank calls are looked up with dlsym, through the
// prototypes below (NCCL's ABI, stable since 2.0), so that building and
// vetting need neither nccl.h nor the library. Only the CUDA build calls
// these wrappers (nccl.go); the loader itself is plain C, tested in every
// build.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>

typedef struct { char internal[128]; } rk_nccl_id;
typedef int (*rk_fn_version)(int *);
typedef int (*rk_fn_unique_id)(rk_nccl_id *);
typedef int (*rk_fn_init_rank)(void **comm, int nranks, rk_nccl_id id, int rank);
typedef int (*rk_fn_all_reduce)(const void *send, void *recv, size_t count, int dtype, int op, void *comm, void *stream);
typedef int (*rk_fn_broadcast)(const void *send, void *recv, size_t count, int dtype, int root, void *comm, void *stream);
typedef int (*rk_fn_void)(void);
typedef int (*rk_fn_comm)(void *comm);
typedef int (*rk_fn_async_error)(void *comm, int *err);
typedef const char *(*rk_fn_error_string)(int);

static struct {
	void *lib;
	rk_fn_version version;
	rk_fn_unique_id unique_id;
	rk_fn_init_rank init_rank;
	rk_fn_all_reduce all_reduce;
	rk_fn_broadcast broadcast;
	rk_fn_void group_start, group_end;
	rk_fn_comm abort_, destroy;
	rk_fn_async_error async_error;
	rk_fn_error_string error_string;
} rk_nccl;

// rk_nccl_load opens path and resolves every function; on failure it
// writes the reason to err and returns -1.
static int rk_nccl_load(const char *path, char *err, int n) {
	if (rk_nccl.lib) return 0;
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		strncpy(err, e ? e : "dlopen failed", n - 1);
		err[n - 1] = 0;
		return -1;
	}
#define RK_SYM(field, type, name) \
	rk_nccl.field = (type)dlsym(lib, name); \
	if (!rk_nccl.field) { strncpy(err, "missing symbol " name, n - 1); err[n - 1] = 0; dlclose(lib); return -1; }
	RK_SYM(version, rk_fn_version, "ncclGetVersion")
	RK_SYM(unique_id, rk_fn_unique_id, "ncclGetUniqueId")
	RK_SYM(init_rank, rk_fn_init_rank, "ncclCommInitRank")
	RK_SYM(all_reduce, rk_fn_all_reduce, "ncclAllReduce")
	RK_SYM(broadcast, rk_fn_broadcast, "ncclBroadcast")
	RK_SYM(group_start, rk_fn_void, "ncclGroupStart")
	RK_SYM(group_end, rk_fn_void, "ncclGroupEnd")
	RK_SYM(abort_, rk_fn_comm, "ncclCommAbort")
	RK_SYM(destroy, rk_fn_comm, "ncclCommDestroy")
	RK_SYM(async_error, rk_fn_async_error, "ncclCommGetAsyncError")
	RK_SYM(error_string, rk_fn_error_string, "ncclGetErrorString")
#undef RK_SYM
	rk_nccl.lib = lib;
	return 0;
}

static int rk_nccl_version(int *v) { return rk_nccl.version(v); }
static int rk_nccl_unique_id(rk_nccl_id *id) { return rk_nccl.unique_id(id); }
static int rk_nccl_init_rank(void **comm, int nranks, const rk_nccl_id *id, int rank) { return rk_nccl.init_rank(comm, nranks, *id, rank); }
// ncclFloat32 is 7 and ncclSum 0 in every NCCL 2.x.
static int rk_nccl_all_reduce_f32(void *buf, size_t count, void *comm, void *stream) {
	return rk_nccl.all_reduce(buf, buf, count, 7, 0, comm, stream);
}
static int rk_nccl_broadcast_f32(void *buf, size_t count, int root, void *comm, void *stream) {
	return rk_nccl.broadcast(buf, buf, count, 7, root, comm, stream);
}
static int rk_nccl_group_start(void) { return rk_nccl.group_start(); }
static int rk_nccl_group_end(void) { return rk_nccl.group_end(); }
static int rk_nccl_abort(void *comm) { return rk_nccl.abort_(comm); }
static int rk_nccl_destroy(void *comm) { return rk_nccl.destroy(comm); }
static int rk_nccl_async_error(void *comm, int *err) { return rk_nccl.async_error(comm, err); }
static const char *rk_nccl_error_string(int rc) { return rk_nccl.error_string(rc); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// NCCLLibrary is the library loaded for NCCL: RERANK_NCCL_LIBRARY when
// set (a path), else libnccl.so.2 from the dynamic loader's path.
func NCCLLibrary() string {
	if p := os.Getenv("RERANK_NCCL_LIBRARY"); p != "" {
		return p
	}
	return "libnccl.so.2"
}

var ncclLoad struct {
	sync.Mutex
	err     error
	version int
	loaded  bool
}

// LoadNCCL opens the NCCL library at path (dlopen) and returns its
// version (e.g. 22105 for 2.21.5). A missing library or symbol is an
// error that says where NCCL comes from.
func LoadNCCL(path string) (int, error) {
	ncclLoad.Lock()
	defer ncclLoad.Unlock()
	if ncclLoad.loaded {
		return ncclLoad.version, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var msg [512]C.char
	if C.rk_nccl_load(cpath, &msg[0], C.int(len(msg))) != 0 {
		return 0, fmt.Errorf("NCCL: cannot load %s (%s): install NCCL (Debian/Ubuntu: libnccl2 from NVIDIA's repository), or put the directory of "+
			"a libnccl.so.2 on LD_LIBRARY_PATH (the PyTorch wheel ships one: python -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__)+\"/lib\")'), "+
			"or set RERANK_NCCL_LIBRARY to its path", path, C.GoString(&msg[0]))
	}
	var v C.int
	if rc := C.rk_nccl_version(&v); rc != 0 {
		return 0, fmt.Errorf("NCCL: ncclGetVersion failed (%d)", int(rc))
	}
	ncclLoad.loaded, ncclLoad.version = true, int(v)
	return int(v), nil
}

// ncclVersionString formats NCCL's version code (2.21.5 is 22105; before
// 2.9 it was 2708 for 2.7.8).
func ncclVersionString(v int) string {
	if v >= 10000 {
		return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100)
}

func ncclError(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (ncclResult %d)", op, C.GoString(C.rk_nccl_error_string(rc)), int(rc))
}

// The Go side of the shim, for nccl.go (cgo calls resolve per file).

// ncclIDBytes is the size of ncclUniqueId.
const ncclIDBytes = 128

func ncclUniqueID() ([]byte, error) {
	var id C.rk_nccl_id
	if err := ncclError("ncclGetUniqueId", C.rk_nccl_unique_id(&id)); err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(&id), ncclIDBytes), nil
}

func ncclInitRank(size int, id []byte, rank int) (unsafe.Pointer, error) {
	var cid C.rk_nccl_id
	C.memcpy(unsafe.Pointer(&cid), unsafe.Pointer(&id[0]), ncclIDBytes)
	var comm unsafe.Pointer
	if err := ncclError("ncclCommInitRank", C.rk_nccl_init_rank(&comm, C.int(size), &cid, C.int(rank))); err != nil {
		return nil, err
	}
	return comm, nil
}

func ncclAllReduceF32(buf unsafe.Pointer, n int, comm, stream unsafe.Pointer) error {
	return ncclError("ncclAllReduce", C.rk_nccl_all_reduce_f32(buf, C.size_t(n), comm, stream))
}

func ncclBroadcastF32(buf unsafe.Pointer, n, root int, comm, stream unsafe.Pointer) error {
	return ncclError("ncclBroadcast", C.rk_nccl_broadcast_f32(buf, C.size_t(n), C.int(root), comm, stream))
}

func ncclGroupStart() error { return ncclError("ncclGroupStart", C.rk_nccl_group_start()) }
func ncclGroupEnd() error   { return ncclError("ncclGroupEnd", C.rk_nccl_group_end()) }
func ncclAbort(comm unsafe.Pointer) error {
	return ncclError("ncclCommAbort", C.rk_nccl_abort(comm))
}
func ncclDestroy(comm unsafe.Pointer) error {
	return ncclError("ncclCommDestroy", C.rk_nccl_destroy(comm))
}

// ncclAsyncError is the error a communicator met in the background (a
// peer gone: ncclRemoteError), nil while all is well.
func ncclAsyncError(comm unsafe.Pointer) error {
	var e C.int
	if err := ncclError("ncclCommGetAsyncError", C.rk_nccl_async_error(comm, &e)); err != nil {
		return err
	}
	if e == 7 { // ncclInProgress
		return nil
	}
	return ncclError("NCCL", e)
}
