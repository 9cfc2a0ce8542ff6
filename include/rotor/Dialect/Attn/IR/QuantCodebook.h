//===- QuantCodebook.h - Lloyd-Max codebooks of KV quantization -*- C++ -*-===//

#ifndef ROTOR_DIALECT_ATTN_IR_QUANTCODEBOOK_H
#define ROTOR_DIALECT_ATTN_IR_QUANTCODEBOOK_H

#include "llvm/ADT/SmallVector.h"

namespace rotor::attn {

/// The 2^bits centroids, ascending, of the Lloyd-Max quantizer of the
/// standard normal distribution (the `codebook` scheme of #attn.kv_block),
/// computed by Lloyd's iteration to double precision. 1 <= bits <= 4.
llvm::SmallVector<double> getLloydMaxCentroids(unsigned bits);

} // namespace rotor::attn

#endif // ROTOR_DIALECT_ATTN_IR_QUANTCODEBOOK_H
