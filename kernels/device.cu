// device.cu: error strings for the Go bindings.
#include "common.cuh"

extern "C" void rk_error_string(int code, char *buf, int len) {
  if (!buf || len <= 0) return;
  const char *s = cudaGetErrorString((cudaError_t)code);
  int i = 0;
  for (; s && s[i] && i < len - 1; i++) buf[i] = s[i];
  buf[i] = 0;
}
