//===- SplitRopeBias.cpp - K's bias as an SDPA score term -----------------===//
//
// RoPE(W_k x + b_k, p) = RoPE(W_k x, p) + RoPE(b_k, p): the cache keeps the
// first term and SDPA adds q · RoPE(b_k, p_j) to each score from the key's
// position (attn.sdpa's key_bias). A bias of |171| in a bf16 cache costs
// one bf16 step of 1.0 per key element; without it the stored values are
// small and round finely.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNSPLITROPEBIAS
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

namespace {

/// An SDPA whose keys are the RoPE of a biased K projection.
struct BiasedKeys {
  SdpaOp sdpa;
  RopeOp rope;
  LinearOp projection;
  /// Why it cannot be split (a tag and a sentence), or empty.
  std::string tag, reason;
};

/// The query's RoPE, through captures, or null.
RopeOp queryRope(SdpaOp sdpa) {
  Value q = sdpa.getQuery();
  while (auto capture = q.getDefiningOp<CaptureOp>())
    q = capture.getInput();
  return q.getDefiningOp<RopeOp>();
}

/// The biased K projection behind `sdpa`'s keys, if any, and whether its
/// bias can move into the SDPA.
std::optional<BiasedKeys> analyze(SdpaOp sdpa) {
  Value source = traceKVCacheWrite(sdpa.getKey()).source;
  // A rotated cache read back through the inverse of the rotation it was
  // written with gives SDPA keys in the RoPE's own basis (MᵀM = I, the
  // quantization between them rotated back), so the term needs no
  // rotation: `unrotatedOnRead` is that pair. Any other rotation between
  // the RoPE and SDPA (one side only, or different rotations) would need
  // the term rotated too.
  HadamardOp onRead, onWrite;
  int rotations = 0;
  while (auto hadamard = source.getDefiningOp<HadamardOp>()) {
    (rotations++ == 0 ? onRead : onWrite) = hadamard;
    source = traceKVCacheWrite(hadamard.getInput()).source;
  }
  bool unrotatedOnRead =
      rotations == 2 && onRead.getRotation() == onWrite.getRotation() &&
      onRead.getInverse() != onWrite.getInverse() &&
      onRead.rotatesLastDim() && onWrite.rotatesLastDim() &&
      llvm::all_of(onWrite->getUsers(), [](Operation *user) {
        return isa<KVCacheAppendOp, QuantizeOp, arith::TruncFOp>(user);
      });
  bool rotated = rotations != 0 && !unrotatedOnRead;
  auto rope = source.getDefiningOp<RopeOp>();
  if (!rope)
    return std::nullopt;
  Value input = rope.getInput();
  auto norm = input.getDefiningOp<RmsNormOp>();
  if (norm)
    input = norm.getInput();
  auto split = input.getDefiningOp<tensor::ExpandShapeOp>();
  auto projection = split ? split.getSrc().getDefiningOp<LinearOp>() : nullptr;
  if (!projection || !projection.getBias())
    return std::nullopt;
  BiasedKeys keys{sdpa, rope, projection, "", ""};
  auto refuse = [&](StringRef tag, const Twine &reason) {
    keys.tag = tag.str();
    keys.reason = reason.str();
    return keys;
  };
  if (rope.getRotaryDim() == 0)
    return refuse("no-rotary-dims", "K's RoPE rotates no dims (rotary_dim "
                                    "0), so there is no position term to "
                                    "split off");
  if (norm)
    return refuse("norm-between", "an RMS norm (k_norm) lies between K's bias "
                                  "and RoPE, and it is not linear");
  if (isa_and_nonnull<DynamicRopeScalingAttr>(rope.getScalingAttr()))
    return refuse("dynamic-scaling", "dynamic NTK scaling rotates K with "
                                     "frequencies that depend on the call");
  if (rotated)
    return refuse("rotated-cache", "the K cache is rotated and SDPA reads it "
                                   "rotated (not through the inverse of the "
                                   "rotation it was written with); the bias "
                                   "term would need the rotation as well");
  RopeOp qRope = queryRope(sdpa);
  Value keyPositions = rope.getPositions();
  if (!qRope || qRope.getPositions() != keyPositions ||
      (sdpa.getPositions() && sdpa.getPositions() != keyPositions))
    return refuse("positions", "K is rotated at positions other than the "
                               "query's, so a key's row need not be its "
                               "position");
  for (Operation *user : rope->getUsers())
    if (isa<CaptureOp>(user))
      return refuse("capture", "K is captured after RoPE, and the capture "
                               "would lose the bias");
  // The RoPE'd keys may go to the cache (as they are, rounded or
  // quantized) and to this SDPA; anything else would see them unbiased.
  bool keyPathsOnly = llvm::all_of(rope->getUses(), [&](OpOperand &use) {
    Operation *user = use.getOwner();
    if (user == sdpa.getOperation())
      return use.get() == sdpa.getKey() && sdpa.getQuery() != use.get() &&
             sdpa.getValue() != use.get();
    // The write side of a cache SDPA reads back unrotated.
    if (unrotatedOnRead && user == onWrite.getOperation())
      return true;
    return isa<KVCacheAppendOp, QuantizeOp, arith::TruncFOp>(user);
  });
  // V read from the same keys would lose the bias too, also through the
  // cache's rotations.
  Value valueSource = traceKVCacheWrite(sdpa.getValue()).source;
  while (auto hadamard = valueSource.getDefiningOp<HadamardOp>())
    valueSource = traceKVCacheWrite(hadamard.getInput()).source;
  if (valueSource == rope.getResult())
    keyPathsOnly = false;
  if (!projection->hasOneUse() || !split->hasOneUse() || !keyPathsOnly)
    return refuse("shared-projection", "the K projection or its head split "
                                       "has other users, or its RoPE feeds "
                                       "more than the cache and SDPA's keys");
  return keys;
}

/// Moves the projection's bias into the SDPA's key-bias term.
void split(BiasedKeys &keys) {
  LinearOp projection = keys.projection;
  Value bias = projection.getBias();
  auto keyType = cast<RankedTensorType>(keys.sdpa.getKey().getType());
  int64_t hkv = keyType.getDimSize(1), d = keyType.getDimSize(2);
  OpBuilder b(keys.sdpa);
  auto biasType = cast<RankedTensorType>(bias.getType());
  Value perHead = tensor::ExpandShapeOp::create(
      b, keys.sdpa.getLoc(), biasType.clone({hkv, d}), bias,
      ArrayRef<ReassociationIndices>{{0, 1}});
  keys.sdpa.getKeyBiasMutable().assign(perHead);
  keys.sdpa.setKeyBiasRopeAttr(getRopeParams(keys.rope));
  projection.getBiasMutable().clear();
}

/// The `attn.kv_format` rotor-import gave the cache `bytes` were read from
/// (back through unpack, read and append to the function's argument), or
/// empty.
std::string cacheFormatName(Value bytes) {
  for (int depth = 0; depth < 8; ++depth) {
    if (auto arg = dyn_cast<BlockArgument>(bytes)) {
      auto func = arg.getOwner()->isEntryBlock()
                      ? dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
                      : func::FuncOp();
      auto name = func ? func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                           "attn.kv_format")
                       : StringAttr();
      return name ? name.str() : "";
    }
    Operation *def = bytes.getDefiningOp();
    if (auto append = dyn_cast_if_present<KVCacheAppendOp>(def))
      bytes = append.getCache();
    else if (isa_and_present<UnpackBlocksOp, KVCacheReadOp>(def))
      bytes = def->getOperand(0);
    else
      return "";
  }
  return "";
}

/// How SDPA's keys are stored when narrower than f32: "bf16", "f16" or the
/// quantized cache's format; empty for f32 keys.
std::string narrowKeyStorage(SdpaOp sdpa) {
  Value key = sdpa.getKey();
  while (auto hadamard = key.getDefiningOp<HadamardOp>())
    key = hadamard.getInput();
  // Keys computed narrow without a cache are not this warning's business:
  // they must come through a cache write (or from a cache written
  // elsewhere), or be the narrow values a cache append stores.
  KVCacheWriteTrace trace = traceKVCacheWrite(key);
  bool stored = trace.throughWrite || isa<BlockArgument>(trace.source);
  if (auto dequantize = key.getDefiningOp<DequantizeOp>()) {
    if (!stored)
      return "";
    std::string name = cacheFormatName(dequantize.getOperand(0));
    if (!name.empty())
      return name;
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "quantized (" << dequantize.getFormat() << ")";
    return s;
  }
  if (auto ext = key.getDefiningOp<arith::ExtFOp>())
    key = ext.getIn();
  stored |= llvm::any_of(key.getUsers(), llvm::IsaPred<KVCacheAppendOp>);
  Type element = getElementTypeOrSelf(key.getType());
  if (!stored || element.isF32() || element.isF64())
    return "";
  std::string s;
  llvm::raw_string_ostream os(s);
  os << element;
  return s;
}

struct AttnSplitRopeBiasPass
    : rotor::attn::impl::AttnSplitRopeBiasBase<AttnSplitRopeBiasPass> {
  using Base::Base;

  /// Warns only where `--split-rope-bias` would split: not when any SDPA
  /// of the module refuses (all or nothing), and only for keys read from a
  /// cache.
  void suggest(MutableArrayRef<BiasedKeys> candidates, bool refused) {
    if (refused)
      return;
    for (BiasedKeys &keys : candidates) {
      std::string storage = narrowKeyStorage(keys.sdpa);
      if (storage.empty())
        continue;
      keys.sdpa.emitWarning()
          << "K's bias goes into a " << storage
          << " KV cache, which rounds it with the keys (a Qwen2.5-like bias "
             "can cost most of the layer's accuracy); rotor-aot "
             "--split-rope-bias keeps it out (docs/PRECISION.md)";
    }
  }

  void runOnOperation() override {
    SmallVector<BiasedKeys> candidates;
    bool refused = false;
    getOperation().walk([&](SdpaOp sdpa) {
      if (sdpa.getKeyBias())
        return;
      if (std::optional<BiasedKeys> keys = analyze(sdpa)) {
        refused |= !keys->tag.empty();
        candidates.push_back(*keys);
      }
    });
    if (suggestOnly)
      return suggest(candidates, refused);
    for (BiasedKeys &keys : candidates) {
      if (!keys.tag.empty()) {
        keys.sdpa.emitRemark() << "attn-split-rope-bias: not split ["
                               << keys.tag << "]: " << keys.reason;
      } else if (refused) {
        keys.sdpa.emitRemark()
            << "attn-split-rope-bias: not split [all-or-nothing]: another "
               "SDPA of the module keeps its K bias, and they may share a "
               "cache";
      } else {
        split(keys);
        keys.sdpa.emitRemark()
            << "attn-split-rope-bias: split: the cache stores RoPE(W_k x) "
               "and SDPA adds q·RoPE(b_k, p) to each score";
      }
    }
  }
};

} // namespace
