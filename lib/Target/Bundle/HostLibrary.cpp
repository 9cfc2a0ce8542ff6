//===- HostLibrary.cpp - LLVM dialect to a host shared library ------------===//

#include "rotor/Target/Bundle/Bundle.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
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

} // namespace

Error rotor::emitHostLibrary(mlir::ModuleOp module, StringRef path,
                             StringRef abi, bool openMP) {
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();

  LLVMContext ctx;
  std::unique_ptr<Module> llvmModule =
      mlir::translateModuleToLLVMIR(module, ctx, "rotor_host");
  if (!llvmModule)
    return fail("translation of the host code to LLVM IR failed");

  Triple triple(sys::getProcessTriple());
  std::string error;
  const Target *target = TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return fail("no LLVM target for " + triple.str() + ": " + error);
  // A baseline x86-64 CPU (SSE4.2, POPCNT): the bundle is built here and
  // may run on another machine.
  StringRef cpu = triple.isX86() ? "x86-64-v2" : "generic";
  TargetOptions targetOptions;
  // Constructors (CUDA bundles load their kernels in one) go to
  // .init_array, which the dynamic loader runs; .ctors it ignores.
  targetOptions.UseInitArray = true;
  std::unique_ptr<TargetMachine> machine(target->createTargetMachine(
      triple, cpu, "", targetOptions, Reloc::PIC_, std::nullopt,
      CodeGenOptLevel::Aggressive));
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);
  addPackedWrappers(*llvmModule);
  // The ABI the code was compiled for, which the runtime compares with the
  // manifest before the first call.
  new GlobalVariable(*llvmModule, ArrayType::get(Type::getInt8Ty(ctx), abi.size() + 1),
                     /*isConstant=*/true, GlobalValue::ExternalLinkage,
                     ConstantDataArray::getString(ctx, abi, /*AddNull=*/true),
                     "rotor_bundle_abi");

  if (Error err = mlir::makeOptimizingTransformer(3, 0, machine.get())(
          llvmModule.get()))
    return err;

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
  // Emulated GPU launches are OpenMP parallel regions.
  std::string libomp = ROTOR_LIBOMP;
  if (openMP) {
    if (libomp.empty())
      return fail("the OpenMP runtime (libomp) was not found when Rotor was "
                  "built; GPU-emulation bundles need it");
    argv.push_back(libomp);
  }
  std::string message;
  int rc = sys::ExecuteAndWait(*linker, argv, std::nullopt, {}, 0, 0, &message);
  sys::fs::remove(objectPath);
  if (rc != 0)
    return fail("linking " + path + " failed (" + Twine(rc) + ") " + message);
  return Error::success();
}
