//===- Cuda.cpp - The CUDA driver, loaded at run time ---------------------===//

#include "rotor-rt/Cuda.h"
#include "rotor-rt/BlockCache.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

namespace rotor::rt::cuda {

namespace {

// The few driver types and entry points used, declared here so that the
// runtime builds without the CUDA headers.
using CUresult = int;
using CUdevice = int;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUstream = void *;
using CUdeviceptr = uint64_t;
constexpr unsigned kMemAttachGlobal = 1;

// The driver's entry points, filled by initialize().
struct Driver {
#define ROTOR_CU_PFN_DECL(name, ...) CUresult (*name)(__VA_ARGS__) = nullptr;
#define ROTOR_CU_PFN_DECL_V2(name, ...) ROTOR_CU_PFN_DECL(name, __VA_ARGS__)
#include "CudaSymbols.def"
};

Driver driver;
bool ready = false;
// Every launch, copy and wait of the host code goes to this one stream: it
// serializes them as separate streams plus a synchronization each did, but
// without creating and destroying a stream per launch.
CUstream sharedStream = nullptr;
bool waitAfterLaunches = true;
// Where blocks that kernels use live: device memory when the bundle's host
// code never touches them, else managed memory.
bool deviceMemory = false;

// Kernel modules: PTX text -> ptxas's cubin of it, from the manifest.
struct Cubin {
  std::string image, name;
};
std::mutex moduleMutex;
std::map<std::string, Cubin> cubins;
int modulesFromCubin = 0, modulesFromPtx = 0;
std::string moduleNotes;
CUcontext context = nullptr;
CUdevice device = 0;
std::mutex errorMutex;
std::string firstError;

void record(CUresult rc, const char *call) {
  if (rc == 0)
    return;
  const char *text = nullptr;
  if (driver.cuGetErrorString)
    driver.cuGetErrorString(rc, &text);
  std::lock_guard<std::mutex> lock(errorMutex);
  if (firstError.empty())
    firstError = std::string(call) + " failed: " + (text ? text : "error") +
                 " (" + std::to_string(rc) + ")";
}

#define CHECK(call) record(driver.call, #call)

/// Fills `driver` from the loaded libcuda; a failure names the first
/// entry point it lacks.
Error loadEntryPoints(void *lib) {
  auto load = [&](auto &fn, const char *symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
        dlsym(lib, symbol));
    return fn != nullptr;
  };
  auto missing = [](const char *symbol) {
    return Error::failure(std::string("the CUDA driver lacks ") + symbol +
                          ", an entry point the runtime needs");
  };
#define ROTOR_CU_PFN_DECL(name, ...)                                           \
  if (!load(driver.name, #name))                                               \
    return missing(#name);
#define ROTOR_CU_PFN_DECL_V2(name, ...)                                        \
  if (!load(driver.name, #name "_v2"))                                         \
    return missing(#name "_v2");
#include "CudaSymbols.def"
  return Error::success();
}

} // namespace

Error initialize() {
  if (ready)
    return Error::success();
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return Error::failure(
        std::string("no CUDA driver: cannot load libcuda.so.1 (") + dlerror() +
        ")");
  if (Error err = loadEntryPoints(lib))
    return err;
  const char *text = nullptr;
  if (CUresult rc = driver.cuInit(0); rc != 0) {
    driver.cuGetErrorString(rc, &text);
    return Error::failure(std::string("cuInit failed: ") +
                          (text ? text : "no GPU"));
  }
  if (CUresult rc = driver.cuDeviceGet(&device, 0); rc != 0) {
    driver.cuGetErrorString(rc, &text);
    return Error::failure(std::string("no CUDA device: ") + (text ? text : ""));
  }
  if (driver.cuDevicePrimaryCtxRetain(&context, device) != 0 ||
      driver.cuCtxSetCurrent(context) != 0)
    return Error::failure("cannot make the GPU's primary context current");
  ready = true;
  return Error::success();
}

bool available() { return ready; }

void registerCubin(const std::string &ptx, std::string cubin,
                   std::string name) {
  // The host code hands PTX over as a C string: match without the NUL the
  // bundle's .ptx file may end with.
  std::string key = ptx;
  while (!key.empty() && key.back() == '\0')
    key.pop_back();
  std::lock_guard<std::mutex> lock(moduleMutex);
  cubins[key] = Cubin{std::move(cubin), std::move(name)};
}

std::string moduleSummary() {
  std::lock_guard<std::mutex> lock(moduleMutex);
  std::string s = std::to_string(modulesFromCubin) +
                  " kernel modules from cubin, " +
                  std::to_string(modulesFromPtx) + " JIT-compiled from PTX";
  return moduleNotes.empty() ? s : s + " (" + moduleNotes + ")";
}

namespace {
std::once_flag streamOnce;
CUstream stream() {
  std::call_once(streamOnce,
                 [] { CHECK(cuStreamCreate(&sharedStream, 0)); });
  return sharedStream;
}

// The host code's temporaries (mgpuMemAlloc/mgpuMemFree), reused across
// calls. Never destroyed: at exit the driver may already be gone.
BlockCache &temporaries() {
  static BlockCache *cache = new BlockCache(
      [](size_t bytes) { return allocBlock(bytes); },
      [](void *ptr) {
        // Queued kernels may still use a block the cache gives back.
        CHECK(cuStreamSynchronize(stream()));
        freeBlock(ptr);
      },
      size_t(2) << 30);
  return *cache;
}

} // namespace

void setWaitAfterLaunches(bool wait) { waitAfterLaunches = wait; }

void *allocTemporary(size_t bytes) { return temporaries().get(bytes); }
void freeTemporary(void *ptr) { temporaries().put(ptr); }

Error setDeviceMemory(bool device) {
  // Blocks of one kind are already out (weights, caches, cached
  // temporaries): one process runs bundles of one kind.
  static std::mutex choosing;
  static bool chosen = false;
  std::lock_guard<std::mutex> lock(choosing);
  if (chosen && device != deviceMemory)
    return Error::failure(
        std::string("this process already runs a CUDA bundle whose host "
                    "code ") +
        (deviceMemory ? "never touches" : "touches") +
        " kernel memory; run this one in another process");
  chosen = true;
  deviceMemory = device;
  return Error::success();
}

void *allocBlock(size_t bytes) {
  CUdeviceptr ptr = 0;
  if (deviceMemory)
    CHECK(cuMemAlloc(&ptr, bytes ? bytes : 1));
  else
    CHECK(cuMemAllocManaged(&ptr, bytes ? bytes : 1, kMemAttachGlobal));
  return reinterpret_cast<void *>(ptr);
}

void freeBlock(void *ptr) {
  if (ptr)
    CHECK(cuMemFree(reinterpret_cast<CUdeviceptr>(ptr)));
}

// With unified addressing cuMemcpy takes host, managed and device pointers
// alike. It runs on the legacy stream, which is ordered with the shared
// (blocking) stream both ways: it starts after the kernels queued there,
// and kernels queued later start after it. It returns once the host side
// is done (a copy to the host has landed; one from pageable host memory
// has been staged); device-side copies and sets may still be running, and
// their errors come with the next synchronization.
void copy(void *dst, const void *src, size_t bytes) {
  if (bytes)
    CHECK(cuMemcpy(reinterpret_cast<CUdeviceptr>(dst),
                   reinterpret_cast<CUdeviceptr>(src), bytes));
}

void zero(void *dst, size_t bytes) {
  if (bytes)
    CHECK(cuMemsetD8(reinterpret_cast<CUdeviceptr>(dst), 0, bytes));
}

Error synchronizeAndTakeError() {
  if (ready)
    CHECK(cuCtxSynchronize());
  return takeError();
}

Error takeError() {
  std::lock_guard<std::mutex> lock(errorMutex);
  if (firstError.empty())
    return Error::success();
  Error e = Error::failure(std::move(firstError));
  firstError.clear();
  return e;
}

std::string deviceName() {
  char name[256] = {0};
  if (ready)
    driver.cuDeviceGetName(name, sizeof(name), device);
  return name;
}

} // namespace rotor::rt::cuda

// MLIR's GPU runtime ABI, called by the host code of CUDA bundles.
using namespace rotor::rt::cuda;

extern "C" {

__attribute__((visibility("default"))) void *mgpuModuleLoad(void *data,
                                                            size_t) {
  CUmodule module = nullptr;
  CHECK(cuModuleLoadData(&module, data));
  return module;
}

// PTX, as rotor's host code embeds it: its cubin when the bundle has one
// the driver takes, else the driver compiles the PTX for the GPU at hand.
__attribute__((visibility("default"))) void *mgpuModuleLoadJIT(void *data,
                                                               int) {
  CUmodule module = nullptr;
  std::string ptx(static_cast<const char *>(data));
  {
    std::lock_guard<std::mutex> lock(moduleMutex);
    auto it = cubins.find(ptx);
    if (it != cubins.end() && !it->second.image.empty()) {
      CUresult rc = driver.cuModuleLoadData(&module, it->second.image.data());
      if (rc == 0) {
        ++modulesFromCubin;
        return module;
      }
      const char *text = nullptr;
      driver.cuGetErrorString(rc, &text);
      if (moduleNotes.empty())
        moduleNotes = it->second.name + ": " + (text ? text : "rejected") +
                      ", so its PTX was JIT-compiled";
    }
    ++modulesFromPtx;
  }
  CHECK(cuModuleLoadData(&module, data));
  return module;
}

__attribute__((visibility("default"))) void mgpuModuleUnload(void *module) {
  CHECK(cuModuleUnload(module));
}

__attribute__((visibility("default"))) void *
mgpuModuleGetFunction(void *module, const char *name) {
  CUfunction fn = nullptr;
  CHECK(cuModuleGetFunction(&fn, module, name));
  return fn;
}

__attribute__((visibility("default"))) void
mgpuLaunchKernel(void *fn, intptr_t gx, intptr_t gy, intptr_t gz, intptr_t bx,
                 intptr_t by, intptr_t bz, int32_t smem, void *stream,
                 void **params, void **extra, size_t) {
  if (gx <= 0 || gy <= 0 || gz <= 0)
    return; // An empty grid: nothing to do (the driver would reject it).
  CHECK(cuLaunchKernel(fn, unsigned(gx), unsigned(gy), unsigned(gz),
                       unsigned(bx), unsigned(by), unsigned(bz),
                       unsigned(smem), stream, params, extra));
}

// The host code asks for a stream around each launch, copy and wait; all
// get the shared one, which is never destroyed.
__attribute__((visibility("default"))) void *mgpuStreamCreate() {
  return stream();
}

__attribute__((visibility("default"))) void mgpuStreamDestroy(void *s) {
  if (s != stream())
    CHECK(cuStreamDestroy(s));
}

// The host code waits after each launch; where it never touches kernel
// memory (the manifest says), the one in-order stream needs no wait until
// the entry point returns and the runtime synchronizes.
__attribute__((visibility("default"))) void mgpuStreamSynchronize(void *s) {
  if (!waitAfterLaunches && s == stream())
    return;
  CHECK(cuStreamSynchronize(s));
}

__attribute__((visibility("default"))) void *mgpuMemAlloc(uint64_t bytes,
                                                         void *, bool) {
  return allocTemporary(bytes);
}

// With device memory the driver copies, ordered after the queued kernels.
// With managed memory the host code may read the copy at once: wait for
// the kernels, then copy on the host.
__attribute__((visibility("default"))) void
mgpuMemcpy(void *dst, void *src, size_t bytes, void *) {
  if (deviceMemory) {
    copy(dst, src, bytes);
    return;
  }
  CHECK(cuStreamSynchronize(stream()));
  std::memcpy(dst, src, bytes);
}

// The host code waits for the stream before it frees, so a block is idle
// when it returns to the cache.
__attribute__((visibility("default"))) void mgpuMemFree(void *ptr, void *) {
  freeTemporary(ptr);
}

} // extern "C"
