//===- AttnFoldsTest.cpp - Folds checked against dense linear algebra -----===//
//
// The folds of attn.hadamard and attn.permute claim an algebraic identity.
// These tests check each claim against an independent computation: dense
// matrices from the Sylvester definition for the rotations, and explicit
// gathers for the permutations, over many random cases.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include "gtest/gtest.h"

#include "llvm/ADT/bit.h"
#include <cmath>
#include <random>

using namespace mlir;
using namespace rotor::attn;

namespace {

using Matrix = std::vector<std::vector<double>>;

/// diag(s2) · H_G / sqrt(G) · diag(s1), from H_G[i][j] = (-1)^popcount(i & j).
Matrix denseRotation(ArrayRef<int32_t> s1, ArrayRef<int32_t> s2,
                     bool inverse) {
  size_t g = s1.size();
  Matrix m(g, std::vector<double>(g));
  for (size_t i = 0; i < g; ++i)
    for (size_t j = 0; j < g; ++j) {
      double h = (llvm::popcount(i & j) % 2 ? -1.0 : 1.0) / std::sqrt(double(g));
      m[i][j] = s2[i] * h * s1[j];
    }
  if (inverse) // R^-1 = R^T.
    for (size_t i = 0; i < g; ++i)
      for (size_t j = 0; j < i; ++j)
        std::swap(m[i][j], m[j][i]);
  return m;
}

bool productIsIdentity(const Matrix &outer, const Matrix &inner) {
  size_t g = outer.size();
  for (size_t i = 0; i < g; ++i)
    for (size_t j = 0; j < g; ++j) {
      double sum = 0;
      for (size_t k = 0; k < g; ++k)
        sum += outer[i][k] * inner[k][j];
      if (std::abs(sum - (i == j ? 1.0 : 0.0)) > 1e-12)
        return false;
    }
  return true;
}

class AttnFoldsTest : public ::testing::Test {
protected:
  AttnFoldsTest() : builder(&context) {
    context.loadDialect<AttnDialect, func::FuncDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  /// A fresh block argument of `type` to feed the ops under test.
  Value makeArgument(Type type) {
    auto func = func::FuncOp::create(builder, builder.getUnknownLoc(), "f",
                                     builder.getFunctionType({type}, {}));
    Block *entry = func.addEntryBlock();
    builder.setInsertionPointToEnd(entry);
    return entry->getArgument(0);
  }

  PrecisionAttr f32Precision() {
    return PrecisionAttr::get(&context, builder.getF32Type(),
                              builder.getF32Type());
  }

  std::vector<int32_t> randomSigns(size_t g) {
    std::vector<int32_t> signs(g);
    for (int32_t &s : signs)
      s = rng() % 2 ? 1 : -1;
    return signs;
  }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
  std::mt19937 rng{std::random_device{}()};
};

TEST_F(AttnFoldsTest, HadamardFoldsExactlyWhenTheProductIsTheIdentity) {
  unsigned seed = std::random_device{}();
  rng.seed(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  int folded = 0, kept = 0;
  for (int64_t g : {1, 2, 4, 8, 16}) {
    Value x = makeArgument(RankedTensorType::get({3, 2 * g}, builder.getF32Type()));
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<int32_t> a1 = randomSigns(g), a2 = randomSigns(g);
      bool innerInverse = rng() % 2, outerInverse = rng() % 2;
      // A third of the trials take random signs; the rest build an inverse
      // (with both sign vectors negated in half of them, which is still an
      // inverse) or an inverse with one sign flipped.
      std::vector<int32_t> b1, b2;
      int kind = rng() % 3;
      if (kind == 0) {
        b1 = randomSigns(g);
        b2 = randomSigns(g);
      } else {
        // The inverse of R(a1, a2) applied forwards is R(a2, a1).
        auto [fwd1, fwd2] = innerInverse ? std::pair(a2, a1) : std::pair(a1, a2);
        b1 = outerInverse ? fwd1 : fwd2;
        b2 = outerInverse ? fwd2 : fwd1;
        if (rng() % 2) {
          for (int32_t &s : b1)
            s = -s;
          for (int32_t &s : b2)
            s = -s;
        }
        if (kind == 2)
          b1[rng() % g] *= -1;
      }
      auto inner = HadamardOp::create(
          builder, builder.getUnknownLoc(), x,
          HadamardAttr::get(&context, g, a1, a2), innerInverse, f32Precision(),
          IntegerAttr());
      auto outer = HadamardOp::create(
          builder, builder.getUnknownLoc(), inner.getResult(),
          HadamardAttr::get(&context, g, b1, b2), outerInverse, f32Precision(),
          IntegerAttr());

      SmallVector<OpFoldResult> results;
      bool didFold = succeeded(outer->fold(results));
      bool identity = productIsIdentity(denseRotation(b1, b2, outerInverse),
                                        denseRotation(a1, a2, innerInverse));
      ASSERT_EQ(didFold, identity)
          << "G = " << g << ", trial " << trial;
      if (didFold) {
        ASSERT_EQ(results.size(), 1u);
        EXPECT_EQ(dyn_cast<Value>(results[0]), x);
        ++folded;
      } else {
        ++kept;
      }
      outer->erase();
      inner->erase();
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(folded, 100);
  EXPECT_GT(kept, 100);
}

TEST_F(AttnFoldsTest, PermuteCompositionMatchesTwoGathers) {
  unsigned seed = std::random_device{}();
  rng.seed(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int64_t n = 12;
  Value x = makeArgument(RankedTensorType::get({3, n}, builder.getF32Type()));
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int64_t> p(n), q(n);
    std::iota(p.begin(), p.end(), 0);
    std::iota(q.begin(), q.end(), 0);
    std::shuffle(p.begin(), p.end(), rng);
    if (trial % 4 == 0) { // q = p^-1: the composition is the identity.
      for (int64_t i = 0; i < n; ++i)
        q[p[i]] = i;
    } else {
      std::shuffle(q.begin(), q.end(), rng);
    }
    auto first = PermuteOp::create(builder, builder.getUnknownLoc(), x, 1, p);
    auto second = PermuteOp::create(builder, builder.getUnknownLoc(),
                                    first.getResult(), 1, q);

    // What the two ops do to the row [0, 1, ..., n-1]: two gathers.
    std::vector<int64_t> y(n), z(n);
    for (int64_t i = 0; i < n; ++i)
      y[i] = p[i];
    for (int64_t i = 0; i < n; ++i)
      z[i] = y[q[i]];
    bool identity = true;
    for (int64_t i = 0; i < n; ++i)
      identity &= z[i] == i;

    SmallVector<OpFoldResult> results;
    ASSERT_TRUE(succeeded(second->fold(results)));
    if (identity) {
      ASSERT_EQ(results.size(), 1u);
      EXPECT_EQ(dyn_cast<Value>(results[0]), x);
    } else {
      // Folded in place (no replacement value) into one permutation of the
      // original input.
      EXPECT_TRUE(results.empty());
      EXPECT_EQ(second.getInput(), x);
      EXPECT_EQ(second.getPermutation(), ArrayRef<int64_t>(z));
    }
    second->erase();
    first->erase();
  }
}

TEST_F(AttnFoldsTest, AttributeVerifiersRejectBadParameters) {
  auto emit = [&] { return emitError(builder.getUnknownLoc()); };
  // Diagnostics from the checked getters go to the context's handler; keep
  // them out of the test log.
  ScopedDiagnosticHandler silence(&context, [](Diagnostic &) { return success(); });
  std::vector<int32_t> six(6, 1), alternating{1, -1, 1, -1}, ones(4, 1),
      notSigns{1, 0, 1, 1};
  EXPECT_FALSE(HadamardAttr::getChecked(emit, &context, int64_t(6),
                                        ArrayRef<int32_t>(six),
                                        ArrayRef<int32_t>(six)));
  EXPECT_FALSE(HadamardAttr::getChecked(emit, &context, int64_t(4),
                                        ArrayRef<int32_t>(notSigns),
                                        ArrayRef<int32_t>(ones)));
  EXPECT_TRUE(HadamardAttr::getChecked(emit, &context, int64_t(4),
                                       ArrayRef<int32_t>(alternating),
                                       ArrayRef<int32_t>(ones)));
  EXPECT_FALSE(PrecisionAttr::getChecked(emit, &context, builder.getF32Type(),
                                         builder.getF16Type()));
  EXPECT_TRUE(PrecisionAttr::getChecked(emit, &context, builder.getBF16Type(),
                                        builder.getF32Type()));
}

} // namespace
