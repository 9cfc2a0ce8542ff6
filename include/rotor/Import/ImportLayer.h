//===- ImportLayer.h - Attention layers of a checkpoint as attn IR -*- C++ -*-===//
//
// Builds, for each chosen layer N of a Hugging Face checkpoint, the entry
// points `@layerN_prefill` and `@layerN_decode` with rotor's calling
// convention (hidden_states, positions, k_cache, v_cache[, cache_len],
// returning output, k_cache, v_cache). Each computes what transformers'
// `self_attn` of that family computes: input after the layer's input norm,
// output before the residual add. Parameters name the checkpoint's tensors
// and record that Hugging Face stores Q/K rows in half-split order.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_IMPORT_IMPORTLAYER_H
#define ROTOR_IMPORT_IMPORTLAYER_H

#include "rotor/Import/Checkpoint.h"
#include "rotor/Import/HFConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <functional>
#include <optional>

namespace rotor::import {

struct ImportOptions {
  /// Layers to import, ascending; empty imports every layer.
  std::vector<int64_t> layers;
  /// Element type of activations, weights and caches: "f32" or "bf16".
  std::string dtype = "f32";
  /// Record post-RoPE Q and K of every layer (attn.capture, tags
  /// `layerN.q` and `layerN.k`) for geometry analysis.
  bool captureQK = false;
  /// Positions each layer's KV cache holds.
  int64_t kvCapacity = 4096;
  /// The KV-cache format (see KVCacheFormat.h); empty: `dtype`, unrotated.
  std::string kvCache;
  /// The seed of each layer's rotation (its signs s1 != ±s2 drawn from it
  /// and the layer number); given for q8_0/q4_0, it rotates them too.
  std::optional<uint64_t> kvRotationSeed;
  /// Build turbo3/turbo4 without their rotation (to measure what it buys).
  bool noKVRotation = false;
  /// The checkpoint, recorded as the module's `attn.checkpoint` (rotor-aot
  /// reads the weights from there unless given --params).
  std::string checkpointPath;
  /// The config file, for locations.
  std::string configPath;
  /// Receives notes about choices the importer made (one line each).
  std::function<void(llvm::StringRef)> note;
};

/// Parses "0,3-5" into {0, 3, 4, 5} (sorted, unique); every layer must be
/// below `numLayers`.
llvm::Expected<std::vector<int64_t>> parseLayerList(llvm::StringRef text,
                                                    int64_t numLayers);

/// Builds the module. Every tensor an entry point reads is checked in
/// `weights` first (present, float, of the shape the config implies);
/// errors name the file and the tensor.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importAttentionLayers(mlir::MLIRContext *context, const AttentionConfig &config,
                      CheckpointWeights &weights, const ImportOptions &options);

} // namespace rotor::import

#endif // ROTOR_IMPORT_IMPORTLAYER_H
