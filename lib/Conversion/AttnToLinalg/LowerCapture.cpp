//===- LowerCapture.cpp - attn.capture as a call into the runtime ---------===//
//
// attn.capture hands its tensor (widened to f32) and positions (i64) to the
// runtime's `rotor_capture(id, data, positions)`, which appends them to the
// stream of tag `id`. The module attribute `attn.captures` lists the tags
// by id, for the bundle's manifest.
//
// Emits a linalg.generic widening the data, bufferization.to_buffer and a
// func.call.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"

#include "rotor/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::lowering;

namespace {

constexpr StringLiteral kCaptureFn = "rotor_capture";

struct LowerCapture : OpRewritePattern<CaptureOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CaptureOp op,
                                PatternRewriter &rewriter) const override {
    auto module = op->getParentOfType<ModuleOp>();
    if (!module)
      return rewriter.notifyMatchFailure(op, "not inside a module");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type f32 = b.getF32Type(), i64 = b.getI64Type();
    auto dataType = UnrankedMemRefType::get(f32, Attribute());
    auto posType = UnrankedMemRefType::get(i64, Attribute());

    // The tag's id: its index in the module's list of capture tags.
    SmallVector<Attribute> tags;
    if (auto list = module->getAttrOfType<ArrayAttr>("attn.captures"))
      tags.assign(list.begin(), list.end());
    auto it = llvm::find(tags, op.getTagAttr());
    int64_t id = it - tags.begin();
    if (it == tags.end()) {
      tags.push_back(op.getTagAttr());
      rewriter.modifyOpInPlace(module, [&] {
        module->setAttr("attn.captures", ArrayAttr::get(ctx, tags));
      });
    }

    if (!module.lookupSymbol<func::FuncOp>(kCaptureFn)) {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(module.getBody());
      auto decl = func::FuncOp::create(
          rewriter, op.getLoc(), kCaptureFn,
          FunctionType::get(ctx, {i64, dataType, posType}, {}));
      decl.setPrivate();
    }

    Value data = op.getInput();
    if (cast<RankedTensorType>(data.getType()).getElementType() != f32)
      data = elementwise(b, data, data, f32,
                         [&](OpBuilder &nb, Location loc, ValueRange args) {
                           return castFloat(nb, loc, args[0], f32);
                         });
    Value positions = op.getPositions();
    if (cast<RankedTensorType>(positions.getType()).getElementType() != i64)
      positions = elementwise(
          b, positions, positions, i64,
          [&](OpBuilder &nb, Location loc, ValueRange args) -> Value {
            return arith::ExtSIOp::create(nb, loc, i64, args[0]);
          });
    auto asBuffer = [&](Value tensor, Type unranked) {
      auto type = cast<RankedTensorType>(tensor.getType());
      Value buffer = bufferization::ToBufferOp::create(
          b, MemRefType::get(type.getShape(), type.getElementType()), tensor,
          /*read_only=*/b.getUnitAttr());
      return memref::CastOp::create(b, unranked, buffer).getResult();
    };
    Value idValue = arith::ConstantOp::create(b, b.getI64IntegerAttr(id));
    func::CallOp::create(b, kCaptureFn, TypeRange{},
                         ValueRange{idValue, asBuffer(data, dataType),
                                    asBuffer(positions, posType)});
    rewriter.replaceOp(op, op.getInput());
    return success();
  }
};

} // namespace

void rotor::attn::lowering::populateCaptureLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerCapture>(patterns.getContext());
}
