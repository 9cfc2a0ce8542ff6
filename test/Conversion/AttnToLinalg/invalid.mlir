// What the lowering refuses, each with a diagnostic that names the op.
// RUN: rotor-opt %s -convert-attn-to-linalg -split-input-file -verify-diagnostics
// RUN: not rotor-opt %s -convert-attn-to-linalg=kv-tile-size=0 -split-input-file 2>&1 | FileCheck %s --check-prefix=TILE

// TILE: kv-tile-size must be >= 1, got 0

func.func @param() -> tensor<4xf32> {
  // expected-error @below {{'attn.param' op must be outlined into a function argument (attn-outline-params) before lowering}}
  %w = attn.param "w" : tensor<4xf32>
  return %w : tensor<4xf32>
}
