#!/usr/bin/env bash
# Installs what the host benchmarks need, when missing (Debian/Ubuntu, apt):
#   libopenblas0-pthread  takes over Debian's libblas.so.3 / liblapack.so.3
#                         alternatives, so Debian's PyTorch and numpy call
#                         OpenBLAS instead of the reference (netlib) BLAS,
#                         which is ~10x slower and would make a weak baseline.
# Idempotent; prints nothing when everything is already in place. Uses sudo
# only when not root.
set -euo pipefail

pkgs=(libopenblas0-pthread)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  echo "bench/host/setup.sh: installing ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || {
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  }
fi

# Installing the package normally switches the alternative (OpenBLAS has the
# higher priority); check it and say so if someone pinned netlib by hand.
blas="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)"
case "$blas" in
  *openblas*) ;;
  *) echo "bench/host/setup.sh: warning: libblas.so.3 resolves to '$blas', not OpenBLAS" \
       "(see: update-alternatives --config libblas.so.3-x86_64-linux-gnu)" >&2 ;;
esac
