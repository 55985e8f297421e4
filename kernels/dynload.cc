// dynload.cc: run-time loading of CUDA libraries (see dynload.h) and the
// cuBLAS entry points the benchmark uses (see cublas_dl.h).
#include "dynload.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <string>
#include <vector>

#include "cublas_dl.h"

namespace {

const char *const kSystemDirs[] = {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                                   "/usr/lib/x86_64-linux-gnu"};

std::once_flag py_once;
std::string py_dirs;

// python_dirs asks Python for every <site>/nvidia/*/lib folder, without
// importing torch (slow) or anything else.
void find_python_dirs() {
  const char *py = getenv("RERANK_PYTHON");
  if (!py || !*py) py = "python3";
  std::string cmd = std::string(py) +
                    " -c \"import sys,glob,os\n"
                    "seen=set()\n"
                    "for p in sys.path:\n"
                    "  for d in sorted(glob.glob(os.path.join(p or '.','nvidia','*','lib'))):\n"
                    "    d=os.path.realpath(d)\n"
                    "    if d not in seen: seen.add(d); print(d)\" 2>/dev/null";
  FILE *f = popen(cmd.c_str(), "r");
  if (!f) return;
  char line[4096];
  while (fgets(line, sizeof line, f)) py_dirs += line;
  pclose(f);
}

std::vector<std::string> split_lines(const std::string &s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find('\n', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

void put(char *dst, int len, const std::string &s) {
  if (!dst || len <= 0) return;
  snprintf(dst, (size_t)len, "%s", s.c_str());
}

}  // namespace

extern "C" const char *rk_dl_python_dirs(void) {
  std::call_once(py_once, find_python_dirs);
  return py_dirs.c_str();
}

extern "C" int rk_dl_driver_present(void) {
  void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!h) return 0;
  dlclose(h);
  return 1;
}

extern "C" void *rk_dl_find(const char *what, const char *env, const char *const *sonames, int n,
                            char *path, int pathlen, char *err, int errlen) {
  std::string tried;
  if (env && *env) {
    const char *p = getenv(env);
    if (p && *p) {
      void *h = dlopen(p, RTLD_NOW | RTLD_GLOBAL);
      if (h) {
        put(path, pathlen, p);
        return h;
      }
      const char *e = dlerror();
      put(err, errlen, std::string(what) + ": " + env + "=" + p + " cannot be loaded: " + (e ? e : "?"));
      return nullptr;
    }
  }
  for (int i = 0; i < n; i++) {
    if (void *h = dlopen(sonames[i], RTLD_NOW | RTLD_GLOBAL)) {
      put(path, pathlen, sonames[i]);
      return h;
    }
  }
  std::vector<std::string> dirs(std::begin(kSystemDirs), std::end(kSystemDirs));
  std::vector<std::string> pyd = split_lines(rk_dl_python_dirs());
  dirs.insert(dirs.end(), pyd.begin(), pyd.end());
  for (const std::string &d : dirs) {
    for (int i = 0; i < n; i++) {
      std::string f = d + "/" + sonames[i];
      if (void *h = dlopen(f.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        put(path, pathlen, f);
        return h;
      }
    }
  }
  std::string names;
  for (int i = 0; i < n; i++) names += std::string(i ? ", " : "") + sonames[i];
  std::string msg = std::string(what) + " not found: looked for " + names +
                    " in the loader's path (LD_LIBRARY_PATH, ldconfig), /usr/local/cuda/lib64, "
                    "/usr/lib/x86_64-linux-gnu and ";
  if (pyd.empty()) {
    msg += "python3's nvidia/*/lib folders (python3 has none: no PyTorch CUDA wheels)";
  } else {
    msg += "python3's nvidia/*/lib folders (";
    for (size_t i = 0; i < pyd.size(); i++) msg += (i ? ", " : "") + pyd[i];
    msg += ")";
  }
  if (env && *env) msg += "; set " + std::string(env) + " to the library's path";
  put(err, errlen, msg);
  return nullptr;
}

// ---- cuBLAS -----------------------------------------------------------------

rk_cublas_api rk_cublas;

namespace {
std::once_flag blas_once;
int blas_rc = -1;
std::string blas_path, blas_err;

void load_cublas() {
  // The newest first: a driver runs any older runtime, and PyTorch's
  // wheels carry one of these.
  const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
  char path[1024] = "", err[2048] = "";
  void *h = rk_dl_find("cuBLAS", "RERANK_CUBLAS", names, 4, path, sizeof path, err, sizeof err);
  if (!h) {
    blas_err = err;
    return;
  }
  struct {
    void **fn;
    const char *sym;
  } syms[] = {
      {(void **)&rk_cublas.create, "cublasCreate_v2"},
      {(void **)&rk_cublas.destroy, "cublasDestroy_v2"},
      {(void **)&rk_cublas.set_math_mode, "cublasSetMathMode"},
      {(void **)&rk_cublas.gemm_ex, "cublasGemmEx"},
      {(void **)&rk_cublas.sgemm_strided_batched, "cublasSgemmStridedBatched"},
  };
  for (auto &s : syms) {
    *s.fn = dlsym(h, s.sym);
    if (!*s.fn) {
      blas_err = std::string("cuBLAS: ") + path + " has no " + s.sym;
      return;
    }
  }
  blas_path = path;
  blas_rc = 0;
}
}  // namespace

extern "C" int rk_cublas_load(char *path, int pathlen, char *err, int errlen) {
  std::call_once(blas_once, load_cublas);
  put(path, pathlen, blas_path);
  put(err, errlen, blas_err);
  return blas_rc;
}
