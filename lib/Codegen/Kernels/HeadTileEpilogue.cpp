//===- HeadTileEpilogue.cpp - Per-head ops in a GEMM's epilogue -----------===//
//
// The chain runs as thread phases over the tile's sums, which it reuses for
// intermediate values (so the fused kernel needs no more workgroup memory
// than the plain GEMM): the RoPE rotates pairs, each thread owning a pair so
// that it can write both in place; each Hadamard butterfly stage likewise
// owns pairs (j, j + h); the quantization owns whole blocks. An op's first
// step is folded into the phase before it (the input signs into the RoPE's
// writes) and its last into the phase after it (the output signs into the
// quantization's reads), and only the chain's results are stored to memory.
//
// Intermediate values go through the accumulate type, which is exact only
// where it holds them exactly; matchHeadChain checks that.
//
//===----------------------------------------------------------------------===//

#include "HeadTileEpilogue.h"
#include "WorkgroupKernel.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>
#include <functional>

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

/// Whether every value of float type `small` is a value of `big`.
bool holdsExactly(Type big, Type small) {
  if (big == small)
    return true;
  if (!isa<FloatType>(big) || !isa<FloatType>(small))
    return false;
  unsigned bigWidth = big.getIntOrFloatBitWidth();
  // f16 and bf16 are both subsets of f32, but not of each other.
  return (bigWidth == 32 || bigWidth == 64) &&
         small.getIntOrFloatBitWidth() < bigWidth;
}

/// The sole user of `v`, or null.
Operation *soleUser(Value v) {
  return v.hasOneUse() ? *v.user_begin() : nullptr;
}

/// The body of a row phase: builder, row i of the buffer, iteration q of
/// the row, token t.
using RowBody = function_ref<void(ImplicitLocOpBuilder &, Value, Value, Value)>;

/// A phase of `perRow` iterations q for each row i of [0, rows) whose token
/// t = row0 + i is below `tokens`.
void emitRowPhase(ImplicitLocOpBuilder &wb, Value row0, Value tokens,
                  int64_t rows, int64_t perRow, RowBody body) {
  threadPhase(
      wb, wb.getLoc(), rows * perRow, [&](ImplicitLocOpBuilder &ib, Value it) {
        Value count = arith::ConstantIndexOp::create(ib, perRow);
        Value i = arith::DivUIOp::create(ib, it, count);
        Value q = arith::RemUIOp::create(ib, it, count);
        Value t = arith::AddIOp::create(ib, row0, i);
        Value live =
            arith::CmpIOp::create(ib, arith::CmpIPredicate::ult, t, tokens);
        scf::IfOp::create(ib, live, [&](OpBuilder &tb, Location tl) {
          ImplicitLocOpBuilder lb(tl, tb);
          body(lb, i, q, t);
          scf::YieldOp::create(tb, tl);
        });
      });
}

/// The value the next op of a chain reads at (i, j) of the buffer.
using Reader = std::function<Value(OpBuilder &, Location, Value, Value)>;

/// The phases that finish one tile of a chain, each op's in turn: what they
/// share (the buffer, its rows' place, the chain's result buffers). Each
/// phase is given the reader of the value its op reads and returns the
/// reader of its own result, so that an op's first or last step can be
/// folded into the phase next to it.
struct TilePhases {
  HeadChain chain;
  /// The buffer's element type and the head dim.
  Type acc;
  int64_t d;
  ImplicitLocOpBuilder &wb;
  Value row0, head, tokens, sums;
  int64_t rows;
  ArrayRef<Value> outputs;

  void rowPhase(int64_t perRow, RowBody body) {
    emitRowPhase(wb, row0, tokens, rows, perRow, body);
  }
  void store(OpBuilder &b, Location l, Value v, Value i, Value j) {
    memref::StoreOp::create(b, l, castFloat(b, l, v, acc), sums,
                            ValueRange{i, j});
  }
  void writeOut(OpBuilder &b, Location l, Value v, Value t, Value j) {
    memref::StoreOp::create(b, l, v, outputs[0], ValueRange{t, head, j});
  }
  /// The buffer's element (i, j) as a value of `type`.
  Reader reader(Type type) {
    return [sums = sums, type](OpBuilder &b, Location l, Value i, Value j) {
      return castFloat(
          b, l, memref::LoadOp::create(b, l, sums, ValueRange{i, j}), type);
    };
  }

  Type hadamardCompute() { return chain.hadamard.getPrecision().getCompute(); }
  int64_t hadamardGroup() { return chain.hadamard.getRotation().getGroup(); }
  /// The rotation's input step: signs, in its compute type.
  Value signIn(OpBuilder &b, Location l, Value v, Value j);

  Reader rotatePairs(Reader current, RopeEmitter &rope, Value positions);
  Reader signInputs(Reader current);
  void butterflies(Reader current);
  Reader signOutputs(Reader current);
  void writeRows(Reader current);
  void quantizeBlocks(Reader current);
};

Value TilePhases::signIn(OpBuilder &b, Location l, Value v, Value j) {
  HadamardOp hadamard = chain.hadamard;
  Type compute = hadamardCompute();
  auto [signs, unused] =
      hadamard.getRotation().getEffectiveSigns(hadamard.getInverse());
  Value x = castFloat(b, l, v, compute);
  Value sign = signedConstant(
      b, l, signs, 1.0, compute,
      arith::AndIOp::create(b, l, j, indexConst(b, l, hadamardGroup() - 1)));
  return castFloat(b, l, arith::MulFOp::create(b, l, x, sign), compute);
}

/// The RoPE, a thread per pair (RopeEmitter::pairDims): both elements
/// rotated before either is written back, with the rotation's input signs
/// when one follows, or to memory when the RoPE is last.
Reader TilePhases::rotatePairs(Reader current, RopeEmitter &rope,
                               Value positions) {
  bool last = !chain.hadamard && !chain.quantize;
  rowPhase(d / 2, [&](ImplicitLocOpBuilder &ib, Value i, Value q, Value t) {
    Location l = ib.getLoc();
    auto [ja, jb] = rope.pairDims(ib, l, q);
    Value position = memref::LoadOp::create(ib, positions, t);
    auto projected = [&](Value j) { return current(ib, l, i, j); };
    Value ra = rope.emit(ib, l, ja, projected(ja), projected, position);
    Value rb = rope.emit(ib, l, jb, projected(jb), projected, position);
    for (auto [j, v] : {std::pair{ja, ra}, std::pair{jb, rb}}) {
      if (last)
        writeOut(ib, l, v, t, j);
      else if (chain.hadamard)
        store(ib, l, signIn(ib, l, v, j), i, j);
      else
        store(ib, l, v, i, j);
    }
  });
  return reader(chain.hadamard ? hadamardCompute()
                               : getElementTypeOrSelf(chain.rope.getType()));
}

/// The rotation's input signs as a phase of their own (no RoPE before).
Reader TilePhases::signInputs(Reader current) {
  rowPhase(d, [&](ImplicitLocOpBuilder &ib, Value i, Value j, Value) {
    store(ib, ib.getLoc(),
          signIn(ib, ib.getLoc(), current(ib, ib.getLoc(), i, j), j), i, j);
  });
  return reader(hadamardCompute());
}

/// One phase per butterfly stage h, pairing l = (q / h) * 2h + q % h with
/// l + h: lower gets a + b, upper a - b.
void TilePhases::butterflies(Reader current) {
  for (int64_t h = 1; h < hadamardGroup(); h *= 2) {
    rowPhase(d / 2, [&](ImplicitLocOpBuilder &ib, Value i, Value q, Value) {
      Location l = ib.getLoc();
      Value lower = arith::AddIOp::create(
          ib,
          arith::MulIOp::create(
              ib, arith::DivUIOp::create(ib, q, indexConst(ib, l, h)),
              indexConst(ib, l, 2 * h)),
          arith::RemUIOp::create(ib, q, indexConst(ib, l, h)));
      Value upper = arith::AddIOp::create(ib, lower, indexConst(ib, l, h));
      Value a = current(ib, l, i, lower), b = current(ib, l, i, upper);
      store(ib, l, arith::AddFOp::create(ib, a, b), i, lower);
      store(ib, l, arith::SubFOp::create(ib, a, b), i, upper);
    });
  }
}

/// The rotation's output signs and 1/sqrt(G), applied where the result is
/// read rather than in a phase of their own.
Reader TilePhases::signOutputs(Reader butterflies) {
  HadamardOp hadamard = chain.hadamard;
  auto [unused, signsOut] =
      hadamard.getRotation().getEffectiveSigns(hadamard.getInverse());
  SmallVector<int32_t> signs(signsOut);
  Type storage = getElementTypeOrSelf(hadamard.getType());
  Type compute = hadamardCompute();
  int64_t group = hadamardGroup();
  double magnitude = 1.0 / std::sqrt(double(group));
  return [=](OpBuilder &b, Location l, Value i, Value j) {
    Value position = arith::AndIOp::create(
        b, l, j, arith::ConstantIndexOp::create(b, l, group - 1));
    Value scale = signedConstant(b, l, signs, magnitude, compute, position);
    return castFloat(
        b, l, arith::MulFOp::create(b, l, butterflies(b, l, i, j), scale),
        storage);
  };
}

/// The chain's result, element by element, to memory.
void TilePhases::writeRows(Reader current) {
  rowPhase(d, [&](ImplicitLocOpBuilder &ib, Value i, Value j, Value t) {
    writeOut(ib, ib.getLoc(), current(ib, ib.getLoc(), i, j), t, j);
  });
}

/// The quantization: thread q owns block q of its row, reduces it in order,
/// stores the rounded scale, then the codes from it.
void TilePhases::quantizeBlocks(Reader current) {
  QuantizeOp quantize = chain.quantize;
  KVBlockFormatAttr format = quantize.getFormat();
  Type compute = quantize.getPrecision().getCompute();
  Type qacc = quantize.getPrecision().getAccumulate();
  int64_t block = format.getBlockSize();
  rowPhase(d / block, [&](ImplicitLocOpBuilder &ib, Value i, Value q, Value t) {
    Location l = ib.getLoc();
    Value first = arith::MulIOp::create(ib, q, indexConst(ib, l, block));
    auto widened = [&](OpBuilder &b, Location bl, Value k) {
      Value j = arith::AddIOp::create(b, bl, first, k);
      return castFloat(b, bl, castFloat(b, bl, current(b, bl, i, j), compute),
                       qacc);
    };
    auto reduce = scf::ForOp::create(
        ib, indexConst(ib, l, 0), indexConst(ib, l, block),
        indexConst(ib, l, 1), ValueRange{floatConst(ib, l, qacc, 0.0)},
        [&](OpBuilder &fb, Location fl, Value k, ValueRange carried) {
          scf::YieldOp::create(fb, fl,
                               quantizeReduceStep(fb, fl, format, carried[0],
                                                  widened(fb, fl, k)));
        });
    Value scale = quantizeScale(ib, l, format, reduce.getResult(0));
    memref::StoreOp::create(ib, scale, outputs[1], ValueRange{t, head, q});
    Value stored = castFloat(ib, l, scale, qacc);
    scf::ForOp::create(
        ib, indexConst(ib, l, 0), indexConst(ib, l, block),
        indexConst(ib, l, 1), ValueRange{},
        [&](OpBuilder &fb, Location fl, Value k, ValueRange) {
          Value code = quantizeCode(fb, fl, format, widened(fb, fl, k), stored);
          memref::StoreOp::create(
              fb, fl, code, outputs[0],
              ValueRange{t, head, arith::AddIOp::create(fb, fl, first, k)});
          scf::YieldOp::create(fb, fl);
        });
  });
}

} // namespace

Operation *HeadChain::first() const {
  if (rope)
    return rope;
  if (hadamard)
    return hadamard;
  return quantize;
}

Operation *HeadChain::last() const {
  if (quantize)
    return quantize;
  if (hadamard)
    return hadamard;
  return rope;
}

FailureOr<HeadChain>
rotor::attn::lowering::matchHeadChain(Operation *first, Type bufferType,
                                      PatternRewriter &rewriter) {
  HeadChain chain;
  chain.input = first->getNumOperands() ? first->getOperand(0) : Value();
  Operation *op = first;
  if (auto rope = dyn_cast<RopeOp>(op); rope && rope.getRotaryDim() > 0) {
    chain.rope = rope;
    op = soleUser(rope.getResult());
  }
  if (auto hadamard = dyn_cast_or_null<HadamardOp>(op);
      hadamard && hadamard.rotatesLastDim()) {
    chain.hadamard = hadamard;
    op = soleUser(hadamard.getResult());
  }
  chain.quantize = dyn_cast_or_null<QuantizeOp>(op);
  if (!chain.last() || chain.first() != first)
    return rewriter.notifyMatchFailure(first,
                                       "not a RoPE, rotation or quantization");
  auto inputType = dyn_cast<RankedTensorType>(chain.input.getType());
  if (!inputType || inputType.getRank() != 3 || inputType.isDynamicDim(1) ||
      inputType.isDynamicDim(2))
    return rewriter.notifyMatchFailure(first, "not [T, H, D] with static H, D");
  // The RoPE phase owns pairs of elements.
  if (chain.rope && inputType.getDimSize(2) % 2)
    return rewriter.notifyMatchFailure(first, "odd head dim under a RoPE");

  // What is kept in the buffer between phases.
  if (chain.rope && chain.last() != chain.rope &&
      !holdsExactly(bufferType, getElementTypeOrSelf(chain.rope.getType())))
    return rewriter.notifyMatchFailure(
        first, "the buffer type cannot hold the RoPE's results");
  if (chain.hadamard &&
      !holdsExactly(bufferType, chain.hadamard.getPrecision().getCompute()))
    return rewriter.notifyMatchFailure(
        first, "the buffer type cannot hold the rotation's values");
  return chain;
}

FailureOr<ProjectionHeadChain>
rotor::attn::lowering::matchProjectionHeadChain(LinearOp linear,
                                                PatternRewriter &rewriter) {
  auto expand = dyn_cast_or_null<tensor::ExpandShapeOp>(soleUser(linear));
  if (!expand || expand.getReassociationIndices() !=
                     SmallVector<ReassociationIndices>{{0}, {1, 2}})
    return rewriter.notifyMatchFailure(linear,
                                       "not split into heads, or other users");
  Operation *first = soleUser(expand.getResult());
  if (!first)
    return rewriter.notifyMatchFailure(linear, "heads have other users");
  FailureOr<HeadChain> chain =
      matchHeadChain(first, linear.getPrecision().getAccumulate(), rewriter);
  if (failed(chain))
    return failure();
  return ProjectionHeadChain{expand, *chain};
}

HeadTileEpilogue::HeadTileEpilogue(ImplicitLocOpBuilder &b,
                                   const HeadChain &chain, Value tokens,
                                   Type bufferType, bool readsInput)
    : chain(chain), bufferType(bufferType) {
  if (chain.rope) {
    rope.emplace(b, this->chain.rope);
    positions = readOnlyBuffer(b, this->chain.rope.getPositions());
  }
  if (readsInput)
    input = readOnlyBuffer(b, chain.input);
  for (Type type : chain.last()->getResultTypes()) {
    auto shaped = cast<RankedTensorType>(type);
    outputs.push_back(memref::AllocOp::create(
        b, MemRefType::get(shaped.getShape(), shaped.getElementType()),
        shaped.isDynamicDim(0) ? ValueRange{tokens} : ValueRange{}));
  }
}

void HeadTileEpilogue::emit(ImplicitLocOpBuilder &wb, Value row0, Value head,
                            Value tokens, Value sums, int64_t rows) {
  int64_t d = cast<RankedTensorType>(chain.input.getType()).getDimSize(2);
  TilePhases phases{chain, bufferType, d,    wb,   row0,
                    head,  tokens,     sums, rows, outputs};
  // The value the next op reads at (i, j): first the chain's input.
  Reader current = phases.reader(getElementTypeOrSelf(chain.input.getType()));
  if (chain.rope)
    current = phases.rotatePairs(current, *rope, positions);
  if (chain.hadamard) {
    if (!chain.rope)
      current = phases.signInputs(current);
    phases.butterflies(current);
    current = phases.signOutputs(current);
    if (!chain.quantize)
      phases.writeRows(current);
  }
  if (chain.quantize)
    phases.quantizeBlocks(current);
}

void HeadTileEpilogue::emitFromInput(ImplicitLocOpBuilder &wb, Value row0,
                                     Value head, Value tokens, int64_t rows) {
  assert(input && "constructed without reading the input");
  int64_t d = cast<RankedTensorType>(chain.input.getType()).getDimSize(2);
  Value buffer = workgroupBuffer(wb, {rows, d}, bufferType);
  // Consecutive threads read consecutive elements of a row.
  emitRowPhase(
      wb, row0, tokens, rows, d,
      [&](ImplicitLocOpBuilder &ib, Value i, Value j, Value t) {
        Value v = memref::LoadOp::create(ib, input, ValueRange{t, head, j});
        memref::StoreOp::create(ib, castFloat(ib, ib.getLoc(), v, bufferType),
                                buffer, ValueRange{i, j});
      });
  emit(wb, row0, head, tokens, buffer, rows);
}

void HeadTileEpilogue::replaceChain(ImplicitLocOpBuilder &b,
                                    PatternRewriter &rewriter) {
  Operation *last = chain.last();
  SmallVector<Value> results;
  for (auto [buffer, type] : llvm::zip(outputs, last->getResultTypes()))
    results.push_back(bufferization::ToTensorOp::create(
        b, type, buffer, /*restrict=*/true, /*writable=*/true));
  rewriter.replaceOp(last, results);
  for (Operation *op :
       {chain.hadamard.getOperation(), chain.rope.getOperation()})
    if (op && op != last)
      rewriter.eraseOp(op);
}
