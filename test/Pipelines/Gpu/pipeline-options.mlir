// Pipeline options are checked before the pipeline is built, and any error
// fails the run.
// RUN: not rotor-opt %s --rotor-gpu-pipeline=format=bogus 2>&1 | FileCheck %s --check-prefix=FORMAT
// FORMAT: rotor-gpu-pipeline: GPU kernel format 'bogus' is not isa (PTX) or bin (cubin)
// RUN: not rotor-opt %s '--rotor-gpu-pipeline=chip=sm_90x' 2>&1 | FileCheck %s --check-prefix=CHIP
// CHIP: rotor-gpu-pipeline: GPU chip 'sm_90x' is not an NVVM chip name
// RUN: not rotor-opt %s '--rotor-gpu-emulation-pipeline=chip=' 2>&1 | FileCheck %s --check-prefix=EMPTY
// EMPTY: GPU chip '' is not an NVVM chip name

func.func @empty() {
  return
}
