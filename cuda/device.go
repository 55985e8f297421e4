//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "rerank_kernels.h"
#include "dynload.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoDevice is returned (wrapped) by New and Probe when no usable GPU
// is visible: no NVIDIA driver, or a driver with no device.
var ErrNoDevice = errors.New("no CUDA device")

// Device describes one visible GPU.
type Device struct {
	Ordinal      int
	Name         string
	Major, Minor int // compute capability
	SMs          int
}

// Runtime describes the CUDA runtime linked into this binary, the driver,
// and the visible devices.
type Runtime struct {
	Runtime int // CUDA runtime version linked in, 1000*major + 10*minor
	Driver  int // newest CUDA version the driver supports; 0: no driver
	Devices []Device
}

// Version formats a CUDA version number (12040 -> "12.4").
func Version(v int) string {
	if v <= 0 {
		return "none"
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// Probe reports the runtime, the driver and the devices. The error wraps
// ErrNoDevice when there is no driver or no device, and says why.
func Probe() (Runtime, error) {
	var rt, drv C.int
	C.rk_versions(&rt, &drv)
	r := Runtime{Runtime: int(rt), Driver: int(drv)}
	if emulated {
		r.Runtime, r.Driver = 0, 0
	}
	var count C.int
	if err := cudaErr("cudaGetDeviceCount", C.rk_device_count(&count)); err != nil {
		if !emulated && C.rk_dl_driver_present() == 0 {
			return r, fmt.Errorf("%w: no NVIDIA driver (libcuda.so.1 not found; %v)", ErrNoDevice, err)
		}
		return r, fmt.Errorf("%w: %v (driver supports CUDA %s; runtime %s linked in)", ErrNoDevice, err, Version(r.Driver), Version(r.Runtime))
	}
	if count == 0 {
		return r, fmt.Errorf("%w: the driver sees no GPU", ErrNoDevice)
	}
	for i := 0; i < int(count); i++ {
		var name [128]C.char
		var major, minor, sms C.int
		if err := cudaErr("cudaGetDeviceProperties", C.rk_device_info(C.int(i), &name[0], C.int(len(name)), &major, &minor, &sms)); err != nil {
			return r, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		r.Devices = append(r.Devices, Device{Ordinal: i, Name: C.GoString(&name[0]), Major: int(major), Minor: int(minor), SMs: int(sms)})
	}
	return r, nil
}

// CUBLAS loads cuBLAS (used only as the benchmark's reference) and
// returns the file it loaded, or an error naming every place searched.
func CUBLAS() (string, error) {
	if emulated {
		return "", errors.New("cuBLAS: not used by the CPU emulation")
	}
	var path [1024]C.char
	var msg [2048]C.char
	if C.rk_cublas_load(&path[0], C.int(len(path)), &msg[0], C.int(len(msg))) != 0 {
		return "", errors.New(C.GoString(&msg[0]))
	}
	return C.GoString(&path[0]), nil
}

// PythonLibDirs lists the nvidia/*/lib folders of python3's packages (the
// CUDA libraries of PyTorch's wheels), searched when a library is not in
// the loader's path.
func PythonLibDirs() []string {
	return strings.Fields(C.GoString(C.rk_dl_python_dirs()))
}
