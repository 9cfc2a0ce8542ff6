# -*- Python -*-
# lit configuration of the Rotor test suite.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "Rotor"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.rotor_obj_root, "test")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]

# As upstream MLIR does: FileCheck variables do not leak across CHECK-LABELs.
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

config.substitutions.append(("%rotor_src_root", config.rotor_src_root))
config.substitutions.append(("%rotor_obj_root", config.rotor_obj_root))
config.substitutions.append(
    ("%examples", os.path.join(config.rotor_src_root, "examples")))

tool_dirs = [config.rotor_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(
    ["rotor-opt", "rotor-aot", "rotor-run", "rotor-import", "rotor-qk", "FileCheck", "not",
     "count"],
    tool_dirs)

# The libFuzzer target is built where clang's fuzzer runtime is installed.
if os.path.exists(os.path.join(config.rotor_tools_dir, "rotor-checkpoint-fuzzer")):
    config.available_features.add("libfuzzer")
    llvm_config.add_tool_substitutions(["rotor-checkpoint-fuzzer"], tool_dirs)

# GCC (scripts/setup.sh installs it): the runtime must build with it, since
# the GPU machines' image has GCC and no clang.
import shutil
if shutil.which("g++"):
    config.available_features.add("gxx")

# Debian's python3 (with python3-numpy), not a pyenv one earlier on PATH.
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(
    ("%fake_cuda_dir", os.path.join(config.rotor_obj_root, "test", "fake-cuda")))
config.substitutions.append(
    ("%scripts", os.path.join(config.rotor_src_root, "scripts")))

# Host code that uses AVX512-BF16 (vdpbf16ps) runs only where the CPU has
# it; elsewhere lit reports those tests UNSUPPORTED (REQUIRES:
# host-avx512bf16).
def _host_cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if "avx512_bf16" in _host_cpu_flags():
    config.available_features.add("host-avx512bf16")
# AMX tile products (tdpbf16ps) need AMX-BF16 and AMX tiles, and a Linux
# that grants a process the tile state (5.16 on); the runtime asks for it
# with arch_prctl(ARCH_REQ_XCOMP_PERM) and refuses an AMX bundle where it
# is refused, so lit asks the same (REQUIRES: host-amx-bf16).
def _linux_grants_amx_tiles():
    import ctypes
    import platform
    if platform.machine() != "x86_64":
        return False
    sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(sys_arch_prctl, arch_req_xcomp_perm,
                            xfeature_xtiledata) == 0
    except (OSError, AttributeError):
        return False


if ({"amx_bf16", "amx_tile", "avx512_bf16"} <= _host_cpu_flags()
        and _linux_grants_amx_tiles()):
    config.available_features.add("host-amx-bf16")

# Kernels that use math functions need the CUDA toolkit's libdevice.
if config.cuda_toolkit:
    config.available_features.add("cuda-toolkit")

# GPU tests run where the CUDA driver loads and sees a GPU; elsewhere lit
# reports them UNSUPPORTED (REQUIRES: cuda-gpu).
def _has_cuda_gpu():
    import ctypes
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


if _has_cuda_gpu():
    config.available_features.add("cuda-gpu")
