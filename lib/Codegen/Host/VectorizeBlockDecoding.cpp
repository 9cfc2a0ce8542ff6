//===- VectorizeBlockDecoding.cpp - Decode KV blocks with SIMD vectors ----===//
//
// convert-attn-to-linalg lowers dequantize(unpack_blocks(bytes)) to one
// elementwise generic that decodes each value from the bytes on its own
// (the form GPU threads run, and every target's definition). On the host
// LLVM leaves that loop scalar. Here a generic marked attn.block_decoding
// decodes a whole block at a time: the bytes of `lanes` codes are one
// vector load, two constant shuffles place each code's (at most two) bytes
// in its lane, and constant per-lane shifts and a mask extract the codes;
// the codebook lookup is a select tree on the code's bits. Every value is
// the scalar form's, bit for bit.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"
#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/IR/QuantCodebook.h"
#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

namespace rotor {
#define GEN_PASS_DEF_VECTORIZEBLOCKDECODING
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;
using namespace rotor::attn;
using rotor::attn::lowering::castFloat;
using rotor::attn::lowering::unpackScale;

namespace {

/// What the vector form needs of a marked generic, found before anything
/// is rewritten (a generic that does not fit stays scalar).
struct Decoder {
  KVBlockFormatAttr format;
  Type compute, storage;
  Value bytes, out;
  int64_t lead;                 // dims of the output before [blocks, G, c]
  int64_t blocks;               // blocks per row
  SmallVector<Value> rowIndex;  // bytes' leading indices, as the body has them
  SetVector<Operation *> rowOps; // the body's ops that compute them
};

FailureOr<Decoder> matchDecoder(linalg::GenericOp op, int64_t lanes) {
  Decoder d;
  d.format = op->getAttrOfType<KVBlockFormatAttr>(kBlockDecodingAttrName);
  auto compute = op->getAttrOfType<TypeAttr>(kBlockDecodingComputeAttrName);
  if (!d.format || !compute || !op.hasPureBufferSemantics() ||
      op.getNumDpsInputs() != 0 || op.getNumDpsInits() != 1)
    return failure();
  d.compute = compute.getValue();
  d.out = op.getDpsInitOperand(0)->get();
  auto outType = cast<MemRefType>(d.out.getType());
  d.storage = outType.getElementType();
  int64_t rank = outType.getRank(), block = d.format.getBlockSize();
  d.lead = rank - 3;
  ArrayRef<int64_t> shape = outType.getShape();
  if (d.lead < 0 || ShapedType::isDynamic(shape[rank - 3]) ||
      shape[rank - 2] * shape[rank - 1] != block || block % lanes != 0 ||
      (lanes * d.format.getBits()) % 8 != 0 ||
      op.getMatchingIndexingMap(op.getDpsInitOperand(0)) !=
          AffineMap::getMultiDimIdentityMap(rank, op.getContext()))
    return failure();
  // Each output block's codes contiguous: the vector stores' rows.
  auto [outStrides, outOffset] = outType.getStridesAndOffset();
  if (outStrides[rank - 1] != 1 || outStrides[rank - 2] != shape[rank - 1])
    return failure();
  d.blocks = shape[rank - 3];

  // Every load but the codebook's reads the same row of the bytes.
  for (auto load : op.getBody()->getOps<memref::LoadOp>()) {
    // The codebook's table, which the select tree replaces.
    if (load.getMemRef().getDefiningOp<memref::GetGlobalOp>())
      continue;
    if (int64_t(load.getIndices().size()) != d.lead + 1)
      return failure();
    if (!d.bytes) {
      d.bytes = load.getMemRef();
      d.rowIndex.assign(load.getIndices().begin(),
                        load.getIndices().begin() + d.lead);
    }
    if (load.getMemRef() != d.bytes ||
        !llvm::equal(load.getIndices().take_front(d.lead), d.rowIndex))
      return failure();
  }
  auto bytesType = d.bytes ? dyn_cast<MemRefType>(d.bytes.getType())
                           : MemRefType();
  if (!bytesType || bytesType.getRank() != d.lead + 1 ||
      op.getRegion().isAncestor(d.bytes.getParentRegion()) ||
      !bytesType.getElementType().isInteger(8))
    return failure();
  auto [strides, offset] = bytesType.getStridesAndOffset();
  if (strides.back() != 1)
    return failure();
  // The output covers every block of a byte row. A generic tiled along the
  // blocks keeps the mark, but its block 0 is not the row's: the scalar
  // body (whose linalg.index the tiling offset) stays.
  if (bytesType.getShape().back() != d.blocks * packedBlockBytes(d.format))
    return failure();

  // The row indices may only depend on the output's leading dims.
  BackwardSliceOptions options;
  options.filter = [&](Operation *o) { return o->getParentOp() == op; };
  for (Value v : d.rowIndex)
    if (Operation *def = v.getDefiningOp(); def && def->getParentOp() == op) {
      (void)getBackwardSlice(def, &d.rowOps, options);
      d.rowOps.insert(def);
    }
  for (Operation *o : d.rowOps) {
    auto index = dyn_cast<linalg::IndexOp>(o);
    if ((index && int64_t(index.getDim()) >= d.lead) ||
        (!index && !isPure(o)))
      return failure();
  }
  return d;
}

Value splat(OpBuilder &b, Location loc, VectorType type, Value scalar) {
  return vector::BroadcastOp::create(b, loc, type, scalar);
}

Value i32Vector(OpBuilder &b, Location loc, ArrayRef<int32_t> values) {
  auto type = VectorType::get({int64_t(values.size())}, b.getI32Type());
  return arith::ConstantOp::create(b, loc,
                                   DenseElementsAttr::get(type, values));
}

/// Emits the decoding of one row's blocks.
struct RowDecoder {
  OpBuilder &b;
  Location loc;
  const Decoder &d;
  int64_t lanes;
  ValueRange outIndex; // the output row
  ValueRange row;      // the bytes' row
  Value outRows;       // the output as [.., blocks, B]

  int64_t bits() const { return d.format.getBits(); }
  int64_t blockBytes() const { return packedBlockBytes(d.format); }
  int64_t scaleBytes() const {
    return d.format.getScaleType().getWidth() / 8;
  }

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

  Value byteAt(Value column) {
    SmallVector<Value> at(row);
    at.push_back(column);
    return memref::LoadOp::create(b, loc, d.bytes, at);
  }

  /// Block `blk`'s scale in the compute type.
  Value scale(Value blk) {
    return castFloat(
        b, loc,
        unpackScale(b, loc, [&](Value column) { return byteAt(column); }, blk,
                    d.format),
        d.compute);
  }

  /// Codes [first, first + lanes) of the block at `blockStart`, as i32
  /// lanes (sign-extended for absmax).
  Value codes(Value blockStart, int64_t first) {
    int64_t loadBytes = lanes * bits() / 8;
    auto bytesType = VectorType::get({loadBytes}, b.getI8Type());
    Value column = arith::AddIOp::create(
        b, loc, blockStart, index(scaleBytes() + first * bits() / 8));
    SmallVector<Value> at(row);
    at.push_back(column);
    Value raw = vector::LoadOp::create(b, loc, bytesType, d.bytes, at);
    Value zero = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(bytesType, b.getI8IntegerAttr(0)));
    // Lane r's code starts at bit r * bits of the loaded bytes; it takes a
    // second byte when it crosses a byte boundary (index loadBytes: zero).
    SmallVector<int64_t> low(lanes), high(lanes);
    SmallVector<int32_t> shifts(lanes);
    bool straddles = false, shifted = false;
    for (int64_t r = 0; r < lanes; ++r) {
      int64_t bit = r * bits();
      low[r] = bit / 8;
      shifts[r] = int32_t(bit % 8);
      high[r] = bit % 8 + bits() > 8 ? bit / 8 + 1 : loadBytes;
      straddles |= high[r] != loadBytes;
      shifted |= shifts[r] != 0;
    }
    auto wordType = VectorType::get({lanes}, b.getI32Type());
    auto lanesOf = [&](ArrayRef<int64_t> mask) -> Value {
      Value picked = raw;
      if (loadBytes != lanes || !llvm::equal(mask, llvm::seq<int64_t>(lanes)))
        picked = vector::ShuffleOp::create(b, loc, raw, zero, mask);
      return arith::ExtUIOp::create(b, loc, wordType, picked);
    };
    Value word = lanesOf(low);
    if (straddles)
      word = arith::OrIOp::create(
          b, loc, word,
          arith::ShLIOp::create(
              b, loc, lanesOf(high),
              i32Vector(b, loc, SmallVector<int32_t>(lanes, 8))));
    if (shifted)
      word = arith::ShRUIOp::create(b, loc, word, i32Vector(b, loc, shifts));
    Value code = arith::AndIOp::create(
        b, loc, word,
        i32Vector(b, loc,
                  SmallVector<int32_t>(lanes, int32_t((1 << bits()) - 1))));
    if (d.format.getScheme() == QuantScheme::Absmax) {
      Value up = i32Vector(b, loc, SmallVector<int32_t>(lanes, 32 - bits()));
      code = arith::ShRSIOp::create(
          b, loc, arith::ShLIOp::create(b, loc, code, up), up);
    }
    return code;
  }

  /// The codebook's level of each lane's code: a select on each bit of
  /// the code, lowest first, halving the candidates.
  Value lookup(Value code) {
    auto type = VectorType::get({lanes}, d.compute);
    SmallVector<Value> candidates;
    for (double level : getLloydMaxCentroids(bits())) {
      Value wide = arith::ConstantOp::create(b, loc, b.getF64FloatAttr(level));
      candidates.push_back(
          splat(b, loc, type, castFloat(b, loc, wide, d.compute)));
    }
    Value zero = i32Vector(b, loc, SmallVector<int32_t>(lanes, 0));
    for (int64_t bit = 0; bit < bits(); ++bit) {
      Value set = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::ne,
          arith::AndIOp::create(
              b, loc, code,
              i32Vector(b, loc, SmallVector<int32_t>(lanes, 1 << bit))),
          zero);
      SmallVector<Value> halved;
      for (size_t i = 0; i + 1 < candidates.size(); i += 2)
        halved.push_back(arith::SelectOp::create(b, loc, set, candidates[i + 1],
                                                 candidates[i]));
      candidates = std::move(halved);
    }
    return candidates.front();
  }

  void decodeBlock(Value blk) {
    Value blockStart =
        arith::MulIOp::create(b, loc, blk, index(blockBytes()));
    Value s = scale(blk);
    auto computeType = VectorType::get({lanes}, d.compute);
    Value scales = splat(b, loc, computeType, s);
    for (int64_t first = 0; first < d.format.getBlockSize(); first += lanes) {
      Value code = codes(blockStart, first);
      Value level =
          d.format.getScheme() == QuantScheme::Codebook
              ? lookup(code)
              : castFloat(b, loc,
                           arith::SIToFPOp::create(
                               b, loc,
                               VectorType::get({lanes}, b.getF32Type()), code),
                           d.compute);
      Value value = castFloat(
          b, loc, arith::MulFOp::create(b, loc, scales, level), d.storage);
      SmallVector<Value> at(outIndex);
      at.push_back(blk);
      at.push_back(index(first));
      vector::StoreOp::create(b, loc, value, outRows, at);
    }
  }
};

LogicalResult vectorizeDecoder(RewriterBase &rewriter, linalg::GenericOp op,
                               const Decoder &d, int64_t lanes) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  auto outType = cast<MemRefType>(d.out.getType());
  int64_t rank = outType.getRank();
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i < rank - 2; ++i)
    groups.push_back({i});
  groups.push_back({rank - 2, rank - 1});
  Value outRows =
      memref::CollapseShapeOp::create(rewriter, loc, d.out, groups);

  Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
  Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
  SmallVector<Value> lbs(d.lead, zero), steps(d.lead, one), ubs;
  for (int64_t i = 0; i < d.lead; ++i)
    ubs.push_back(memref::DimOp::create(rewriter, loc, d.out, i));
  scf::buildLoopNest(
      rewriter, loc, lbs, ubs, steps,
      [&](OpBuilder &b, Location loc, ValueRange ivs) {
        IRMapping map;
        for (Operation *o : d.rowOps) {
          if (auto index = dyn_cast<linalg::IndexOp>(o)) {
            map.map(index.getResult(), ivs[index.getDim()]);
            continue;
          }
          b.clone(*o, map);
        }
        SmallVector<Value> row;
        for (Value v : d.rowIndex)
          row.push_back(map.lookupOrDefault(v));
        Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
        Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
        Value blocks = arith::ConstantIndexOp::create(b, loc, d.blocks);
        scf::ForOp::create(
            b, loc, c0, blocks, c1, ValueRange{},
            [&](OpBuilder &nb, Location nloc, Value blk, ValueRange) {
              RowDecoder{nb, nloc, d, lanes, ivs, row, outRows}.decodeBlock(
                  blk);
              scf::YieldOp::create(nb, nloc);
            });
      });
  rewriter.eraseOp(op);
  return success();
}

struct VectorizeBlockDecodingPass
    : rotor::impl::VectorizeBlockDecodingBase<VectorizeBlockDecodingPass> {
  using Base::Base;

  void runOnOperation() override {
    // f32 lanes of one register, as rotor-lower-reductions-to-register-loops
    // counts them.
    int64_t lanes = vectorRegisters >= 32 ? 16 : 8;
    SmallVector<linalg::GenericOp> decoders;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (op->hasAttr(kBlockDecodingAttrName))
        decoders.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : decoders) {
      FailureOr<Decoder> d = matchDecoder(op, lanes);
      if (failed(d))
        continue; // stays the scalar loop
      (void)vectorizeDecoder(rewriter, op, *d, lanes);
    }
  }
};

} // namespace
