// Pipeline options are checked before the pipeline is built, and any error
// fails the run.
// RUN: not rotor-opt %s --rotor-gpu-pipeline=format=bogus 2>&1 | FileCheck %s --check-prefix=FORMAT
// FORMAT: rotor-gpu-pipeline: GPU kernel format 'bogus' is not isa (PTX) or bin (cubin)
// RUN: not rotor-opt %s '--rotor-gpu-pipeline=chip=sm_90x' 2>&1 | FileCheck %s --check-prefix=CHIP
// CHIP: rotor-gpu-pipeline: GPU chip 'sm_90x' is not an NVVM chip name
// RUN: not rotor-opt %s '--rotor-gpu-emulation-pipeline=chip=' 2>&1 | FileCheck %s --check-prefix=EMPTY
// EMPTY: GPU chip '' is not an NVVM chip name
// One options struct serves every pipeline; what a GPU target cannot build
// is refused up front.
// RUN: not rotor-opt %s '--rotor-gpu-pipeline=fuse-rope-epilogue=true' 2>&1 | FileCheck %s --check-prefix=FUSE
// FUSE: rotor-gpu-pipeline: fuse-rope-epilogue is not available for GPU targets
// RUN: not rotor-opt %s '--rotor-host-pipeline=block-size=100' 2>&1 | FileCheck %s --check-prefix=BLOCK
// BLOCK: rotor-host-pipeline: GPU block size 100 is not a multiple of 32 between 32 and 1024
// RUN: not rotor-opt %s '--rotor-host-pipeline=kv-tile-size=0' 2>&1 | FileCheck %s --check-prefix=TILE
// TILE: rotor-host-pipeline: kv-tile-size must be at least 1, got 0
// RUN: rotor-opt %s '--rotor-host-pipeline=fuse-rope-epilogue=false workgroup-tiled-sdpa=true' -o /dev/null

func.func @empty() {
  return
}
