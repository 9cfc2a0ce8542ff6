//===- Checkpoint.h - A Hugging Face checkpoint's weights -------*- C++ -*-===//
//
// The weights of a checkpoint as save_pretrained lays them out: one
// `model.safetensors`, or shards named by `model.safetensors.index.json`'s
// `weight_map`. Shards are opened (memory-mapped and validated) on the first
// lookup of a tensor they hold, so a checkpoint's unread shards cost nothing.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_IMPORT_CHECKPOINT_H
#define ROTOR_IMPORT_CHECKPOINT_H

#include "rotor/Support/Safetensors.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rotor::import {

class CheckpointWeights {
public:
  /// Opens the weights at `path`: a checkpoint directory (its
  /// model.safetensors, else its index, the order from_pretrained uses), an
  /// index .json, or a single .safetensors file.
  static llvm::Expected<CheckpointWeights> open(llvm::StringRef path);

  /// The weights an index names; `text` is the index file at `indexPath`.
  /// Shards are not opened until a lookup needs them.
  static llvm::Expected<CheckpointWeights> fromIndex(llvm::StringRef indexPath,
                                                     llvm::StringRef text);

  /// The number of shard files (1 for a single file).
  size_t numShards() const { return shardPaths.size(); }

  /// The tensor `name`, with the file that holds it in `file`. Errors name
  /// the file (or the index) and the tensor.
  llvm::Expected<const safetensors::TensorView *>
  lookup(llvm::StringRef name, std::string *file = nullptr);

  /// What the weights were opened from, for messages.
  llvm::StringRef source() const { return sourcePath; }

private:
  std::string sourcePath;
  /// Shard file paths; `archives[i]` is opened on first use.
  std::vector<std::string> shardPaths;
  std::vector<std::optional<safetensors::Archive>> archives;
  /// Whether the weights come from an index (else from one file).
  bool indexed = false;
  /// Tensor name -> shard, from the index.
  llvm::StringMap<unsigned> weightMap;
};

} // namespace rotor::import

#endif // ROTOR_IMPORT_CHECKPOINT_H
