//===- Cuda.cpp - The CUDA driver, loaded at run time ---------------------===//

#include "rotor-rt/Cuda.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

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

struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, unsigned, CUstream,
                             void **, void **);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuMemAllocManaged)(CUdeviceptr *, size_t, unsigned);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuGetErrorString)(CUresult, const char **);
};

Driver driver;
bool ready = false;
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

} // namespace

std::string initialize() {
  if (ready)
    return "";
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return std::string("no CUDA driver: cannot load libcuda.so.1 (") +
           dlerror() + ")";
  auto load = [&](auto &fn, const char *name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    return fn != nullptr;
  };
  bool ok = load(driver.cuInit, "cuInit") &&
            load(driver.cuDeviceGet, "cuDeviceGet") &&
            load(driver.cuDeviceGetName, "cuDeviceGetName") &&
            load(driver.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain") &&
            load(driver.cuCtxSetCurrent, "cuCtxSetCurrent") &&
            load(driver.cuCtxSynchronize, "cuCtxSynchronize") &&
            load(driver.cuModuleLoadData, "cuModuleLoadData") &&
            load(driver.cuModuleUnload, "cuModuleUnload") &&
            load(driver.cuModuleGetFunction, "cuModuleGetFunction") &&
            load(driver.cuLaunchKernel, "cuLaunchKernel") &&
            load(driver.cuStreamCreate, "cuStreamCreate") &&
            load(driver.cuStreamSynchronize, "cuStreamSynchronize") &&
            load(driver.cuStreamDestroy, "cuStreamDestroy_v2") &&
            load(driver.cuMemAllocManaged, "cuMemAllocManaged") &&
            load(driver.cuMemFree, "cuMemFree_v2") &&
            load(driver.cuGetErrorString, "cuGetErrorString");
  if (!ok)
    return "the CUDA driver lacks an entry point the runtime needs";
  const char *text = nullptr;
  if (CUresult rc = driver.cuInit(0); rc != 0) {
    driver.cuGetErrorString(rc, &text);
    return std::string("cuInit failed: ") + (text ? text : "no GPU");
  }
  if (CUresult rc = driver.cuDeviceGet(&device, 0); rc != 0) {
    driver.cuGetErrorString(rc, &text);
    return std::string("no CUDA device: ") + (text ? text : "");
  }
  if (driver.cuDevicePrimaryCtxRetain(&context, device) != 0 ||
      driver.cuCtxSetCurrent(context) != 0)
    return "cannot make the GPU's primary context current";
  ready = true;
  return "";
}

bool available() { return ready; }

void *allocManaged(size_t bytes) {
  CUdeviceptr ptr = 0;
  CHECK(cuMemAllocManaged(&ptr, bytes ? bytes : 1, kMemAttachGlobal));
  return reinterpret_cast<void *>(ptr);
}

void freeManaged(void *ptr) {
  if (ptr)
    CHECK(cuMemFree(reinterpret_cast<CUdeviceptr>(ptr)));
}

std::string synchronizeAndTakeError() {
  if (ready)
    CHECK(cuCtxSynchronize());
  std::lock_guard<std::mutex> lock(errorMutex);
  std::string e = std::move(firstError);
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

// PTX: the driver compiles it for the GPU at hand.
__attribute__((visibility("default"))) void *mgpuModuleLoadJIT(void *data,
                                                               int) {
  CUmodule module = nullptr;
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

__attribute__((visibility("default"))) void *mgpuStreamCreate() {
  CUstream stream = nullptr;
  CHECK(cuStreamCreate(&stream, 0));
  return stream;
}

__attribute__((visibility("default"))) void mgpuStreamDestroy(void *stream) {
  CHECK(cuStreamDestroy(stream));
}

__attribute__((visibility("default"))) void mgpuStreamSynchronize(void *stream) {
  CHECK(cuStreamSynchronize(stream));
}

__attribute__((visibility("default"))) void *mgpuMemAlloc(uint64_t bytes,
                                                         void *, bool) {
  return allocManaged(bytes);
}

// Both sides are host-visible (managed memory or host constants), and the
// host code waits for all earlier work before it copies.
__attribute__((visibility("default"))) void
mgpuMemcpy(void *dst, void *src, size_t bytes, void *) {
  std::memcpy(dst, src, bytes);
}

__attribute__((visibility("default"))) void mgpuMemFree(void *ptr, void *) {
  freeManaged(ptr);
}

} // extern "C"
