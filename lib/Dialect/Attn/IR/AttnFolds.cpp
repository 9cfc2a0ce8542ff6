//===- AttnFolds.cpp - Folds of the attn dialect --------------------------===//
//
// Every fold here is exact: it removes an op whose result equals an existing
// value in exact arithmetic, changing numerics by at most the rounding the
// removed op would have done.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace rotor::attn;

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

OpFoldResult RopeOp::fold(FoldAdaptor) {
  // With no rotary dims every dim passes through.
  if (getRotaryDim() == 0)
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// HadamardOp
//===----------------------------------------------------------------------===//

OpFoldResult HadamardOp::fold(FoldAdaptor) {
  auto producer = getInput().getDefiningOp<HadamardOp>();
  if (!producer)
    return {};
  HadamardAttr outer = getRotation(), inner = producer.getRotation();
  if (outer.getGroup() != inner.getGroup() ||
      getRotatedDim() != producer.getRotatedDim())
    return {};
  // Applied forwards, R(a, b) = diag(b) H diag(a) / sqrt(G), so
  // R(c, d) R(a, b) = diag(d) (H diag(c ⊙ b) H / G) diag(a). The middle
  // factor is the Walsh transform of c ⊙ b; it is diagonal exactly when
  // c ⊙ b is constant, ±1, and then equals ±I. The product is therefore
  // the identity exactly when (c, d) = (b, a) or (c, d) = (-b, -a).
  auto [a, b] = inner.getEffectiveSigns(producer.getInverse());
  auto [c, d] = outer.getEffectiveSigns(getInverse());
  auto equalUpToSign = [](ArrayRef<int32_t> x, ArrayRef<int32_t> y,
                          int32_t sign) {
    for (auto [xi, yi] : llvm::zip_equal(x, y))
      if (xi != sign * yi)
        return false;
    return true;
  };
  for (int32_t sign : {1, -1})
    if (equalUpToSign(c, b, sign) && equalUpToSign(d, a, sign))
      return producer.getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// KVCacheAppendOp
//===----------------------------------------------------------------------===//

OpFoldResult KVCacheAppendOp::fold(FoldAdaptor) {
  // Writing no rows leaves the cache as it is.
  if (cast<RankedTensorType>(getUpdate().getType()).getDimSize(0) == 0)
    return getCache();
  return {};
}

//===----------------------------------------------------------------------===//
// PermuteOp
//===----------------------------------------------------------------------===//

OpFoldResult PermuteOp::fold(FoldAdaptor) {
  auto isIdentity = [](ArrayRef<int64_t> perm) {
    for (auto [index, source] : llvm::enumerate(perm))
      if (static_cast<int64_t>(index) != source)
        return false;
    return true;
  };
  if (isIdentity(getPermutation()))
    return getInput();

  auto producer = getInput().getDefiningOp<PermuteOp>();
  if (!producer || producer.getDim() != getDim())
    return {};
  // y[i] = x[p[i]] and z[i] = y[q[i]] give z[i] = x[p[q[i]]].
  ArrayRef<int64_t> p = producer.getPermutation(), q = getPermutation();
  SmallVector<int64_t> composed;
  composed.reserve(q.size());
  for (int64_t source : q)
    composed.push_back(p[source]);
  if (isIdentity(composed))
    return producer.getInput();
  getInputMutable().assign(producer.getInput());
  setPermutation(composed);
  return getResult();
}
