#!/usr/bin/python3
"""precision_plans.py DIR LAYER:PLAN...: for each bundle DIR/LAYER-PLAN.rotor
reads attn-select-precision's report (DIR/LAYER-PLAN.json) and rotor-run's
reference line (DIR/LAYER-PLAN.log), and checks issue 14's requirements:

  * every predicted bound holds (measured <= predicted) and is within 10x;
  * bf16 everywhere: max relative error ordered qwen > r1 > llama;
  * the selected plan (auto) meets the target on every layer; on the
    qwen-like layer at <= 1.1x bf16's KV bytes with 1-PCC <= 1/30 of bf16's;
  * a layer that bf16 everywhere already gets within the target gets a
    (nearly) all-bf16 plan: 16-bit caches and at least 3 of 4 projections
    in bf16 (the pass must not buy accuracy nobody asked for);
  * with the K bias split, a 16-bit cache is within 2x of an f32 cache's
    error: with the rest of the layer in bf16 (the plans `rope-f32,split`
    and `rope-f32,kv=f32`), and with bf16 weights, as checkpoints ship
    them, and the rest f32 (`f32,weights=bf16,kv=bf16,split` and
    `f32,weights=bf16`), in max relative error and in 1-PCC; without the
    split that bf16 cache is more than 5x worse.

Prints one line per check; exits 1 if any fails."""
import json
import re
import sys

folder, runs = sys.argv[1], sys.argv[2:]
results = {}
for run in runs:
    layer, plan = run.split(":", 1)
    name = f"{folder}/{layer}-{plan}"
    report = json.load(open(name + ".json"))
    entry = report["layers"][0]
    line = open(name + ".log").read()
    m = re.search(r"reference PCC ([0-9.]+), max relative error ([0-9.e+-]+)", line)
    if not m:
        sys.exit(f"{name}.log: no reference line")
    results[(layer, plan)] = dict(
        predicted=entry["predicted"]["max_relative_error"],
        kv=entry["kv_bytes_per_token"], plan=entry["plan"],
        pcc=float(m.group(1)), measured=float(m.group(2)),
        target=report["target"])

ok = True
def check(good, text):
    global ok
    ok &= bool(good)
    print(("ok: " if good else "FAILED: ") + text)

worst = max(r["predicted"] / r["measured"] for r in results.values())
best = min(r["predicted"] / r["measured"] for r in results.values())
check(best >= 1 and worst <= 10,
      f"predicted / measured over {len(results)} bundles in [{best:.2f}, {worst:.2f}] (within [1, 10])")
for (layer, plan), r in sorted(results.items()):
    print(f"  {layer} {plan}: predicted {r['predicted']:.2e} measured {r['measured']:.2e} "
          f"1-PCC {1 - r['pcc']:.1e} KV {r['kv']} B/token")

bf = {l: results[(l, "bf16")]["measured"] for l in ("qwen", "r1", "llama")}
check(bf["qwen"] > bf["r1"] > bf["llama"],
      "bf16 everywhere ordered qwen > r1 > llama: "
      f"{bf['qwen']:.2e} > {bf['r1']:.2e} > {bf['llama']:.2e}")
for layer in ("qwen", "r1", "llama"):
    r = results[(layer, "auto")]
    check(r["measured"] <= r["target"],
          f"{layer}: the selected plan meets the target ({r['measured']:.2e} <= {r['target']:g})")
q, qb = results[("qwen", "auto")], results[("qwen", "bf16")]
check(q["kv"] <= 1.1 * qb["kv"] and (1 - q["pcc"]) * 30 <= 1 - qb["pcc"],
      f"qwen: selected 1-PCC {1 - q['pcc']:.1e} <= bf16's {1 - qb['pcc']:.1e} / 30 "
      f"at {q['kv']} <= 1.1 x {qb['kv']} KV bytes")
for layer in ("qwen", "r1", "llama"):
    plan, auto = results[(layer, "auto")]["plan"], results[(layer, "auto")]
    if bf[layer] > auto["target"]:
        print(f"  {layer}: bf16 everywhere misses the target ({bf[layer]:.2e}): "
              f"{plan}")
        continue
    weights = re.search(r"weights q/k/v/o ([^,]+),", plan).group(1).split("/")
    cache = re.search(r"K cache ([^, ]+)", plan).group(1)
    check(cache in ("bf16", "f16") and weights.count("bf16") >= 3,
          f"{layer}: bf16 everywhere meets the target, and the plan is "
          f"(nearly) all-bf16: {plan}")
split, wide = results[("qwen", "rope-f32,split")], results[("qwen", "rope-f32,kv=f32")]
check(split["measured"] <= 2 * wide["measured"],
      f"qwen: split with a bf16 cache {split['measured']:.2e} within 2x of an f32 cache {wide['measured']:.2e}")
shipped = results[("qwen", "f32,weights=bf16")]
shipped_split = results[("qwen", "f32,weights=bf16,kv=bf16,split")]
check(shipped_split["measured"] <= 2 * shipped["measured"]
      and 1 - shipped_split["pcc"] <= 2 * (1 - shipped["pcc"]),
      f"qwen: bf16 weights: split with a bf16 cache {shipped_split['measured']:.2e} "
      f"(1-PCC {1 - shipped_split['pcc']:.1e}) within 2x of an f32 cache "
      f"{shipped['measured']:.2e} (1-PCC {1 - shipped['pcc']:.1e})")
unsplit = results[("qwen", "f32,weights=bf16,kv=bf16")]
check(unsplit["measured"] > 5 * shipped_split["measured"],
      f"qwen: bf16 weights: the same bf16 cache without the split {unsplit['measured']:.2e} "
      f"is more than 5x worse")
sys.exit(0 if ok else 1)
