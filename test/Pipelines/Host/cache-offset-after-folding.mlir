// A cache offset that is constant only after folding is checked like a
// constant one: the pipelines canonicalize before lowering, and the
// verifier then rejects an append past the capacity (it compiled, and
// wrote out of bounds at run time).
// RUN: not rotor-opt %s --rotor-host-pipeline -o /dev/null 2>&1 | FileCheck %s
// RUN: not rotor-opt %s --rotor-gpu-emulation-pipeline -o /dev/null 2>&1 | FileCheck %s
// CHECK: error: 'attn.kv_cache_append' op offset 17 plus the update's 1 rows exceeds the cache's 16 rows
func.func @f(%c: tensor<16x2x8xf32>, %k: tensor<1x2x8xf32>) -> tensor<16x2x8xf32> {
  %a = arith.constant 8 : index
  %b = arith.constant 9 : index
  %n = arith.addi %a, %b : index
  %0 = attn.kv_cache_append %k into %c at %n : tensor<1x2x8xf32> into tensor<16x2x8xf32>
  return %0 : tensor<16x2x8xf32>
}
