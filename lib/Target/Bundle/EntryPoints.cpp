//===- EntryPoints.cpp - The manifest's entry points and layer ------------===//

#include "rotor/Target/Bundle/Bundle.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/TypeSwitch.h"

#include <map>

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;
namespace json = llvm::json;

namespace {

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// "f32", "bf16", "f16", "i32", "i64", "i8".
std::string dtypeName(Type type) {
  std::string s;
  llvm::raw_string_ostream os(s);
  type.print(os);
  return s;
}

json::Object describeTensor(StringRef name, StringRef kind, Type type) {
  auto tensor = cast<RankedTensorType>(type);
  json::Array shape;
  for (int64_t d : tensor.getShape())
    shape.push_back(ShapedType::isDynamic(d) ? int64_t(-1) : d);
  return json::Object{{"name", name},
                      {"kind", kind},
                      {"dtype", dtypeName(tensor.getElementType())},
                      {"shape", std::move(shape)}};
}

/// The fixed calling convention: (hidden_states [T, E], positions [T],
/// k_cache [M, Hkv, D], v_cache [M, Hkv, Dv], [cache_len: index,] params...)
/// -> (output [T, E], k_cache, v_cache).
llvm::Expected<json::Object> describeEntry(func::FuncOp func, bool decode) {
  StringRef name = func.getSymName();
  auto bad = [&](const llvm::Twine &what) {
    return fail("entry point @" + name + ": " + what);
  };
  FunctionType type = func.getFunctionType();
  unsigned fixed = decode ? 5 : 4;
  if (type.getNumInputs() < fixed)
    return bad("expects (hidden_states, positions, k_cache, v_cache" +
               llvm::Twine(decode ? ", cache_len" : "") + ", params...)");
  auto tensorArg = [&](unsigned i) {
    return dyn_cast<RankedTensorType>(type.getInput(i));
  };
  auto hidden = tensorArg(0), positions = tensorArg(1);
  auto kCache = tensorArg(2), vCache = tensorArg(3);
  if (!hidden || hidden.getRank() != 2 ||
      !isa<FloatType>(hidden.getElementType()))
    return bad("argument 0 (hidden_states) must be a float tensor [T, E]");
  if (!positions || positions.getRank() != 1 ||
      !positions.getElementType().isSignlessInteger())
    return bad("argument 1 (positions) must be an integer tensor [T]");
  if (!kCache || kCache.getRank() != 3 || !kCache.hasStaticShape() ||
      !vCache || vCache.getRank() != 3 || !vCache.hasStaticShape())
    return bad("arguments 2 and 3 (k_cache, v_cache) must be static [M, Hkv, D]");
  if (decode && !type.getInput(4).isIndex())
    return bad("argument 4 (cache_len) must be an index");
  if (type.getNumResults() != 3 || type.getResult(0) != hidden ||
      type.getResult(1) != kCache || type.getResult(2) != vCache)
    return bad("must return (output like hidden_states, k_cache, v_cache)");

  json::Array args;
  args.push_back(describeTensor("hidden_states", "input", hidden));
  args.push_back(describeTensor("positions", "input", positions));
  args.push_back(describeTensor("k_cache", "kv_cache", kCache));
  args.push_back(describeTensor("v_cache", "kv_cache", vCache));
  if (decode)
    args.push_back(json::Object{{"name", "cache_len"}, {"kind", "cache_len"}});
  for (unsigned i = fixed; i < type.getNumInputs(); ++i) {
    auto param = func.getArgAttrOfType<StringAttr>(i, "attn.param");
    if (!param)
      return bad("argument " + llvm::Twine(i) +
                 " is neither part of the convention nor an attn.param");
    args.push_back(describeTensor(param.getValue(), "param", type.getInput(i)));
  }
  json::Array results;
  results.push_back(describeTensor("output", "output", hidden));
  results.push_back(describeTensor("k_cache", "kv_cache", kCache));
  results.push_back(describeTensor("v_cache", "kv_cache", vCache));
  return json::Object{{"name", name},
                      {"symbol", ("rotor_" + name).str()},
                      {"arguments", std::move(args)},
                      {"results", std::move(results)}};
}

/// The name of the parameter `v` is, or "" when it is not one.
std::string paramName(Value v) {
  auto arg = dyn_cast<BlockArgument>(v);
  if (!arg)
    return "";
  auto func = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
  if (!func)
    return "";
  auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "attn.param");
  return name ? name.getValue().str() : "";
}

/// `v` before a storage round trip (extf of truncf: attn-select-precision
/// storing it narrower); the reference keeps values exact.
Value beforeRounding(Value v) {
  while (auto ext = v.getDefiningOp<arith::ExtFOp>()) {
    auto trunc = ext.getIn().getDefiningOp<arith::TruncFOp>();
    if (!trunc || trunc.getIn().getType() != ext.getType())
      break;
    v = trunc.getIn();
  }
  return v;
}

/// {weight, bias} of a projection of the hidden states, or nullopt.
std::optional<json::Object> describeProjection(Value v, Value hidden) {
  v = beforeRounding(v);
  if (auto expand = v.getDefiningOp<tensor::ExpandShapeOp>())
    v = beforeRounding(expand.getSrc());
  auto linear = v.getDefiningOp<LinearOp>();
  if (!linear || linear.getInput() != hidden)
    return std::nullopt;
  std::string weight = paramName(linear.getWeight());
  if (weight.empty())
    return std::nullopt;
  json::Value bias = nullptr;
  if (Value b = linear.getBias()) {
    std::string name = paramName(b);
    if (name.empty())
      return std::nullopt;
    bias = name;
  }
  return json::Object{{"weight", weight}, {"bias", std::move(bias)}};
}

json::Value describeScaling(Attribute scaling) {
  if (!scaling)
    return nullptr;
  auto f = [](const llvm::APFloat &v) { return v.convertToDouble(); };
  return llvm::TypeSwitch<Attribute, json::Value>(scaling)
      .Case([&](LinearRopeScalingAttr s) {
        return json::Object{{"kind", "linear"}, {"factor", f(s.getFactor())}};
      })
      .Case([&](DynamicRopeScalingAttr s) {
        return json::Object{{"kind", "dynamic"},
                            {"factor", f(s.getFactor())},
                            {"original_max_position_embeddings",
                             s.getOriginalMaxPositionEmbeddings()}};
      })
      .Case([&](YarnRopeScalingAttr s) {
        return json::Object{{"kind", "yarn"},
                            {"factor", f(s.getFactor())},
                            {"original_max_position_embeddings",
                             s.getOriginalMaxPositionEmbeddings()},
                            {"beta_fast", f(s.getBetaFast())},
                            {"beta_slow", f(s.getBetaSlow())},
                            {"attention_factor", f(s.getAttentionFactor())},
                            {"truncate", s.getTruncate()}};
      })
      .Case([&](Llama3RopeScalingAttr s) {
        return json::Object{{"kind", "llama3"},
                            {"factor", f(s.getFactor())},
                            {"low_freq_factor", f(s.getLowFreqFactor())},
                            {"high_freq_factor", f(s.getHighFreqFactor())},
                            {"original_max_position_embeddings",
                             s.getOriginalMaxPositionEmbeddings()}};
      })
      .Default([](Attribute) { return json::Value(nullptr); });
}

/// null when `v` is not an attn.rms_norm; {weight, epsilon} when it is one
/// of a parameter; nullopt (no standard layer) otherwise.
std::optional<json::Value> describeHeadNorm(Value v) {
  auto norm = v.getDefiningOp<RmsNormOp>();
  if (!norm)
    return json::Value(nullptr);
  std::string weight = paramName(norm.getWeight());
  if (weight.empty())
    return std::nullopt;
  return json::Value(json::Object{
      {"weight", weight}, {"epsilon", norm.getEpsilon().convertToDouble()}});
}

/// `v` with attn.capture ops (identities) and storage round trips looked
/// through.
Value throughCaptures(Value v) {
  v = beforeRounding(v);
  while (auto capture = v.getDefiningOp<CaptureOp>())
    v = beforeRounding(capture.getInput());
  return v;
}

/// Where a layer applies its KV rotation: each place's direction (`R` or
/// `Rᵀ`), unset where it applies none. The exact layer is then the one
/// with these rotations and without the cache's rounding.
struct LayerRotations {
  HadamardAttr rotation;
  std::optional<bool> q, kWrite, kRead, vWrite, vRead, output;
  /// False once a rotation differs from the others or is not per head.
  bool consistent = true;

  /// `v` with a rotation of its last dim peeled into `slot`.
  Value peel(Value v, std::optional<bool> &slot) {
    auto h = v.getDefiningOp<HadamardOp>();
    if (!h)
      return v;
    if (!h.rotatesLastDim() || (rotation && rotation != h.getRotation()))
      consistent = false;
    rotation = h.getRotation();
    slot = h.getInverse();
    return h.getInput();
  }

  json::Value describe() const {
    if (!rotation)
      return nullptr;
    json::Object places;
    for (auto [name, slot] :
         {std::pair("q", q), std::pair("k_write", kWrite),
          std::pair("k_read", kRead), std::pair("v_write", vWrite),
          std::pair("v_read", vRead), std::pair("output", output)})
      places[name] = slot ? json::Value(*slot ? "inverse" : "forward")
                          : json::Value(nullptr);
    json::Array s1, s2;
    for (int32_t v : rotation.getS1())
      s1.push_back(int64_t(v));
    for (int32_t v : rotation.getS2())
      s2.push_back(int64_t(v));
    return json::Object{{"group", rotation.getGroup()},
                        {"s1", std::move(s1)},
                        {"s2", std::move(s2)},
                        {"applied", std::move(places)}};
  }
};

/// `v` read back through a KV cache to what was written; the reference
/// keeps it exact.
Value throughKVCache(Value v) { return traceKVCacheWrite(v).source; }

/// The layer, when prefill is the standard biased-projection, RoPE, causal
/// GQA attention, output projection sublayer that the runtime's reference
/// knows (its KV cache in any format, rotated or not); nullopt for anything
/// else.
std::optional<json::Object> describeLayer(func::FuncOp prefill) {
  SdpaOp sdpa;
  int count = 0;
  prefill.walk([&](SdpaOp op) {
    sdpa = op;
    ++count;
  });
  if (count != 1 || !sdpa.getCausal() || sdpa.getPositions())
    return std::nullopt;
  Value hidden = prefill.getArgument(0);
  LayerRotations rot;
  Value query = throughCaptures(rot.peel(sdpa.getQuery(), rot.q));
  Value key = rot.peel(throughKVCache(rot.peel(sdpa.getKey(), rot.kRead)),
                       rot.kWrite);
  Value value = rot.peel(throughKVCache(rot.peel(sdpa.getValue(), rot.vRead)),
                         rot.vWrite);
  auto qRope = query.getDefiningOp<RopeOp>();
  auto kRope = throughCaptures(key).getDefiningOp<RopeOp>();
  if (!qRope || !kRope || qRope.getLayout() != kRope.getLayout() ||
      qRope.getRotaryDim() != kRope.getRotaryDim() ||
      qRope.getTheta() != kRope.getTheta() ||
      qRope.getScalingAttr() != kRope.getScalingAttr() ||
      qRope.getPositions() != prefill.getArgument(1) ||
      kRope.getPositions() != prefill.getArgument(1))
    return std::nullopt;
  // Qwen3-style per-head RMS norms between projection and RoPE.
  std::optional<json::Value> qNorm =
      describeHeadNorm(beforeRounding(qRope.getInput()));
  std::optional<json::Value> kNorm =
      describeHeadNorm(beforeRounding(kRope.getInput()));
  if (!qNorm || !kNorm)
    return std::nullopt;
  auto beforeNorm = [](Value v) {
    v = beforeRounding(v);
    auto norm = v.getDefiningOp<RmsNormOp>();
    return norm ? beforeRounding(norm.getInput()) : v;
  };
  std::optional<json::Object> q =
      describeProjection(beforeNorm(qRope.getInput()), hidden);
  std::optional<json::Object> k =
      describeProjection(beforeNorm(kRope.getInput()), hidden);
  std::optional<json::Object> v = describeProjection(value, hidden);
  if (!q || !k || !v)
    return std::nullopt;
  // attn-split-rope-bias moved K's bias into SDPA's key-bias term: the
  // layer is still the one with that bias on k_proj.
  if (Value keyBias = sdpa.getKeyBias()) {
    if (auto perHead = keyBias.getDefiningOp<tensor::ExpandShapeOp>())
      keyBias = perHead.getSrc();
    std::string name = paramName(keyBias);
    if (name.empty() || !(*k)["bias"].getAsNull() ||
        sdpa.getKeyBiasRopeAttr() != getRopeParams(kRope))
      return std::nullopt;
    (*k)["bias"] = name;
  }
  // output = linear(collapse(sdpa, maybe un-rotated), Wo, bo?) is the first
  // result.
  auto ret = cast<func::ReturnOp>(prefill.getBody().front().getTerminator());
  auto out = beforeRounding(ret.getOperand(0)).getDefiningOp<LinearOp>();
  if (!out)
    return std::nullopt;
  auto collapse = out.getInput().getDefiningOp<tensor::CollapseShapeOp>();
  if (!collapse ||
      beforeRounding(rot.peel(beforeRounding(collapse.getSrc()), rot.output)) !=
          sdpa.getResult() ||
      !rot.consistent)
    return std::nullopt;
  std::string wo = paramName(out.getWeight());
  if (wo.empty())
    return std::nullopt;
  json::Value bo = nullptr;
  if (Value b = out.getBias()) {
    std::string name = paramName(b);
    if (name.empty())
      return std::nullopt;
    bo = name;
  }
  auto qType = cast<RankedTensorType>(sdpa.getQuery().getType());
  auto kType = cast<RankedTensorType>(sdpa.getKey().getType());
  return json::Object{
      {"hidden", cast<RankedTensorType>(hidden.getType()).getDimSize(1)},
      {"q_heads", qType.getDimSize(1)},
      {"kv_heads", kType.getDimSize(1)},
      {"head_dim", qType.getDimSize(2)},
      {"scale", sdpa.getEffectiveScale()},
      {"rope",
       json::Object{{"layout", stringifyRopeLayout(qRope.getLayout())},
                    {"rotary_dim", qRope.getRotaryDim()},
                    {"theta", qRope.getTheta().convertToDouble()},
                    {"scaling", describeScaling(qRope.getScalingAttr())}}},
      {"q_norm", std::move(*qNorm)},
      {"k_norm", std::move(*kNorm)},
      {"q_proj", std::move(*q)},
      {"k_proj", std::move(*k)},
      {"v_proj", std::move(*v)},
      {"o_proj", json::Object{{"weight", wo}, {"bias", std::move(bo)}}},
      {"kv_rotation", rot.describe()}};
}

/// The manifest's `kv_cache`: geometry, format and bytes per token of
/// @prefill's K and V caches (arguments 2 and 3). A quantized cache is
/// [capacity, kv_heads, bytes of a head's packed blocks] of i8, with
/// `attn.kv_format`, `attn.kv_block` and (when rotated) `attn.kv_rotation`
/// on the argument; both caches must then have the same format.
llvm::Expected<json::Object> describeKVCache(func::FuncOp prefill) {
  auto kCache = cast<RankedTensorType>(prefill.getArgumentTypes()[2]);
  auto vCache = cast<RankedTensorType>(prefill.getArgumentTypes()[3]);
  auto attrOf = [&](unsigned arg, StringRef name) {
    return prefill.getArgAttr(arg, name);
  };
  for (StringRef name : {"attn.kv_format", "attn.kv_block", "attn.kv_rotation"})
    if (attrOf(2, name) != attrOf(3, name))
      return fail("entry point @prefill: the K and V caches differ in '" +
                  name + "'; rotor keeps both in one format");
  auto format = dyn_cast_or_null<StringAttr>(attrOf(2, "attn.kv_format"));
  auto block = dyn_cast_or_null<KVBlockFormatAttr>(attrOf(2, "attn.kv_block"));
  auto rotation = dyn_cast_or_null<HadamardAttr>(attrOf(2, "attn.kv_rotation"));
  int64_t bytesPerToken = 0;
  for (RankedTensorType cache : {kCache, vCache})
    bytesPerToken += cache.getDimSize(1) * cache.getDimSize(2) *
                     int64_t(cache.getElementTypeBitWidth() / 8);
  json::Object out{{"capacity", kCache.getDimSize(0)},
                   {"kv_heads", kCache.getDimSize(1)},
                   {"head_dim", kCache.getDimSize(2)},
                   {"value_dim", vCache.getDimSize(2)},
                   {"dtype", dtypeName(kCache.getElementType())},
                   {"format", format ? format.getValue().str()
                                     : dtypeName(kCache.getElementType())},
                   {"bytes_per_token", bytesPerToken}};
  if (block) {
    int64_t blockBytes = packedBlockBytes(block);
    for (auto [key, cache] : {std::pair("head_dim", kCache),
                              std::pair("value_dim", vCache)}) {
      if (!kCache.getElementType().isInteger(8) ||
          cache.getDimSize(2) % blockBytes != 0)
        return fail("entry point @prefill: a cache of format " +
                    llvm::Twine(format ? format.getValue() : "?") +
                    " must be i8 rows of whole " + llvm::Twine(blockBytes) +
                    "-byte blocks");
      out[key] = cache.getDimSize(2) / blockBytes * block.getBlockSize();
    }
    out["block"] = json::Object{
        {"bits", int64_t(block.getBits())},
        {"block_size", block.getBlockSize()},
        {"scheme", stringifyQuantScheme(block.getScheme())},
        {"scale_type", dtypeName(block.getScaleType())},
        {"bytes", blockBytes}};
  }
  if (rotation)
    out["rotation_group"] = rotation.getGroup();
  return out;
}

} // namespace

llvm::Expected<json::Object> rotor::describeEntryPoints(ModuleOp module) {
  json::Array entries;
  json::Object manifest;
  TypeRange prefillCaches;
  for (bool decode : {false, true}) {
    StringRef name = decode ? "decode" : "prefill";
    auto func = module.lookupSymbol<func::FuncOp>(name);
    if (!func || func.isExternal())
      return fail("the module has no entry point @" + name);
    TypeRange caches = func.getArgumentTypes().slice(2, 2);
    if (decode && func.getNumArguments() >= 4 && caches != prefillCaches)
      return fail("entry points @prefill and @decode must share one KV cache "
                  "geometry");
    prefillCaches = caches;
    llvm::Expected<json::Object> entry = describeEntry(func, decode);
    if (!entry)
      return entry.takeError();
    entries.push_back(std::move(*entry));
    if (!decode) {
      llvm::Expected<json::Object> kvCache = describeKVCache(func);
      if (!kvCache)
        return kvCache.takeError();
      manifest["kv_cache"] = std::move(*kvCache);
      if (std::optional<json::Object> layer = describeLayer(func))
        manifest["layer"] = std::move(*layer);
    }
  }
  manifest["entry_points"] = std::move(entries);
  return manifest;
}

llvm::Error rotor::selectLayer(ModuleOp module, std::optional<int64_t> layer) {
  if (module.lookupSymbol<func::FuncOp>("prefill")) {
    auto attr = module->getAttrOfType<IntegerAttr>("attn.layer");
    if (layer && (!attr || attr.getInt() != *layer))
      return fail("--layer " + llvm::Twine(*layer) + ": the module has the "
                  "entry points of one layer (@prefill, @decode)" +
                  (attr ? ", layer " + llvm::Twine(attr.getInt()) : ""));
    return llvm::Error::success();
  }
  // Layers by number, from `@layerN_prefill` / `@layerN_decode` with N in
  // canonical decimal form.
  std::map<int64_t, std::pair<func::FuncOp, func::FuncOp>> layers;
  SmallVector<func::FuncOp> layerFuncs;
  for (auto func : module.getOps<func::FuncOp>()) {
    StringRef name = func.getSymName();
    if (!name.consume_front("layer"))
      continue;
    bool decode = name.consume_back("_decode");
    if (!decode && !name.consume_back("_prefill"))
      continue;
    int64_t n;
    if (name.getAsInteger(10, n) || n < 0 || name != std::to_string(n))
      continue;
    (decode ? layers[n].second : layers[n].first) = func;
    layerFuncs.push_back(func);
  }
  if (layers.empty())
    return fail("the module has no entry point @prefill (nor per-layer "
                "@layerN_prefill)");
  std::string available;
  for (auto &entry : layers)
    available += (available.empty() ? "" : ", ") + std::to_string(entry.first);
  if (!layer) {
    if (layers.size() > 1)
      return fail("the module has layers " + available +
                  "; choose one with --layer");
    layer = layers.begin()->first;
  }
  auto it = layers.find(*layer);
  if (it == layers.end())
    return fail("--layer " + llvm::Twine(*layer) + ": the module has layer(s) " +
                available);
  std::string prefix = "layer" + std::to_string(*layer) + "_";
  auto [prefill, decode] = it->second;
  if (!prefill || !decode)
    return fail("the module has @" + prefix + (prefill ? "prefill" : "decode") +
                " but no @" + prefix + (prefill ? "decode" : "prefill"));
  for (func::FuncOp func : layerFuncs)
    if (func != prefill && func != decode)
      func.erase();
  prefill.setSymName("prefill");
  decode.setSymName("decode");
  module->setAttr("attn.layer",
                  IntegerAttr::get(IntegerType::get(module.getContext(), 64),
                                   *layer));
  return llvm::Error::success();
}
