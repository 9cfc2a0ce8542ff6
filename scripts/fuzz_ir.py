#!/usr/bin/env python3
"""Fixed-seed IR mutation fuzzer: mutates the lit inputs (one split chunk at
a time), runs each mutant through rotor-opt's verifier and each one that
verifies through one of the host, GPU and GPU-emulation pipelines. A run
fails on any crash (a signal, `LLVM ERROR`, a stack dump), hang (timeout),
or an `error:` printed with exit status 0.

Most mutations are op-aware, so that mutants parse and reach the verifier
and the pipelines: they work on a chunk's generic form (`rotor-opt
--mlir-print-op-generic`), one op per line, and
  - swap two operands of one op that have the same type,
  - replace an operand by another value of its type visible there,
  - set an integer or float attribute to an edge value (0, -1, 1, the
    type's extremes; NaN, +-inf, denormals for floats),
  - change one dim or the element type of an op's result, at the op and at
    every use that lists the type,
  - drop an attribute entry, or copy one from another op (overwriting an
    entry of the same name),
  - swap the attribute dicts of two ops of the same name.
The rest are textual (numbers, element types, dims, lines deleted or
duplicated), as are all mutants of chunks that do not verify (the inputs of
invalid.mlir). `--stats` prints how far the mutants got, per mutation kind.

usage: fuzz_ir.py ROTOR_OPT SOURCE_ROOT [--seed S] [--mutants N]
       [--timeout SECONDS] [--jobs N] [--keep DIR] [--stats] [--text-only]
"""
import argparse
import collections
import concurrent.futures
import glob
import os
import random
import re
import subprocess
import sys

PIPELINES = [
    ["--rotor-host-pipeline"],
    # The graph passes that rewrite across SDPA, then the host pipeline.
    ["-attn-split-rope-bias", "-attn-fold-kv-rotation",
     "-attn-narrow-rounded-weights", "--rotor-host-pipeline"],
    ["--rotor-gpu-pipeline=format=isa"],
    ["--rotor-gpu-emulation-pipeline"],
]
NUMBERS = ["0", "-1", "1", "2", "3", "7", "63", "65", "4096", "2147483648",
           "9223372036854775807", "-9223372036854775808", "1.0e+308",
           "4.9e-324", "nan", "0x7FC00000"]
TYPES = ["f32", "bf16", "f16", "f64", "i8", "i32", "i64", "index"]
ELEMENT_TYPES = ["f32", "bf16", "f16", "f64", "i8", "i32", "i64"]
DIMS = ["0", "1", "2", "3", "?", "64", "4096"]
INT_BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "index": 64,
            "ui32": 32, "ui64": 64}
# Bit patterns of NaN, +inf, -inf and the largest finite value per type.
FLOAT_BITS = {
    "f64": ["0x7FF8000000000000", "0x7FF0000000000000", "0xFFF0000000000000",
            "0x7FEFFFFFFFFFFFFF"],
    "f32": ["0x7FC00000", "0x7F800000", "0xFF800000", "0x7F7FFFFF"],
    "f16": ["0x7E00", "0x7C00", "0xFC00", "0x7BFF"],
    "bf16": ["0x7FC0", "0x7F80", "0xFF80", "0x7F7F"],
}
FLOAT_DECIMALS = ["0.000000e+00", "-0.000000e+00", "1.000000e+00",
                  "-1.000000e+00", "1.000000e-30", "1.000000e+30"]
F64_DECIMALS = ["1.0e+308", "4.9e-324", "-1.0e+308"]


def chunks(root):
    files = sorted(glob.glob(os.path.join(root, "test", "**", "*.mlir"),
                             recursive=True))
    files.append(os.path.join(root, "examples", "qwen2.5-0.5b-attention.mlir"))
    out = []
    for path in files:
        text = open(path).read()
        for part in text.split("// -----"):
            lines = [l for l in part.splitlines()
                     if "expected-" not in l and not l.lstrip().startswith("// RUN")]
            if any("func.func" in l for l in lines):
                out.append((os.path.relpath(path, root), "\n".join(lines)))
    return out


def mutate_text(text, rng):
    """Textual mutations: most of these mutants die in the parser."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        numbers = list(re.finditer(
            r"(?<![%#@\w.])-?\d+(\.\d+)?(e[+-]?\d+)?", text))
        if kind == 0 and numbers:
            m = rng.choice(numbers)
            text = text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]
        elif kind == 1:
            found = list(re.finditer(r"\b(f32|bf16|f16|i32|i64|i8)\b", text))
            if found:
                m = rng.choice(found)
                text = text[:m.start()] + rng.choice(TYPES) + text[m.end():]
        elif kind == 2:
            found = list(re.finditer(r"\b\d+x", text))
            if found:
                m = rng.choice(found)
                text = (text[:m.start()] + rng.choice(["?x", "0x", "1x", "3x"])
                        + text[m.end():])
        elif kind == 3:
            lines = text.splitlines()
            if len(lines) > 2:
                del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        else:
            lines = text.splitlines()
            if len(lines) > 2:
                i = rng.randrange(len(lines))
                lines.insert(rng.randrange(len(lines)), lines[i])
            text = "\n".join(lines)
    return text


# --- The generic form, one op per line ---------------------------------------

OPENERS, CLOSERS = "([{<", ")]}>"


def scan(text, start, stop_chars):
    """Index of the first character of `stop_chars` at bracket depth 0 at or
    after `start` (strings and `->` skipped), or len(text)."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "-" and text.startswith("->", i):
            i += 1
        elif depth == 0 and c in stop_chars:
            return i
        elif c in OPENERS:
            depth += 1
        elif c in CLOSERS:
            depth -= 1
        i += 1
    return len(text)


def split_top(text):
    """`text` split at top-level commas, with the spans of the parts."""
    parts, start = [], 0
    while start <= len(text):
        end = scan(text, start, ",")
        lead = len(text[start:end]) - len(text[start:end].lstrip())
        part = text[start:end].strip()
        if part:
            parts.append((part, start + lead, start + lead + len(part)))
        start = end + 1
    return parts


OP_RE = re.compile(r'^(\s*)(?:(%[\w#:%, ]+?) = )?"([\w.]+)"\(')


class Op:
    """One generic-form op line: spans of its operands, attribute dicts and
    types. Ops with regions or successors keep only their name and dicts."""

    def __init__(self, index, line):
        self.index, self.line = index, line
        self.props = self.attrs = None
        self.operand_types = self.result_types = None
        m = OP_RE.match(line)
        self.name = m.group(3)
        self.results = []
        for result in (m.group(2) or "").split(","):
            name, _, count = result.strip().partition(":")
            if count:
                self.results += [f"{name}#{i}" for i in range(int(count))]
            elif name:
                self.results.append(name)
        self.indent = len(m.group(1))
        start = m.end()
        end = scan(line, start, ")")
        self.operands = [(t, s + start, e + start)
                         for t, s, e in split_top(line[start:end])]
        pos = end + 1
        if line.startswith(" <{", pos):
            close = scan(line, pos + 3, "}")
            self.props = (pos + 3, close)
            pos = close + 2
        if line.startswith(" ({", pos) or line.startswith("[", pos):
            return
        if line.startswith(" {", pos):
            close = scan(line, pos + 2, "}")
            self.attrs = (pos + 2, close)
            pos = close + 1
        if not line.startswith(" : (", pos):
            return
        tstart = pos + 4
        tend = scan(line, tstart, ")")
        self.operand_types = [(t, s + tstart, e + tstart)
                              for t, s, e in split_top(line[tstart:tend])]
        rest = line[tend + 1:]
        if not rest.startswith(" -> "):
            return
        rstart = tend + 5
        if line.startswith("(", rstart):
            rend = scan(line, rstart + 1, ")")
            self.result_types = [(t, s + rstart + 1, e + rstart + 1)
                                 for t, s, e in
                                 split_top(line[rstart + 1:rend])]
        else:
            self.result_types = [(line[rstart:], rstart, len(line))]
        if (len(self.operand_types) != len(self.operands)
                or len(self.result_types) != len(self.results)):
            self.operand_types = self.result_types = None


def parse_ops(lines):
    return [Op(i, l) for i, l in enumerate(lines) if OP_RE.match(l)]


def replace_spans(line, edits):
    """`line` with each (start, end, text) of `edits` applied."""
    for start, end, text in sorted(edits, reverse=True):
        line = line[:start] + text + line[end:]
    return line


def typed_ops(ops):
    return [op for op in ops if op.operand_types is not None]


def swap_operands(lines, ops, rng):
    candidates = []
    for op in typed_ops(ops):
        for i in range(len(op.operands)):
            for j in range(i + 1, len(op.operands)):
                if (op.operand_types[i][0] == op.operand_types[j][0]
                        and op.operands[i][0] != op.operands[j][0]):
                    candidates.append((op, i, j))
    if not candidates:
        return False
    op, i, j = rng.choice(candidates)
    a, b = op.operands[i], op.operands[j]
    lines[op.index] = replace_spans(op.line, [(a[1], a[2], b[0]),
                                              (b[1], b[2], a[0])])
    return True


BLOCK_ARGS_RE = re.compile(r"(%[\w#]+): ([^,)]+(?:<[^>]*>)?)")


def indent_of(line):
    return len(line) - len(line.lstrip())


def definitions(lines, ops):
    """(line index, indent of the block, name, type) of every block argument
    and op result."""
    defined = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("^bb"):
            for name, type_ in BLOCK_ARGS_RE.findall(line):
                defined.append((i, indent_of(line) + 2, name, type_.strip()))
    for op in typed_ops(ops):
        for name, (type_, _, _) in zip(op.results, op.result_types or []):
            defined.append((op.index, op.indent, name, type_))
    return defined


def dominates(lines, definition, use):
    """True when the value defined on line `definition[0]` in a block at
    indent `definition[1]` is visible on line `use`: `use` is after it, in
    its block or in a region nested in it (single-block regions)."""
    index, indent = definition[0], definition[1]
    return index < use and all(
        indent_of(lines[i]) >= indent for i in range(index + 1, use + 1)
        if lines[i].strip())


def replace_operand(lines, ops, rng):
    """An operand replaced by another visible value of the same type."""
    defined = definitions(lines, ops)
    candidates = []
    for op in typed_ops(ops):
        for k, (name, start, end) in enumerate(op.operands):
            type_ = op.operand_types[k][0]
            others = [d[2] for d in defined
                      if d[3] == type_ and d[2] != name
                      and dominates(lines, d, op.index)]
            if others:
                candidates.append((op, start, end, others))
    if not candidates:
        return False
    op, start, end, others = rng.choice(candidates)
    lines[op.index] = replace_spans(op.line, [(start, end, rng.choice(others))])
    return True


NUMBER_RE = re.compile(
    r"(?<![\w.#%@^x])(-?(?:0x[0-9A-Fa-f]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))"
    r"(?: : (\w+))?(?![\w.])")


def edge_value(type_, literal, rng):
    if type_ in FLOAT_BITS:
        return rng.choice(FLOAT_BITS[type_] + FLOAT_DECIMALS
                          + (F64_DECIMALS if type_ == "f64" else []))
    if type_ in INT_BITS:
        bits = INT_BITS[type_]
        if bits == 1:
            return rng.choice(["0", "1"])
        return str(rng.choice([0, -1, 1, 2, 3, 7, 65, 4096, 2**(bits - 1) - 1,
                               -2**(bits - 1)]))
    # Untyped: an attribute parameter.
    if not literal.startswith("0x") and ("." in literal or "e" in literal):
        return rng.choice(FLOAT_DECIMALS + ["0x7FF8000000000000"])
    return str(rng.choice([0, -1, 1, 2, 3, 65, 4096, 2**31 - 1, 2**63 - 1]))


def element_type_at(line, pos):
    """The element type of the `array<i64: ...>` or `dense<...> : tensor<..>`
    around `pos`, if any."""
    array = re.search(r"array<(\w+):[^>]*$", line[:pos])
    if array:
        return array.group(1)
    if re.search(r"dense<[^>]*$", line[:pos]):
        m = re.match(r"[^>]*> : (?:tensor|vector)<(?:[\d?]+x)*(\w+)>",
                     line[pos:])
        return m.group(1) if m else None
    return None


def attr_edge(lines, ops, rng):
    candidates = []
    for op in mutable_dicts(ops):
        for span in (op.props, op.attrs):
            if span:
                for entry, start, end in dict_entries(op, span):
                    if not structural(entry):
                        candidates += [(op, m) for m in
                                       NUMBER_RE.finditer(op.line, start, end)]
    if not candidates:
        return False
    op, m = rng.choice(candidates)
    type_ = m.group(2) or element_type_at(op.line, m.start(1))
    value = edge_value(type_, m.group(1), rng)
    lines[op.index] = replace_spans(op.line, [(m.start(1), m.end(1), value)])
    return True


TENSOR_RE = re.compile(r"^tensor<((?:(?:\d+|\?)x)*)(\w+)(,.*)?>$")


def retype_result(lines, ops, rng):
    """One dim or the element type of a result, changed at the def and at
    every use on the op lines that list the operand's type."""
    candidates = [(op, k) for op in typed_ops(ops)
                  for k, (t, _, _) in enumerate(op.result_types or [])
                  if TENSOR_RE.match(t) and op.results]
    if not candidates:
        return False
    op, k = rng.choice(candidates)
    old = op.result_types[k][0]
    m = TENSOR_RE.match(old)
    dims = [d for d in m.group(1).split("x") if d]
    element = m.group(2)
    if dims and rng.random() < 0.7:
        i = rng.randrange(len(dims))
        dims[i] = rng.choice([d for d in DIMS if d != dims[i]])
    else:
        element = rng.choice([e for e in ELEMENT_TYPES if e != element])
    new = "tensor<" + "".join(d + "x" for d in dims) + element + (
        m.group(3) or "") + ">"
    name = op.results[k]
    _, start, end = op.result_types[k]
    lines[op.index] = replace_spans(op.line, [(start, end, new)])
    for user in typed_ops(ops):
        positions = [j for j, (operand, _, _) in enumerate(user.operands)
                     if operand == name]
        if not positions or user is op:
            continue
        lines[user.index] = replace_spans(
            user.line, [(user.operand_types[j][1], user.operand_types[j][2],
                         new) for j in positions])
        if user.name == "func.return":
            for j in positions:
                retype_function_result(lines, user.index, j, new)
    return True


def retype_function_result(lines, index, position, new):
    """Result `position` of the function_type of the func.func around line
    `index` set to `new`."""
    func = next((i for i in range(index - 1, -1, -1)
                 if '"func.func"' in lines[i]
                 and indent_of(lines[i]) < indent_of(lines[index])), None)
    if func is None:
        return
    line = lines[func]
    key = line.find("function_type = (")
    if key < 0:
        return
    args_end = scan(line, key + len("function_type = ("), ")")
    if not line.startswith(" -> ", args_end + 1):
        return
    start = args_end + 5
    if line.startswith("(", start):
        end = scan(line, start + 1, ")")
        results = split_top(line[start + 1:end])
        if position < len(results):
            _, s, e = results[position]
            lines[func] = replace_spans(line, [(start + 1 + s, start + 1 + e,
                                                new)])
    elif position == 0:
        lines[func] = replace_spans(line, [(start, scan(line, start, ",}"),
                                            new)])


def dict_entries(op, span):
    return [(t, s + span[0], e + span[0])
            for t, s, e in split_top(op.line[span[0]:span[1]])]


def entry_key(entry):
    return entry.split("=", 1)[0].strip()


def structural(entry):
    """Segment sizes describe the operand list itself; upstream ops read
    their operands through them before any verifier checks them (a wrong sum
    makes gpu.launch_func's verifier read out of bounds), so they stay."""
    return entry_key(entry) in ("operandSegmentSizes", "resultSegmentSizes")


def mutable_dicts(ops):
    """The ops whose attribute dicts may change. Not the gpu dialect's: in
    MLIR 22, the `gpu.container_module` check walks gpu.func and
    gpu.launch_func before their own verifiers run, and reads a missing or
    mistyped attribute as a null (a crash upstream, not in Rotor)."""
    return [op for op in ops if not op.name.startswith("gpu.")]


def drop_attr(lines, ops, rng):
    candidates = [(op, span) for op in mutable_dicts(ops)
                  for span in (op.props, op.attrs)
                  if span and any(not structural(t)
                                  for t, _, _ in dict_entries(op, span))]
    if not candidates:
        return False
    op, span = rng.choice(candidates)
    keep = [t for t, _, _ in dict_entries(op, span)]
    keep.remove(rng.choice([t for t in keep if not structural(t)]))
    lines[op.index] = replace_spans(op.line,
                                    [(span[0], span[1], ", ".join(keep))])
    return True


def copy_attr(lines, ops, rng):
    """An entry of one op's dict put into another op's dict of the same kind
    (properties or discardable), replacing an entry of the same name."""
    ops = mutable_dicts(ops)
    sources = [(op, kind, e) for op in ops
               for kind, span in (("props", op.props), ("attrs", op.attrs))
               if span for e in dict_entries(op, span) if not structural(e[0])]
    if not sources:
        return False
    source, kind, (entry, _, _) = rng.choice(sources)
    targets = [op for op in ops if getattr(op, kind) and op is not source]
    if not targets:
        return False
    target = rng.choice(targets)
    span = getattr(target, kind)
    entries = [t for t, _, _ in dict_entries(target, span)
               if entry_key(t) != entry_key(entry)]
    entries.append(entry)
    entries.sort(key=entry_key)
    lines[target.index] = replace_spans(
        target.line, [(span[0], span[1], ", ".join(entries))])
    return True


def swap_attr_dicts(lines, ops, rng):
    """The attribute dicts of two ops of the same name exchanged; each op
    keeps its segment sizes."""
    by_name = collections.defaultdict(list)
    for op in mutable_dicts(ops):
        if op.props or op.attrs:
            by_name[op.name].append(op)
    candidates = [(a, b) for same in by_name.values()
                  for i, a in enumerate(same) for b in same[i + 1:]
                  if dicts(a) != dicts(b)]
    if not candidates:
        return False
    a, b = rng.choice(candidates)
    for x, y in ((a, b), (b, a)):
        lines[x.index] = replace_spans(x.line, swapped_dicts(x, y))
    return True


def swapped_dicts(x, y):
    """The edits of x's line that give it y's attribute dicts."""
    edits = []
    for kind in ("props", "attrs"):
        xs, ys = getattr(x, kind), getattr(y, kind)
        if xs and ys:
            entries = [t for t, _, _ in dict_entries(y, ys)
                       if not structural(t)]
            entries += [t for t, _, _ in dict_entries(x, xs) if structural(t)]
            entries.sort(key=entry_key)
            edits.append((xs[0], xs[1], ", ".join(entries)))
    return edits


def dicts(op):
    """The entries of an op's attribute dicts that a swap exchanges."""
    return tuple(tuple(t for t, _, _ in dict_entries(op, span)
                       if not structural(t)) if span else None
                 for span in (op.props, op.attrs))


# Weights: dropping a required attribute only ever meets the generated
# "requires attribute" check, so it is drawn less often.
OP_MUTATIONS = [(swap_operands, 3), (replace_operand, 3), (attr_edge, 4),
                (retype_result, 4), (drop_attr, 1), (copy_attr, 2),
                (swap_attr_dicts, 2)]


def mutate_ops(generic, rng):
    """One op-aware mutation of a generic-form chunk (sometimes two), or None
    when none applies. Returns (text, kind)."""
    lines = generic.splitlines()
    kinds = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        ops = parse_ops(lines)
        remaining = OP_MUTATIONS[:]
        while remaining:
            pick = rng.choices(range(len(remaining)),
                               [w for _, w in remaining])[0]
            mutation, _ = remaining.pop(pick)
            if mutation(lines, ops, rng):
                kinds.append(mutation.__name__)
                break
    if not kinds:
        return None
    return "\n".join(lines), "+".join(kinds)


def generic_forms(rotor_opt, texts, timeout):
    """The generic form of each text, printed by one split-input rotor-opt
    run; None for a text that does not verify."""
    marker = "// -----"
    try:
        r = subprocess.run([rotor_opt, "-", "--split-input-file",
                            "--mlir-print-op-generic"],
                           input=f"\n{marker}\n".join(texts),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [None] * len(texts)
    forms = r.stdout.split(marker)
    if len(forms) != len(texts):
        return [None] * len(texts)
    return [form if form.strip() else None for form in forms]


def run(rotor_opt, mutant, pipeline, timeout):
    """(problem or None, exit status, stderr) of one rotor-opt run."""
    try:
        r = subprocess.run([rotor_opt, "-", "-o", os.devnull] + pipeline,
                           input=mutant, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"hang (> {timeout} s)", None, ""
    rc, err = r.returncode, r.stderr
    if rc < 0 or rc >= 128 or "LLVM ERROR" in err or "Stack dump" in err:
        return f"crash (status {rc})", rc, err
    if rc == 0 and "error:" in err:
        return "error with exit 0", rc, err
    return None, rc, err


ERROR_LOC_RE = re.compile(r"^<stdin>:(\d+):(\d+): error:", re.M)


def rejected_by(rotor_opt, mutant, err, timeout):
    """'verify' when an op or attribute verifier rejected the mutant, 'parse'
    when the parser did. Attribute verifiers run inside the parser; their
    errors point just after the attribute's name."""
    m = ERROR_LOC_RE.search(err)
    if m:
        lines = mutant.splitlines()
        line, col = int(m.group(1)), int(m.group(2))
        if line <= len(lines) and re.search(r"#attn\.\w+$",
                                            lines[line - 1][:col - 1]):
            return "verify"
    try:
        r = subprocess.run([rotor_opt, "-", "-o", os.devnull,
                            "--mlir-very-unsafe-disable-verifier-on-parsing",
                            "--mlir-print-op-generic"],
                           input=mutant, capture_output=True, text=True,
                           timeout=timeout)
        return "parse" if r.returncode != 0 else "verify"
    except subprocess.TimeoutExpired:
        return "parse"


def evaluate(args, mutant, pipeline):
    """(problem or None, how far the mutant got, the pipeline it ran)."""
    # The verifier first; a pipeline only for mutants that verify.
    problem, rc, err = run(args.rotor_opt, mutant, [], args.timeout)
    if problem:
        return problem, "failure", []
    if rc != 0:
        if not args.stats:
            return None, "rejected", []
        stage = rejected_by(args.rotor_opt, mutant, err, args.timeout)
        m = ERROR_LOC_RE.search(err)
        lines = mutant.splitlines()
        if (stage == "verify" and m and int(m.group(1)) <= len(lines)
                and "attn." in lines[int(m.group(1)) - 1]):
            stage = "verify (attn)"
        return None, stage, []
    problem, rc, err = run(args.rotor_opt, mutant, pipeline, args.timeout)
    return problem, ("failure" if problem else "pipeline ok" if rc == 0
                     else "pipeline error"), pipeline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rotor_opt")
    ap.add_argument("root")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mutants", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", default=None,
                    help="write the failing mutants into this directory")
    ap.add_argument("--stats", action="store_true",
                    help="print how far the mutants got, per mutation kind")
    ap.add_argument("--text-only", action="store_true",
                    help="textual mutations of any chunk only (the fuzzer "
                         "before op-aware mutations, for comparison)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sources = chunks(args.root)
    forms = generic_forms(args.rotor_opt, [text for _, text in sources],
                          args.timeout)
    valid = [(o, t, g) for (o, t), g in zip(sources, forms) if g]
    # All mutants are drawn first, so that they do not depend on --jobs.
    mutants = []
    for n in range(args.mutants):
        # Mostly chunks that verify: the others are verifier tests, whose
        # mutants mostly fail as the chunk does.
        if args.text_only or not valid or rng.random() < 0.15:
            (origin, text), generic = rng.choice(sources), None
        else:
            origin, text, generic = rng.choice(valid)
        mutated = (mutate_ops(generic, rng)
                   if generic and rng.random() < 0.8 else None)
        mutant, kind = mutated or (mutate_text(text, rng), "text")
        mutants.append((n, origin, kind, mutant, rng.choice(PIPELINES)))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda m: evaluate(args, m[3], m[4]),
                                mutants))
    failures = []
    stages = collections.defaultdict(collections.Counter)
    for (n, origin, kind, mutant, _), (problem, stage, pipeline) in zip(
            mutants, results):
        stages[kind.split("+")[0]][stage] += 1
        if problem:
            failures.append((n, origin, kind, " ".join(pipeline) or "(verify)",
                             problem))
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                with open(os.path.join(args.keep, f"mutant-{n}.mlir"), "w") as f:
                    f.write(mutant)
    for n, origin, kind, pipeline, problem in failures:
        print(f"mutant {n} of {origin} ({kind}) through {pipeline}: {problem}")
    if args.stats:
        total = collections.Counter()
        for kind in sorted(stages):
            total.update(stages[kind])
            print(f"  {kind}: " + ", ".join(
                f"{s} {c}" for s, c in sorted(stages[kind].items())))
        pipelines = total["pipeline ok"] + total["pipeline error"]
        print(f"  chunks: {len(sources)}, {len(valid)} verify; mutants past "
              f"the parser: {args.mutants - total['parse']}/{args.mutants}, "
              f"through a pipeline: {pipelines}/{args.mutants}")
    print(f"fuzz_ir: {args.mutants} mutants, {len(failures)} failures "
          f"(seed {args.seed})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
