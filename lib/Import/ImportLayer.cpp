//===- ImportLayer.cpp - Attention layers of a checkpoint as attn IR ------===//

#include "rotor/Import/ImportLayer.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Import/KVCacheFormat.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <random>
#include <set>

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;
using namespace rotor::import;

namespace {

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(shape, os);
  os << "]";
  return s;
}

/// One tensor a layer reads: its HF name, shape, and whether its rows are
/// Q/K rows in HF's half-split order.
struct ParamSpec {
  std::string name;
  llvm::SmallVector<int64_t> shape;
  bool halfSplitRows = false;
};

/// The tensors of layer `layer`, with their expected shapes.
struct LayerParams {
  ParamSpec wq, wk, wv, wo;
  std::optional<ParamSpec> bq, bk, bv, bo, qNorm, kNorm;

  llvm::SmallVector<const ParamSpec *> all() const {
    llvm::SmallVector<const ParamSpec *> out = {&wq, &wk, &wv, &wo};
    for (const std::optional<ParamSpec> *p : {&bq, &bk, &bv, &bo, &qNorm, &kNorm})
      if (*p)
        out.push_back(&**p);
    return out;
  }
};

LayerParams layerParams(const AttentionConfig &c, int64_t layer) {
  std::string prefix = "model.layers." + std::to_string(layer) + ".self_attn.";
  int64_t e = c.hiddenSize, q = c.numHeads * c.headDim,
          kv = c.numKVHeads * c.headDim;
  LayerParams p;
  // Qwen3-Next's q_proj yields, per head, the query's rows then the gate's.
  p.wq = {prefix + "q_proj.weight", {c.outputGate ? 2 * q : q, e}, true};
  p.wk = {prefix + "k_proj.weight", {kv, e}, true};
  p.wv = {prefix + "v_proj.weight", {kv, e}, false};
  p.wo = {prefix + c.outputProjName + ".weight", {e, q}, false};
  if (c.qkvBias) {
    p.bq = ParamSpec{prefix + "q_proj.bias", {q}, true};
    p.bk = ParamSpec{prefix + "k_proj.bias", {kv}, true};
    p.bv = ParamSpec{prefix + "v_proj.bias", {kv}, false};
  }
  if (c.outputBias)
    p.bo = ParamSpec{prefix + c.outputProjName + ".bias", {e}, false};
  if (c.qkNorm) {
    // The norm weights act on a head's dims, which HF keeps half-split.
    p.qNorm = ParamSpec{prefix + "q_norm.weight", {c.headDim}, true};
    p.kNorm = ParamSpec{prefix + "k_norm.weight", {c.headDim}, true};
  }
  return p;
}

/// Checks that `spec` is in the checkpoint, is a float tensor and has its
/// shape.
llvm::Error checkTensor(CheckpointWeights &weights, const ParamSpec &spec) {
  std::string file;
  llvm::Expected<const safetensors::TensorView *> view =
      weights.lookup(spec.name, &file);
  if (!view)
    return view.takeError();
  const std::string &dtype = (*view)->dtype;
  if (dtype != "F32" && dtype != "BF16" && dtype != "F16")
    return fail(file + ": tensor '" + spec.name + "' has dtype " + dtype +
                "; a weight must be F32, BF16 or F16");
  if (llvm::ArrayRef<int64_t>((*view)->shape) != llvm::ArrayRef(spec.shape))
    return fail(file + ": tensor '" + spec.name + "' has shape " +
                shapeString((*view)->shape) + " but the config implies " +
                shapeString(spec.shape));
  return llvm::Error::success();
}

class LayerBuilder {
public:
  LayerBuilder(OpBuilder &b, const AttentionConfig &c, const LayerParams &p,
               FloatType elementType, const KVCacheFormat &kv,
               HadamardAttr rotation, int64_t capacity, bool captureQK,
               Location loc)
      : b(b), c(c), p(p), elementType(elementType), kv(kv),
        rotation(rotation), capacity(capacity), captureQK(captureQK),
        loc(loc) {
    MLIRContext *ctx = b.getContext();
    FloatType f32 = b.getF32Type();
    // Products in the storage type, sums in f32 (tensor-core semantics);
    // RoPE and the norms compute in f32 whatever the storage.
    mainPrecision = PrecisionAttr::get(ctx, elementType, f32);
    f32Precision = PrecisionAttr::get(ctx, f32, f32);
    if (kv.quantized())
      blockFormat = KVBlockFormatAttr::get(
          ctx, kv.bits, kv.blockSize,
          kv.codebook ? QuantScheme::Codebook : QuantScheme::Absmax,
          b.getF16Type());
  }

  /// The type of one KV cache: [capacity, Hkv, D] floats, or for a
  /// quantized format [capacity, Hkv, bytes of a head's packed blocks].
  RankedTensorType cacheType() {
    int64_t d = c.headDim;
    if (!kv.quantized())
      return RankedTensorType::get({capacity, c.numKVHeads, d},
                                   cacheElementType());
    return RankedTensorType::get(
        {capacity, c.numKVHeads, d / kv.blockSize * packedBlockBytes(blockFormat)},
        b.getI8Type());
  }

  /// The entry point @name of layer `layer` (prefill, or a decode step):
  /// (hidden [T, E], positions [T], K cache, V cache[, offset]) ->
  /// (out [T, E], K cache, V cache), without a body.
  func::FuncOp declare(StringRef name, bool decode, int64_t layer) {
    int64_t e = c.hiddenSize;
    int64_t t = decode ? 1 : ShapedType::kDynamic;
    auto hiddenType = RankedTensorType::get({t, e}, elementType);
    RankedTensorType cacheType = this->cacheType();
    llvm::SmallVector<Type> inputs = {
        hiddenType, RankedTensorType::get({t}, b.getI32Type()), cacheType,
        cacheType};
    if (decode)
      inputs.push_back(b.getIndexType());
    auto type = b.getFunctionType(inputs, {hiddenType, cacheType, cacheType});
    auto func = func::FuncOp::create(b, loc, name, type);
    func->setAttr("attn.layer", b.getI64IntegerAttr(layer));
    for (unsigned arg : {2u, 3u})
      setCacheAttrs(func, arg);
    return func;
  }

  func::FuncOp build(StringRef name, bool decode, int64_t layer) {
    int64_t d = c.headDim;
    int64_t t = decode ? 1 : ShapedType::kDynamic;
    auto tensor = [&](llvm::ArrayRef<int64_t> shape) {
      return RankedTensorType::get(shape, elementType);
    };
    func::FuncOp func = declare(name, decode, layer);
    OpBuilder::InsertionGuard guard(b);
    Block *body = func.addEntryBlock();
    b.setInsertionPointToStart(body);
    Value hidden = body->getArgument(0), positions = body->getArgument(1);
    Value kCache = body->getArgument(2), vCache = body->getArgument(3);

    Value c0;
    OpFoldResult tokens = b.getIndexAttr(1);
    if (!decode) {
      c0 = arith::ConstantIndexOp::create(b, loc, 0);
      tokens = tensor::DimOp::create(b, loc, hidden, c0).getResult();
    }

    auto param = [&](const ParamSpec &spec) -> Value {
      RopeLayoutAttr rows;
      if (spec.halfSplitRows)
        rows = RopeLayoutAttr::get(b.getContext(), RopeLayout::HalfSplit);
      return ParamOp::create(b, loc, tensor(spec.shape), spec.name, rows);
    };
    auto optionalParam = [&](const std::optional<ParamSpec> &spec) -> Value {
      return spec ? param(*spec) : Value();
    };
    Value wq = param(p.wq), bq = optionalParam(p.bq);
    Value wk = param(p.wk), bk = optionalParam(p.bk);
    Value wv = param(p.wv), bv = optionalParam(p.bv);
    Value wo = param(p.wo), bo = optionalParam(p.bo);
    Value qNorm = optionalParam(p.qNorm), kNorm = optionalParam(p.kNorm);

    auto linear = [&](Value x, Value w, Value bias) -> Value {
      auto xType = cast<RankedTensorType>(x.getType());
      auto wType = cast<RankedTensorType>(w.getType());
      return LinearOp::create(b, loc, tensor({xType.getDimSize(0), wType.getDimSize(0)}),
                              x, w, bias, mainPrecision);
    };
    // [T, H*D] -> [T, H, D].
    auto heads = [&](Value x, int64_t h) -> Value {
      return tensor::ExpandShapeOp::create(
          b, loc, tensor({t, h, d}), x, llvm::ArrayRef<ReassociationIndices>{{0}, {1, 2}},
          llvm::ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(h), b.getIndexAttr(d)});
    };
    auto rope = [&](Value x) -> Value {
      return RopeOp::create(
          b, loc, x, positions,
          RopeLayoutAttr::get(b.getContext(), RopeLayout::HalfSplit),
          b.getI64IntegerAttr(c.rotaryDim), b.getF64FloatAttr(c.ropeTheta),
          scalingAttr(), f32Precision);
    };
    auto norm = [&](Value x, Value w) -> Value {
      if (!w)
        return x;
      return RmsNormOp::create(b, loc, x, normGain(w),
                               b.getF64FloatAttr(c.normEpsilon), f32Precision);
    };

    auto capture = [&](Value x, StringRef what) -> Value {
      if (!captureQK)
        return x;
      return CaptureOp::create(
          b, loc, x, positions,
          b.getStringAttr("layer" + std::to_string(layer) + "." + what.str()));
    };
    auto [query, gate] =
        c.outputGate ? splitQueryAndGate(linear(hidden, wq, bq), tokens, t)
                     : std::pair(heads(linear(hidden, wq, bq), c.numHeads), Value());
    Value q = capture(rope(norm(query, qNorm)), "q");
    Value k = capture(
        rope(norm(heads(linear(hidden, wk, bk), c.numKVHeads), kNorm)), "k");
    Value v = heads(linear(hidden, wv, bv), c.numKVHeads);

    Value offset = decode ? body->getArgument(4) : c0;
    // Rows [0, length) after this step's append.
    Value length = decode ? arith::AddIOp::create(
                                b, loc, offset,
                                arith::ConstantIndexOp::create(b, loc, 1))
                                .getResult()
                          : cast<Value>(tokens);
    auto [kCache1, keys] = throughCache(k, kCache, offset, length, decode);
    auto [vCache1, values] = throughCache(v, vCache, offset, length, decode);
    Value o = SdpaOp::create(b, loc, tensor({t, c.numHeads, d}), q, keys,
                             values, /*positions=*/Value(), /*key_bias=*/Value(),
                             RopeParamsAttr(), /*causal=*/true, FloatAttr(),
                             mainPrecision);
    if (gate)
      o = OutputGateOp::create(b, loc, o, gate, f32Precision);
    Value flat = tensor::CollapseShapeOp::create(
        b, loc, tensor({t, c.numHeads * d}), o,
        llvm::ArrayRef<ReassociationIndices>{{0}, {1, 2}});
    Value out = linear(flat, wo, bo);
    func::ReturnOp::create(b, loc, ValueRange{out, kCache1, vCache1});
    return func;
  }

private:
  /// The RMS norm's gain from its weight `w`: `w`, or Qwen3-Next's 1 + w
  /// (zero-centred weights).
  Value normGain(Value w) {
    if (!c.zeroCentredNorm)
      return w;
    // In f32, as transformers' 1.0 + weight.float(): a bf16 gain near 1
    // would round away the weight's low bits.
    auto type = cast<RankedTensorType>(w.getType()).clone(b.getF32Type());
    if (w.getType() != type)
      w = arith::ExtFOp::create(b, loc, type, w);
    Value one = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, b.getF32FloatAttr(1.0)));
    return arith::AddFOp::create(b, loc, w, one);
  }

  /// Qwen3-Next's q_proj output [T, H * 2D] as the query [T, H, D] and the
  /// gate [T, H, D]: viewed [T, H, 2D], the query the first D of each head
  /// and the gate the last D (transformers' torch.chunk).
  std::pair<Value, Value> splitQueryAndGate(Value x, OpFoldResult tokens,
                                            int64_t t) {
    int64_t h = c.numHeads, d = c.headDim;
    auto type = [&](int64_t last) {
      return RankedTensorType::get({t, h, last}, elementType);
    };
    Value both = tensor::ExpandShapeOp::create(
        b, loc, type(2 * d), x, llvm::ArrayRef<ReassociationIndices>{{0}, {1, 2}},
        llvm::ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(h),
                                     b.getIndexAttr(2 * d)});
    auto half = [&](int64_t offset) -> Value {
      OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
      return tensor::ExtractSliceOp::create(
          b, loc, type(d), both,
          llvm::ArrayRef<OpFoldResult>{zero, zero, b.getIndexAttr(offset)},
          llvm::ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(h),
                                       b.getIndexAttr(d)},
          llvm::ArrayRef<OpFoldResult>{one, one, one});
    };
    return {half(0), half(d)};
  }

  /// The cache argument's format: `attn.kv_format` (its name) and, for a
  /// quantized cache, `attn.kv_block` (its blocks) and `attn.kv_rotation`
  /// (the layer's rotation, when the cache is rotated).
  void setCacheAttrs(func::FuncOp func, unsigned arg) {
    func.setArgAttr(arg, "attn.kv_format", b.getStringAttr(kv.name));
    if (blockFormat)
      func.setArgAttr(arg, "attn.kv_block", blockFormat);
    if (rotation)
      func.setArgAttr(arg, "attn.kv_rotation", rotation);
  }

  FloatType cacheElementType() {
    if (kv.floatType == "bf16")
      return b.getBF16Type();
    if (kv.floatType == "f16")
      return b.getF16Type();
    if (kv.floatType == "f32")
      return b.getF32Type();
    return elementType;
  }

  /// `x` [T, Hkv, D] written into `cache` at `offset` in the cache's format,
  /// and what attention reads back: the new cache and the rows [0, length)
  /// as `elementType` (in prefill, when the cache holds floats, `x` itself
  /// rounded to the cache's type). A quantized cache is the graph a hand
  /// port writes: rotate, quantize, pack, append; read, unpack, dequantize,
  /// inverse-rotate.
  std::pair<Value, Value> throughCache(Value x, Value cache, Value offset,
                                       Value length, bool decode) {
    auto type = cast<RankedTensorType>(x.getType());
    if (!kv.quantized()) {
      FloatType stored = cacheElementType();
      auto convert = [&](Value v, FloatType to) -> Value {
        auto from = cast<RankedTensorType>(v.getType());
        if (from.getElementType() == to)
          return v;
        auto toType = from.clone(to);
        if (to.getWidth() < cast<FloatType>(from.getElementType()).getWidth())
          return arith::TruncFOp::create(b, loc, toType, v);
        return arith::ExtFOp::create(b, loc, toType, v);
      };
      Value rows = convert(x, stored);
      Value updated = KVCacheAppendOp::create(b, loc, rows, cache, offset);
      if (decode)
        rows = KVCacheReadOp::create(b, loc, updated, length);
      return {updated, convert(rows, elementType)};
    }
    Value rotated = x;
    if (rotation)
      rotated = HadamardOp::create(b, loc, x, rotation, /*inverse=*/false,
                                   f32Precision, IntegerAttr());
    auto quantize = QuantizeOp::create(b, loc, rotated, blockFormat, f32Precision);
    auto rowType = cast<RankedTensorType>(cacheType()).clone(
        {type.getDimSize(0), c.numKVHeads, cacheType().getDimSize(2)});
    Value bytes = PackBlocksOp::create(b, loc, rowType, quantize.getCodes(),
                                       quantize.getScales(), blockFormat);
    Value updated = KVCacheAppendOp::create(b, loc, bytes, cache, offset);
    Value rows = KVCacheReadOp::create(b, loc, updated, length);
    auto rowsType = cast<RankedTensorType>(rows.getType());
    int64_t n = rowsType.getDimSize(0);
    auto unpacked = UnpackBlocksOp::create(
        b, loc,
        RankedTensorType::get({n, c.numKVHeads, c.headDim}, b.getI8Type()),
        RankedTensorType::get({n, c.numKVHeads, c.headDim / kv.blockSize},
                              b.getF16Type()),
        rows, blockFormat);
    Value values = DequantizeOp::create(
        b, loc, RankedTensorType::get({n, c.numKVHeads, c.headDim}, elementType),
        unpacked.getCodes(), unpacked.getScales(), blockFormat, f32Precision);
    if (rotation)
      values = HadamardOp::create(b, loc, values, rotation, /*inverse=*/true,
                                  f32Precision, IntegerAttr());
    return {updated, values};
  }

  Attribute scalingAttr() {
    const RopeScalingConfig &s = c.scaling;
    MLIRContext *ctx = b.getContext();
    llvm::APFloat factor(s.factor);
    using K = RopeScalingConfig::Kind;
    switch (s.kind) {
    case K::None:
      return {};
    case K::Linear:
      return LinearRopeScalingAttr::get(ctx, factor);
    case K::Dynamic:
      return DynamicRopeScalingAttr::get(ctx, factor,
                                         s.originalMaxPositionEmbeddings);
    case K::Yarn:
      return YarnRopeScalingAttr::get(
          ctx, factor, s.originalMaxPositionEmbeddings,
          llvm::APFloat(s.betaFast), llvm::APFloat(s.betaSlow),
          llvm::APFloat(s.attentionFactor), s.truncate);
    case K::Llama3:
      return Llama3RopeScalingAttr::get(ctx, factor,
                                        llvm::APFloat(s.lowFreqFactor),
                                        llvm::APFloat(s.highFreqFactor),
                                        s.originalMaxPositionEmbeddings);
    }
    return {};
  }

  OpBuilder &b;
  const AttentionConfig &c;
  const LayerParams &p;
  FloatType elementType;
  const KVCacheFormat &kv;
  HadamardAttr rotation;
  KVBlockFormatAttr blockFormat;
  int64_t capacity;
  bool captureQK;
  Location loc;
  PrecisionAttr mainPrecision, f32Precision;
};

/// Layer `layer`'s rotation: signs drawn from `seed` and the layer, with
/// s1 != ±s2 so that R is not symmetric (a transposed R cannot pass for
/// it).
HadamardAttr layerRotation(MLIRContext *ctx, int64_t group, uint64_t seed,
                           int64_t layer) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(layer) + 1);
  SmallVector<int32_t> s1(group), s2(group);
  for (int32_t &s : s1)
    s = (rng() & 1) ? 1 : -1;
  for (int32_t &s : s2)
    s = (rng() & 1) ? 1 : -1;
  // s2 = ±s1 would make R symmetric; one flipped sign breaks both.
  bool same = s1 == s2, opposite = true;
  for (int64_t i = 0; i < group; ++i)
    opposite &= s1[i] == -s2[i];
  if (same || opposite)
    s2[group - 1] = -s2[group - 1];
  return HadamardAttr::get(ctx, group, s1, s2);
}

} // namespace

llvm::Expected<std::vector<int64_t>>
rotor::import::parseLayerList(llvm::StringRef text, int64_t numLayers) {
  std::set<int64_t> layers;
  llvm::SmallVector<llvm::StringRef> items;
  text.split(items, ',');
  for (llvm::StringRef item : items) {
    item = item.trim();
    auto [first, last] = item.split('-');
    int64_t lo = 0, hi = 0;
    bool bad = first.getAsInteger(10, lo);
    if (item.contains('-'))
      bad |= last.getAsInteger(10, hi);
    else
      hi = lo;
    if (bad || lo < 0 || hi < lo)
      return fail("--layers: '" + item + "' is not a layer or a range A-B");
    if (hi >= numLayers)
      return fail("--layers: layer " + llvm::Twine(hi) +
                  " does not exist; the model has " + llvm::Twine(numLayers) +
                  " layers (0-" + llvm::Twine(numLayers - 1) + ")");
    for (int64_t i = lo; i <= hi; ++i)
      layers.insert(i);
  }
  return std::vector<int64_t>(layers.begin(), layers.end());
}

/// The layers to import: --layers, or every full-attention layer; a
/// linear-attention (Gated DeltaNet) layer asked for is an error.
static llvm::Expected<std::vector<int64_t>>
importedLayers(const AttentionConfig &config, const ImportOptions &options) {
  std::vector<int64_t> layers = options.layers;
  std::vector<int64_t> linear;
  for (int64_t i = 0; i < config.numLayers; ++i)
    if (config.linearAttention.size() > size_t(i) && config.linearAttention[i])
      linear.push_back(i);
  for (int64_t layer : layers)
    if (llvm::is_contained(linear, layer))
      return fail("layer " + llvm::Twine(layer) + " of this " +
                  config.modelType +
                  " model is a linear-attention (Gated "
                  "DeltaNet) layer, which rotor does not compile; its "
                  "full-attention layers are the others");
  if (layers.empty()) {
    for (int64_t i = 0; i < config.numLayers; ++i)
      if (!llvm::is_contained(linear, i))
        layers.push_back(i);
    if (!linear.empty() && options.note)
      options.note("skipping " + std::to_string(linear.size()) + " of " +
                   std::to_string(config.numLayers) +
                   " layers: they are "
                   "linear-attention (Gated DeltaNet) layers, which rotor "
                   "does not compile; importing the full-attention layers");
    if (layers.empty())
      return fail("the model has no full-attention layer to import");
  }
  return layers;
}

llvm::Expected<OwningOpRef<ModuleOp>>
rotor::import::importAttentionLayers(MLIRContext *context,
                                     const AttentionConfig &config,
                                     CheckpointWeights &weights,
                                     const ImportOptions &options) {
  context->loadDialect<AttnDialect, arith::ArithDialect, func::FuncDialect,
                       tensor::TensorDialect>();
  OpBuilder b(context);
  FloatType elementType;
  if (options.dtype == "f32")
    elementType = b.getF32Type();
  else if (options.dtype == "bf16")
    elementType = b.getBF16Type();
  else
    return fail("--dtype must be f32 or bf16, not '" + options.dtype + "'");
  // A cache tensor must stay far from int64 overflow in bytes.
  if (options.kvCapacity < 1 || options.kvCapacity > (int64_t(1) << 24))
    return fail("--kv-capacity must lie in [1, 16777216], not " +
                llvm::Twine(options.kvCapacity));

  llvm::Expected<KVCacheFormat> kvFormat = kvCacheFormat(
      options.kvCache.empty() ? options.dtype : options.kvCache, config.headDim,
      options.kvRotationSeed.has_value());
  if (!kvFormat)
    return kvFormat.takeError();
  KVCacheFormat kv = std::move(*kvFormat);
  if (options.noKVRotation)
    kv.rotationGroup = 0;

  llvm::Expected<std::vector<int64_t>> selected =
      importedLayers(config, options);
  if (!selected)
    return selected.takeError();
  std::vector<int64_t> layers = std::move(*selected);

  Location fileLoc = FileLineColLoc::get(context, options.configPath, 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  (*module)->setAttr("attn.model", b.getStringAttr(config.modelType));
  if (!options.checkpointPath.empty())
    (*module)->setAttr("attn.checkpoint",
                       b.getStringAttr(options.checkpointPath));
  b.setInsertionPointToEnd(module->getBody());
  for (int64_t layer : layers) {
    if (layer < 0 || layer >= config.numLayers)
      return fail("layer " + llvm::Twine(layer) + " does not exist; the model "
                  "has " + llvm::Twine(config.numLayers) + " layers");
    LayerParams params = layerParams(config, layer);
    for (const ParamSpec *spec : params.all())
      if (llvm::Error err = checkTensor(weights, *spec))
        return std::move(err);
    // A sliding window W changes nothing while every key is within W
    // positions of its query, so a cache of at most W positions is exact.
    int64_t capacity = options.kvCapacity;
    if (std::optional<int64_t> window = config.slidingWindows[layer];
        window && *window < capacity) {
      capacity = *window;
      if (options.note)
        options.note("layer " + std::to_string(layer) + " attends through a "
                     "sliding window of " + std::to_string(*window) +
                     " positions; its KV cache holds " +
                     std::to_string(*window) +
                     " positions so that the window never cuts");
    }
    std::string prefix = "model.layers." + std::to_string(layer) + ".self_attn";
    Location loc = NameLoc::get(b.getStringAttr(prefix), fileLoc);
    HadamardAttr rotation;
    if (kv.rotationGroup)
      rotation = layerRotation(context, kv.rotationGroup,
                               options.kvRotationSeed.value_or(0), layer);
    LayerBuilder builder(b, config, params, elementType, kv, rotation,
                         capacity, options.captureQK, loc);
    std::string name = "layer" + std::to_string(layer);
    builder.build(name + "_prefill", /*decode=*/false, layer);
    builder.build(name + "_decode", /*decode=*/true, layer);
    // The layer's input is hidden_states after the decoder layer's RMS norm:
    // its gain bounds every projection's values (attn-select-precision).
    // LayerNorm families (bias, mean removed) and Qwen3-Next's 1 + w gain
    // are not recorded.
    std::string gain =
        "model.layers." + std::to_string(layer) + ".input_layernorm.weight";
    bool rmsNorm = llvm::is_contained(
        {"qwen2", "llama", "mistral", "qwen3"}, llvm::StringRef(config.modelType));
    if (llvm::Expected<const safetensors::TensorView *> t = weights.lookup(gain);
        !t) {
      llvm::consumeError(t.takeError());
    } else if (rmsNorm && (*t)->shape == std::vector<int64_t>{config.hiddenSize}) {
      for (StringRef suffix : {"_prefill", "_decode"})
        module->lookupSymbol<func::FuncOp>(name + suffix.str())
            .setArgAttr(0, "attn.input_norm_gain", b.getStringAttr(gain));
    }
  }
  if (failed(verify(*module)))
    return fail("the imported module does not verify (see the diagnostics "
                "above)");
  return module;
}
