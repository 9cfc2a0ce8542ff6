//===- LowerBlockPacking.cpp - attn.pack_blocks and attn.unpack_blocks ----===//
// Each output element is computed on its own (a parallel linalg.generic that
// reads its inputs through tensor.extract): a packed byte gathers the bits
// of the at most ceil(8 / bits) + 1 codes that overlap it, an unpacked code
// reads the two bytes it may straddle.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include <numeric>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

Value index(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value i32(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v);
}

/// The indices of the current element of a rank-`rank` generic.
SmallVector<Value> currentIndices(OpBuilder &b, Location loc, int64_t rank) {
  SmallVector<Value> indices;
  for (int64_t i = 0; i < rank; ++i)
    indices.push_back(linalg::IndexOp::create(b, loc, i));
  return indices;
}

/// A generic over every element of a fresh tensor shaped like `like` with
/// element type `type`, computed by `body` from the element's indices.
Value generate(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
               Type type,
               function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  Value init = emptyTensor(b, shape, type);
  int64_t rank = int64_t(shape.size());
  AffineMap identity = b.getMultiDimIdentityMap(rank);
  return linalg::GenericOp::create(
             b, init.getType(), ValueRange{}, init,
             ArrayRef<AffineMap>{identity}, iterators(rank),
             [&](OpBuilder &nb, Location loc, ValueRange) {
               yieldValue(nb, loc,
                          body(nb, loc, currentIndices(nb, loc, rank)));
             })
      .getResult(0);
}

/// What a block of `format` is made of, in bytes and bits.
struct BlockLayout {
  explicit BlockLayout(KVBlockFormatAttr format)
      : bits(format.getBits()), block(format.getBlockSize()),
        scaleBytes(format.getScaleType().getWidth() / 8),
        blockBytes(packedBlockBytes(format)) {}
  int64_t bits, block, scaleBytes, blockBytes;
};

struct LowerPackBlocks : OpRewritePattern<PackBlocksOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(PackBlocksOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KVBlockFormatAttr format = op.getFormat();
    auto [bits, block, scaleBytes, blockBytes] = BlockLayout(format);
    // Codes overlapping one byte: at most this many.
    int64_t overlap = (8 + bits - 1) / bits + 1;
    Value codes = op.getCodes(), scales = op.getScales();
    SmallVector<OpFoldResult> shape = sizesOf(b, codes);
    shape.back() = b.getIndexAttr(
        cast<RankedTensorType>(op.getType()).getShape().back());
    Type scaleInt = b.getIntegerType(scaleBytes * 8);

    Value packed = generate(
        b, shape, b.getI8Type(),
        [&](OpBuilder &nb, Location loc, ValueRange indices) -> Value {
          Value j = indices.back();
          Value blk = arith::DivUIOp::create(nb, loc, j, index(nb, loc, blockBytes));
          Value offset = arith::RemUIOp::create(nb, loc, j, index(nb, loc, blockBytes));
          // A scale byte.
          SmallVector<Value> at(indices);
          at.back() = blk;
          Value scale = tensor::ExtractOp::create(nb, loc, scales, at);
          Value scaleBits = arith::BitcastOp::create(nb, loc, scaleInt, scale);
          if (scaleBytes < 4)
            scaleBits = arith::ExtUIOp::create(nb, loc, nb.getI32Type(), scaleBits);
          Value scaleShift = arith::MulIOp::create(
              nb, loc,
              arith::IndexCastOp::create(nb, loc, nb.getI32Type(), offset),
              i32(nb, loc, 8));
          Value scaleByte = arith::ShRUIOp::create(
              nb, loc, scaleBits,
              arith::MinUIOp::create(nb, loc, scaleShift, i32(nb, loc, 24)));
          // A code byte: bits [8k, 8k + 8) of the block's code stream.
          Value k = arith::SubIOp::create(
              nb, loc,
              arith::MaxUIOp::create(nb, loc, offset, index(nb, loc, scaleBytes)),
              index(nb, loc, scaleBytes));
          Value firstBit = arith::MulIOp::create(nb, loc, k, index(nb, loc, 8));
          Value first = arith::DivUIOp::create(nb, loc, firstBit, index(nb, loc, bits));
          Value codeByte = i32(nb, loc, 0);
          for (int64_t c = 0; c < overlap; ++c) {
            Value i = arith::AddIOp::create(nb, loc, first, index(nb, loc, c));
            Value inBlock = arith::CmpIOp::create(
                nb, loc, arith::CmpIPredicate::ult, i, index(nb, loc, block));
            Value safe = arith::MinUIOp::create(nb, loc, i, index(nb, loc, block - 1));
            at.back() = arith::AddIOp::create(
                nb, loc, arith::MulIOp::create(nb, loc, blk, index(nb, loc, block)),
                safe);
            Value code = arith::AndIOp::create(
                nb, loc,
                arith::ExtSIOp::create(nb, loc, nb.getI32Type(),
                                       tensor::ExtractOp::create(nb, loc, codes, at)),
                i32(nb, loc, (1 << bits) - 1));
            // Where the code starts relative to this byte's first bit.
            Value start = arith::IndexCastOp::create(
                nb, loc, nb.getI32Type(),
                arith::MulIOp::create(nb, loc, i, index(nb, loc, bits)));
            Value shift = arith::SubIOp::create(
                nb, loc, start,
                arith::IndexCastOp::create(nb, loc, nb.getI32Type(), firstBit));
            Value zero = i32(nb, loc, 0);
            Value left = arith::ShLIOp::create(
                nb, loc, code, arith::MaxSIOp::create(nb, loc, shift, zero));
            Value right = arith::ShRUIOp::create(
                nb, loc, code,
                arith::MaxSIOp::create(
                    nb, loc, arith::SubIOp::create(nb, loc, zero, shift), zero));
            Value placed = arith::SelectOp::create(
                nb, loc,
                arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::sge, shift, zero),
                left, right);
            Value overlaps = arith::AndIOp::create(
                nb, loc, inBlock,
                arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::slt, shift,
                                      i32(nb, loc, 8)));
            codeByte = arith::OrIOp::create(
                nb, loc, codeByte,
                arith::SelectOp::create(nb, loc, overlaps, placed, zero));
          }
          Value isScale = arith::CmpIOp::create(
              nb, loc, arith::CmpIPredicate::ult, offset, index(nb, loc, scaleBytes));
          Value byte = arith::SelectOp::create(nb, loc, isScale, scaleByte, codeByte);
          return arith::TruncIOp::create(nb, loc, nb.getI8Type(), byte);
        });
    rewriter.replaceOp(op, packed);
    return success();
  }
};

/// Reads the i8 bytes of the row of `bytes` at `row` (its last index
/// replaced).
auto bytesOfRow(OpBuilder &b, Location loc, Value bytes, ValueRange row) {
  return [&b, loc, bytes, row](Value column) -> Value {
    SmallVector<Value> at(row);
    at.back() = column;
    return tensor::ExtractOp::create(b, loc, bytes, at);
  };
}

struct LowerUnpackBlocks : OpRewritePattern<UnpackBlocksOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(UnpackBlocksOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KVBlockFormatAttr format = op.getFormat();
    BlockLayout layout(format);
    Value bytes = op.getBytes();
    int64_t lastByte =
        cast<RankedTensorType>(bytes.getType()).getShape().back() - 1;
    auto shapeOf = [&](Value like) {
      SmallVector<OpFoldResult> shape = sizesOf(b, bytes);
      shape.back() = b.getIndexAttr(
          cast<RankedTensorType>(like.getType()).getShape().back());
      return shape;
    };

    Value codes = generate(
        b, shapeOf(op.getCodes()), b.getI8Type(),
        [&](OpBuilder &nb, Location loc, ValueRange indices) -> Value {
          Value j = indices.back();
          Value blk = arith::DivUIOp::create(nb, loc, j, index(nb, loc, layout.block));
          Value i = arith::RemUIOp::create(nb, loc, j, index(nb, loc, layout.block));
          Value bit = arith::MulIOp::create(nb, loc, i, index(nb, loc, layout.bits));
          Value byteIndex = arith::AddIOp::create(
              nb, loc,
              arith::MulIOp::create(nb, loc, blk, index(nb, loc, layout.blockBytes)),
              arith::AddIOp::create(
                  nb, loc, index(nb, loc, layout.scaleBytes),
                  arith::DivUIOp::create(nb, loc, bit, index(nb, loc, 8))));
          Value shift = arith::RemUIOp::create(nb, loc, bit, index(nb, loc, 8));
          return unpackCode(nb, loc, bytesOfRow(nb, loc, bytes, indices),
                            byteIndex, shift, format, lastByte);
        });

    Value scales = generate(
        b, shapeOf(op.getScales()), format.getScaleType(),
        [&](OpBuilder &nb, Location loc, ValueRange indices) -> Value {
          return unpackScale(nb, loc, bytesOfRow(nb, loc, bytes, indices),
                             indices.back(), format);
        });
    rewriter.replaceOp(op, {codes, scales});
    return success();
  }
};

/// dequantize(unpack_blocks(bytes)) as one elementwise generic that decodes
/// each value from the bytes, with no code or scale tensors between them.
/// Its loop nest is [.., blocks, groups, codes per group], where a group is
/// the fewest whole bytes that hold whole codes (1 byte at 8 and 4 bits, 3
/// at 3 bits): once LLVM unrolls the innermost dim its shifts are constants
/// and the groups vectorize, where unpacking code by code kept a scalar
/// loop of variable shifts, and a separate dequantization pass.
struct LowerUnpackIntoDequantize : OpRewritePattern<UnpackBlocksOp> {
  LowerUnpackIntoDequantize(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(UnpackBlocksOp op,
                                PatternRewriter &rewriter) const override {
    KVBlockFormatAttr format = op.getFormat();
    Value codes = op.getCodes(), scales = op.getScales();
    // Codes that nothing reads (or more than one op) have no dequantize.
    auto dequant = dyn_cast_if_present<DequantizeOp>(
        codes.hasOneUse() ? *codes.getUsers().begin() : nullptr);
    if (!dequant || !scales.hasOneUse() || dequant.getCodes() != codes ||
        dequant.getScales() != scales || dequant.getFormat() != format)
      return rewriter.notifyMatchFailure(op, "not read by one dequantize");
    BlockLayout layout(format);
    int64_t groupBits = std::lcm<int64_t>(layout.bits, 8);
    int64_t perGroup = groupBits / layout.bits, groupBytes = groupBits / 8;
    if (layout.block % perGroup != 0)
      return rewriter.notifyMatchFailure(op, "block of partial groups");

    rewriter.setInsertionPoint(dequant);
    ImplicitLocOpBuilder b(dequant.getLoc(), rewriter);
    Value bytes = op.getBytes();
    auto bytesType = cast<RankedTensorType>(bytes.getType());
    int64_t lastByte = bytesType.getShape().back() - 1;
    int64_t lead = bytesType.getRank() - 1;
    auto resultType = cast<RankedTensorType>(dequant.getType());
    SmallVector<OpFoldResult> shape = sizesOf(b, bytes);
    shape.back() =
        b.getIndexAttr(resultType.getShape().back() / layout.block);
    shape.push_back(b.getIndexAttr(layout.block / perGroup));
    shape.push_back(b.getIndexAttr(perGroup));
    Type compute = dequant.getPrecision().getCompute();
    Value table = codebookTable(b, format);

    Value values = generate(
        b, shape, resultType.getElementType(),
        [&](OpBuilder &nb, Location loc, ValueRange indices) -> Value {
          ValueRange row = indices.take_front(lead);
          Value blk = indices[lead], group = indices[lead + 1];
          Value c = indices[lead + 2];
          Value bit = arith::MulIOp::create(nb, loc, c, index(nb, loc, layout.bits));
          Value byteIndex = arith::AddIOp::create(
              nb, loc,
              arith::AddIOp::create(
                  nb, loc,
                  arith::MulIOp::create(nb, loc, blk,
                                        index(nb, loc, layout.blockBytes)),
                  arith::MulIOp::create(nb, loc, group,
                                        index(nb, loc, groupBytes))),
              arith::AddIOp::create(
                  nb, loc, index(nb, loc, layout.scaleBytes),
                  arith::DivUIOp::create(nb, loc, bit, index(nb, loc, 8))));
          Value shift = arith::RemUIOp::create(nb, loc, bit, index(nb, loc, 8));
          SmallVector<Value> rowIndices(row);
          rowIndices.push_back(byteIndex);
          auto byteAt = bytesOfRow(nb, loc, bytes, rowIndices);
          Value code =
              unpackCode(nb, loc, byteAt, byteIndex, shift, format, lastByte);
          Value scale = unpackScale(nb, loc, byteAt, blk, format);
          return dequantizeElement(nb, loc, format, table, code, scale,
                                   compute, resultType.getElementType());
        });

    // What the host's rotor-vectorize-block-decoding needs to decode a
    // whole block at a time.
    Operation *decoder = values.getDefiningOp();
    decoder->setAttr(kBlockDecodingAttrName, format);
    decoder->setAttr(kBlockDecodingComputeAttrName, TypeAttr::get(compute));
    SmallVector<ReassociationIndices> groups;
    for (int64_t i = 0; i < lead; ++i)
      groups.push_back({i});
    groups.push_back({lead, lead + 1, lead + 2});
    rewriter.replaceOp(dequant,
                       tensor::CollapseShapeOp::create(b, values, groups));
    rewriter.eraseOp(op);
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateBlockPackingLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerPackBlocks, LowerUnpackBlocks, LowerUnpackIntoDequantize>(
      patterns.getContext());
}
