//===- FakeCudaDriver.cpp - A libcuda.so.1 without a GPU, for tests -------===//
//
// The CUDA driver entry points the runtime dlopens, implemented on host
// memory: modules and functions are handles, launches do nothing, managed
// memory is zeroed host memory. Each call is appended to the file named by
// ROTOR_FAKE_CUDA_TRACE, so tests can check how the runtime drives the
// driver (streams, module loads, allocations) on a machine with no GPU.
// ROTOR_FAKE_CUDA_REJECT_CUBIN makes module loads of ELF images fail as a
// GPU of another architecture would. Kernels never run: outputs are
// meaningless.
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void trace(const std::string &line) {
  if (const char *path = std::getenv("ROTOR_FAKE_CUDA_TRACE")) {
    if (FILE *f = std::fopen(path, "a")) {
      std::fprintf(f, "%s\n", line.c_str());
      std::fclose(f);
    }
  }
}

int handles = 0;
void *newHandle() {
  return reinterpret_cast<void *>(uintptr_t(++handles) << 4);
}

} // namespace

extern "C" {

int cuInit(unsigned) { return 0; }
int cuDeviceGet(int *device, int) {
  *device = 0;
  return 0;
}
int cuDeviceGetName(char *name, int len, int) {
  std::snprintf(name, size_t(len), "Fake CUDA device");
  return 0;
}
int cuDevicePrimaryCtxRetain(void **ctx, int) {
  *ctx = newHandle();
  return 0;
}
int cuCtxSetCurrent(void *) { return 0; }
int cuCtxSynchronize() {
  trace("ctx sync");
  return 0;
}

int cuModuleLoadData(void **module, const void *image) {
  bool elf = std::memcmp(image,
                         "\x7f"
                         "ELF",
                         4) == 0;
  if (elf && std::getenv("ROTOR_FAKE_CUDA_REJECT_CUBIN")) {
    trace("module rejected cubin");
    return 209; // CUDA_ERROR_NO_BINARY_FOR_GPU
  }
  trace(elf ? "module cubin" : "module ptx");
  *module = newHandle();
  return 0;
}
int cuModuleUnload(void *) { return 0; }
int cuModuleGetFunction(void **fn, void *, const char *) {
  *fn = newHandle();
  return 0;
}
int cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                   unsigned, unsigned, void *, void **, void **) {
  trace("launch");
  return 0;
}
int cuStreamCreate(void **stream, unsigned) {
  trace("stream create");
  *stream = newHandle();
  return 0;
}
int cuStreamSynchronize(void *) {
  trace("stream sync");
  return 0;
}
int cuStreamDestroy_v2(void *) {
  trace("stream destroy");
  return 0;
}
int cuMemAllocManaged(uint64_t *ptr, size_t bytes, unsigned) {
  size_t size = (bytes + 255) / 256 * 256;
  void *p = std::aligned_alloc(256, size);
  if (!p)
    return 2; // CUDA_ERROR_OUT_OF_MEMORY
  std::memset(p, 0, size);
  trace("alloc " + std::to_string(bytes));
  *ptr = reinterpret_cast<uint64_t>(p);
  return 0;
}
int cuMemFree_v2(uint64_t ptr) {
  trace("free");
  std::free(reinterpret_cast<void *>(ptr));
  return 0;
}
int cuGetErrorString(int rc, const char **text) {
  *text = rc == 209 ? "no kernel image is available for execution on the device"
                    : "fake error";
  return 0;
}

} // extern "C"
