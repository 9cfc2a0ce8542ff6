//===- SelectPrecision.cpp - Each tensor's type from an error bound -------===//
//
// Prices every plan of the layer with the first-order rounding model
// (PrecisionModel.h), keeps those whose predicted error meets the target
// and whose worst-case ranges fit their types, and applies the cheapest:
// weights retyped, caches retyped (truncf on write, extf on read), Q and
// other activations rounded where they are stored, compute types set in
// each op's #attn.precision, and K's bias split out of the cache where
// the plan wants it.
//
//===----------------------------------------------------------------------===//

#include "rotor/Dialect/Attn/IR/AttnOps.h"
#include "rotor/Dialect/Attn/Transforms/Passes.h"
#include "rotor/Dialect/Attn/Transforms/PrecisionModel.h"
#include "rotor/Support/Safetensors.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

namespace rotor::attn {
#define GEN_PASS_DEF_ATTNSELECTPRECISION
#include "rotor/Dialect/Attn/Transforms/Passes.h.inc"
} // namespace rotor::attn

using namespace mlir;
using namespace rotor::attn;
using namespace rotor::attn::precision;
namespace json = llvm::json;

namespace {

std::string sci(double v) { return llvm::formatv("{0:e1}", v).str(); }

/// `v` as printf's %g writes it (an option's value as given: -3, inf).
std::string shortNumber(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

//===----------------------------------------------------------------------===//
// The search
//===----------------------------------------------------------------------===//

/// A priced plan.
struct Candidate {
  Plan plan;
  Estimate estimate;
  Cost cost;
};

/// Whether the plan's stored values fit their types (f16 can overflow).
bool fits(const LayerModel &model, const Plan &plan) {
  const Ranges &r = model.ranges();
  double key = plan.splitKeyBias ? r.keyWithoutBias : r.key;
  return model.fits(plan.query, r.query) && model.fits(plan.keyCache, key) &&
         model.fits(plan.valueCache, r.value);
}

/// The storage types Q and the caches choose among, and those the weights
/// and SDPA's compute choose among.
constexpr Storage kStorageTypes[] = {Storage::F32, Storage::F16, Storage::BF16};
constexpr Storage kWideStorageTypes[] = {Storage::F32, Storage::BF16};

/// Every plan the pass chooses among: projections f32 or bf16 each; Q, the
/// caches f32, f16 or bf16; the split where it applies; SDPA in f32 or bf16.
std::vector<Plan> candidatePlans(bool splittable) {
  std::vector<Plan> plans;
  const auto &all = kStorageTypes;
  const auto &wide = kWideStorageTypes;
  for (unsigned mask = 0; mask < 16; ++mask)
    for (Storage q : all)
      for (Storage k : all)
        for (bool split : {false, true})
          for (Storage sdpa : wide) {
              // Rotor keeps K and V in one format.
              Storage v = k;
              if (split && !splittable)
                continue;
              Plan plan;
              for (int p = 0; p < 4; ++p)
                plan.weights[p] = (mask >> p) & 1 ? Storage::BF16 : Storage::F32;
              plan.query = q;
              plan.keyCache = k;
              plan.splitKeyBias = split;
              plan.valueCache = v;
              plan.sdpaCompute = sdpa;
              plans.push_back(plan);
            }
  return plans;
}

/// The op a rounding site belongs to, for messages.
Operation *siteOp(const LayerOps &ops, StringRef site) {
  for (int p = QProj; p <= OProj; ++p)
    if (site.starts_with(projectionName(Projection(p))))
      return ops.projections[p];
  if (site == "q.rope")
    return ops.queryRope;
  if (site == "k.rope")
    return ops.keyRope;
  if (site == "out")
    return ops.projections[OProj];
  return ops.sdpa;
}

/// What a rounding site is, in words.
std::string siteWords(StringRef site) {
  static const std::map<std::string, std::string> words = {
      {"q_proj.proj", "q_proj's weights and input"},
      {"k_proj.proj", "k_proj's weights and input"},
      {"v_proj.proj", "v_proj's weights and input"},
      {"o_proj.proj", "o_proj's weights and input"},
      {"q.store", "Q as SDPA reads it"},
      {"k.cache", "the K cache (K's bias rounded with it)"},
      {"k.cache.split", "the K cache (bias split)"},
      {"v.cache", "the V cache"},
      {"sdpa.qk", "SDPA's q·k accumulation"},
      {"sdpa.p", "SDPA's probabilities"},
      {"sdpa.acc", "SDPA's p·v accumulation"},
      {"attn.out", "SDPA's output"},
      {"out", "the layer's output"}};
  auto it = words.find(site.str());
  if (it != words.end())
    return it->second;
  auto [owner, what] = site.split('.');
  std::string who = owner == "q" ? "Q" : owner == "k" ? "K" : owner.str();
  if (what == "acc")
    return who + "'s f32 accumulation";
  if (what == "out" || what == "out.split")
    return who + "'s output as stored";
  if (what == "bias")
    return who + "'s bias";
  if (what == "rope")
    return "RoPE's operands of " + who;
  if (what == "angle")
    return "RoPE's angles of " + who;
  return site.str();
}

//===----------------------------------------------------------------------===//
// Applying a plan
//===----------------------------------------------------------------------===//

RankedTensorType withElement(Type type, Type element) {
  return cast<RankedTensorType>(type).clone(element);
}

/// extf(truncf(v)): `v` as stored in `s` and read back. Uses of `v` other
/// than `keep` read the rounded value.
void roundThrough(Value v, Storage s, Operation *after = nullptr) {
  if (s == Storage::F32)
    return;
  OpBuilder b(v.getContext());
  if (after)
    b.setInsertionPointAfter(after);
  else
    b.setInsertionPointAfterValue(v);
  Location loc = v.getLoc();
  Type narrow = withElement(v.getType(), storageType(v.getContext(), s));
  Value t = arith::TruncFOp::create(b, loc, narrow, v);
  Value e = arith::ExtFOp::create(b, loc, v.getType(), t);
  v.replaceAllUsesExcept(e, t.getDefiningOp());
}

/// Retypes a weight (an attn.param, through row permutations) to `s`.
void retypeParam(Value v, Storage s) {
  if (s == Storage::F32 || !v)
    return;
  Type element = storageType(v.getContext(), s);
  while (Operation *def = v.getDefiningOp()) {
    def->getResult(0).setType(withElement(v.getType(), element));
    if (auto permute = dyn_cast<PermuteOp>(def)) {
      v = permute.getInput();
      continue;
    }
    break;
  }
}

/// Retypes the cache `arg` (and every append/read of it) to `s`: writes
/// round to `s`, reads extend to f32, and SDPA reads what the cache holds
/// in prefill too.
void retypeCache(func::FuncOp fn, BlockArgument arg, Storage s) {
  if (s == Storage::F32)
    return;
  MLIRContext *ctx = fn.getContext();
  Type element = storageType(ctx, s);
  fn.setArgAttr(arg.getArgNumber(), "attn.kv_format",
                StringAttr::get(ctx, storageName(s)));
  SmallVector<Value> worklist{arg};
  arg.setType(withElement(arg.getType(), element));
  while (!worklist.empty()) {
    Value cache = worklist.pop_back_val();
    for (OpOperand &use : llvm::make_early_inc_range(cache.getUses())) {
      Operation *user = use.getOwner();
      OpBuilder b(user);
      if (auto append = dyn_cast<KVCacheAppendOp>(user)) {
        if (use.get() != append.getCache())
          continue;
        Value update = append.getUpdate();
        Value t = arith::TruncFOp::create(
            b, append.getLoc(), withElement(update.getType(), element), update);
        Value e = arith::ExtFOp::create(b, append.getLoc(), update.getType(), t);
        update.replaceAllUsesExcept(e, t.getDefiningOp());
        append.getUpdateMutable().assign(t);
        append.getResult().setType(withElement(append.getType(), element));
        worklist.push_back(append.getResult());
      } else if (auto read = dyn_cast<KVCacheReadOp>(user)) {
        Type wideType = read.getType();
        read.getResult().setType(withElement(wideType, element));
        b.setInsertionPointAfter(read);
        Value e = arith::ExtFOp::create(b, read.getLoc(), wideType, read.getResult());
        read.getResult().replaceAllUsesExcept(e, e.getDefiningOp());
      }
    }
  }
}

/// The cache argument a K or V value is written to in `fn`, if any.
BlockArgument cacheArgument(func::FuncOp fn, Value source) {
  BlockArgument found;
  fn.walk([&](KVCacheAppendOp append) {
    if (traceKVCacheWrite(append.getUpdate()).source != source)
      return;
    Value cache = append.getCache();
    while (auto prior = cache.getDefiningOp<KVCacheAppendOp>())
      cache = prior.getCache();
    if (auto arg = dyn_cast<BlockArgument>(cache))
      found = arg;
  });
  return found;
}

void setCompute(Operation *op, Storage s) {
  auto old = op->getAttrOfType<PrecisionAttr>("precision");
  op->setAttr("precision",
              PrecisionAttr::get(op->getContext(),
                                 storageType(op->getContext(), s),
                                 old.getAccumulate()));
}

/// Applies everything but the split (done module-wide first) to one entry
/// point of the layer.
void applyPlan(func::FuncOp fn, LayerOps ops, const Plan &plan) {
  for (int p = QProj; p <= OProj; ++p) {
    LinearOp linear = ops.projections[p];
    retypeParam(linear.getWeight(), plan.weights[p]);
    retypeParam(linear.getBias(), plan.biases);
    setCompute(linear, plan.weights[p]);
    if (p != OProj)
      roundThrough(linear.getResult(), plan.projectionOutputs);
  }
  setCompute(ops.queryRope, plan.ropeCompute);
  setCompute(ops.keyRope, plan.ropeCompute);
  Value keySource = traceKVCacheWrite(ops.sdpa.getKey()).source;
  Value valueSource = traceKVCacheWrite(ops.sdpa.getValue()).source;
  if (BlockArgument k = cacheArgument(fn, keySource))
    retypeCache(fn, k, plan.keyCache);
  if (BlockArgument v = cacheArgument(fn, valueSource))
    retypeCache(fn, v, plan.valueCache);
  // Q as SDPA reads it.
  {
    OpBuilder b(ops.sdpa);
    Value q = ops.sdpa.getQuery();
    if (plan.query != Storage::F32) {
      Type narrow = withElement(q.getType(), storageType(fn.getContext(), plan.query));
      Value t = arith::TruncFOp::create(b, ops.sdpa.getLoc(), narrow, q);
      Value e = arith::ExtFOp::create(b, ops.sdpa.getLoc(), q.getType(), t);
      ops.sdpa.getQueryMutable().assign(e);
    }
  }
  setCompute(ops.sdpa, plan.sdpaCompute);
  // The error model's "sdpa.p" term counts the probabilities rounded to
  // SDPA's compute type.
  ops.sdpa.setRoundProbabilities(plan.sdpaCompute != Storage::F32);
  roundThrough(ops.sdpa.getResult(), plan.attentionOutput);
  roundThrough(ops.projections[OProj].getResult(), plan.layerOutput);
  // The signature follows the retyped caches.
  Operation *ret = fn.getBody().front().getTerminator();
  fn.setFunctionType(FunctionType::get(fn.getContext(),
                                       fn.getBody().front().getArgumentTypes(),
                                       ret->getOperandTypes()));
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

/// One layer: its entry points and each one's matched ops.
/// The error for a plan (`who`: "the plan stores", "every plan stores")
/// whose stored values could overflow their types at the layer's ranges,
/// and what would help (`remedy`).
LogicalResult emitOverflow(LayerOps ops, const LayerModel &model, StringRef who,
                           StringRef remedy) {
  const Ranges &r = model.ranges();
  ops.sdpa.emitError() << "attn-select-precision: " << who
                       << " values that could overflow their types (|q| up "
                          "to "
                       << shortNumber(r.query) << ", |k| up to "
                       << shortNumber(r.key) << ", |v| up to "
                       << shortNumber(r.value) << "): " << remedy;
  return failure();
}

struct Layer {
  int64_t index = 0;
  SmallVector<std::pair<func::FuncOp, LayerOps>> entries;
};

struct AttnSelectPrecisionPass
    : rotor::attn::impl::AttnSelectPrecisionBase<AttnSelectPrecisionPass> {
  using Base::Base;

  void runOnOperation() override;
  LogicalResult checkOptions(std::optional<Plan> &named);
  LogicalResult collectLayers(std::map<int64_t, Layer> &layers);
  LogicalResult choose(const Layer &layer, const std::optional<Plan> &named,
                       StringRef weightsPath, std::optional<LayerModel> &model,
                       std::optional<Candidate> &best);
  LogicalResult checkF32(func::FuncOp fn);
  FailureOr<InputModel> inputModel(const Layer &layer);
  bool keyBiasSplits();
  /// Whether attn-split-rope-bias applies to the module.
  bool splittable = false;
  json::Object decide(const Layer &layer, const LayerModel &model,
                      const Candidate &chosen, bool searched);
};

LogicalResult AttnSelectPrecisionPass::checkF32(func::FuncOp fn) {
  WalkResult result = fn.walk([&](Operation *op) {
    for (Type t : op->getResultTypes()) {
      auto shaped = dyn_cast<ShapedType>(t);
      Type e = shaped ? shaped.getElementType() : t;
      if (isa<FloatType>(e) && !e.isF32()) {
        op->emitError() << "attn-select-precision starts from an f32 graph "
                           "(rotor-import --dtype f32 --kv-cache f32), but "
                           "this op's result is "
                        << t;
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  for (BlockArgument arg : fn.getArguments()) {
    auto shaped = dyn_cast<ShapedType>(arg.getType());
    if (shaped && isa<FloatType>(shaped.getElementType()) &&
        !shaped.getElementType().isF32()) {
      fn.emitError() << "attn-select-precision starts from an f32 graph "
                        "(rotor-import --dtype f32 --kv-cache f32), but "
                        "argument "
                     << arg.getArgNumber() << " is " << arg.getType();
      return failure();
    }
    if (shaped && !isa<FloatType>(shaped.getElementType()) &&
        fn.getArgAttr(arg.getArgNumber(), "attn.kv_format")) {
      fn.emitError() << "attn-select-precision chooses float caches; "
                        "argument "
                     << arg.getArgNumber()
                     << " is a quantized cache (choose a quantized format "
                        "with rotor-import --kv-cache, without "
                        "--precision)";
      return failure();
    }
  }
  return failure(result.wasInterrupted());
}

FailureOr<InputModel> AttnSelectPrecisionPass::inputModel(const Layer &layer) {
  InputModel input;
  input.samples = samples;
  input.rms = inputRms;
  auto [fn, ops] = layer.entries.front();
  if (auto gain = fn.getArgAttrOfType<StringAttr>(ops.input.getArgNumber(),
                                                  "attn.input_norm_gain"))
    input.normGain = gain.str();
  if (!calibration.empty()) {
    llvm::Expected<rotor::safetensors::Archive> archive =
        rotor::safetensors::Archive::open(calibration);
    if (!archive) {
      fn.emitError() << "attn-select-precision: calibration inputs: "
                     << llvm::toString(archive.takeError());
      return failure();
    }
    const rotor::safetensors::TensorView *rows =
        archive->lookup("hidden_states");
    int64_t hidden = cast<ShapedType>(ops.input.getType()).getDimSize(1);
    if (!rows || rows->dtype != "F32" || rows->shape.size() != 2 ||
        rows->shape[1] != hidden) {
      fn.emitError() << "attn-select-precision: " << calibration
                     << ": needs hidden_states, F32 [T, " << hidden << "]";
      return failure();
    }
    input.rows.resize(rows->bytes.size() / 4);
    for (size_t i = 0; i < input.rows.size(); ++i) {
      float f;
      std::memcpy(&f, rows->bytes.data() + 4 * i, 4);
      if (!std::isfinite(f)) {
        fn.emitError() << "attn-select-precision: " << calibration
                       << ": hidden_states has a non-finite value";
        return failure();
      }
      input.rows[i] = f;
    }
    if (const auto *pos = archive->lookup("positions")) {
      if (pos->dtype != "I32" || pos->shape.size() != 1 ||
          pos->shape[0] != rows->shape[0]) {
        fn.emitError() << "attn-select-precision: " << calibration
                       << ": positions must be I32 [" << rows->shape[0] << "]";
        return failure();
      }
      for (int64_t i = 0; i < pos->shape[0]; ++i) {
        int32_t p;
        std::memcpy(&p, pos->bytes.data() + 4 * i, 4);
        input.positions.push_back(p);
      }
    }
    return input;
  }
  if (input.normGain.empty() && input.rms <= 0) {
    fn.emitError() << "attn-select-precision: the layer's input (argument "
                   << ops.input.getArgNumber()
                   << ") has no known range: it does not come from an RMS "
                      "norm the importer recorded (attn.input_norm_gain); "
                      "declare its RMS (input-rms, rotor-aot "
                      "--precision-input-rms) or give calibration inputs "
                      "(rotor-aot --precision-calibration)";
    return failure();
  }
  return input;
}

/// Whether attn-split-rope-bias would split this module (tried on a copy;
/// its remarks are not for the user here).
bool AttnSelectPrecisionPass::keyBiasSplits() {
  OwningOpRef<ModuleOp> copy(getOperation().clone());
  ScopedDiagnosticHandler quiet(&getContext(),
                                [](Diagnostic &) { return success(); });
  PassManager pm(&getContext());
  pm.addPass(createAttnSplitRopeBias());
  if (failed(pm.run(*copy)))
    return false;
  bool split = false;
  copy->walk([&](SdpaOp sdpa) { split |= bool(sdpa.getKeyBias()); });
  return split;
}

/// The module's layers, each entry point matched, all in f32. An entry
/// point's layer is its `attn.layer` (rotor-import's), else the module's
/// for a function with an SDPA (a hand-written single-layer module).
LogicalResult
AttnSelectPrecisionPass::collectLayers(std::map<int64_t, Layer> &layers) {
  ModuleOp module = getOperation();
  auto moduleLayer = module->getAttrOfType<IntegerAttr>("attn.layer");
  for (auto fn : module.getOps<func::FuncOp>()) {
    auto index = fn->getAttrOfType<IntegerAttr>("attn.layer");
    if (!index && moduleLayer && !fn.getOps<SdpaOp>().empty())
      index = moduleLayer;
    if (!index)
      continue;
    if (failed(checkF32(fn)))
      return failure();
    SmallVector<SdpaOp> sdpas(fn.getOps<SdpaOp>());
    if (sdpas.size() != 1) {
      fn.emitError() << "attn-select-precision: expected one attn.sdpa per "
                        "entry point, found "
                     << sdpas.size();
      return failure();
    }
    LayerOps ops = matchLayer(sdpas.front());
    if (ops.unknownOp) {
      ops.unknownOp->emitError()
          << "attn-select-precision: " << ops.unknownReason;
      return failure();
    }
    Layer &layer = layers[index.getInt()];
    layer.index = index.getInt();
    layer.entries.push_back({fn, ops});
  }
  return success();
}

/// Prices the layer's plans and keeps the cheapest that meets the target,
/// or the named plan.
LogicalResult AttnSelectPrecisionPass::choose(
    const Layer &layer, const std::optional<Plan> &named,
    StringRef weightsPath, std::optional<LayerModel> &model,
    std::optional<Candidate> &best) {
  int64_t index = layer.index;
  FailureOr<InputModel> input = inputModel(layer);
  if (failed(input))
    return failure();
  auto [fn, ops] = layer.entries.front();
  int64_t context = contextLength;
  for (BlockArgument arg : fn.getArguments())
    if (!context && fn.getArgAttr(arg.getArgNumber(), "attn.kv_format"))
      context = cast<ShapedType>(arg.getType()).getDimSize(0);
  if (context <= 0)
    context = 2048;
  llvm::Expected<LayerModel> built =
      LayerModel::build(ops, weightsPath, *input, context);
  if (!built) {
    ops.sdpa.emitError() << llvm::toString(built.takeError());
    return failure();
  }
  model = std::move(*built);
  auto price = [&](const Plan &p) {
    return Candidate{p, model->estimate(p), model->cost(p)};
  };
  if (named) {
    if (named->splitKeyBias && !(splittable && model->hasKeyBias())) {
      ops.sdpa.emitError() << "attn-select-precision: the plan splits K's "
                              "bias, but attn-split-rope-bias does not "
                              "apply to this module (run it alone for its "
                              "reason)";
      return failure();
    }
    // Applied as it is, a plan whose values overflow their types would
    // give infinities, not an error.
    if (!fits(*model, *named))
      return emitOverflow(ops, *model, "the plan stores",
                          "store them in a wider type");
    best = price(*named);
  } else {
    for (const Plan &p : candidatePlans(splittable && model->hasKeyBias())) {
      if (!fits(*model, p))
        continue;
      Candidate c = price(p);
      if (c.estimate.maxRelativeError > target)
        continue;
      if (!best || c.cost < best->cost)
        best = c;
    }
    if (!best && !fits(*model, *Plan::named("f32")))
      return emitOverflow(ops, *model, "every plan stores",
                          "is the input's range (input-rms, calibration "
                          "inputs) right?");
    if (!best) {
      Candidate exact = price(*Plan::named("f32"));
      InFlightDiagnostic diag =
          siteOp(ops, exact.estimate.dominantSite)->emitError();
      diag << "attn-select-precision: no plan meets the target " << sci(target)
           << " for layer " << index
           << ": even f32 everywhere bounds the output error at "
           << sci(exact.estimate.maxRelativeError) << ", most of it from "
           << siteWords(exact.estimate.dominantSite);
      return failure();
    }
  }
  return success();
}

/// The options, checked before anything is read; `named` the parsed plan
/// unless it is auto.
LogicalResult
AttnSelectPrecisionPass::checkOptions(std::optional<Plan> &named) {
  ModuleOp module = getOperation();
  if (plan != "auto") {
    llvm::Expected<Plan> parsed = Plan::parse(plan);
    if (!parsed) {
      module.emitError() << "attn-select-precision: "
                         << llvm::toString(parsed.takeError());
      return failure();
    }
    named = *parsed;
  }
  if (!(target > 0) || !std::isfinite(target)) {
    module.emitError() << "attn-select-precision: the target must be a "
                          "positive finite relative error, not "
                       << shortNumber(target);
    return failure();
  }
  // A negative or infinite RMS would scale every bound the model predicts
  // and answer with wrong numbers, not an error.
  if (!(inputRms >= 0) || !std::isfinite(inputRms)) {
    module.emitError() << "attn-select-precision: input-rms (rotor-aot "
                          "--precision-input-rms) must be a positive finite "
                          "RMS, or 0 for the input norm's, not "
                       << shortNumber(inputRms);
    return failure();
  }
  if (samples < 1 || contextLength < 0) {
    module.emitError() << "attn-select-precision: samples must be at least "
                          "1 and context-length at least 0 (0: the KV "
                          "cache's capacity), not "
                       << samples << " and " << contextLength;
    return failure();
  }
  return success();
}

void AttnSelectPrecisionPass::runOnOperation() {
  ModuleOp module = getOperation();
  std::optional<Plan> named;
  if (failed(checkOptions(named)))
    return signalPassFailure();
  std::string weightsPath = weights;
  if (weightsPath.empty())
    if (auto ckpt = module->getAttrOfType<StringAttr>("attn.checkpoint"))
      weightsPath = ckpt.str();
  if (weightsPath.empty()) {
    module.emitError() << "attn-select-precision: no weights to read (the "
                          "module has no attn.checkpoint; give weights=PATH)";
    return signalPassFailure();
  }

  std::map<int64_t, Layer> layers;
  if (failed(collectLayers(layers)))
    return signalPassFailure();
  if (layers.empty()) {
    module.emitError() << "attn-select-precision: no entry point belongs to "
                          "a layer (rotor-import marks each function with "
                          "attn.layer; a single-layer module may carry it "
                          "itself), so there is nothing to choose";
    return signalPassFailure();
  }
  splittable = keyBiasSplits();

  json::Array report;
  std::map<int64_t, Plan> chosen;
  for (auto &[index, layer] : layers) {
    std::optional<Candidate> best;
    std::optional<LayerModel> model;
    if (failed(choose(layer, named, weightsPath, model, best)))
      return signalPassFailure();
    report.push_back(decide(layer, *model, *best, !named));
    chosen[index] = best->plan;
  }

  // The split first (it is all or nothing per module), then each entry
  // point's types.
  bool split = llvm::any_of(chosen, [](auto &e) { return e.second.splitKeyBias; });
  if (split) {
    ScopedDiagnosticHandler quiet(&getContext(),
                                  [](Diagnostic &d) {
                                    return success(d.getSeverity() ==
                                                   DiagnosticSeverity::Remark);
                                  });
    OpPassManager pm("builtin.module");
    pm.addPass(createAttnSplitRopeBias());
    if (failed(runPipeline(pm, module)))
      return signalPassFailure();
  }
  for (auto &[index, layer] : layers)
    for (auto &entry : layer.entries)
      applyPlan(entry.first, entry.second, chosen[index]);

  if (!report.empty() && !this->report.empty()) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << llvm::formatv("{0:2}", json::Value(json::Object{
                                     {"target", target.getValue()},
                                     {"plan", plan.getValue()},
                                     {"layers", std::move(report)}}))
       << "\n";
    if (this->report == "-") {
      llvm::errs() << text;
    } else {
      std::string error;
      std::unique_ptr<llvm::ToolOutputFile> file =
          openOutputFile(this->report, &error);
      if (!file) {
        module.emitError() << "attn-select-precision: cannot write the "
                              "report: "
                           << error;
        return signalPassFailure();
      }
      file->os() << text;
      file->keep();
    }
  }
}

/// One option of a decision: its name and the plan it would make.
using NamedPlan = std::pair<std::string, Plan>;

/// A layer's decisions as attn-select-precision reports them (its JSON
/// report and its remark's text): per tensor, the chosen option first, then
/// what each other option would have predicted and cost.
struct DecisionLog {
  const LayerModel &model;
  json::Array decisions;
  std::string text;

  void explain(StringRef tensor, ArrayRef<NamedPlan> options, StringRef note) {
    json::Array alternatives;
    std::string others;
    for (size_t i = 0; i < options.size(); ++i) {
      const auto &[name, alt] = options[i];
      Estimate e = model.estimate(alt);
      Cost c = model.cost(alt);
      bool ok = fits(model, alt);
      alternatives.push_back(json::Object{
          {"option", name},
          {"max_relative_error", e.maxRelativeError},
          {"kv_bytes_per_token", c.kvBytesPerToken},
          {"weight_bytes", c.weightBytes},
          {"fits", ok}});
      if (i == 0)
        continue;
      others += llvm::formatv("{0}{1}: {2}", others.empty() ? "" : "; ", name,
                              ok ? sci(e.maxRelativeError)
                                 : std::string("could overflow"))
                    .str();
    }
    decisions.push_back(json::Object{{"tensor", tensor.str()},
                                     {"choice", options.front().first},
                                     {"note", note.str()},
                                     {"alternatives", std::move(alternatives)}});
    text += llvm::formatv("\n  {0}: {1}{2} (the output error bound with "
                          "{3})",
                          tensor, options.front().first,
                          note.empty() ? "" : " " + note.str(), others)
                .str();
  }
};

/// `plan` (named by `current`), then `plan` with each other of `types` set
/// by `set`.
template <typename Setter>
SmallVector<NamedPlan> storageOptions(const Plan &plan, Setter set,
                                      ArrayRef<Storage> types,
                                      Storage current) {
  SmallVector<NamedPlan> options;
  options.push_back({storageName(current).str(), plan});
  for (Storage s : types)
    if (s != current) {
      Plan alt = plan;
      set(alt, s);
      options.push_back({storageName(s).str(), alt});
    }
  return options;
}

/// The KV caches' options: each storage type, with and without the K bias
/// split (with it only when the model has a K bias and the split applies).
SmallVector<NamedPlan> cacheOptions(const Plan &plan, const LayerModel &model,
                                    bool splittable) {
  SmallVector<NamedPlan> options;
  auto name = [](Storage s, bool split) {
    return (storageName(s) + (split ? " after the bias split" : "")).str();
  };
  options.push_back({name(plan.keyCache, plan.splitKeyBias), plan});
  for (bool split : {false, true}) {
    if (split && !(model.hasKeyBias() && splittable))
      continue;
    for (Storage s : kStorageTypes) {
      if (s == plan.keyCache && split == plan.splitKeyBias)
        continue;
      Plan alt = plan;
      alt.keyCache = alt.valueCache = s;
      alt.splitKeyBias = split;
      options.push_back({name(s, split), alt});
    }
  }
  return options;
}

json::Object AttnSelectPrecisionPass::decide(const Layer &layer,
                                             const LayerModel &model,
                                             const Candidate &chosen,
                                             bool searched) {
  const Plan &plan = chosen.plan;
  const Ranges &ranges = model.ranges();
  DecisionLog log{model,
                  {},
                  llvm::formatv("attn-select-precision: layer {0}: {1}, "
                                "predicted max relative error {2} (target "
                                "{3}), 1-PCC {4}, KV cache {5} bytes per "
                                "token",
                                layer.index, searched ? "chose" : "applied",
                                sci(chosen.estimate.maxRelativeError),
                                sci(target), sci(chosen.estimate.pccLoss),
                                chosen.cost.kvBytesPerToken)
                      .str()};
  const auto &all = kStorageTypes;
  const auto &wide = kWideStorageTypes;
  for (int p = QProj; p <= OProj; ++p)
    log.explain((projectionName(Projection(p)) + " weights").str(),
                storageOptions(
                    plan, [&](Plan &a, Storage s) { a.weights[p] = s; }, wide,
                    plan.weights[p]),
                "");
  log.explain(
      "q into SDPA",
      storageOptions(
          plan, [](Plan &a, Storage s) { a.query = s; }, all, plan.query),
      ranges.queryBiasMax > 0
          ? llvm::formatv("(|b_q| max {0:f2})", ranges.queryBiasMax).str()
          : "");
  log.explain("k/v caches", cacheOptions(plan, model, splittable),
              model.hasKeyBias()
                  ? llvm::formatv("(|b_k| max {0:f2}; |k| up to {1:f1}, {2:f1} "
                                  "without the bias)",
                                  ranges.keyBiasMax, ranges.key,
                                  ranges.keyWithoutBias)
                        .str()
                  : "");
  log.explain("sdpa compute",
              storageOptions(
                  plan, [](Plan &a, Storage s) { a.sdpaCompute = s; }, wide,
                  plan.sdpaCompute),
              plan.sdpaCompute == Storage::F32
                  ? ""
                  : "(probabilities rounded to it for P·V)");
  auto [fn, ops] = layer.entries.front();
  ops.sdpa.emitRemark() << log.text;

  json::Array shares;
  for (const SiteShare &s : chosen.estimate.shares)
    shares.push_back(json::Object{{"site", s.site}, {"variance", s.variance}});
  return json::Object{
      {"layer", layer.index},
      {"plan", plan.describe()},
      {"searched", searched},
      {"context", model.contextLength()},
      {"predicted",
       json::Object{{"max_relative_error", chosen.estimate.maxRelativeError},
                    {"one_minus_pcc", chosen.estimate.pccLoss},
                    {"dominant_site", chosen.estimate.dominantSite}}},
      {"kv_bytes_per_token", chosen.cost.kvBytesPerToken},
      {"weight_bytes", chosen.cost.weightBytes},
      {"ranges", json::Object{{"q_bias_abs_max", ranges.queryBiasMax},
                              {"k_bias_abs_max", ranges.keyBiasMax},
                              {"q", ranges.query},
                              {"k", ranges.key},
                              {"k_without_bias", ranges.keyWithoutBias},
                              {"v", ranges.value}}},
      {"decisions", std::move(log.decisions)},
      {"error_shares", std::move(shares)}};
}

} // namespace
