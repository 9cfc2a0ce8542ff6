//===- ReferenceCompareTest.cpp - Agreement with the fp64 reference -------===//

#include "rotor-rt/Reference.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

namespace ref = rotor::reference;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ReferenceCompare, Agrees) {
  ref::Agreement a = ref::compare({1, 2, 3, 4.4}, {1, 2, 3, 4});
  EXPECT_TRUE(a.finite());
  EXPECT_NEAR(a.maxRelError, 0.1, 1e-12);
  EXPECT_GT(a.pcc, 0.99);
}

// std::max(error, NaN) is the error: an all-NaN output used to agree with
// error 0.
TEST(ReferenceCompare, NaNOutputFails) {
  ref::Agreement a = ref::compare({kNaN, kNaN, kNaN}, {1, 2, 3});
  EXPECT_FALSE(a.finite());
  EXPECT_EQ(a.nonFiniteActual, 3u);
  EXPECT_EQ(a.nonFiniteExpected, 0u);
  EXPECT_FALSE(a.maxRelError <= 1e9);
  EXPECT_TRUE(std::isnan(a.pcc));
}

TEST(ReferenceCompare, OneInfiniteOutputFails) {
  ref::Agreement a = ref::compare({1, kInf, 3}, {1, 2, 3});
  EXPECT_FALSE(a.finite());
  EXPECT_EQ(a.nonFiniteActual, 1u);
  EXPECT_FALSE(a.maxRelError <= 1e9);
}

TEST(ReferenceCompare, NonFiniteReferenceFails) {
  ref::Agreement a = ref::compare({1, 2, 3}, {1, kNaN, 3});
  EXPECT_FALSE(a.finite());
  EXPECT_EQ(a.nonFiniteExpected, 1u);
}

// Finite values whose statistics overflow.
TEST(ReferenceCompare, OverflowingPccFails) {
  ref::Agreement a = ref::compare({1e308, -1e308}, {-1e308, 1e308});
  EXPECT_FALSE(a.finite());
}

} // namespace
