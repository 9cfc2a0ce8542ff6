//===- FakeCudaDriver.cpp - A libcuda.so.1 without a GPU, for tests -------===//
//
// The CUDA driver entry points the runtime dlopens, implemented on host
// memory: modules and functions are handles, launches do nothing, managed
// memory is zeroed host memory, and device memory is host pages that no
// one may touch (PROT_NONE) except the driver's own copies and sets: a host
// access to device memory crashes the run, as it would on a GPU. Each call
// is appended to the file named by
// ROTOR_FAKE_CUDA_TRACE, so tests can check how the runtime drives the
// driver (streams, module loads, allocations) on a machine with no GPU.
// ROTOR_FAKE_CUDA_REJECT_CUBIN makes module loads of ELF images fail as a
// GPU of another architecture would. Kernels never run: outputs are
// meaningless.
//
//===----------------------------------------------------------------------===//

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
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

// Device allocations: start -> mapped length.
std::map<uintptr_t, size_t> &deviceBlocks() {
  static std::map<uintptr_t, size_t> blocks;
  return blocks;
}

// The device block holding `ptr`, or {0, 0}.
std::pair<uintptr_t, size_t> deviceBlockOf(uintptr_t ptr) {
  auto &blocks = deviceBlocks();
  auto it = blocks.upper_bound(ptr);
  if (it == blocks.begin())
    return {0, 0};
  --it;
  if (ptr < it->first + it->second)
    return *it;
  return {0, 0};
}

// Makes the device blocks of `pointers` accessible while `body` runs.
template <typename Body>
void withAccess(std::initializer_list<uintptr_t> pointers, Body body) {
  for (uintptr_t p : pointers)
    if (auto [start, length] = deviceBlockOf(p); length)
      mprotect(reinterpret_cast<void *>(start), length, PROT_READ | PROT_WRITE);
  body();
  for (uintptr_t p : pointers)
    if (auto [start, length] = deviceBlockOf(p); length)
      mprotect(reinterpret_cast<void *>(start), length, PROT_NONE);
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
int cuMemAlloc_v2(uint64_t *ptr, size_t bytes) {
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t length = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
  void *p = mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                 0);
  if (p == MAP_FAILED)
    return 2; // CUDA_ERROR_OUT_OF_MEMORY
  deviceBlocks()[reinterpret_cast<uintptr_t>(p)] = length;
  trace("alloc " + std::to_string(bytes) + " device");
  *ptr = reinterpret_cast<uint64_t>(p);
  return 0;
}
int cuMemcpy(uint64_t dst, uint64_t src, size_t bytes) {
  trace("copy " + std::to_string(bytes));
  withAccess({dst, src}, [&] {
    std::memcpy(reinterpret_cast<void *>(dst),
                reinterpret_cast<const void *>(src), bytes);
  });
  return 0;
}
int cuMemsetD8_v2(uint64_t dst, unsigned char value, size_t bytes) {
  trace("set " + std::to_string(bytes));
  withAccess({dst},
             [&] { std::memset(reinterpret_cast<void *>(dst), value, bytes); });
  return 0;
}
int cuMemFree_v2(uint64_t ptr) {
  trace("free");
  auto &blocks = deviceBlocks();
  if (auto it = blocks.find(uintptr_t(ptr)); it != blocks.end()) {
    munmap(reinterpret_cast<void *>(it->first), it->second);
    blocks.erase(it);
    return 0;
  }
  std::free(reinterpret_cast<void *>(ptr));
  return 0;
}
int cuGetErrorString(int rc, const char **text) {
  *text = rc == 209 ? "no kernel image is available for execution on the device"
                    : "fake error";
  return 0;
}

} // extern "C"
