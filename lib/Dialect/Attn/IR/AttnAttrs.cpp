//===- AttnAttrs.cpp - Attributes of the attn dialect ---------------------===//

#include "rotor/Dialect/Attn/IR/AttnAttrs.h"
#include "rotor/Dialect/Attn/IR/AttnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;
using namespace rotor::attn;

#include "rotor/Dialect/Attn/IR/AttnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "rotor/Dialect/Attn/IR/AttnAttrs.cpp.inc"

void AttnDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "rotor/Dialect/Attn/IR/AttnAttrs.cpp.inc"
      >();
}

FailureOr<APFloat> rotor::attn::detail::parseF64(AsmParser &parser) {
  double value;
  if (parser.parseFloat(value))
    return failure();
  return APFloat(value);
}

FailureOr<bool> rotor::attn::detail::parseBool(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(),
                          "expected 'true' or 'false'");
}

namespace {
using EmitErrorFn = llvm::function_ref<InFlightDiagnostic()>;

bool isSupportedFloat(Type type) {
  return type.isBF16() || type.isF16() || type.isF32() || type.isF64();
}

LogicalResult verifyFactor(EmitErrorFn emitError, StringRef kind,
                           const APFloat &factorValue) {
  double factor = factorValue.convertToDouble();
  if (!std::isfinite(factor) || factor < 1.0)
    return emitError() << kind << " scaling factor must be a finite number >= 1, got "
                       << factor;
  return success();
}

LogicalResult verifyOriginalMax(EmitErrorFn emitError, StringRef kind,
                                int64_t originalMax) {
  if (originalMax < 1)
    return emitError() << kind
                       << " scaling original_max_position_embeddings must be "
                          ">= 1, got "
                       << originalMax;
  return success();
}

LogicalResult verifyPositive(EmitErrorFn emitError, StringRef kind,
                             StringRef name, const APFloat &apValue) {
  double value = apValue.convertToDouble();
  if (!std::isfinite(value) || value <= 0.0)
    return emitError() << kind << " scaling " << name
                       << " must be a finite number > 0, got " << value;
  return success();
}

LogicalResult verifySigns(EmitErrorFn emitError, StringRef name,
                          ArrayRef<int32_t> signs, int64_t group) {
  if (static_cast<int64_t>(signs.size()) != group)
    return emitError() << "hadamard sign vector " << name << " has "
                       << signs.size() << " entries, expected the group size "
                       << group;
  for (auto [index, sign] : llvm::enumerate(signs))
    if (sign != 1 && sign != -1)
      return emitError() << "hadamard sign vector " << name << " must hold only 1 "
                         << "and -1, but entry " << index << " is "
                         << sign;
  return success();
}
} // namespace

LogicalResult PrecisionAttr::verify(EmitErrorFn emitError, FloatType compute,
                                    FloatType accumulate) {
  if (!isSupportedFloat(compute))
    return emitError() << "precision compute type must be bf16, f16, f32 or "
                          "f64, got "
                       << compute;
  if (!isSupportedFloat(accumulate))
    return emitError() << "precision accumulate type must be bf16, f16, f32 or "
                          "f64, got "
                       << accumulate;
  if (!APFloat::isRepresentableBy(compute.getFloatSemantics(),
                                  accumulate.getFloatSemantics()))
    return emitError() << "precision accumulate type " << accumulate
                       << " cannot hold every value of the compute type "
                       << compute;
  return success();
}

LogicalResult HadamardAttr::verify(EmitErrorFn emitError, int64_t group,
                                   ArrayRef<int32_t> s1, ArrayRef<int32_t> s2) {
  if (group < 1 || !llvm::isPowerOf2_64(group))
    return emitError() << "hadamard group size must be a power of two, got "
                       << group;
  if (failed(verifySigns(emitError, "s1", s1, group)) ||
      failed(verifySigns(emitError, "s2", s2, group)))
    return failure();
  return success();
}

LogicalResult KVBlockFormatAttr::verify(EmitErrorFn emitError, unsigned bits,
                                        int64_t blockSize, QuantScheme scheme,
                                        FloatType scaleType) {
  if (blockSize < 1)
    return emitError() << "kv_block block_size must be >= 1, got " << blockSize;
  unsigned minBits = scheme == QuantScheme::Absmax ? 2 : 1;
  unsigned maxBits = scheme == QuantScheme::Absmax ? 8 : 4;
  if (bits < minBits || bits > maxBits)
    return emitError() << "kv_block " << stringifyQuantScheme(scheme)
                       << " quantization takes " << minBits << " to " << maxBits
                       << " bits, got " << bits;
  if (!scaleType.isBF16() && !scaleType.isF16() && !scaleType.isF32())
    return emitError() << "kv_block scale_type must be bf16, f16 or f32, got "
                       << scaleType;
  return success();
}

LogicalResult RopeParamsAttr::verify(EmitErrorFn emitError, RopeLayout layout,
                                     int64_t rotaryDim, APFloat theta,
                                     Attribute scaling) {
  if (rotaryDim < 0 || rotaryDim % 2 != 0)
    return emitError() << "rope rotary_dim must be even and >= 0, got "
                       << rotaryDim;
  double t = theta.convertToDouble();
  if (!std::isfinite(t) || !(t > 0))
    return emitError() << "rope theta must be finite and positive";
  if (scaling && !isa<LinearRopeScalingAttr, YarnRopeScalingAttr,
                      Llama3RopeScalingAttr>(scaling))
    return emitError() << "rope scaling must be linear, yarn or llama3 (a "
                          "dynamic scaling depends on the positions), got "
                       << scaling;
  return success();
}

LogicalResult LinearRopeScalingAttr::verify(EmitErrorFn emitError,
                                            APFloat factor) {
  return verifyFactor(emitError, "linear", factor);
}

LogicalResult DynamicRopeScalingAttr::verify(EmitErrorFn emitError,
                                             APFloat factor,
                                             int64_t originalMax) {
  if (failed(verifyFactor(emitError, "dynamic", factor)) ||
      failed(verifyOriginalMax(emitError, "dynamic", originalMax)))
    return failure();
  return success();
}

LogicalResult YarnRopeScalingAttr::verify(EmitErrorFn emitError,
                                          APFloat factor, int64_t originalMax,
                                          APFloat betaFast, APFloat betaSlow,
                                          APFloat attentionFactor,
                                          bool truncate) {
  if (failed(verifyFactor(emitError, "yarn", factor)) ||
      failed(verifyOriginalMax(emitError, "yarn", originalMax)) ||
      failed(verifyPositive(emitError, "yarn", "beta_fast", betaFast)) ||
      failed(verifyPositive(emitError, "yarn", "beta_slow", betaSlow)) ||
      failed(verifyPositive(emitError, "yarn", "attention_factor",
                            attentionFactor)))
    return failure();
  return success();
}

LogicalResult Llama3RopeScalingAttr::verify(EmitErrorFn emitError,
                                            APFloat factor,
                                            APFloat lowFreqFactor,
                                            APFloat highFreqFactor,
                                            int64_t originalMax) {
  if (failed(verifyFactor(emitError, "llama3", factor)) ||
      failed(verifyPositive(emitError, "llama3", "low_freq_factor",
                            lowFreqFactor)) ||
      failed(verifyPositive(emitError, "llama3", "high_freq_factor",
                            highFreqFactor)) ||
      failed(verifyOriginalMax(emitError, "llama3", originalMax)))
    return failure();
  // The smoothing factor divides by their difference.
  double low = lowFreqFactor.convertToDouble();
  double high = highFreqFactor.convertToDouble();
  if (high <= low)
    return emitError() << "llama3 scaling high_freq_factor (" << high
                       << ") must be greater than low_freq_factor (" << low
                       << ")";
  return success();
}

LogicalResult KernelConfigAttr::verify(EmitErrorFn emitError,
                                       KernelStrategy strategy, int64_t rows,
                                       int64_t keys, int64_t cols,
                                       int64_t threads, int64_t workgroups) {
  StringRef name = stringifyKernelStrategy(strategy);
  struct Param {
    StringRef name;
    int64_t value;
  };
  Param params[] = {{"rows", rows},
                    {"keys", keys},
                    {"cols", cols},
                    {"threads", threads},
                    {"workgroups", workgroups}};
  for (const Param &p : params)
    if (p.value < 0)
      return emitError() << "kernel " << p.name << " must not be negative, got "
                         << p.value;
  // What each strategy uses; the rest must be 0 so that an attribute reads
  // as what it does.
  llvm::SmallVector<StringRef> used;
  switch (strategy) {
  case KernelStrategy::Loops:
    used = {"keys"};
    break;
  case KernelStrategy::SplitKV:
    used = {"keys"};
    break;
  case KernelStrategy::WorkgroupTiled:
    used = {"rows", "keys", "threads", "workgroups"};
    break;
  case KernelStrategy::Gemm:
    used = {"rows", "cols", "threads"};
    break;
  case KernelStrategy::Gemv:
    used = {"cols", "threads"};
    break;
  case KernelStrategy::HeadChain:
    used = {"rows", "threads"};
    break;
  }
  for (const Param &p : params) {
    bool isUsed = llvm::is_contained(used, p.name);
    if (!isUsed && p.value != 0)
      return emitError() << "kernel strategy " << name << " has no " << p.name
                         << " (got " << p.value << ")";
    if (isUsed && p.value == 0 &&
        !(strategy == KernelStrategy::Loops && p.name == "keys"))
      return emitError() << "kernel strategy " << name << " needs " << p.name
                         << " >= 1";
  }
  if (threads && (threads % 32 || threads > 1024))
    return emitError() << "kernel threads must be a multiple of 32 up to "
                          "1024, got "
                       << threads;
  return success();
}
