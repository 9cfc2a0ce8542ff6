//===- WorkgroupKernel.h - Building blocks of workgroup kernels -*- C++ -*-===//
//
// The pieces every workgroup-form lowering (docs/KERNELS.md) writes: the
// block-mapped loop with its alloca scope, thread phases, read-only views of
// the operands, and the host-side test that lets rows be read as 16-byte
// vectors.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_LIB_CODEGEN_KERNELS_WORKGROUPKERNEL_H
#define ROTOR_LIB_CODEGEN_KERNELS_WORKGROUPKERNEL_H

#include "rotor/Dialect/Attn/Utils/OpArithmetic.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/TypeUtilities.h"

namespace rotor::attn::lowering {

/// How a workgroup buffer holds elements of type `elem`: 16-bit floats as
/// i16, the rest as themselves. A bf16 value kept in a register across
/// blocks is promoted to f32 by hosts without native bf16 and truncated
/// back through a libcall (__truncsfbf2) that JIT-compiled code lacks; as
/// i16 it is only moved.
mlir::Type carrierType(mlir::Type elem);
/// `v` as its carrier, and back.
mlir::Value toCarrier(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);
mlir::Value fromCarrier(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v,
                        mlir::Type elem);

/// The `width` elements at `indices` of `memref` (innermost dim), read as one
/// 16-byte-aligned vector load, as carriers.
llvm::SmallVector<mlir::Value>
loadAlignedVector(mlir::OpBuilder &b, mlir::Location loc, mlir::Value memref,
                  mlir::ValueRange indices, int64_t width);

/// An index constant.
inline mlir::Value indexConst(mlir::OpBuilder &b, mlir::Location loc,
                              int64_t v) {
  return mlir::arith::ConstantIndexOp::create(b, loc, v);
}
inline mlir::Value indexConst(mlir::ImplicitLocOpBuilder &b, int64_t v) {
  return indexConst(b, b.getLoc(), v);
}

/// A workgroup buffer of `shape` x `elem`: a static memref.alloca in
/// #gpu.address_space<workgroup>, at the top of a workgroup loop's body.
/// rotor-map-workgroup-loops-to-gpu makes it a workgroup attribution of the
/// launch; the host drops the address space (rotor-drop-gpu-address-spaces)
/// and keeps one buffer per workgroup iteration.
mlir::Value workgroupBuffer(mlir::ImplicitLocOpBuilder &b,
                            llvm::ArrayRef<int64_t> shape, mlir::Type elem);

/// Bytes per element of the int or float type `t`.
inline int64_t bytesOf(mlir::Type t) {
  return (t.getIntOrFloatBitWidth() + 7) / 8;
}

/// `tensor` as a read-only buffer of any strides and offset, with a unit
/// innermost stride (so that rows can be read as vectors).
mlir::Value readOnlyBuffer(mlir::ImplicitLocOpBuilder &b, mlir::Value tensor);

/// An i1, computed where `b` is: whether every row of `buffer` (its
/// innermost dim) starts 16-byte aligned, i.e. its first element is and
/// every outer stride is a multiple of `vectorWidth` elements.
mlir::Value rowsAligned16(mlir::ImplicitLocOpBuilder &b, mlir::Value buffer,
                          int64_t vectorWidth);

/// One phase of a workgroup: `count` iterations spread over its threads
/// (an scf.forall mapped to #gpu.thread<x>).
void threadPhase(
    mlir::OpBuilder &b, mlir::Location loc, int64_t count,
    llvm::function_ref<void(mlir::ImplicitLocOpBuilder &, mlir::Value)> body);

/// The workgroup loop: an scf.forall over `grid` whose dims map to GPU
/// blocks x, y, z in order; `body` builds one workgroup's code inside an
/// alloca scope (its allocas are the workgroup's buffers).
void workgroupLoop(
    mlir::ImplicitLocOpBuilder &b, llvm::ArrayRef<mlir::OpFoldResult> grid,
    llvm::function_ref<void(mlir::ImplicitLocOpBuilder &, mlir::ValueRange)>
        body);

/// A phase that stages a `rows` x `cols` tile of `src` into the workgroup
/// buffer `dst` (element type carrierType(src's)): element (r, c) is
/// src[indices(r, c)], `indices` giving the innermost index last, or zero
/// where `exists(r, c)` is false. Each thread iteration moves `vectorWidth`
/// consecutive elements (cols % vectorWidth == 0, and so must every row
/// length be, for the zeros): one 16-byte vector load where `aligned` (an
/// i1, or null when vectorWidth is 1) holds, else scalar loads of the same
/// elements. With `convert`, each loaded element becomes
/// convert(element, r, c), of type `valueType` (the tile's), before it is
/// stored: how a tile is dequantized as it is staged.
void stageTile(
    mlir::OpBuilder &b, mlir::Location loc, mlir::Value src, mlir::Value dst,
    int64_t rows, int64_t cols, int64_t vectorWidth, mlir::Value aligned,
    llvm::function_ref<llvm::SmallVector<mlir::Value>(
        mlir::OpBuilder &, mlir::Location, mlir::Value, mlir::Value)>
        indices,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::Value, mlir::Value)>
        exists,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                   mlir::Value, mlir::Value, mlir::Value)>
        convert = nullptr,
    mlir::Type valueType = {});

/// The elements micro-tile `index` of a phase owns, in a tile `colGroups`
/// micro-tiles wide: rows (index / colGroups) * microRows + r, contiguous,
/// and columns index % colGroups + c * colGroups, strided, so that a warp's
/// neighbouring threads read neighbouring columns (distinct banks).
struct MicroTile {
  llvm::SmallVector<mlir::Value> rows, cols;
};
MicroTile microTile(mlir::ImplicitLocOpBuilder &b, mlir::Value index,
                    int64_t colGroups, int64_t microRows, int64_t microCols);

} // namespace rotor::attn::lowering

#endif // ROTOR_LIB_CODEGEN_KERNELS_WORKGROUPKERNEL_H
