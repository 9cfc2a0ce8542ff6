//===- DerivedWeights.cpp - Weight permutations and rotations, done once --===//
//
// attn-convert-rope-layout expresses a layout change as attn.permute ops on
// the parameters, and attn-fold-kv-rotation folds rotations into W_v and
// W_o as attn.hadamard ops on them, so that the archive stays as Hugging
// Face wrote it. Left in the entry points, they would transform the weights
// on every step; the bundle instead stores the transformed tensors, under
// derived names.
//
//===----------------------------------------------------------------------===//

#include "rotor/Target/Bundle/Bundle.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Support/Safetensors.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/APFloat.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;

bool DerivedWeight::computes() const {
  return llvm::any_of(steps, [](const Step &s) {
    return s.kind == Step::Kind::Hadamard;
  });
}

namespace {

/// The step `op` (an attn.permute or attn.hadamard) applies to its input.
DerivedWeight::Step stepOf(Operation *op) {
  DerivedWeight::Step step;
  if (auto permute = dyn_cast<PermuteOp>(op)) {
    step.dim = int64_t(permute.getDim());
    step.permutation.assign(permute.getPermutation().begin(),
                            permute.getPermutation().end());
    return step;
  }
  auto hadamard = cast<HadamardOp>(op);
  HadamardAttr r = hadamard.getRotation();
  step.kind = DerivedWeight::Step::Kind::Hadamard;
  step.dim = hadamard.getRotatedDim();
  step.group = r.getGroup();
  step.s1.assign(r.getS1().begin(), r.getS1().end());
  step.s2.assign(r.getS2().begin(), r.getS2().end());
  step.inverse = hadamard.getInverse();
  return step;
}

} // namespace

void rotor::foldDerivedWeights(ModuleOp module,
                               llvm::StringMap<DerivedWeight> &derived) {
  // Innermost first: a transform of a transform of a param becomes a param
  // once the inner one has.
  while (true) {
    SmallVector<Operation *> ready;
    module.walk([&](Operation *op) {
      if (isa<PermuteOp, HadamardOp>(op) &&
          op->getOperand(0).getDefiningOp<ParamOp>())
        ready.push_back(op);
    });
    if (ready.empty())
      return;
    for (Operation *op : ready) {
      auto param = op->getOperand(0).getDefiningOp<ParamOp>();
      auto it = derived.find(param.getName());
      DerivedWeight weight;
      if (it != derived.end())
        weight = it->second;
      else
        weight.source = param.getName().str();
      weight.steps.push_back(stepOf(op));
      // The same transform of the same weight (in prefill and in decode)
      // gets one name.
      std::string name;
      for (auto &entry : derived)
        if (entry.second.source == weight.source &&
            entry.second.steps == weight.steps)
          name = entry.getKey().str();
      StringRef suffix = isa<PermuteOp>(op) ? ".permuted" : ".rotated";
      for (unsigned k = 0; name.empty(); ++k) {
        std::string candidate =
            weight.source + suffix.str() + (k ? "." + std::to_string(k) : "");
        if (!derived.count(candidate))
          name = candidate;
      }
      derived[name] = weight;
      OpBuilder b(op);
      Value replacement = ParamOp::create(b, op->getLoc(),
                                          op->getResult(0).getType(), name,
                                          RopeLayoutAttr());
      op->getResult(0).replaceAllUsesWith(replacement);
      op->erase();
      if (param->use_empty())
        param.erase();
    }
  }
}

namespace {

/// [outer, n, inner] strides of `shape` around `dim`.
struct Split {
  size_t outer = 1, n = 1, inner = 1;
};
Split splitAt(ArrayRef<int64_t> shape, int64_t dim) {
  Split s;
  for (int64_t i = 0; i < dim; ++i)
    s.outer *= size_t(shape[i]);
  s.n = size_t(shape[dim]);
  for (size_t i = dim + 1; i < shape.size(); ++i)
    s.inner *= size_t(shape[i]);
  return s;
}

std::vector<double> toDoubles(StringRef bytes, StringRef dtype) {
  const llvm::fltSemantics &sem =
      dtype == "F64"   ? llvm::APFloat::IEEEdouble()
      : dtype == "F32" ? llvm::APFloat::IEEEsingle()
      : dtype == "F16" ? llvm::APFloat::IEEEhalf()
                       : llvm::APFloat::BFloat();
  size_t size = safetensors::dtypeSize(dtype);
  std::vector<double> out(bytes.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t raw = 0;
    std::memcpy(&raw, bytes.data() + i * size, size);
    llvm::APFloat v(sem, llvm::APInt(size * 8, raw));
    bool lost;
    v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
              &lost);
    out[i] = v.convertToDouble();
  }
  return out;
}

/// attn.hadamard's semantics on each group of `dim`, in f64: the input
/// signs, the fast Walsh-Hadamard butterflies, the output signs and
/// 1/sqrt(G).
void rotateGroups(std::vector<double> &x, ArrayRef<int64_t> shape,
                  const DerivedWeight::Step &step) {
  Split s = splitAt(shape, step.dim);
  const std::vector<int32_t> &in = step.inverse ? step.s2 : step.s1;
  const std::vector<int32_t> &out = step.inverse ? step.s1 : step.s2;
  size_t g = size_t(step.group);
  double norm = 1.0 / std::sqrt(double(g));
  std::vector<double> v(g);
  for (size_t o = 0; o < s.outer; ++o)
    for (size_t i = 0; i < s.inner; ++i)
      for (size_t start = 0; start < s.n; start += g) {
        auto at = [&](size_t j) -> double & {
          return x[(o * s.n + start + j) * s.inner + i];
        };
        for (size_t j = 0; j < g; ++j)
          v[j] = at(j) * in[j];
        for (size_t h = 1; h < g; h *= 2)
          for (size_t j = 0; j < g; ++j)
            if (!(j & h)) {
              double a = v[j], b = v[j | h];
              v[j] = a + b;
              v[j | h] = a - b;
            }
        for (size_t j = 0; j < g; ++j)
          at(j) = v[j] * out[j] * norm;
      }
}

/// `data` (elements of `size` bytes) permuted along `step.dim`.
std::vector<uint8_t> permute(const std::vector<uint8_t> &data,
                             ArrayRef<int64_t> shape, size_t size,
                             const DerivedWeight::Step &step) {
  Split s = splitAt(shape, step.dim);
  size_t inner = s.inner * size;
  std::vector<uint8_t> out(data.size());
  for (size_t o = 0; o < s.outer; ++o)
    for (size_t i = 0; i < s.n; ++i)
      std::memcpy(&out[(o * s.n + i) * inner],
                  &data[(o * s.n + size_t(step.permutation[i])) * inner],
                  inner);
  return out;
}

} // namespace

std::vector<uint8_t> rotor::applyDerivedWeight(StringRef bytes,
                                               ArrayRef<int64_t> shape,
                                               StringRef dtype,
                                               const DerivedWeight &weight) {
  if (!weight.computes()) {
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    for (const DerivedWeight::Step &step : weight.steps)
      data = permute(data, shape, safetensors::dtypeSize(dtype), step);
    return data;
  }
  std::vector<double> values = toDoubles(bytes, dtype);
  for (const DerivedWeight::Step &step : weight.steps) {
    if (step.kind == DerivedWeight::Step::Kind::Hadamard) {
      rotateGroups(values, shape, step);
      continue;
    }
    std::vector<uint8_t> raw(values.size() * sizeof(double));
    std::memcpy(raw.data(), values.data(), raw.size());
    raw = permute(raw, shape, sizeof(double), step);
    std::memcpy(values.data(), raw.data(), raw.size());
  }
  std::vector<uint8_t> out(values.size() * sizeof(double));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}
