//===- WeightPermutations.cpp - attn.permute of weights, done at compile time =//
//
// attn-convert-rope-layout expresses a layout change as attn.permute ops on
// the parameters, so that the archive stays as Hugging Face wrote it. Left
// in the entry points, they would gather W_q and W_k on every step; the
// bundle instead stores the permuted tensors, under derived names.
//
//===----------------------------------------------------------------------===//

#include "rotor/Target/Bundle/Bundle.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"

#include <cstring>

using namespace mlir;
using namespace rotor;
using namespace rotor::attn;

void rotor::foldWeightPermutations(ModuleOp module,
                                   llvm::StringMap<PermutedWeight> &derived) {
  // Innermost first: a permute of a permute of a param becomes a param once
  // the inner one has.
  while (true) {
    SmallVector<PermuteOp> ready;
    module.walk([&](PermuteOp permute) {
      if (permute.getInput().getDefiningOp<ParamOp>())
        ready.push_back(permute);
    });
    if (ready.empty())
      return;
    for (PermuteOp permute : ready) {
      auto param = permute.getInput().getDefiningOp<ParamOp>();
      auto it = derived.find(param.getName());
      PermutedWeight weight;
      if (it != derived.end())
        weight = it->second;
      else
        weight.source = param.getName().str();
      ArrayRef<int64_t> permutation = permute.getPermutation();
      weight.steps.push_back(
          {int64_t(permute.getDim()),
           std::vector<int64_t>(permutation.begin(), permutation.end())});
      // The same permutation of the same weight (in prefill and in decode)
      // gets one name.
      std::string name;
      for (auto &entry : derived)
        if (entry.second.source == weight.source &&
            entry.second.steps == weight.steps)
          name = entry.getKey().str();
      for (unsigned k = 0; name.empty(); ++k) {
        std::string candidate =
            weight.source + ".permuted" + (k ? "." + std::to_string(k) : "");
        if (!derived.count(candidate))
          name = candidate;
      }
      derived[name] = weight;
      OpBuilder b(permute);
      Value replacement = ParamOp::create(b, permute.getLoc(), permute.getType(),
                                          name, RopeLayoutAttr());
      permute.replaceAllUsesWith(replacement);
      permute.erase();
      if (param->use_empty())
        param.erase();
    }
  }
}

std::vector<uint8_t> rotor::applyWeightPermutation(
    llvm::StringRef bytes, llvm::ArrayRef<int64_t> shape, size_t elementSize,
    const PermutedWeight &weight) {
  std::vector<uint8_t> data(bytes.begin(), bytes.end());
  std::vector<uint8_t> out(data.size());
  for (const PermutedWeight::Step &step : weight.steps) {
    // [outer, n, inner] with n the permuted dim.
    size_t outer = 1, inner = elementSize;
    for (int64_t i = 0; i < step.dim; ++i)
      outer *= size_t(shape[i]);
    for (size_t i = step.dim + 1; i < shape.size(); ++i)
      inner *= size_t(shape[i]);
    size_t n = size_t(shape[step.dim]);
    for (size_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < n; ++i)
        std::memcpy(&out[(o * n + i) * inner],
                    &data[(o * n + size_t(step.permutation[i])) * inner], inner);
    std::swap(data, out);
  }
  return data;
}
