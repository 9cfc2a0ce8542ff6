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
  if (outer.getGroup() != inner.getGroup())
    return {};
  // Applied forwards, R(a, b) = diag(b) H diag(a) / sqrt(G). Because
  // H H = G I, R(c, d) R(a, b) = diag(d) H diag(c) diag(b) H diag(a) / G is
  // the identity exactly when c = b and d = a.
  auto [a, b] = inner.getEffectiveSigns(producer.getInverse());
  auto [c, d] = outer.getEffectiveSigns(getInverse());
  if (c == b && d == a)
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
