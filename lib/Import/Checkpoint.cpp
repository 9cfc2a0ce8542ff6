//===- Checkpoint.cpp - A Hugging Face checkpoint's weights ---------------===//

#include "rotor/Import/Checkpoint.h"

#include "rotor/Support/JsonNesting.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace llvm;
using namespace rotor;
using namespace rotor::import;

namespace {
Error fail(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}
} // namespace

Expected<CheckpointWeights> CheckpointWeights::open(StringRef path) {
  CheckpointWeights weights;
  std::string indexPath;
  if (sys::fs::is_directory(path)) {
    SmallString<256> index(path), single(path);
    sys::path::append(index, "model.safetensors.index.json");
    sys::path::append(single, "model.safetensors");
    if (sys::fs::exists(single)) {
      weights.shardPaths.push_back(single.str().str());
    } else if (sys::fs::exists(index)) {
      indexPath = index.str().str();
    } else {
      return fail(path + ": no model.safetensors or "
                         "model.safetensors.index.json in this directory");
    }
  } else if (path.ends_with(".json")) {
    indexPath = path.str();
  } else {
    weights.shardPaths.push_back(path.str());
  }
  weights.sourcePath = indexPath.empty() ? weights.shardPaths[0] : indexPath;

  if (!indexPath.empty()) {
    if (Error err = safetensors::requireRegularFile(indexPath))
      return std::move(err);
    auto buffer = MemoryBuffer::getFile(indexPath);
    if (!buffer)
      return fail(indexPath + ": cannot read: " + buffer.getError().message());
    return fromIndex(indexPath, (*buffer)->getBuffer());
  }
  weights.archives.resize(weights.shardPaths.size());
  return weights;
}

Expected<const safetensors::TensorView *>
CheckpointWeights::lookup(StringRef name, std::string *file) {
  unsigned shard = 0;
  if (indexed) {
    auto it = weightMap.find(name);
    if (it == weightMap.end())
      return fail(sourcePath + ": no tensor '" + name + "' in the weight_map");
    shard = it->second;
  }
  std::optional<safetensors::Archive> &archive = archives[shard];
  const std::string &shardPath = shardPaths[shard];
  if (!archive) {
    if (!sys::fs::exists(shardPath))
      return indexed ? fail(sourcePath + ": tensor '" + name +
                            "' is mapped to " + shardPath +
                            ", which does not exist")
                     : fail(shardPath + ": no such file");
    Expected<safetensors::Archive> opened = safetensors::Archive::open(shardPath);
    if (!opened)
      return opened.takeError();
    archive = std::move(*opened);
  }
  if (file)
    *file = shardPath;
  if (const safetensors::TensorView *view = archive->lookup(name))
    return view;
  if (indexed)
    return fail(shardPath + ": no tensor '" + name + "', though " +
                sourcePath + " maps it to this file");
  return fail(shardPath + ": no tensor '" + name + "'");
}

Expected<CheckpointWeights> CheckpointWeights::fromIndex(StringRef indexPath,
                                                         StringRef text) {
  CheckpointWeights weights;
  weights.sourcePath = indexPath.str();
  weights.indexed = true;
  if (jsonNestingDepth(text) > kMaxJsonNesting)
    return fail(indexPath + ": nests JSON deeper than " +
                Twine(kMaxJsonNesting) + " levels");
  Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return fail(indexPath + ": not valid JSON: " +
                toString(parsed.takeError()));
  const json::Object *root = parsed->getAsObject();
  const json::Object *map = root ? root->getObject("weight_map") : nullptr;
  if (!map)
    return fail(indexPath + ": has no 'weight_map' object");
  if (map->empty())
    return fail(indexPath + ": its 'weight_map' names no tensors");
  StringRef dir = sys::path::parent_path(indexPath);
  StringMap<unsigned> shardIndex;
  for (const auto &[name, file] : *map) {
    std::optional<StringRef> fileName = file.getAsString();
    if (!fileName || fileName->empty() || *fileName == "." ||
        *fileName == ".." || sys::path::has_parent_path(*fileName))
      return fail(indexPath + ": weight_map entry '" + StringRef(name) +
                  "' must name a shard file in the same directory");
    auto [it, inserted] =
        shardIndex.try_emplace(*fileName, weights.shardPaths.size());
    if (inserted) {
      SmallString<256> shard(dir);
      sys::path::append(shard, *fileName);
      weights.shardPaths.push_back(shard.str().str());
    }
    weights.weightMap[name] = it->second;
  }
  weights.archives.resize(weights.shardPaths.size());
  return weights;
}
