//===- AttnOps.cpp - Operations of the attn dialect: verifiers ------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallBitVector.h"

#include <cmath>

using namespace mlir;
using namespace rotor::attn;

/// `attn.rope half_split ...`: the layout as a bare keyword.
static ParseResult parseRopeLayout(OpAsmParser &parser, RopeLayoutAttr &attr) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<RopeLayout> layout = symbolizeRopeLayout(keyword);
  if (!layout)
    return parser.emitError(loc, "expected RoPE layout 'half_split' or "
                                 "'interleaved', got '")
           << keyword << "'";
  attr = RopeLayoutAttr::get(parser.getContext(), *layout);
  return success();
}

static void printRopeLayout(OpAsmPrinter &printer, Operation *,
                            RopeLayoutAttr attr) {
  printer << stringifyRopeLayout(attr.getValue());
}

#define GET_OP_CLASSES
#include "rotor/Dialect/Attn/IR/AttnOps.cpp.inc"

namespace {
/// True when two dims may be equal at run time.
bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Formats a shape as `[?, 14, 64]`.
std::string formatShape(ArrayRef<int64_t> shape) {
  std::string result;
  llvm::raw_string_ostream os(result);
  os << "[";
  llvm::interleave(
      shape,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << "?";
        else
          os << d;
      },
      [&] { os << ", "; });
  os << "]";
  return result;
}
std::string shapeOf(Value v) {
  return formatShape(cast<RankedTensorType>(v.getType()).getShape());
}
int64_t rankOf(Value v) { return cast<RankedTensorType>(v.getType()).getRank(); }
int64_t dimOf(Value v, int64_t i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}

/// Checks that `value` has rank `rank`; `what` names it and its expected
/// shape, e.g. "query [Tq, Hq, D]".
LogicalResult verifyRank(Operation *op, Value value, int64_t rank,
                         StringRef what) {
  if (rankOf(value) != rank)
    return op->emitOpError() << what << " must have rank " << rank
                             << ", got shape " << shapeOf(value);
  return success();
}

/// Checks that `positions` has one entry per token (dim 0 of `tokens`).
LogicalResult verifyPositions(Operation *op, Value positions, Value tokens,
                              StringRef tokensName) {
  if (!dimsCompatible(dimOf(positions, 0), dimOf(tokens, 0)))
    return op->emitOpError()
           << "positions has " << dimOf(positions, 0) << " entries but "
           << tokensName << " has " << dimOf(tokens, 0) << " tokens";
  return success();
}

LogicalResult verifyFiniteScalar(Operation *op, StringRef name, double value,
                                 bool strictlyPositive) {
  if (!std::isfinite(value) || (strictlyPositive && value <= 0.0))
    return op->emitOpError() << name << " must be a finite number > 0, got "
                             << value;
  return success();
}
} // namespace

//===----------------------------------------------------------------------===//
// ParamOp
//===----------------------------------------------------------------------===//

void ParamOp::getAsmResultNames(OpAsmSetValueNameFn setNameFn) {
  // "model.layers.0.self_attn.q_proj.weight" reads as %q_proj_weight.
  SmallVector<StringRef> parts;
  StringRef(getName()).split(parts, '.', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  std::string name;
  for (StringRef part : ArrayRef(parts).take_back(2)) {
    if (!name.empty())
      name += '_';
    name += part;
  }
  if (!name.empty())
    setNameFn(getResult(), name);
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  return success();
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyRank(op, getInput(), 2, "input [T, E]")) ||
      failed(verifyRank(op, getWeight(), 2, "weight [N, E]")) ||
      failed(verifyRank(op, getResult(), 2, "result [T, N]")))
    return failure();
  int64_t inE = dimOf(getInput(), 1), wE = dimOf(getWeight(), 1);
  int64_t n = dimOf(getWeight(), 0);
  if (!dimsCompatible(inE, wE))
    return emitOpError() << "input " << shapeOf(getInput())
                         << " has E = " << inE << " but weight "
                         << shapeOf(getWeight()) << " has E = " << wE;
  if (Value bias = getBias()) {
    if (failed(verifyRank(op, bias, 1, "bias [N]")))
      return failure();
    if (!dimsCompatible(dimOf(bias, 0), n))
      return emitOpError() << "bias " << shapeOf(bias)
                           << " does not match the weight " << shapeOf(getWeight());
  }
  // The result's dims are the operands' exactly, static or dynamic: the
  // lowering builds the result from the operands' shapes.
  if (dimOf(getResult(), 0) != dimOf(getInput(), 0) ||
      dimOf(getResult(), 1) != n)
    return emitOpError() << "result " << shapeOf(getResult())
                         << " must be [T, N] = "
                         << formatShape({dimOf(getInput(), 0), n});
  return success();
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::verify() {
  if (rankOf(getInput()) < 1)
    return emitOpError("input must have rank >= 1");
  int64_t d = dimOf(getInput(), rankOf(getInput()) - 1);
  if (!dimsCompatible(d, dimOf(getWeight(), 0)))
    return emitOpError() << "weight " << shapeOf(getWeight())
                         << " does not match the last dim of the input "
                         << shapeOf(getInput());
  return verifyFiniteScalar(*this, "epsilon", getEpsilon().convertToDouble(),
                            /*strictlyPositive=*/true);
}

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyRank(op, getInput(), 3, "input [T, H, D]")) ||
      failed(verifyPositions(op, getPositions(), getInput(), "input")))
    return failure();
  int64_t d = dimOf(getInput(), 2);
  if (ShapedType::isDynamic(d))
    return emitOpError("head dim D of the input must be static");
  int64_t r = getRotaryDim();
  if (r < 0 || r % 2 != 0)
    return emitOpError() << "rotary_dim must be even and >= 0, got " << r;
  if (r > d)
    return emitOpError() << "rotary_dim " << r
                         << " exceeds the head dim D = " << d;
  if (failed(verifyFiniteScalar(op, "theta", getTheta().convertToDouble(),
                                /*strictlyPositive=*/true)))
    return failure();
  // Dynamic NTK raises the base to R / (R - 2).
  if (getScalingAttr() && isa<DynamicRopeScalingAttr>(getScalingAttr()) &&
      r <= 2)
    return emitOpError() << "dynamic scaling needs rotary_dim > 2, got " << r;
  // A finite theta can still give frequencies that overflow (theta
  // 4.9e-324 gives theta^(-2i/R) = inf), which would rotate by NaN.
  if (std::optional<SmallVector<double>> freqs =
          getStaticInverseFrequencies(*this))
    for (auto [i, f] : llvm::enumerate(*freqs))
      if (!std::isfinite(f))
        return emitOpError() << "theta " << getTheta().convertToDouble()
                             << " gives a non-finite inverse frequency for "
                                "rotary pair "
                             << i;
  return success();
}

//===----------------------------------------------------------------------===//
// HadamardOp
//===----------------------------------------------------------------------===//

int64_t HadamardOp::getRotatedDim() {
  if (std::optional<int64_t> dim = getDim())
    return *dim;
  return rankOf(getInput()) - 1;
}

LogicalResult HadamardOp::verify() {
  int64_t rank = rankOf(getInput());
  if (rank < 1)
    return emitOpError("input must have rank >= 1");
  if (std::optional<int64_t> dim = getDim(); dim && (*dim < 0 || *dim >= rank))
    return emitOpError() << "rotated dim " << *dim << " is out of range for "
                         << "a rank-" << rank << " input";
  int64_t dim = getRotatedDim();
  int64_t size = dimOf(getInput(), dim);
  int64_t group = getRotation().getGroup();
  if (ShapedType::isDynamic(size))
    return emitOpError() << "the rotated dim " << dim
                         << " of the input must be static";
  if (size % group != 0)
    return emitOpError() << "hadamard group size " << group
                         << " does not divide the rotated dim " << dim
                         << " of size " << size;
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizeOp / DequantizeOp
//===----------------------------------------------------------------------===//

namespace {
/// The shape of the scales for `shape` cut into blocks of `blockSize` along
/// the last dim, or failure with a message when the blocks do not fit.
FailureOr<SmallVector<int64_t>>
scaleShape(ArrayRef<int64_t> shape, int64_t blockSize,
           llvm::function_ref<InFlightDiagnostic()> emitError) {
  if (shape.empty()) {
    emitError() << "quantized tensor must have rank >= 1";
    return failure();
  }
  int64_t last = shape.back();
  if (ShapedType::isDynamic(last)) {
    emitError() << "the last dim of a quantized tensor must be static";
    return failure();
  }
  if (last % blockSize != 0) {
    emitError() << "kv_block block_size " << blockSize
                << " does not divide the last dim " << last;
    return failure();
  }
  SmallVector<int64_t> result(shape);
  result.back() = last / blockSize;
  return result;
}
} // namespace

LogicalResult QuantizeOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location,
    ValueRange operands, DictionaryAttr attributes,
    OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  auto emitError = [&]() -> InFlightDiagnostic {
    return mlir::emitError(location.value_or(UnknownLoc::get(context)),
                           "'attn.quantize' op ");
  };
  auto inputType = dyn_cast<RankedTensorType>(adaptor.getInput().getType());
  KVBlockFormatAttr format = adaptor.getFormatAttr();
  if (!inputType)
    return emitError() << "input must be a ranked tensor, got "
                       << adaptor.getInput().getType();
  if (!format)
    return emitError() << "needs a #attn.kv_block format";
  FailureOr<SmallVector<int64_t>> scales =
      scaleShape(inputType.getShape(), format.getBlockSize(), emitError);
  if (failed(scales))
    return failure();
  inferredReturnTypes.push_back(
      RankedTensorType::get(inputType.getShape(), IntegerType::get(context, 8)));
  inferredReturnTypes.push_back(
      RankedTensorType::get(*scales, format.getScaleType()));
  return success();
}

LogicalResult DequantizeOp::verify() {
  auto codesType = cast<RankedTensorType>(getCodes().getType());
  auto scalesType = cast<RankedTensorType>(getScales().getType());
  KVBlockFormatAttr format = getFormat();
  FailureOr<SmallVector<int64_t>> expected = scaleShape(
      codesType.getShape(), format.getBlockSize(),
      [&] { return emitOpError(); });
  if (failed(expected))
    return failure();
  if (scalesType.getRank() != codesType.getRank() ||
      !llvm::all_of(llvm::zip_equal(scalesType.getShape(), *expected),
                    [](auto dims) {
                      return dimsCompatible(std::get<0>(dims),
                                            std::get<1>(dims));
                    }))
    return emitOpError() << "scales " << shapeOf(getScales())
                         << " must be " << formatShape(*expected)
                         << " for codes " << shapeOf(getCodes())
                         << " in blocks of " << format.getBlockSize();
  if (scalesType.getElementType() != format.getScaleType())
    return emitOpError() << "scales element type "
                         << scalesType.getElementType()
                         << " differs from the format's scale_type "
                         << format.getScaleType();
  auto resultType = cast<RankedTensorType>(getResult().getType());
  if (resultType.getShape() != codesType.getShape())
    return emitOpError() << "result " << shapeOf(getResult())
                         << " must have the shape of the codes "
                         << shapeOf(getCodes());
  return success();
}

//===----------------------------------------------------------------------===//
// PackBlocksOp / UnpackBlocksOp
//===----------------------------------------------------------------------===//

namespace {
/// Checks that `codes`, `scales` and `bytes` are one set of blocks of
/// `format`: the same leading dims, and last dims L, L / B and
/// (L / B) · blockBytes.
LogicalResult verifyPackedBlocks(Operation *op, Value codes, Value scales,
                                 Value bytes, KVBlockFormatAttr format) {
  auto emit = [&]() { return op->emitOpError(); };
  int64_t block = format.getBlockSize();
  if ((block * format.getBits()) % 8 != 0)
    return emit() << "cannot pack " << block << " codes of "
                  << format.getBits() << " bits into whole bytes";
  auto codesType = cast<RankedTensorType>(codes.getType());
  FailureOr<SmallVector<int64_t>> scaleDims =
      scaleShape(codesType.getShape(), block, emit);
  if (failed(scaleDims))
    return failure();
  auto scalesType = cast<RankedTensorType>(scales.getType());
  if (scalesType.getElementType() != format.getScaleType())
    return emit() << "scales element type " << scalesType.getElementType()
                  << " differs from the format's scale_type "
                  << format.getScaleType();
  SmallVector<int64_t> byteDims(*scaleDims);
  byteDims.back() *= packedBlockBytes(format);
  for (Value v : {scales, bytes})
    if (cast<RankedTensorType>(v.getType()).isDynamicDim(
            cast<RankedTensorType>(v.getType()).getRank() - 1))
      return emit() << "the last dims of the scales and bytes must be static, "
                       "got " << shapeOf(v);
  auto compatible = [](ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
    return a.size() == b.size() &&
           llvm::all_of(llvm::zip_equal(a, b), [](auto d) {
             return dimsCompatible(std::get<0>(d), std::get<1>(d));
           });
  };
  if (!compatible(scalesType.getShape(), *scaleDims))
    return emit() << "scales " << shapeOf(scales) << " must be "
                  << formatShape(*scaleDims) << " for codes " << shapeOf(codes);
  if (!compatible(cast<RankedTensorType>(bytes.getType()).getShape(), byteDims))
    return emit() << "bytes " << shapeOf(bytes) << " must be "
                  << formatShape(byteDims) << " for codes " << shapeOf(codes)
                  << " (" << packedBlockBytes(format) << " bytes per block of "
                  << block << ")";
  return success();
}
} // namespace

KVCacheWriteTrace rotor::attn::traceKVCacheWrite(Value v) {
  KVCacheWriteTrace trace;
  while (Operation *def = v.getDefiningOp()) {
    if (auto dequantize = dyn_cast<DequantizeOp>(def))
      v = dequantize.getCodes();
    else if (auto unpack = dyn_cast<UnpackBlocksOp>(def))
      v = unpack.getBytes();
    else if (auto read = dyn_cast<KVCacheReadOp>(def))
      v = read.getCache();
    else if (auto append = dyn_cast<KVCacheAppendOp>(def))
      v = append.getUpdate(), trace.throughWrite = true;
    else if (auto pack = dyn_cast<PackBlocksOp>(def))
      v = pack.getCodes(), trace.throughWrite = true;
    else if (auto quantize = dyn_cast<QuantizeOp>(def))
      v = quantize.getInput(), trace.throughWrite = true;
    else if (auto capture = dyn_cast<CaptureOp>(def))
      v = capture.getInput();
    else if (isa<arith::ExtFOp, arith::TruncFOp>(def))
      v = def->getOperand(0);
    else
      break;
  }
  trace.source = v;
  return trace;
}

int64_t rotor::attn::packedBlockBytes(KVBlockFormatAttr format) {
  return format.getScaleType().getWidth() / 8 +
         format.getBlockSize() * format.getBits() / 8;
}

LogicalResult PackBlocksOp::verify() {
  return verifyPackedBlocks(*this, getCodes(), getScales(), getResult(),
                            getFormat());
}

LogicalResult UnpackBlocksOp::verify() {
  return verifyPackedBlocks(*this, getCodes(), getScales(), getBytes(),
                            getFormat());
}

//===----------------------------------------------------------------------===//
// KVCacheAppendOp / KVCacheReadOp
//===----------------------------------------------------------------------===//

namespace {
/// The value of `v` when an integer constant defines it.
std::optional<int64_t> constantIndex(Value v) {
  APInt value;
  if (!matchPattern(v, m_ConstantInt(&value)))
    return std::nullopt;
  return value.getSExtValue();
}

/// Checks the static dims of a cache operand. The lowering slices every dim
/// at offset 0, which tensor.insert_slice/extract_slice reject in a dim of
/// size 0, so a cache needs at least one row, one head and one element per
/// head. `allowNoRows` admits a 0-row update, which writes nothing.
LogicalResult verifyCacheDims(Operation *op, Value value, StringRef name,
                              bool allowNoRows) {
  auto type = cast<RankedTensorType>(value.getType());
  for (int64_t i = 0; i < type.getRank(); ++i) {
    if (type.getDimSize(i) != 0 || (i == 0 && allowNoRows))
      continue;
    if (i == 0)
      return op->emitOpError()
             << name << " " << shapeOf(value)
             << " has no rows: a KV cache needs a capacity of at least 1 row";
    return op->emitOpError() << name << " " << shapeOf(value)
                             << " has size 0 in dim " << i
                             << ": the dims of a KV cache after the rows "
                                "(heads, head dim) must be at least 1";
  }
  return success();
}
} // namespace

LogicalResult KVCacheAppendOp::verify() {
  Operation *op = getOperation();
  auto cacheType = cast<RankedTensorType>(getCache().getType());
  auto updateType = cast<RankedTensorType>(getUpdate().getType());
  if (cacheType.getRank() < 1)
    return emitOpError("cache must have rank >= 1");
  if (updateType.getRank() != cacheType.getRank())
    return emitOpError() << "update " << shapeOf(getUpdate())
                         << " and cache " << shapeOf(getCache())
                         << " must have the same rank";
  if (updateType.getElementType() != cacheType.getElementType())
    return emitOpError() << "update element type "
                         << updateType.getElementType()
                         << " differs from the cache's "
                         << cacheType.getElementType();
  if (failed(verifyCacheDims(op, getCache(), "cache", /*allowNoRows=*/false)) ||
      failed(verifyCacheDims(op, getUpdate(), "update", /*allowNoRows=*/true)))
    return failure();
  for (int64_t i = 1; i < cacheType.getRank(); ++i)
    if (!dimsCompatible(updateType.getDimSize(i), cacheType.getDimSize(i)))
      return emitOpError() << "update " << shapeOf(getUpdate())
                           << " and cache " << shapeOf(getCache())
                           << " differ in dim " << i;
  int64_t n = updateType.getDimSize(0), m = cacheType.getDimSize(0);
  if (!ShapedType::isDynamic(n) && !ShapedType::isDynamic(m) && n > m)
    return emitOpError() << "update of " << n
                         << " rows does not fit a cache of " << m << " rows";
  // A constant offset is checked here: the runtime's bound check only sees
  // offsets that arrive as arguments.
  std::optional<int64_t> offset = constantIndex(getOffset());
  if (!offset)
    return success();
  if (*offset < 0)
    return emitOpError() << "offset " << *offset << " must be >= 0";
  if (ShapedType::isDynamic(m))
    return success();
  if (ShapedType::isDynamic(n) && *offset > m)
    return emitOpError() << "offset " << *offset
                         << " is past the end of the cache's " << m << " rows";
  if (!ShapedType::isDynamic(n) && *offset > m - n)
    return emitOpError() << "offset " << *offset << " plus the update's " << n
                         << " rows exceeds the cache's " << m << " rows";
  return success();
}

LogicalResult KVCacheReadOp::verify() {
  if (rankOf(getCache()) < 1)
    return emitOpError("cache must have rank >= 1");
  if (failed(verifyCacheDims(getOperation(), getCache(), "cache",
                             /*allowNoRows=*/false)))
    return failure();
  std::optional<int64_t> length = constantIndex(getLength());
  if (!length)
    return success();
  int64_t m = dimOf(getCache(), 0);
  if (*length < 0)
    return emitOpError() << "length " << *length << " must be >= 0";
  if (!ShapedType::isDynamic(m) && *length > m)
    return emitOpError() << "length " << *length << " exceeds the cache's "
                         << m << " rows";
  return success();
}

LogicalResult KVCacheReadOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location,
    ValueRange operands, DictionaryAttr attributes,
    OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  auto cacheType = dyn_cast<RankedTensorType>(adaptor.getCache().getType());
  if (!cacheType || cacheType.getRank() < 1)
    return mlir::emitError(location.value_or(UnknownLoc::get(context)),
                           "'attn.kv_cache_read' op cache must be a ranked "
                           "tensor of rank >= 1, got ")
           << adaptor.getCache().getType();
  SmallVector<int64_t> shape(cacheType.getShape());
  shape[0] = ShapedType::kDynamic;
  inferredReturnTypes.push_back(
      RankedTensorType::get(shape, cacheType.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// SdpaOp
//===----------------------------------------------------------------------===//

double SdpaOp::getEffectiveScale() {
  if (std::optional<APFloat> scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(dimOf(getQuery(), 2)));
}

LogicalResult SdpaOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyRank(op, getQuery(), 3, "query [Tq, Hq, D]")) ||
      failed(verifyRank(op, getKey(), 3, "key [Tk, Hkv, D]")) ||
      failed(verifyRank(op, getValue(), 3, "value [Tk, Hkv, Dv]")) ||
      failed(verifyRank(op, getResult(), 3, "result [Tq, Hq, Dv]")))
    return failure();
  int64_t hq = dimOf(getQuery(), 1), d = dimOf(getQuery(), 2);
  int64_t hkv = dimOf(getKey(), 1), dk = dimOf(getKey(), 2);
  int64_t dv = dimOf(getValue(), 2);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) ||
      ShapedType::isDynamic(d) || ShapedType::isDynamic(dk) ||
      ShapedType::isDynamic(dv) || ShapedType::isDynamic(dimOf(getValue(), 1)))
    return emitOpError("head counts and head dims must be static");
  if (hkv < 1 || hq % hkv != 0)
    return emitOpError() << "query heads Hq = " << hq
                         << " must be a multiple of the key heads Hkv = "
                         << hkv;
  if (d != dk)
    return emitOpError() << "query head dim " << d
                         << " differs from the key head dim " << dk;
  // Zero-width heads have no scores, and zero keys no softmax (0/0).
  if (d < 1 || dv < 1)
    return emitOpError() << "head dims must be at least 1, got D = " << d
                         << " and Dv = " << dv;
  if (dimOf(getKey(), 0) == 0)
    return emitOpError("attends over no keys: the key/value have 0 rows");
  if (dimOf(getValue(), 1) != hkv ||
      !dimsCompatible(dimOf(getValue(), 0), dimOf(getKey(), 0)))
    return emitOpError() << "key " << shapeOf(getKey()) << " and value "
                         << shapeOf(getValue())
                         << " must agree in Tk and Hkv";
  if (dimOf(getResult(), 0) != dimOf(getQuery(), 0) ||
      dimOf(getResult(), 1) != hq || dimOf(getResult(), 2) != dv)
    return emitOpError() << "result " << shapeOf(getResult())
                         << " must be [Tq, Hq, Dv] = "
                         << formatShape({dimOf(getQuery(), 0), hq, dv});
  if (Value positions = getPositions()) {
    if (!getCausal())
      return emitOpError("positions are only meaningful with causal masking");
    if (failed(verifyPositions(op, positions, getQuery(), "query")))
      return failure();
  }
  if (std::optional<APFloat> scale = getScale())
    if (failed(verifyFiniteScalar(op, "scale", scale->convertToDouble(),
                                  /*strictlyPositive=*/true)))
      return failure();
  FloatType acc = getPrecision().getAccumulate();
  if (!acc.isF32() && !acc.isF64())
    return emitOpError() << "softmax must accumulate in f32 or f64, got "
                         << acc;
  if (getRoundProbabilities() &&
      getPrecision().getCompute().getWidth() >= acc.getWidth())
    return emitOpError() << "round_probabilities needs a compute type "
                            "narrower than the accumulate type, got compute "
                         << getPrecision().getCompute() << " and accumulate "
                         << acc << " (nothing would be rounded)";
  if (bool(getKeyBias()) != bool(getKeyBiasRopeAttr()))
    return emitOpError("a key_bias needs its rope, and a rope its key_bias");
  if (Value bias = getKeyBias()) {
    if (rankOf(bias) != 2 || dimOf(bias, 0) != hkv || dimOf(bias, 1) != d)
      return emitOpError() << "key_bias " << shapeOf(bias) << " must be [Hkv, D] = "
                           << formatShape({hkv, d});
    if (getKeyBiasRopeAttr().getRotaryDim() > d)
      return emitOpError() << "key_bias rope rotary_dim "
                           << getKeyBiasRopeAttr().getRotaryDim()
                           << " exceeds the head dim " << d;
    // Unrotated, q · b is the same for every key of a row, and softmax
    // cancels it: such a term is a mistake upstream, not a computation.
    if (getKeyBiasRopeAttr().getRotaryDim() == 0)
      return emitOpError("key_bias rope rotary_dim must be > 0: with no "
                         "rotated dims q · b is the same for every key, "
                         "which softmax cancels");
  }
  return success();
}

namespace {

/// sdpa(q, extf(k), extf(v)) -> sdpa(q, k, v): SDPA rounds K and V to its
/// compute type as it reads them, which gives the same values from the
/// narrow ones (widening is exact), so a narrow cache is read as stored
/// instead of being widened in full first. K and V move together, so that
/// they keep one element type (the workgroup kernel stages them alike).
struct ReadNarrowKeysAndValues : OpRewritePattern<SdpaOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SdpaOp op,
                                PatternRewriter &rewriter) const override {
    auto keyExt = op.getKey().getDefiningOp<arith::ExtFOp>();
    auto valueExt = op.getValue().getDefiningOp<arith::ExtFOp>();
    if (!keyExt || !valueExt ||
        getElementTypeOrSelf(keyExt.getIn()) !=
            getElementTypeOrSelf(valueExt.getIn()))
      return rewriter.notifyMatchFailure(op, "K and V are not both widened "
                                             "from one float type");
    rewriter.modifyOpInPlace(op, [&] {
      op.getKeyMutable().assign(keyExt.getIn());
      op.getValueMutable().assign(valueExt.getIn());
    });
    return success();
  }
};

} // namespace

void SdpaOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                         MLIRContext *context) {
  results.add<ReadNarrowKeysAndValues>(context);
}

//===----------------------------------------------------------------------===//
// OutputGateOp
//===----------------------------------------------------------------------===//

LogicalResult OutputGateOp::verify() {
  if (failed(verifyCompatibleShape(getInput().getType(), getGate().getType())))
    return emitOpError() << "gate " << shapeOf(getGate())
                         << " must have the shape of the input "
                         << shapeOf(getInput());
  return success();
}

//===----------------------------------------------------------------------===//
// CaptureOp
//===----------------------------------------------------------------------===//

LogicalResult CaptureOp::verify() {
  if (getTag().empty())
    return emitOpError("capture tag must not be empty");
  if (rankOf(getInput()) < 1)
    return emitOpError("input must have rank >= 1");
  return verifyPositions(*this, getPositions(), getInput(), "input");
}

//===----------------------------------------------------------------------===//
// PermuteOp
//===----------------------------------------------------------------------===//

LogicalResult PermuteOp::verify() {
  int64_t rank = rankOf(getInput());
  int64_t dim = getDim();
  if (dim < 0 || dim >= rank)
    return emitOpError() << "dim " << dim << " is out of range for rank "
                         << rank;
  int64_t size = dimOf(getInput(), dim);
  if (ShapedType::isDynamic(size))
    return emitOpError() << "permuted dim " << dim << " must be static";
  ArrayRef<int64_t> perm = getPermutation();
  if (static_cast<int64_t>(perm.size()) != size)
    return emitOpError() << "permutation has " << perm.size()
                         << " entries but dim " << dim << " has size " << size;
  llvm::SmallBitVector seen(size);
  for (auto [index, source] : llvm::enumerate(perm)) {
    if (source < 0 || source >= size)
      return emitOpError() << "permutation entry " << index << " is "
                           << source << ", outside [0, " << size << ")";
    if (seen.test(source))
      return emitOpError() << "permutation is not a permutation: " << source
                           << " appears twice";
    seen.set(source);
  }
  return success();
}
