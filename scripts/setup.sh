#!/usr/bin/env bash
# Installs what Rotor's build and tests need (only what is missing), then
# configures and builds into build/. Safe to run again: a second run installs
# nothing and rebuilds only what changed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${ROTOR_BUILD_DIR:-$root/build}"

# Debian 12 packages. LLVM/MLIR 22 come from Debian's archive (DESIGN.md);
# mlir-22-tools is named explicitly because find_package(MLIR) checks files
# that only it ships. libomp5-14 is the OpenMP runtime the tests that run
# GPU kernels as host thread teams load.
packages=(
  cmake ninja-build ccache g++ python3 python3-numpy python3-torch libgtest-dev
  nlohmann-json3-dev libclang-rt-22-dev libomp5-14 libeigen3-dev
  clang-22 lld-22 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
)

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || {
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    }
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

llvm_bin=/usr/lib/llvm-22/bin
if [[ ! -f "$build_dir/build.ninja" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -G Ninja -S "$root" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$llvm_bin/clang" \
    -DCMAKE_CXX_COMPILER="$llvm_bin/clang++" \
    -DLLVM_USE_LINKER=lld \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    "${launcher[@]}"
fi
cmake --build "$build_dir"
