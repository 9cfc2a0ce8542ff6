//===- WorkgroupKernel.cpp - Building blocks of workgroup kernels ---------===//

#include "WorkgroupKernel.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;

namespace rotor::attn::lowering {

Value workgroupBuffer(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                      Type elem) {
  auto workgroup = gpu::AddressSpaceAttr::get(b.getContext(),
                                              gpu::AddressSpace::Workgroup);
  return memref::AllocaOp::create(
      b, MemRefType::get(shape, elem, MemRefLayoutAttrInterface(), workgroup));
}

Value readOnlyBuffer(ImplicitLocOpBuilder &b, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
  strides.back() = 1;
  auto layout =
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
  return bufferization::ToBufferOp::create(
      b, MemRefType::get(type.getShape(), type.getElementType(), layout),
      tensor, /*read_only=*/true);
}

Value rowsAligned16(ImplicitLocOpBuilder &b, Value buffer,
                    int64_t vectorWidth) {
  int64_t bytes = bytesOf(cast<MemRefType>(buffer.getType()).getElementType());
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  auto divides = [&](Value v, int64_t d) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                 arith::RemUIOp::create(b, v, c(d)), c(0));
  };
  auto meta = memref::ExtractStridedMetadataOp::create(b, buffer);
  Value start = arith::AddIOp::create(
      b, memref::ExtractAlignedPointerAsIndexOp::create(b, buffer),
      arith::MulIOp::create(b, meta.getOffset(), c(bytes)));
  Value aligned = divides(start, 16);
  for (Value stride : meta.getStrides().drop_back())
    aligned = arith::AndIOp::create(b, aligned, divides(stride, vectorWidth));
  return aligned;
}

void threadPhase(OpBuilder &b, Location loc, int64_t count,
                 function_ref<void(ImplicitLocOpBuilder &, Value)> body) {
  auto mapping = b.getArrayAttr(
      {gpu::GPUThreadMappingAttr::get(b.getContext(), gpu::MappingId::DimX)});
  scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(count)},
                        ValueRange{}, mapping,
                        [&](OpBuilder &tb, Location tl, ValueRange ivs) {
                          ImplicitLocOpBuilder ib(tl, tb);
                          body(ib, ivs[0]);
                          scf::InParallelOp::create(ib);
                        });
}

void workgroupLoop(
    ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> grid,
    function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body) {
  static constexpr gpu::MappingId dims[] = {
      gpu::MappingId::DimX, gpu::MappingId::DimY, gpu::MappingId::DimZ};
  assert(grid.size() <= 3 && "at most three grid dims");
  SmallVector<Attribute> mapping;
  for (size_t i = 0; i < grid.size(); ++i)
    mapping.push_back(gpu::GPUBlockMappingAttr::get(b.getContext(), dims[i]));
  scf::ForallOp::create(b, grid, ValueRange{}, b.getArrayAttr(mapping),
                        [&](OpBuilder &ob, Location loc, ValueRange ivs) {
                          auto scope = memref::AllocaScopeOp::create(
                              ob, loc, TypeRange{});
                          Block *scopeBody = new Block();
                          scope.getBodyRegion().push_back(scopeBody);
                          ImplicitLocOpBuilder w(loc, ob);
                          w.setInsertionPointToStart(scopeBody);
                          body(w, ivs);
                          memref::AllocaScopeReturnOp::create(w, ValueRange{});
                          w.setInsertionPointAfter(scope);
                          scf::InParallelOp::create(w);
                        });
}

void stageTile(
    OpBuilder &b, Location loc, Value src, Value dst, int64_t rows,
    int64_t cols, int64_t vectorWidth, Value aligned,
    function_ref<SmallVector<Value>(OpBuilder &, Location, Value, Value)>
        indices,
    function_ref<Value(OpBuilder &, Location, Value, Value)> exists,
    function_ref<Value(OpBuilder &, Location, Value, Value, Value)> convert,
    Type valueType) {
  const int64_t vw = vectorWidth;
  Type elem =
      valueType ? valueType : cast<MemRefType>(src.getType()).getElementType();
  threadPhase(
      b, loc, rows * (cols / vw), [&](ImplicitLocOpBuilder &ib, Value it) {
        auto c = [&](OpBuilder &cb, Location cl, int64_t v) {
          return arith::ConstantIndexOp::create(cb, cl, v).getResult();
        };
        Value r = arith::DivUIOp::create(ib, it, c(ib, ib.getLoc(), cols / vw));
        Value col = arith::MulIOp::create(
            ib, arith::RemUIOp::create(ib, it, c(ib, ib.getLoc(), cols / vw)),
            c(ib, ib.getLoc(), vw));
        // Loaded elements go through `convert`; the zeros are already
        // values.
        auto storeAll = [&](OpBuilder &sb, Location sl, ArrayRef<Value> values,
                            bool loaded) {
          for (auto [n, element] : llvm::enumerate(values)) {
            Value at =
                arith::AddIOp::create(sb, sl, col, c(sb, sl, int64_t(n)));
            Value value =
                loaded && convert ? convert(sb, sl, element, r, at) : element;
            memref::StoreOp::create(sb, sl, toCarrier(sb, sl, value), dst,
                                    ValueRange{r, at});
          }
        };
        auto scalarLoads = [&](OpBuilder &sb, Location sl) {
          SmallVector<Value> values;
          for (int64_t n = 0; n < vw; ++n)
            values.push_back(memref::LoadOp::create(
                sb, sl, src,
                indices(sb, sl, r,
                        arith::AddIOp::create(sb, sl, col, c(sb, sl, n)))));
          storeAll(sb, sl, values, /*loaded=*/true);
        };
        scf::IfOp::create(
            ib, exists(ib, ib.getLoc(), r, col),
            [&](OpBuilder &tb, Location tl) {
              if (vw == 1) {
                scalarLoads(tb, tl);
              } else {
                scf::IfOp::create(
                    tb, tl, aligned,
                    [&](OpBuilder &vb, Location vl) {
                      storeAll(vb, vl,
                               loadAlignedVector(vb, vl, src,
                                                 indices(vb, vl, r, col), vw),
                               /*loaded=*/true);
                      scf::YieldOp::create(vb, vl);
                    },
                    [&](OpBuilder &sb, Location sl) {
                      scalarLoads(sb, sl);
                      scf::YieldOp::create(sb, sl);
                    });
              }
              scf::YieldOp::create(tb, tl);
            },
            [&](OpBuilder &tb, Location tl) {
              storeAll(tb, tl,
                       SmallVector<Value>(vw, floatConst(tb, tl, elem, 0.0)),
                       /*loaded=*/false);
              scf::YieldOp::create(tb, tl);
            });
      });
}

MicroTile microTile(ImplicitLocOpBuilder &b, Value index, int64_t colGroups,
                    int64_t microRows, int64_t microCols) {
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  Value rowGroup = arith::DivUIOp::create(b, index, c(colGroups));
  Value colGroup = arith::RemUIOp::create(b, index, c(colGroups));
  Value firstRow = arith::MulIOp::create(b, rowGroup, c(microRows));
  MicroTile tile;
  for (int64_t r = 0; r < microRows; ++r)
    tile.rows.push_back(arith::AddIOp::create(b, firstRow, c(r)));
  for (int64_t m = 0; m < microCols; ++m)
    tile.cols.push_back(arith::AddIOp::create(b, colGroup, c(m * colGroups)));
  return tile;
}

} // namespace rotor::attn::lowering

namespace rotor::attn::lowering {

SmallVector<Value> loadAlignedVector(OpBuilder &b, Location loc, Value memref,
                                     ValueRange indices, int64_t width) {
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  Value vec = vector::LoadOp::create(b, loc, VectorType::get({width}, elem),
                                     memref, indices, /*nontemporal=*/false,
                                     llvm::MaybeAlign(16));
  Type carrier = carrierType(elem);
  if (carrier != elem)
    vec = vector::BitCastOp::create(b, loc, VectorType::get({width}, carrier),
                                    vec);
  SmallVector<Value> values;
  for (int64_t i = 0; i < width; ++i)
    values.push_back(vector::ExtractOp::create(b, loc, vec, i));
  return values;
}

Type carrierType(Type elem) {
  if (isa<FloatType>(elem) && elem.getIntOrFloatBitWidth() == 16)
    return IntegerType::get(elem.getContext(), 16);
  return elem;
}

Value toCarrier(OpBuilder &b, Location loc, Value v) {
  Type carrier = carrierType(v.getType());
  return carrier == v.getType() ? v
                                : arith::BitcastOp::create(b, loc, carrier, v);
}

Value fromCarrier(OpBuilder &b, Location loc, Value v, Type elem) {
  return v.getType() == elem ? v : arith::BitcastOp::create(b, loc, elem, v);
}

} // namespace rotor::attn::lowering
