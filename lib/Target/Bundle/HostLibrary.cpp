//===- HostLibrary.cpp - LLVM dialect to a host shared library ------------===//

#include "rotor/Target/Bundle/Bundle.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace llvm;

namespace {

Error fail(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

/// For every `_mlir_ciface_<name>`, adds `void rotor_<name>(void **args)`:
/// args[i] points at the value of parameter i (a descriptor pointer, or an
/// index). One signature for every entry point is what lets the runtime call
/// them without knowing their arity at compile time.
void addPackedWrappers(Module &module) {
  LLVMContext &ctx = module.getContext();
  Type *ptr = PointerType::getUnqual(ctx);
  SmallVector<Function *> entries;
  for (Function &f : module)
    if (!f.isDeclaration() && f.getName().starts_with("_mlir_ciface_"))
      entries.push_back(&f);
  for (Function *f : entries) {
    std::string name =
        ("rotor_" + f->getName().drop_front(strlen("_mlir_ciface_"))).str();
    auto *wrapper = Function::Create(
        FunctionType::get(Type::getVoidTy(ctx), {ptr}, false),
        GlobalValue::ExternalLinkage, name, module);
    IRBuilder<> b(BasicBlock::Create(ctx, "entry", wrapper));
    SmallVector<Value *> args;
    for (auto [i, param] : enumerate(f->args())) {
      Value *slot = b.CreateLoad(
          ptr, b.CreateConstGEP1_64(ptr, wrapper->getArg(0), i));
      args.push_back(b.CreateLoad(param.getType(), slot));
    }
    b.CreateCall(f, args);
    b.CreateRetVoid();
  }
}

/// Routes the optimized module's heap calls (malloc, calloc, free) through
/// two hooks, initially libc's, and exports `void rotor_set_heap(alloc,
/// free)` to replace them. Each call's buffers are freed at its end, so with
/// libc every call maps fresh pages for its large ones and pays a page fault
/// per 4 KiB of them (~12% of the example layer's prefill); the runtime
/// installs a pool that keeps them instead. Run after the optimizer, which
/// keeps reasoning about malloc's results as distinct objects. A module with
/// any other allocation function (its blocks could reach the hooked free) is
/// left on libc, without the setter.
void routeHeapThroughHooks(Module &module) {
  for (StringRef other : {"realloc", "reallocarray", "aligned_alloc",
                          "posix_memalign", "memalign", "valloc", "strdup"})
    if (module.getFunction(other))
      return;
  Function *malloc = module.getFunction("malloc");
  Function *calloc = module.getFunction("calloc");
  Function *free = module.getFunction("free");
  if (!malloc && !calloc && !free)
    return;
  LLVMContext &ctx = module.getContext();
  Type *ptr = PointerType::getUnqual(ctx);
  Type *i64 = Type::getInt64Ty(ctx);
  auto *allocType = FunctionType::get(ptr, {i64}, false);
  auto *freeType = FunctionType::get(Type::getVoidTy(ctx), {ptr}, false);
  auto hook = [&](StringRef name, FunctionType *type, StringRef libc) {
    Constant *initial =
        cast<Constant>(module.getOrInsertFunction(libc, type).getCallee());
    return new GlobalVariable(module, ptr, /*isConstant=*/false,
                              GlobalValue::InternalLinkage, initial, name);
  };
  GlobalVariable *allocHook = hook("rotor.alloc_hook", allocType, "malloc");
  GlobalVariable *freeHook = hook("rotor.free_hook", freeType, "free");

  auto define = [&](StringRef name, FunctionType *type) {
    return Function::Create(type, GlobalValue::InternalLinkage, name, module);
  };
  auto entry = [&](Function *f) {
    return IRBuilder<>(BasicBlock::Create(ctx, "entry", f));
  };
  Function *hookedAlloc = define("rotor.malloc", allocType);
  IRBuilder<> ab = entry(hookedAlloc);
  ab.CreateRet(ab.CreateCall(allocType, ab.CreateLoad(ptr, allocHook),
                             {hookedAlloc->getArg(0)}));
  Function *hookedFree = define("rotor.free", freeType);
  IRBuilder<> fb = entry(hookedFree);
  fb.CreateCall(freeType, fb.CreateLoad(ptr, freeHook), {hookedFree->getArg(0)});
  fb.CreateRetVoid();
  // calloc(n, size): an overflowing product allocates nothing (null), as
  // libc's does.
  Function *hookedCalloc =
      define("rotor.calloc", FunctionType::get(ptr, {i64, i64}, false));
  {
    IRBuilder<> cb = entry(hookedCalloc);
    Value *product = cb.CreateBinaryIntrinsic(Intrinsic::umul_with_overflow,
                                              hookedCalloc->getArg(0),
                                              hookedCalloc->getArg(1));
    Value *bytes = cb.CreateExtractValue(product, 0);
    BasicBlock *allocate = BasicBlock::Create(ctx, "allocate", hookedCalloc);
    BasicBlock *null = BasicBlock::Create(ctx, "null", hookedCalloc);
    cb.CreateCondBr(cb.CreateExtractValue(product, 1), null, allocate);
    cb.SetInsertPoint(null);
    cb.CreateRet(ConstantPointerNull::get(cast<PointerType>(ptr)));
    cb.SetInsertPoint(allocate);
    Value *block = cb.CreateCall(hookedAlloc, {bytes});
    BasicBlock *clear = BasicBlock::Create(ctx, "clear", hookedCalloc);
    cb.CreateCondBr(cb.CreateIsNull(block), null, clear);
    cb.SetInsertPoint(clear);
    cb.CreateMemSet(block, cb.getInt8(0), bytes, MaybeAlign(1));
    cb.CreateRet(block);
  }

  // Every call site (not the hooks' initializers) moves to the wrappers.
  for (auto [libc, wrapper] : {std::pair{malloc, hookedAlloc},
                               std::pair{calloc, hookedCalloc},
                               std::pair{free, hookedFree}}) {
    if (!libc)
      continue;
    for (User *user : make_early_inc_range(libc->users()))
      if (auto *call = dyn_cast<CallBase>(user);
          call && call->getCalledOperand() == libc)
        call->setCalledFunction(wrapper);
  }

  Function *setter = define(
      "rotor_set_heap",
      FunctionType::get(Type::getVoidTy(ctx), {ptr, ptr}, false));
  setter->setLinkage(GlobalValue::ExternalLinkage);
  IRBuilder<> sb = entry(setter);
  sb.CreateStore(setter->getArg(0), allocHook);
  sb.CreateStore(setter->getArg(1), freeHook);
  sb.CreateRetVoid();
}

/// The x86 instruction-set extensions a bundle may use: those the runtime
/// can check before it loads host.so (runtime/lib/HostCpu.cpp has the same
/// names). Code is generated for x86-64 plus the ones the CPU has, so no
/// instruction outside this list can appear in a bundle.
constexpr const char *kCheckableX86Features[] = {
    "sse3",       "ssse3",      "sse4.1",   "sse4.2",   "popcnt",
    "cx16",       "avx",        "avx2",     "fma",      "f16c",
    "bmi",        "bmi2",       "lzcnt",    "movbe",    "avx512f",
    "avx512bw",   "avx512dq",   "avx512vl", "avx512cd", "avx512bf16",
    "avx512fp16", "avx512vnni", "avxvnni",  "amx-tile", "amx-bf16"};

const Target *hostTarget(const Triple &triple, std::string &error) {
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();
  return TargetRegistry::lookupTarget(triple, error);
}

/// `void rotor_set_num_threads(int)`: the runtime's way to choose how many
/// threads the bundle's parallel loops use, without linking OpenMP itself.
void addThreadCountSetter(Module &module) {
  LLVMContext &ctx = module.getContext();
  FunctionType *type =
      FunctionType::get(Type::getVoidTy(ctx), {Type::getInt32Ty(ctx)}, false);
  FunctionCallee omp = module.getOrInsertFunction("omp_set_num_threads", type);
  auto *setter = Function::Create(type, GlobalValue::ExternalLinkage,
                                  "rotor_set_num_threads", module);
  IRBuilder<> b(BasicBlock::Create(ctx, "entry", setter));
  b.CreateCall(omp, {setter->getArg(0)});
  b.CreateRetVoid();
}

} // namespace

Expected<rotor::HostCpu> rotor::resolveHostCpu(StringRef requested) {
  Triple triple(sys::getProcessTriple());
  HostCpu cpu;
  cpu.name = requested == "native" ? sys::getHostCPUName().str()
                                   : requested.str();
  if (!triple.isX86())
    return cpu;
  std::string error;
  const Target *target = hostTarget(triple, error);
  if (!target)
    return fail("no LLVM target for " + triple.str() + ": " + error);
  std::unique_ptr<MCSubtargetInfo> info(
      target->createMCSubtargetInfo(triple, cpu.name, ""));
  if (!info || !info->isCPUStringValid(cpu.name))
    return fail("--host-cpu=" + requested +
                ": not a CPU LLVM knows for " + triple.str() +
                " (try native, x86-64-v2, x86-64-v3 or a name such as "
                "znver3 or skylake)");
  StringMap<bool> native;
  if (requested == "native")
    native = sys::getHostCPUFeatures();
  for (const char *feature : kCheckableX86Features) {
    bool has = requested == "native"
                   ? native.lookup(feature)
                   : info->checkFeatures(std::string("+") + feature);
    if (has)
      cpu.features.push_back(feature);
  }
  return cpu;
}

Error rotor::emitHostLibrary(mlir::ModuleOp module, StringRef path,
                             StringRef abi, const HostCpu &hostCpu,
                             bool openMP) {

  LLVMContext ctx;
  std::unique_ptr<Module> llvmModule =
      mlir::translateModuleToLLVMIR(module, ctx, "rotor_host");
  if (!llvmModule)
    return fail("translation of the host code to LLVM IR failed");

  Triple triple(sys::getProcessTriple());
  std::string error;
  const Target *target = hostTarget(triple, error);
  if (!target)
    return fail("no LLVM target for " + triple.str() + ": " + error);
  // The baseline ISA plus exactly the recorded extensions, which the runtime
  // checks on the CPU that loads the bundle; the named CPU only tunes
  // scheduling.
  StringRef cpu = triple.isX86() ? "x86-64" : "generic";
  std::string features;
  for (const std::string &feature : hostCpu.features)
    features += (features.empty() ? "+" : ",+") + feature;
  TargetOptions targetOptions;
  // Constructors (CUDA bundles load their kernels in one) go to
  // .init_array, which the dynamic loader runs; .ctors it ignores.
  targetOptions.UseInitArray = true;
  std::unique_ptr<TargetMachine> machine(target->createTargetMachine(
      triple, cpu, features, targetOptions, Reloc::PIC_, std::nullopt,
      CodeGenOptLevel::Aggressive));
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);
  // LLVM tunes recent AVX-512 CPUs (Skylake-X on) to prefer 256-bit
  // vectors, for the clock drop of mixed scalar code; these loops are
  // mostly FMA and load, where 512 bits measured 1.1x faster on the example
  // layer's prefill at T=2048 (Sapphire Rapids class, 1 and 2 threads) and
  // no slower elsewhere.
  bool avx512 = llvm::is_contained(hostCpu.features, "avx512f");
  if (triple.isX86())
    for (Function &f : *llvmModule)
      if (!f.isDeclaration()) {
        f.addFnAttr("tune-cpu", hostCpu.name);
        if (avx512)
          f.addFnAttr("prefer-vector-width", "512");
      }
  addPackedWrappers(*llvmModule);
  if (openMP)
    addThreadCountSetter(*llvmModule);
  // The ABI the code was compiled for, which the runtime compares with the
  // manifest before the first call.
  new GlobalVariable(*llvmModule, ArrayType::get(Type::getInt8Ty(ctx), abi.size() + 1),
                     /*isConstant=*/true, GlobalValue::ExternalLinkage,
                     ConstantDataArray::getString(ctx, abi, /*AddNull=*/true),
                     "rotor_bundle_abi");

  if (Error err = mlir::makeOptimizingTransformer(3, 0, machine.get())(
          llvmModule.get()))
    return err;
  routeHeapThroughHooks(*llvmModule);

  SmallString<128> objectPath(path);
  objectPath += ".o";
  {
    std::error_code ec;
    raw_fd_ostream object(objectPath, ec, sys::fs::OF_None);
    if (ec)
      return fail(objectPath + ": " + ec.message());
    legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, object, nullptr,
                                     CodeGenFileType::ObjectFile))
      return fail("the target cannot emit object files");
    codegen.run(*llvmModule);
  }

  ErrorOr<std::string> linker = sys::findProgramByName(ROTOR_HOST_LINKER);
  if (!linker)
    return fail("cannot find the linker driver " ROTOR_HOST_LINKER);
  std::string out = path.str(), obj = objectPath.str().str();
  SmallVector<StringRef> argv = {*linker, "-shared", "-fuse-ld=lld", "-o", out,
                                 obj, "-lm"};
  // Threaded loops and emulated GPU launches are OpenMP parallel regions.
  std::string libomp = ROTOR_LIBOMP;
  if (openMP) {
    if (libomp.empty())
      return fail("the OpenMP runtime (libomp) was not found when Rotor was "
                  "built; host code runs its parallel loops on it");
    argv.push_back(libomp);
  }
  std::string message;
  int rc = sys::ExecuteAndWait(*linker, argv, std::nullopt, {}, 0, 0, &message);
  sys::fs::remove(objectPath);
  if (rc != 0)
    return fail("linking " + path + " failed (" + Twine(rc) + ") " + message);
  return Error::success();
}
