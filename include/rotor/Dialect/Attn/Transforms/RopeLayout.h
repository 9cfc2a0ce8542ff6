//===- RopeLayout.h - Row permutations between RoPE layouts -----*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_TRANSFORMS_ROPELAYOUT_H
#define ROTOR_DIALECT_ATTN_TRANSFORMS_ROPELAYOUT_H

#include "rotor/Dialect/Attn/IR/AttnAttrs.h"

#include "llvm/ADT/SmallVector.h"

namespace rotor::attn {

/// The gather `new[j] = old[perm[j]]` within one head of `d` dims that takes
/// the first `r` dims from `from`'s pair order to the other layout.
llvm::SmallVector<int64_t> ropeHeadPermutation(RopeLayout from, int64_t d,
                                               int64_t r);

/// The same permutation applied to every one of `heads` consecutive heads:
/// the rows of a Q or K projection's weight.
llvm::SmallVector<int64_t> ropeRowPermutation(RopeLayout from, int64_t heads,
                                              int64_t d, int64_t r);

} // namespace rotor::attn

#endif // ROTOR_DIALECT_ATTN_TRANSFORMS_ROPELAYOUT_H
