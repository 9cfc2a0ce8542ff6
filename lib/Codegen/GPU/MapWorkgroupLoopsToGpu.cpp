//===- MapWorkgroupLoopsToGpu.cpp - Block-mapped loops as gpu.launch ------===//
//
// Lowerings that write a kernel for a workgroup (lib/Codegen/Kernels)
// express it as an scf.forall mapped to #gpu.block whose body allocates its
// shared buffers with memref.alloca and runs thread phases (scf.forall
// mapped to #gpu.thread<x>). Upstream's convert-parallel-loops-to-gpu maps
// one nest of parallel loops per launch and cannot sequence several thread
// loops with barriers or place buffers in workgroup memory; this pass does
// exactly that, and nothing else.
//
//===----------------------------------------------------------------------===//

#include "rotor/Codegen/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace rotor {
#define GEN_PASS_DEF_MAPWORKGROUPLOOPSTOGPU
#include "rotor/Codegen/Passes.h.inc"
} // namespace rotor

using namespace mlir;

namespace {

template <typename MappingAttr> bool isMappedTo(scf::ParallelOp loop) {
  auto mapping = loop->getAttrOfType<ArrayAttr>("mapping");
  return mapping && !mapping.empty() &&
         llvm::all_of(mapping, [](Attribute a) { return isa<MappingAttr>(a); });
}

bool isConstant(Value v, int64_t n) {
  auto c = getConstantIntValue(v);
  return c && *c == n;
}

/// A block-mapped loop and its workgroup buffers: static allocas directly in
/// its body, or in an alloca scope there.
struct WorkgroupLoop {
  scf::ParallelOp loop;
  ArrayAttr mapping;
  SmallVector<memref::AllocaScopeOp> scopes;
  SmallVector<memref::AllocaOp> allocas;
};

/// The block dim (x, y or z) that a block-mapping attribute names.
unsigned blockDim(Attribute attr) {
  return static_cast<unsigned>(cast<gpu::GPUBlockMappingAttr>(attr).getBlock());
}

/// `loop`'s grid and buffers, or an error when it is not a grid.
FailureOr<WorkgroupLoop> matchWorkgroupLoop(scf::ParallelOp loop) {
  WorkgroupLoop w{loop, loop->getAttrOfType<ArrayAttr>("mapping"), {}, {}};
  if (loop.getNumLoops() > 3 || !loop.getInitVals().empty())
    return loop.emitOpError("a block-mapped loop must have at most 3 dims "
                            "and no reductions");
  for (auto [lb, step] : llvm::zip(loop.getLowerBound(), loop.getStep()))
    if (!isConstant(lb, 0) || !isConstant(step, 1))
      return loop.emitOpError(
          "a block-mapped loop must start at 0 with step 1");

  auto collect = [&](Block &block) -> LogicalResult {
    for (auto alloca : block.getOps<memref::AllocaOp>()) {
      auto space = dyn_cast_or_null<gpu::AddressSpaceAttr>(
          alloca.getType().getMemorySpace());
      if (!alloca.getType().hasStaticShape() || !space ||
          space.getValue() != gpu::AddressSpace::Workgroup)
        return alloca.emitOpError(
            "a workgroup buffer must have a static shape in "
            "#gpu.address_space<workgroup>");
      w.allocas.push_back(alloca);
    }
    return success();
  };
  Block *body = loop.getBody();
  if (failed(collect(*body)))
    return failure();
  for (auto scope : body->getOps<memref::AllocaScopeOp>()) {
    if (scope.getNumResults() != 0)
      return scope.emitOpError("a workgroup alloca scope must not yield");
    w.scopes.push_back(scope);
    if (failed(collect(scope.getBodyRegion().front())))
      return failure();
  }
  return w;
}

/// Rejects what would run wrongly once every thread executes the body.
LogicalResult verifyWorkgroupBody(WorkgroupLoop &w) {
  scf::ParallelOp loop = w.loop;
  WalkResult bad = loop.getBody()->walk([&](Operation *op) {
    if (auto inner = dyn_cast<scf::ParallelOp>(op)) {
      if (!isMappedTo<gpu::GPUThreadMappingAttr>(inner) ||
          inner.getNumLoops() != 1 || !inner.getInitVals().empty()) {
        op->emitOpError("inside a block-mapped loop, parallel loops must be "
                        "1-D thread phases (mapping [#gpu.thread<x>])");
        return WalkResult::interrupt();
      }
      if (inner->getParentOfType<scf::ParallelOp>() != loop) {
        op->emitOpError("thread phases cannot nest");
        return WalkResult::interrupt();
      }
    }
    if (isa<memref::AllocOp, scf::ForallOp>(op)) {
      op->emitOpError("is not supported inside a block-mapped loop");
      return WalkResult::interrupt();
    }
    // Code between phases runs in every thread: a store there to a
    // workgroup buffer would race with itself.
    Value stored;
    if (auto store = dyn_cast<memref::StoreOp>(op))
      stored = store.getMemRef();
    else if (auto store = dyn_cast<vector::StoreOp>(op))
      stored = store.getBase();
    if (stored && llvm::any_of(w.allocas, [&](memref::AllocaOp a) {
          return a.getResult() == stored;
        })) {
      auto phase = op->getParentOfType<scf::ParallelOp>();
      if (phase == loop) {
        op->emitOpError("writes a workgroup buffer outside a thread phase");
        return WalkResult::interrupt();
      }
    }
    if (auto alloca = dyn_cast<memref::AllocaOp>(op);
        alloca && !llvm::is_contained(w.allocas, alloca)) {
      op->emitOpError("a workgroup buffer must be allocated at the top of "
                      "the block-mapped loop");
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return failure(bad.wasInterrupted());
}

/// A launch in place of `w.loop`: its grid, `threads` threads per block, a
/// workgroup attribution per buffer, and an empty body.
FailureOr<gpu::LaunchOp> createLaunch(OpBuilder &b, WorkgroupLoop &w,
                                      Value &threads, int64_t blockSize) {
  Location loc = w.loop.getLoc();
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value grid[3] = {one, one, one};
  for (auto [dim, attr] : llvm::enumerate(w.mapping)) {
    unsigned id = blockDim(attr);
    if (id > 2 || grid[id] != one)
      return w.loop.emitOpError("each block dim x, y, z may be mapped once");
    grid[id] = w.loop.getUpperBound()[dim];
  }
  // The allocas are in the workgroup address space already: the
  // attributions take their types as they are.
  SmallVector<Type> buffers;
  for (memref::AllocaOp alloca : w.allocas)
    buffers.push_back(alloca.getType());
  threads = arith::ConstantIndexOp::create(b, loc, blockSize);
  auto launch = gpu::LaunchOp::create(
      b, loc, grid[0], grid[1], grid[2], threads, one, one,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, buffers);
  b.setInsertionPointToEnd(&launch.getBody().front());
  gpu::TerminatorOp::create(b, loc);
  return launch;
}

/// Moves the loop's body into `launch`: the block ids replace the
/// induction variables, the attributions the allocas.
void moveBodyIntoLaunch(WorkgroupLoop &w, gpu::LaunchOp launch) {
  Block &launchBody = launch.getBody().front();
  Block *body = w.loop.getBody();
  launchBody.getOperations().splice(launchBody.getTerminator()->getIterator(),
                                    body->getOperations(), body->begin(),
                                    std::prev(body->end()));
  gpu::KernelDim3 ids = launch.getBlockIds();
  Value idValues[3] = {ids.x, ids.y, ids.z};
  for (auto [dim, attr] : llvm::enumerate(w.mapping))
    w.loop.getInductionVars()[dim].replaceAllUsesWith(idValues[blockDim(attr)]);
  for (auto [alloca, buffer] :
       llvm::zip(w.allocas, launch.getWorkgroupAttributions())) {
    alloca.getResult().replaceAllUsesWith(buffer);
    alloca.erase();
  }
  // The scopes only bounded the host's stack; their ops run in the kernel.
  for (memref::AllocaScopeOp scope : w.scopes) {
    Block &inner = scope.getBodyRegion().front();
    launchBody.getOperations().splice(scope->getIterator(),
                                      inner.getOperations(), inner.begin(),
                                      std::prev(inner.end()));
    scope.erase();
  }
}

/// Whether `op` reads a workgroup buffer of `launch`.
bool readsWorkgroupMemory(Operation *op, gpu::LaunchOp launch) {
  return op
      ->walk([&](Operation *inner) {
        Value read;
        if (auto load = dyn_cast<memref::LoadOp>(inner))
          read = load.getMemRef();
        else if (auto load = dyn_cast<vector::LoadOp>(inner))
          read = load.getBase();
        if (read && llvm::is_contained(launch.getWorkgroupAttributions(), read))
          return WalkResult::interrupt();
        return WalkResult::advance();
      })
      .wasInterrupted();
}

/// Thread phases: a loop strided by the block size, then a barrier. A phase
/// right after code that read a workgroup buffer (in every thread) also
/// waits before it starts, lest it overwrite what a slower thread has yet
/// to read.
void lowerThreadPhases(OpBuilder &b, gpu::LaunchOp launch, Value threads) {
  Block &launchBody = launch.getBody().front();
  Location loc = launch.getLoc();
  SmallVector<scf::ParallelOp> phases;
  launch.getBody().walk([&](scf::ParallelOp p) { phases.push_back(p); });
  Value tid = nullptr;
  for (scf::ParallelOp phase : phases) {
    b.setInsertionPointToStart(&launchBody);
    if (!tid)
      tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
    for (Operation *before = phase->getPrevNode();
         before && !isa<gpu::BarrierOp, scf::ParallelOp>(before);
         before = before->getPrevNode()) {
      if (readsWorkgroupMemory(before, launch)) {
        b.setInsertionPoint(phase);
        gpu::BarrierOp::create(b, phase.getLoc());
        break;
      }
    }
    b.setInsertionPoint(phase);
    Location pl = phase.getLoc();
    Value lb = phase.getLowerBound()[0], ub = phase.getUpperBound()[0],
          step = phase.getStep()[0];
    Value start = arith::AddIOp::create(
        b, pl, lb, arith::MulIOp::create(b, pl, tid, step));
    Value stride = arith::MulIOp::create(b, pl, step, threads);
    auto strided = scf::ForOp::create(b, pl, start, ub, stride);
    Block *forBody = strided.getBody();
    forBody->getOperations().splice(
        forBody->begin(), phase.getBody()->getOperations(),
        phase.getBody()->begin(), std::prev(phase.getBody()->end()));
    phase.getInductionVars()[0].replaceAllUsesWith(strided.getInductionVar());
    b.setInsertionPointAfter(strided);
    gpu::BarrierOp::create(b, pl);
    phase.erase();
  }
}

struct MapWorkgroupLoopsToGpuPass
    : rotor::impl::MapWorkgroupLoopsToGpuBase<MapWorkgroupLoopsToGpuPass> {
  using Base::Base;

  void runOnOperation() override {
    if (blockSize < 1 || blockSize > 1024) {
      getOperation().emitError()
          << "rotor-map-workgroup-loops-to-gpu: block-size must be in "
             "[1, 1024], got "
          << blockSize.getValue();
      return signalPassFailure();
    }
    SmallVector<scf::ParallelOp> blocks;
    getOperation().walk<WalkOrder::PreOrder>([&](scf::ParallelOp loop) {
      if (isMappedTo<gpu::GPUBlockMappingAttr>(loop)) {
        blocks.push_back(loop);
        return WalkResult::skip();
      }
      return WalkResult::advance();
    });
    for (scf::ParallelOp loop : blocks)
      if (failed(convert(loop)))
        return signalPassFailure();
  }

  LogicalResult convert(scf::ParallelOp loop) {
    FailureOr<WorkgroupLoop> w = matchWorkgroupLoop(loop);
    if (failed(w) || failed(verifyWorkgroupBody(*w)))
      return failure();
    OpBuilder b(loop);
    Value threads;
    FailureOr<gpu::LaunchOp> launch = createLaunch(b, *w, threads, blockSize);
    if (failed(launch))
      return failure();
    moveBodyIntoLaunch(*w, *launch);
    lowerThreadPhases(b, *launch, threads);
    loop.erase();
    return success();
  }
};

} // namespace
