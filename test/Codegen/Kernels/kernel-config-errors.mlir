// A kernel recorded in the IR (by rotor-select-kernel-config or by hand)
// that cannot be built is an error naming the op and the reason, never a
// silent fallback to the loop-level form.
// RUN: rotor-opt %s -split-input-file -verify-diagnostics --rotor-lower-workgroup-kernels

func.func @sdpa_tiles_too_big(%q: tensor<?x2x512xf32>, %k: tensor<?x2x512xf32>,
                              %v: tensor<?x2x512xf32>) -> tensor<?x2x512xf32> {
  // expected-error @+1 {{'attn.sdpa' op cannot be built as its kernel #attn.kernel<workgroup_tiled, rows = 64, keys = 64, threads = 128, workgroups = 256>: tiles of 64 rows and 64 keys need 280320 bytes of shared memory, more than 48 KiB}}
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<workgroup_tiled, rows = 64, keys = 64, threads = 128, workgroups = 256>}
      : tensor<?x2x512xf32>, tensor<?x2x512xf32>, tensor<?x2x512xf32> -> tensor<?x2x512xf32>
  return %o : tensor<?x2x512xf32>
}

// -----

func.func @sdpa_odd_rows(%q: tensor<?x2x64xf32>, %k: tensor<?x2x64xf32>,
                         %v: tensor<?x2x64xf32>) -> tensor<?x2x64xf32> {
  // expected-error @+1 {{rows 3 is not a multiple of 2}}
  %o = attn.sdpa %q, %k, %v causal precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<workgroup_tiled, rows = 3, keys = 16, threads = 128, workgroups = 256>}
      : tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32> -> tensor<?x2x64xf32>
  return %o : tensor<?x2x64xf32>
}

// -----

func.func @gemm_tiles(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x128xf32> {
  // expected-error @+1 {{the GEMM has 64x64 output tiles for 128 threads only}}
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<gemm, rows = 32, cols = 64, threads = 128>}
      : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

func.func @gemv_on_prefill(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) -> tensor<?x128xf32> {
  // expected-error @+1 {{not decode-shaped (1 to 15 static tokens)}}
  %y = attn.linear %x, %w precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<gemv, cols = 4, threads = 128>}
      : tensor<?x64xf32>, tensor<128x64xf32> -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

func.func @rope_alone(%k: tensor<1x4x128xf32>, %p: tensor<1xi32>) -> tensor<1x4x128xf32> {
  // expected-error @+1 {{a RoPE alone is one elementwise kernel already}}
  %r = attn.rope half_split %k, %p rotary_dim(128) theta(1.0e+06)
      precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<head_chain, rows = 8, threads = 128>}
      : tensor<1x4x128xf32>, tensor<1xi32>
  return %r : tensor<1x4x128xf32>
}


// -----

func.func @head_chain_rows(%k: tensor<?x4x256xf32>, %p: tensor<?xi32>) -> tensor<?x4x256xf32> {
  %r = attn.rope half_split %k, %p rotary_dim(256) theta(1.0e+06)
      precision <compute = f32, accumulate = f32> : tensor<?x4x256xf32>, tensor<?xi32>
  // expected-error @+1 {{'attn.hadamard' op cannot be built as its kernel #attn.kernel<head_chain, rows = 64, threads = 128>: head does not fit a block}}
  %h = attn.hadamard %r rotation(<group = 4, s1 = [1, -1, 1, 1], s2 = [1, 1, -1, 1]>)
      precision <compute = f32, accumulate = f32>
      {attn.kernel = #attn.kernel<head_chain, rows = 64, threads = 128>} : tensor<?x4x256xf32>
  return %h : tensor<?x4x256xf32>
}
