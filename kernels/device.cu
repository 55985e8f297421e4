// device.cu: runtime wrappers and error strings for the Go bindings, which
// then need no CUDA headers of their own.
#include "common.cuh"

extern "C" void rk_error_string(int code, char *buf, int len) {
  if (!buf || len <= 0) return;
  const char *s = cudaGetErrorString((cudaError_t)code);
  int i = 0;
  for (; s && s[i] && i < len - 1; i++) buf[i] = s[i];
  buf[i] = 0;
}

extern "C" int rk_device_count(int *count) { return (int)cudaGetDeviceCount(count); }
extern "C" int rk_set_device(int dev) { return (int)cudaSetDevice(dev); }

extern "C" int rk_device_info(int dev, char *name, int len, int *major, int *minor, int *sms) {
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) return (int)e;
  int i = 0;
  for (; name && p.name[i] && i < len - 1; i++) name[i] = p.name[i];
  if (name && len > 0) name[i] = 0;
  *major = p.major;
  *minor = p.minor;
  *sms = p.multiProcessorCount;
  return 0;
}

extern "C" int rk_mem_info(size_t *free_bytes, size_t *total_bytes) {
  return (int)cudaMemGetInfo(free_bytes, total_bytes);
}

extern "C" int rk_stream_create(void **stream) {
  cudaStream_t s;
  cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  *stream = (void *)s;
  return (int)e;
}
extern "C" int rk_stream_destroy(void *stream) { return (int)cudaStreamDestroy(rk_stream(stream)); }
extern "C" int rk_stream_sync(void *stream) { return (int)cudaStreamSynchronize(rk_stream(stream)); }
extern "C" int rk_last_error(void) { return (int)cudaGetLastError(); }
extern "C" int rk_malloc(void **ptr, size_t bytes) { return (int)cudaMalloc(ptr, bytes); }
extern "C" int rk_free(void *ptr) { return (int)cudaFree(ptr); }
extern "C" int rk_host_alloc(void **ptr, size_t bytes) {
  return (int)cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
}
extern "C" int rk_host_free(void *ptr) { return (int)cudaFreeHost(ptr); }
extern "C" int rk_memset(void *stream, void *ptr, int value, size_t bytes) {
  return (int)cudaMemsetAsync(ptr, value, bytes, rk_stream(stream));
}
extern "C" int rk_memcpy_h2d(void *stream, void *dst, const void *src, size_t bytes) {
  return (int)cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, rk_stream(stream));
}
extern "C" int rk_memcpy_d2h(void *stream, void *dst, const void *src, size_t bytes) {
  return (int)cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, rk_stream(stream));
}
extern "C" int rk_memcpy_d2d(void *stream, void *dst, const void *src, size_t bytes) {
  return (int)cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, rk_stream(stream));
}

// rk_versions reports the CUDA runtime this library was built with and the
// newest the installed driver supports (0 when there is no driver).
extern "C" int rk_versions(int *runtime, int *driver) {
#ifdef CUDART_VERSION
  *runtime = CUDART_VERSION;
#else
  *runtime = 0;
#endif
  *driver = 0;
  return (int)cudaDriverGetVersion(driver);
}
