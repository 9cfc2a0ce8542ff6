//===- EmulateGpuLaunchesOnHost.cpp - gpu.launch as host thread teams -----===//
//
// The host runs a workgroup kernel's phases one after another, which checks
// its arithmetic but not what the GPU mapping adds: each phase as a loop
// strided by the block size, the barriers between phases, the workgroup
// buffers shared by the block's threads. This pass runs the mapped form
// itself on the host: each gpu.launch becomes a loop over its blocks, and
// each block an OpenMP team of as many threads as the block has, whose
// gpu.barriers are team barriers and whose workgroup buffers are shared
// allocas. A missing barrier or a phase that races then shows up in the
// numbers, on a machine without a GPU.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

namespace rotor {
#define GEN_PASS_DEF_EMULATEGPULAUNCHESONHOST
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

/// `type` without a GPU address space (workgroup buffers become host ones).
Type withoutGpuAddressSpace(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  if (!memref ||
      !isa_and_nonnull<gpu::AddressSpaceAttr>(memref.getMemorySpace()))
    return type;
  return MemRefType::get(memref.getShape(), memref.getElementType(),
                         memref.getLayout());
}

/// The gpu ops inside an emulated launch's `team`: thread and block ids and
/// the block and grid sizes become the emulation's values, barriers the
/// team's barriers.
LogicalResult replaceGpuOps(omp::ParallelOp team, gpu::KernelDim3 threadIds,
                            gpu::KernelDim3 blockIds, gpu::KernelDim3 blockSize,
                            gpu::KernelDim3 gridSize) {
  SmallVector<Operation *> gpuOps;
  team.walk([&](Operation *op) {
    if (isa_and_nonnull<gpu::GPUDialect>(op->getDialect()))
      gpuOps.push_back(op);
  });
  auto pick = [](gpu::Dimension dim, gpu::KernelDim3 values) {
    return dim == gpu::Dimension::x   ? values.x
           : dim == gpu::Dimension::y ? values.y
                                      : values.z;
  };
  for (Operation *op : gpuOps) {
    Value replacement;
    if (auto id = dyn_cast<gpu::ThreadIdOp>(op))
      replacement = pick(id.getDimension(), threadIds);
    else if (auto id = dyn_cast<gpu::BlockIdOp>(op))
      replacement = pick(id.getDimension(), blockIds);
    else if (auto dim = dyn_cast<gpu::BlockDimOp>(op))
      replacement = pick(dim.getDimension(), blockSize);
    else if (auto dim = dyn_cast<gpu::GridDimOp>(op))
      replacement = pick(dim.getDimension(), gridSize);
    else if (isa<gpu::BarrierOp>(op)) {
      OpBuilder ob(op);
      omp::BarrierOp::create(ob, op->getLoc());
      op->erase();
      continue;
    } else {
      return op->emitOpError("cannot be emulated on the host");
    }
    op->getResult(0).replaceAllUsesWith(replacement);
    op->erase();
  }
  return success();
}

/// Values inside `team` that were workgroup memory are host memory now.
void dropGpuAddressSpaces(omp::ParallelOp team) {
  team.walk([&](Operation *op) {
    for (Value result : op->getResults())
      result.setType(withoutGpuAddressSpace(result.getType()));
    for (Region &region : op->getRegions())
      for (Block &blk : region)
        for (BlockArgument arg : blk.getArguments())
          arg.setType(withoutGpuAddressSpace(arg.getType()));
  });
}

/// Whether the host can run `launch` as teams of threads (an error on it
/// when not).
LogicalResult checkEmulatable(gpu::LaunchOp launch) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty() ||
      launch.hasClusterSize())
    return launch.emitOpError(
        "cannot be emulated on the host: async or clustered launch");
  // Per-thread buffers would be allocas inside the team, which
  // canonicalization may hoist out of it and so share; the mapping never
  // makes them.
  if (!launch.getPrivateAttributions().empty())
    return launch.emitOpError(
        "cannot be emulated on the host: private attributions");
  if (!llvm::hasSingleElement(launch.getBody()))
    return launch.emitOpError(
        "cannot be emulated on the host: its body has several blocks");
  return success();
}

/// Replaces `launch` by loops over its blocks, each block an OpenMP team of
/// its threads (`threadNum` gives a thread its number in the team).
LogicalResult emulate(gpu::LaunchOp launch, func::FuncOp threadNum) {
  if (failed(checkEmulatable(launch)))
    return failure();
  OpBuilder b(launch);
  Location loc = launch.getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
  gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
  Value threads = arith::MulIOp::create(
      b, loc, arith::MulIOp::create(b, loc, block.x, block.y), block.z);
  Value threadsI32 =
      arith::IndexCastOp::create(b, loc, b.getI32Type(), threads);

  // Blocks one after another, each a team of threads, in the reverse of
  // the order the phase-by-phase host run takes them: a kernel whose blocks
  // depend on each other's order then gives different numbers.
  SmallVector<Value> blockIds;
  for (Value size : {grid.z, grid.y, grid.x}) {
    auto loop = scf::ForOp::create(b, loc, zero, size, one);
    b.setInsertionPointToStart(loop.getBody());
    blockIds.push_back(
        arith::SubIOp::create(b, loc, arith::SubIOp::create(b, loc, size, one),
                              loop.getInductionVar()));
  }
  // A block's buffers live as long as the block: an alloca scope per block.
  // The canonicalizer inlines it into the scf.for (itself an allocation
  // scope); rotor-scope-parallel-loop-allocas keeps them per iteration.
  auto scope = memref::AllocaScopeOp::create(b, loc, TypeRange{});
  b.createBlock(&scope.getBodyRegion());
  memref::AllocaScopeReturnOp::create(b, loc);
  b.setInsertionPointToStart(&scope.getBodyRegion().front());
  IRMapping mapping;
  Region &body = launch.getBody();
  gpu::KernelDim3 blockArgs = launch.getBlockIds();
  mapping.map(blockArgs.z, blockIds[0]);
  mapping.map(blockArgs.y, blockIds[1]);
  mapping.map(blockArgs.x, blockIds[2]);
  gpu::KernelDim3 gridArgs = launch.getGridSize();
  gpu::KernelDim3 sizeArgs = launch.getBlockSize();
  mapping.map(gridArgs.x, grid.x);
  mapping.map(gridArgs.y, grid.y);
  mapping.map(gridArgs.z, grid.z);
  mapping.map(sizeArgs.x, block.x);
  mapping.map(sizeArgs.y, block.y);
  mapping.map(sizeArgs.z, block.z);
  // Attributions become host allocas where `b` is.
  auto allocate = [&](ArrayRef<BlockArgument> buffers) {
    for (BlockArgument buffer : buffers)
      mapping.map(buffer, memref::AllocaOp::create(
                              b, loc,
                              cast<MemRefType>(
                                  withoutGpuAddressSpace(buffer.getType())))
                              .getResult());
  };
  // Workgroup buffers: one per block, shared by its team.
  allocate(launch.getWorkgroupAttributions());

  omp::ParallelOperands clauses;
  clauses.numThreads = threadsI32;
  auto team = omp::ParallelOp::create(b, loc, clauses);
  Block *teamBody = b.createBlock(&team.getRegion());
  b.setInsertionPointToStart(teamBody);
  // Thread (x, y, z) from the team's thread number, x fastest.
  Value tid = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      func::CallOp::create(b, loc, threadNum, ValueRange{}).getResult(0));
  gpu::KernelDim3 threadArgs = launch.getThreadIds();
  Value tx = arith::RemUIOp::create(b, loc, tid, block.x);
  Value rest = arith::DivUIOp::create(b, loc, tid, block.x);
  mapping.map(threadArgs.x, tx);
  mapping.map(threadArgs.y, arith::RemUIOp::create(b, loc, rest, block.y));
  mapping.map(threadArgs.z, arith::DivUIOp::create(b, loc, rest, block.y));

  // The body, cloned into the team's region.
  Block &entry = body.front();
  for (Operation &op : entry.without_terminator())
    b.clone(op, mapping);
  omp::TerminatorOp::create(b, loc);

  gpu::KernelDim3 threadIds{mapping.lookup(threadArgs.x),
                            mapping.lookup(threadArgs.y),
                            mapping.lookup(threadArgs.z)};
  // blockIds were made z, y, x (outermost loop first).
  gpu::KernelDim3 blockXyz{blockIds[2], blockIds[1], blockIds[0]};
  if (failed(replaceGpuOps(team, threadIds, blockXyz, block, grid)))
    return failure();
  dropGpuAddressSpaces(team);
  launch.erase();
  return success();
}

struct EmulateGpuLaunchesOnHostPass
    : rotor::impl::EmulateGpuLaunchesOnHostBase<EmulateGpuLaunchesOnHostPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<gpu::LaunchOp> launches;
    module.walk([&](gpu::LaunchOp launch) { launches.push_back(launch); });
    if (launches.empty())
      return;
    // int omp_get_thread_num(void), from the OpenMP runtime.
    auto threadNum = module.lookupSymbol<func::FuncOp>("omp_get_thread_num");
    if (!threadNum) {
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      threadNum = func::FuncOp::create(b, module.getLoc(), "omp_get_thread_num",
                                       b.getFunctionType({}, {b.getI32Type()}));
      threadNum.setPrivate();
    }
    for (gpu::LaunchOp launch : launches)
      if (failed(emulate(launch, threadNum)))
        return signalPassFailure();
  }
};

} // namespace
