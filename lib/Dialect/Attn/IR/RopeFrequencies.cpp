//===- RopeFrequencies.cpp - RoPE inverse frequencies ---------------------===//
//
// Hugging Face's modeling_rope_utils.py, in double precision.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/RopeFrequencies.h"

#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <cmath>
#include <numbers>

using namespace mlir;
using namespace rotor::attn;

namespace {

void applyLlama3(Llama3RopeScalingAttr s, SmallVectorImpl<double> &freqs) {
  double factor = s.getFactor().convertToDouble();
  double low = s.getLowFreqFactor().convertToDouble();
  double high = s.getHighFreqFactor().convertToDouble();
  double oldContext = double(s.getOriginalMaxPositionEmbeddings());
  double lowWavelen = oldContext / low, highWavelen = oldContext / high;
  for (double &f : freqs) {
    double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < highWavelen)
      continue;
    if (wavelen > lowWavelen) {
      f /= factor;
      continue;
    }
    double smooth = (oldContext / wavelen - low) / (high - low);
    f = (1 - smooth) * f / factor + smooth * f;
  }
}

void applyYarn(YarnRopeScalingAttr s, int64_t rotaryDim, double theta,
               SmallVectorImpl<double> &freqs) {
  double factor = s.getFactor().convertToDouble();
  double maxPos = double(s.getOriginalMaxPositionEmbeddings());
  double dim = double(rotaryDim);
  auto correctionDim = [&](double rotations) {
    return dim * std::log(maxPos / (rotations * 2 * std::numbers::pi)) /
           (2 * std::log(theta));
  };
  double low = correctionDim(s.getBetaFast().convertToDouble());
  double high = correctionDim(s.getBetaSlow().convertToDouble());
  if (s.getTruncate()) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1);
  if (low == high)
    high += 0.001; // As Hugging Face does, to avoid a division by zero.
  for (auto [i, f] : llvm::enumerate(freqs)) {
    double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    double extrapolation = 1 - ramp;
    f = (f / factor) * (1 - extrapolation) + f * extrapolation;
  }
}

} // namespace

std::optional<SmallVector<double>>
rotor::attn::getStaticInverseFrequencies(RopeOp op) {
  return getStaticInverseFrequencies(op.getRotaryDim(),
                                     op.getTheta().convertToDouble(),
                                     op.getScalingAttr());
}

std::optional<SmallVector<double>>
rotor::attn::getStaticInverseFrequencies(int64_t r, double theta,
                                         Attribute scaling) {
  SmallVector<double> freqs;
  for (int64_t i = 0; i < r / 2; ++i)
    freqs.push_back(std::pow(theta, -2.0 * double(i) / double(r)));
  if (!scaling)
    return freqs;
  bool isStatic = llvm::TypeSwitch<Attribute, bool>(scaling)
      .Case([&](LinearRopeScalingAttr s) {
        for (double &f : freqs)
          f /= s.getFactor().convertToDouble();
        return true;
      })
      .Case([&](Llama3RopeScalingAttr s) {
        applyLlama3(s, freqs);
        return true;
      })
      .Case([&](YarnRopeScalingAttr s) {
        applyYarn(s, r, theta, freqs);
        return true;
      })
      .Default([](Attribute) { return false; });
  if (!isStatic)
    return std::nullopt;
  return freqs;
}

double rotor::attn::getRopeAttentionFactor(RopeOp op) {
  return getRopeAttentionFactor(op.getScalingAttr());
}

double rotor::attn::getRopeAttentionFactor(Attribute scaling) {
  if (auto yarn = dyn_cast_if_present<YarnRopeScalingAttr>(scaling))
    return yarn.getAttentionFactor().convertToDouble();
  return 1.0;
}

RopeParamsAttr rotor::attn::getRopeParams(RopeOp op) {
  return RopeParamsAttr::get(op.getContext(), op.getLayout(),
                             op.getRotaryDim(), op.getTheta(),
                             op.getScalingAttr());
}
