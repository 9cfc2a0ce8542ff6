//===- FoldKVRotation.cpp - Rotate Q instead of un-rotating K/V reads -----===//
//
// A rotated KV cache is read as M·dequantize(...) with M the inverse of the
// rotation it was written with. M is orthogonal and acts on each head's
// dims, so SDPA(q, M·k̂, M·v̂) = M·SDPA(Mᵀq, k̂, v̂): Q takes Mᵀ once, SDPA
// reads the rotated cache, and M moves to the output, where it folds into
// W_o's columns. Each step is checked to be exact first; what stops one is
// reported as a tagged remark and in the optional report.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNFOLDKVROTATION
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;

namespace {

/// The known wrong rewrites that tests apply on purpose.
enum class Mistake {
  None,
  QTransposed,
  OutputTransposed,
  NeverUnrotated,
  GroupSpanningHeads,
  RotationBeforeRope,
  InverseAcrossGate
};

std::optional<Mistake> parseMistake(StringRef name) {
  return llvm::StringSwitch<std::optional<Mistake>>(name)
      .Case("", Mistake::None)
      .Case("q-transposed", Mistake::QTransposed)
      .Case("output-transposed", Mistake::OutputTransposed)
      .Case("never-unrotated", Mistake::NeverUnrotated)
      .Case("group-spanning-heads", Mistake::GroupSpanningHeads)
      .Case("rotation-before-rope", Mistake::RotationBeforeRope)
      .Case("inverse-across-gate", Mistake::InverseAcrossGate)
      .Default(std::nullopt);
}

/// Why a fold did not happen: the remark's tag and a sentence.
struct Refusal {
  std::string tag, reason;
};

/// An SDPA operand (key or value) read through a rotation that may move.
struct RotatedRead {
  /// The rotation on read, M; SDPA reads M·x.
  HadamardOp onRead;
  /// The head split between a rotation of [T, H·D] and SDPA, if any.
  tensor::ExpandShapeOp split;
  /// The rotation the cache was written with (M's inverse).
  HadamardOp onWrite;
};

/// What the analysis of one operand found: nothing rotated, a fold, or a
/// refusal.
struct ReadAnalysis {
  std::optional<RotatedRead> fold;
  std::optional<Refusal> refusal;
};

std::string describe(HadamardOp op) {
  HadamardAttr r = op.getRotation();
  std::string s;
  llvm::raw_string_ostream os(s);
  os << (op.getInverse() ? "Rᵀ" : "R") << "(group " << r.getGroup()
     << ", s1 = [";
  llvm::interleaveComma(r.getS1().take_front(4), os);
  os << (r.getGroup() > 4 ? ", ...], s2 = [" : "], s2 = [");
  llvm::interleaveComma(r.getS2().take_front(4), os);
  os << (r.getGroup() > 4 ? ", ...])" : "])");
  return s;
}

ReadAnalysis refuse(StringRef tag, const Twine &reason) {
  return {std::nullopt, Refusal{tag.str(), reason.str()}};
}

/// `v` with attn.capture (an identity) looked through.
Value throughCaptures(Value v) {
  while (auto capture = v.getDefiningOp<CaptureOp>())
    v = capture.getInput();
  return v;
}

/// The rotation a cache read at `x` was written with: back through
/// dequantize, cache read/append and quantize to the forward rotation, or a
/// refusal saying why there is none that matches `onRead`.
ReadAnalysis findWriteRotation(HadamardOp onRead, StringRef what) {
  KVCacheWriteTrace trace = traceKVCacheWrite(onRead.getInput());
  Value x = trace.source;
  bool written = trace.throughWrite;
  Operation *passed = nullptr;
  HadamardOp onWrite;
  for (int depth = 0; depth < 8 && x.getDefiningOp(); ++depth) {
    Operation *def = x.getDefiningOp();
    if ((onWrite = dyn_cast<HadamardOp>(def)))
      break;
    if (!isa<RopeOp, RmsNormOp, CaptureOp>(def))
      break;
    if (!passed && !isa<CaptureOp>(def))
      passed = def;
    x = def->getOperand(0);
  }
  if (!onWrite) {
    if (isa<BlockArgument>(x) && !written && !passed)
      return refuse("unknown-writer",
                    "the " + what + " cache is a function argument written "
                    "elsewhere; the rotation it holds cannot be checked");
    return refuse("not-rotated-on-write",
                  "the " + what + " cache is read through " +
                      describe(onRead) + " but written without a rotation");
  }
  if (isa_and_nonnull<RopeOp>(passed))
    return refuse("rotation-before-rope",
                  "the " + what + " cache's rotation is applied before RoPE, "
                  "which does not commute with it; the cache holds RoPE(R·" +
                      what + ") and no rotation of Q matches it");
  if (isa_and_nonnull<RmsNormOp>(passed))
    return refuse("rotation-before-norm",
                  "the " + what + " cache's rotation is applied before the "
                  "RMS norm, whose per-dim gain does not commute with it");
  if (onWrite.getRotation() != onRead.getRotation() ||
      onWrite.getInverse() == onRead.getInverse() ||
      !onWrite.rotatesLastDim())
    return refuse("different-rotations",
                  "the " + what + " cache is written with " +
                      describe(onWrite) + " but read with " +
                      describe(onRead) + "; only a rotation undone by its "
                      "own inverse folds");
  return {RotatedRead{onRead, {}, onWrite}, std::nullopt};
}

/// Whether SDPA's `operand` ([T, H, D]) is read through a rotation that can
/// move across SDPA, and what stops it if not.
ReadAnalysis analyzeRead(Value operand, StringRef what) {
  int64_t headDim = cast<RankedTensorType>(operand.getType()).getDimSize(2);
  // The rotation, directly or behind ops that SDPA would then not read
  // through a plain per-head rotation.
  Operation *between = nullptr;
  HadamardOp onRead;
  Value v = operand;
  for (int depth = 0; depth < 4; ++depth) {
    Operation *def = v.getDefiningOp();
    if (!def || def->getNumOperands() == 0 ||
        isa<KVCacheReadOp, KVCacheAppendOp, DequantizeOp, QuantizeOp,
            LinearOp, SdpaOp>(def))
      break;
    if ((onRead = dyn_cast<HadamardOp>(def)))
      break;
    between = between ? between : def;
    v = def->getOperand(0);
  }
  if (!onRead)
    return {};
  tensor::ExpandShapeOp split;
  if (between) {
    split = dyn_cast<tensor::ExpandShapeOp>(between);
    if (!split || split.getSrc() != onRead.getResult() ||
        split.getResult() != operand)
      return refuse("non-linear-between",
                    "'" + between->getName().getStringRef() +
                        "' lies between the " + what +
                        "'s rotation and SDPA; only a rotation SDPA reads "
                        "directly can move to Q");
  }
  int64_t group = onRead.getRotation().getGroup();
  int64_t rank = cast<RankedTensorType>(onRead.getType()).getRank();
  if (!onRead.rotatesLastDim())
    return refuse(onRead.getRotatedDim() == 0 ? "sequence-in-group"
                                              : "group-spans-heads",
                  "the " + what + "'s rotation runs along dim " +
                      Twine(onRead.getRotatedDim()) + " of rank " +
                      Twine(rank) + ", not along a head's dims");
  if (headDim % group != 0)
    return refuse("group-spans-heads",
                  "the " + what + "'s rotation groups of " + Twine(group) +
                      " span heads of " + Twine(headDim) +
                      " dims; a per-head rotation of Q cannot match them");
  if (onRead.getPrecision().getCompute().getWidth() < 32)
    return refuse("low-precision-rotation",
                  "the " + what + "'s rotation is computed in " +
                      llvm::Twine(onRead.getPrecision().getCompute().getWidth()) +
                      "-bit floats; moving it would change its rounding");
  ReadAnalysis write = findWriteRotation(onRead, what);
  if (write.fold)
    write.fold->split = split;
  return write;
}

} // namespace

namespace {

PrecisionAttr f64Precision(MLIRContext *ctx) {
  FloatType f64 = Float64Type::get(ctx);
  return PrecisionAttr::get(ctx, f64, f64);
}

/// `rotation` (inverted when `inverse`) applied to `x` along `dim` (the last
/// when absent).
Value rotate(OpBuilder &b, Location loc, Value x, HadamardAttr rotation,
             bool inverse, PrecisionAttr precision,
             std::optional<int64_t> dim = std::nullopt) {
  return HadamardOp::create(b, loc, x, rotation, inverse, precision,
                            dim ? b.getI64IntegerAttr(*dim) : IntegerAttr());
}

/// The name a weight goes by in the report.
std::string weightName(Value w) {
  if (auto param = w.getDefiningOp<ParamOp>())
    return "'" + param.getName().str() + "'";
  return "the weight";
}

/// Rewrites the SDPA ops of a function and records what it did.
class KVRotationFolder {
public:
  KVRotationFolder(bool outputProjection, bool valueProjection,
                   Mistake mistake)
      : outputProjection(outputProjection), valueProjection(valueProjection),
        mistake(mistake) {}

  /// Folds what is legal around `sdpa`.
  void run(SdpaOp sdpa);

  /// The report's lines so far, one per decision.
  std::vector<std::string> lines;

private:
  void note(SdpaOp sdpa, StringRef side, const Twine &what) {
    std::string line = (side + ": " + what).str();
    sdpa.emitRemark() << "attn-fold-kv-rotation: " << line;
    lines.push_back(line);
  }
  void refused(SdpaOp sdpa, StringRef side, const Refusal &r) {
    note(sdpa, side, "not folded [" + r.tag + "]: " + r.reason);
  }

  void foldKey(SdpaOp sdpa, RotatedRead key);
  void foldValue(SdpaOp sdpa, RotatedRead value);
  void foldOutputInverse(SdpaOp sdpa, HadamardOp unrotate);
  void foldValueProjection(SdpaOp sdpa, HadamardOp onWrite);
  /// What SDPA reads once `read`'s rotation has moved away.
  Value stillRotated(OpBuilder &b, RotatedRead read);

  bool outputProjection, valueProjection;
  Mistake mistake;
};

void KVRotationFolder::run(SdpaOp sdpa) {
  ReadAnalysis key = analyzeRead(sdpa.getKey(), "key");
  ReadAnalysis value = analyzeRead(sdpa.getValue(), "value");
  if (!key.fold && !key.refusal && !value.fold && !value.refusal)
    return; // Nothing rotated: not this pass's business.
  // SDPA's key-bias term reads the query as it is: a rotated Q would need
  // a rotated bias.
  if (key.fold && sdpa.getKeyBias())
    key = refuse("key-bias-term", "the SDPA adds a key-bias term "
                                  "(attn-split-rope-bias), computed from the "
                                  "unrotated query");
  if (key.refusal)
    refused(sdpa, "key", *key.refusal);
  else if (key.fold)
    foldKey(sdpa, *key.fold);
  if (value.refusal)
    refused(sdpa, "value", *value.refusal);
  else if (value.fold)
    foldValue(sdpa, *value.fold);
}

Value KVRotationFolder::stillRotated(OpBuilder &b, RotatedRead read) {
  Value x = read.onRead.getInput();
  if (!read.split)
    return x;
  return tensor::ExpandShapeOp::create(
      b, read.split.getLoc(), read.split.getResultType(), x,
      read.split.getReassociationIndices(), read.split.getMixedOutputShape());
}

void KVRotationFolder::foldKey(SdpaOp sdpa, RotatedRead key) {
  OpBuilder b(sdpa);
  Location loc = sdpa.getLoc();
  HadamardAttr rotation = key.onRead.getRotation();
  // Q takes the transpose of the rotation K is read through.
  bool inverse = !key.onRead.getInverse();
  if (mistake == Mistake::QTransposed)
    inverse = !inverse;
  Value q = sdpa.getQuery();
  if (mistake == Mistake::RotationBeforeRope) {
    auto rope = throughCaptures(q).getDefiningOp<RopeOp>();
    if (rope) {
      OpBuilder before(rope);
      Value rotated = rotate(before, loc, rope.getInput(), rotation, inverse,
                             key.onRead.getPrecision());
      rope.getInputMutable().assign(rotated);
    }
  } else if (mistake == Mistake::GroupSpanningHeads) {
    // One group over two heads, with the signs repeated.
    auto type = cast<RankedTensorType>(q.getType());
    SmallVector<int32_t> s1(rotation.getS1()), s2(rotation.getS2());
    s1.append(rotation.getS1().begin(), rotation.getS1().end());
    s2.append(rotation.getS2().begin(), rotation.getS2().end());
    auto wide = HadamardAttr::get(b.getContext(), 2 * rotation.getGroup(),
                                  s1, s2);
    auto flatType = RankedTensorType::get(
        {type.getDimSize(0), type.getDimSize(1) * type.getDimSize(2)},
        type.getElementType());
    SmallVector<ReassociationIndices> heads = {{0}, {1, 2}};
    Value flat = tensor::CollapseShapeOp::create(b, loc, flatType, q, heads);
    Value rotated = rotate(b, loc, flat, wide, inverse,
                           key.onRead.getPrecision());
    SmallVector<OpFoldResult> shape = {
        tensor::getMixedSize(b, loc, q, 0),
        b.getIndexAttr(type.getDimSize(1)), b.getIndexAttr(type.getDimSize(2))};
    q = tensor::ExpandShapeOp::create(b, loc, type, rotated, heads, shape);
  } else {
    q = rotate(b, loc, q, rotation, inverse, key.onRead.getPrecision());
  }
  sdpa.getQueryMutable().assign(q);
  sdpa.getKeyMutable().assign(stillRotated(b, key));
  if (key.split && key.split->use_empty())
    key.split.erase();
  note(sdpa, "key",
       "folded: Q rotated by " + describe(key.onWrite) +
           " right before SDPA (after RoPE and any norm); SDPA reads the rotated keys");
}

void KVRotationFolder::foldValue(SdpaOp sdpa, RotatedRead value) {
  OpBuilder b(sdpa);
  sdpa.getValueMutable().assign(stillRotated(b, value));
  if (value.split && value.split->use_empty())
    value.split.erase();
  b.setInsertionPointAfter(sdpa);
  bool inverse = value.onRead.getInverse();
  if (mistake == Mistake::OutputTransposed)
    inverse = !inverse;
  if (mistake == Mistake::NeverUnrotated) {
    note(sdpa, "value", "folded without un-rotating the output (test mistake)");
  } else {
    auto unrotate = HadamardOp::create(
        b, sdpa.getLoc(), sdpa.getResult(), value.onRead.getRotation(),
        inverse, value.onRead.getPrecision(), IntegerAttr());
    sdpa.getResult().replaceAllUsesExcept(unrotate, unrotate);
    foldOutputInverse(sdpa, unrotate);
  }
  if (valueProjection)
    foldValueProjection(sdpa, value.onWrite);
  else
    note(sdpa, "value write",
         "rotation kept online (fold-value-projection=false)");
}

void KVRotationFolder::foldOutputInverse(SdpaOp sdpa, HadamardOp unrotate) {
  std::string what = "folded: SDPA reads the rotated values; the output is "
                     "un-rotated by " + describe(unrotate);
  Operation *user = unrotate->hasOneUse() ? *unrotate->user_begin() : nullptr;
  auto gate = dyn_cast_or_null<OutputGateOp>(user);
  if (gate && mistake == Mistake::InverseAcrossGate &&
      gate.getInput() == unrotate.getResult() && gate->hasOneUse()) {
    // Moves the inverse past the gate, which it may not cross.
    gate.getInputMutable().assign(unrotate.getInput());
    gate.getResult().replaceAllUsesExcept(unrotate, unrotate);
    unrotate.getInputMutable().assign(gate.getResult());
    unrotate->moveAfter(gate);
    user = unrotate->hasOneUse() ? *unrotate->user_begin() : nullptr;
    gate = nullptr;
  }
  if (gate)
    return note(sdpa, "value",
                what + ", kept online before the output gate [output-gate]: "
                       "a gate is non-linear, the inverse may not cross it");
  auto merge = dyn_cast_or_null<tensor::CollapseShapeOp>(user);
  // Every use of the merged heads must be a projection's input: a linear
  // that read them as its weight or bias would see o' where it needs M·o'.
  SmallVector<LinearOp> projections;
  bool onlyInputs =
      merge && merge.getReassociationIndices().size() == 2 &&
      merge.getReassociationIndices()[1].size() == 2 &&
      llvm::all_of(merge->getUses(), [](OpOperand &use) {
        auto linear = dyn_cast<LinearOp>(use.getOwner());
        return linear && use.getOperandNumber() == 0 &&
               linear.getWeight() != use.get() && linear.getBias() != use.get();
      });
  if (onlyInputs)
    for (Operation *mergeUser : merge->getUsers())
      if (!llvm::is_contained(projections, cast<LinearOp>(mergeUser)))
        projections.push_back(cast<LinearOp>(mergeUser));
  if (!outputProjection || projections.empty())
    return note(sdpa, "value",
                what + ", kept online (" +
                    (outputProjection ? "no output projection reads the "
                                        "merged heads directly"
                                      : "fold-output-projection=false") +
                    ")");
  // W_o·blockdiag(M) = rows of W_o rotated by Mᵀ along their last dim.
  std::string names;
  for (LinearOp linear : projections) {
    OpBuilder b(linear);
    Value w = linear.getWeight();
    Value folded = rotate(b, linear.getLoc(), w, unrotate.getRotation(),
                          !unrotate.getInverse(), f64Precision(b.getContext()));
    linear.getWeightMutable().assign(folded);
    names += (names.empty() ? "" : ", ") + weightName(w);
  }
  merge.getSrcMutable().assign(sdpa.getResult());
  unrotate.erase();
  note(sdpa, "value",
       "folded: SDPA reads the rotated values; the output's inverse rotation "
       "is folded into the columns of W_o " + names);
}

void KVRotationFolder::foldValueProjection(SdpaOp sdpa, HadamardOp onWrite) {
  auto split = onWrite.getInput().getDefiningOp<tensor::ExpandShapeOp>();
  auto projection = split ? split.getSrc().getDefiningOp<LinearOp>() : nullptr;
  if (!projection || !split->hasOneUse() || !projection->hasOneUse() ||
      onWrite.getRotatedDim() !=
          cast<RankedTensorType>(split.getType()).getRank() - 1 ||
      split.getReassociationIndices().back().size() != 2)
    return note(sdpa, "value write",
                "rotation kept online: v_proj does not feed it through the "
                "head split alone");
  OpBuilder b(projection);
  Location loc = projection.getLoc();
  HadamardAttr rotation = onWrite.getRotation();
  bool inverse = onWrite.getInverse();
  PrecisionAttr exact = f64Precision(b.getContext());
  Value w = projection.getWeight();
  projection.getWeightMutable().assign(
      rotate(b, loc, w, rotation, inverse, exact, /*dim=*/0));
  if (Value bias = projection.getBias())
    projection.getBiasMutable().assign(
        rotate(b, loc, bias, rotation, inverse, exact));
  onWrite.replaceAllUsesWith(onWrite.getInput());
  onWrite.erase();
  note(sdpa, "value write",
       "folded: the rotation is folded into the rows of W_v " + weightName(w) +
           (projection.getBias() ? " and into b_v" : ""));
}

/// The function's layer, for the report.
std::string layerOf(func::FuncOp func) {
  std::string s = "@" + func.getSymName().str();
  if (auto layer = func->getAttrOfType<IntegerAttr>("attn.layer"))
    s = "layer " + std::to_string(layer.getInt()) + ", " + s;
  return s;
}

struct AttnFoldKVRotationPass
    : rotor::attn::impl::AttnFoldKVRotationBase<AttnFoldKVRotationPass> {
  using Base::Base;

  void runOnOperation() override {
    std::optional<Mistake> applied = parseMistake(testApplyMistake);
    if (!applied) {
      getOperation().emitError()
          << "attn-fold-kv-rotation: unknown test-apply-mistake '"
          << testApplyMistake << "'";
      return signalPassFailure();
    }
    std::string text;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      KVRotationFolder folder(foldOutputProjection, foldValueProjection,
                              *applied);
      SmallVector<SdpaOp> ops;
      func.walk([&](SdpaOp op) { ops.push_back(op); });
      for (SdpaOp op : ops)
        folder.run(op);
      // Rotations left without readers (the un-done inverses on read).
      SmallVector<HadamardOp> dead;
      func.walk([&](HadamardOp op) {
        if (op->use_empty())
          dead.push_back(op);
      });
      for (HadamardOp op : dead)
        op.erase();
      if (folder.lines.empty())
        continue;
      text += layerOf(func) + ":\n";
      for (const std::string &line : folder.lines)
        text += "  " + line + "\n";
    }
    if (!report.empty() && failed(writeReport(text)))
      return signalPassFailure();
  }

  LogicalResult writeReport(std::string text) {
    if (text.empty())
      text = "no rotated KV cache read in this module\n";
    text = "attn-fold-kv-rotation report\n" + text;
    if (report == "-") {
      llvm::errs() << text;
      return success();
    }
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file =
        openOutputFile(report, &error);
    if (!file) {
      getOperation().emitError()
          << "attn-fold-kv-rotation: cannot write the report: " << error;
      return failure();
    }
    file->os() << text;
    file->keep();
    return success();
  }
};

} // namespace
