#!/usr/bin/env python3
"""Lengths of the C++ functions in a source tree; lists those longer than
`--max` lines and exits 1 when there is any.

How it measures: a brace-matching scan of each file, with no compiler (so it
runs wherever python3 does). Comments, string and character literals (raw
strings included) and preprocessor lines are blanked first, keeping the line
breaks. The scan then walks the braces at file, namespace and class scope,
and takes a `{` as the start of a function body when the text before it,
from the previous `;`, `{` or `}`, is a declarator: a parameter list `(...)`
followed only by qualifiers (`const`, `noexcept`, `override`, ...), a
trailing return type, or a constructor's member initializers. A function's
length is the number of physical lines from the line of its name to the line
of its closing brace, blank and comment lines included; everything between
its braces belongs to it, lambdas and local classes too. Functions defined
inside classes count on their own; a lambda stored in a namespace-scope
variable is an initializer, not a function. `#if`/`#else` branches are both
scanned, so a brace opened in each branch would unbalance the scan: the file
is then reported on stderr.

usage: function_lengths.py [DIR ...] [--max N] [--root DIR]
       (default DIRs: lib runtime/lib runtime/tools tools, relative to the
       repository root; runtime/third_party is never scanned)
Output: `path:line name length`, longest first.
"""
import argparse
import os
import re
import sys

DEFAULT_DIRS = ["lib", "runtime/lib", "runtime/tools", "tools"]
EXCLUDED = ["runtime/third_party"]
SUFFIXES = (".cpp", ".cc", ".cxx", ".c", ".h", ".hpp", ".hh")
QUALIFIERS = {"const", "volatile", "noexcept", "override", "final", "mutable",
              "try", "&", "&&"}
CLASS_KEYWORDS = re.compile(r"\b(class|struct|union|enum)\b")
NAME_RE = re.compile(
    r"((?:[A-Za-z_]\w*(?:<[^()]*>)?::)*"
    r"(?:operator\s*(?:\(\)|\[\]|[^\s\w(]+|\s[\w:<> *&]+)|~?[A-Za-z_]\w*))\s*$")


def blank(text):
    """`text` with comments, literals and preprocessor lines replaced by
    spaces; line breaks are kept, so offsets keep their line numbers."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            # A directive, with its continuation lines.
            j = i
            while j < n and text[j] != "\n":
                if text.startswith("//", j):
                    j = text.find("\n", j)
                    j = n if j < 0 else j
                    break
                if text.startswith("/*", j):
                    k = text.find("*/", j + 2)
                    j = n if k < 0 else k + 2
                    continue
                j += 2 if text[j] == "\\" else 1
            out.append(keep_newlines(text[i:j]))
            i = j
            continue
        line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(keep_newlines(text[i:j]))
            i = j
        elif c == "R" and text.startswith('"', i + 1) and not (
                i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i + m.end())
                j = n if end < 0 else end + len(m.group(1)) + 2
                out.append(keep_newlines(text[i:j]))
                i = j
            else:
                out.append(c)
                i += 1
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():
                # A digit separator (1'000'000), not a character literal.
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            if c == "\n":
                line_start = True
            out.append(c)
            i += 1
    return "".join(out)


def keep_newlines(s):
    return re.sub(r"[^\n]", " ", s)


def match_close(text, i):
    """Index of the bracket that closes the one at `i`, or len(text)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = [pairs[text[i]]]
    j = i + 1
    while j < len(text) and stack:
        c = text[j]
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if c == stack[-1]:
                stack.pop()
            elif c == "}" and "}" in stack:
                # Unbalanced parentheses inside braces: trust the braces.
                while stack[-1] != "}":
                    stack.pop()
                stack.pop()
        j += 1
    return j - 1 if not stack else len(text)


def strip_templates(header):
    """`header` without leading `template <...>` clauses."""
    while True:
        m = re.match(r"\s*template\s*<", header)
        if not m:
            return header
        depth, j = 1, m.end()
        while j < len(header) and depth:
            depth += {"<": 1, ">": -1}.get(header[j], 0)
            j += 1
        header = header[j:]


def paren_groups(header):
    """(start, end) of each top-level parenthesized group of `header`."""
    groups, depth, start = [], 0, 0
    for j, c in enumerate(header):
        if c in "([":
            if depth == 0:
                start = j
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0 and header[start] == "(":
                groups.append((start, j))
    return groups


def ctor_colon(header, groups):
    """Index of the `:` that starts a constructor's member initializers (a
    single colon after the parameter list, outside any parentheses), or -1."""
    for m in re.finditer(r"(?<!:):(?!:)", header):
        if m.start() > groups[0][1] and all(
                not (s < m.start() < e) for s, e in groups):
            return m.start()
    return -1


def is_member_init_brace(header):
    """True when a `{` after `header` brace-initializes a member in a
    constructor's initializer list (`: x(1), y{2} {`), not the body."""
    groups = paren_groups(header)
    if not groups:
        return False
    colon = ctor_colon(header, groups)
    return colon >= 0 and re.search(r"[\w>]\s*$", header[colon:]) is not None


def declarator_name(header):
    """(name, offset of the name in `header`) when `header`, the text before
    a `{`, declares a function; else None."""
    body = strip_templates(header)
    skipped = len(header) - len(body)
    groups = paren_groups(body)
    if not groups:
        return None
    # `auto f = [](...) {` and `T x = T(...) {`: an initializer.
    before = body[:groups[0][0]]
    if "operator" in before:
        before = before[:before.index("operator")]
    if re.search(r"(^|[^=!<>])=($|[^=])", before):
        return None
    colon = ctor_colon(body, groups)
    if colon >= 0:
        body = body[:colon]
        groups = [g for g in groups if g[1] < colon]
    # Back from the end over a trailing return type and the qualifiers
    # (`noexcept(...)` included) to the parameter list.
    arrow = body.rfind("->")
    if arrow > groups[-1][1]:
        body = body[:arrow]
    if len(groups) >= 2:
        between = body[groups[-2][1] + 1:groups[-1][0]]
        if re.search(r"\bnoexcept\s*$", between) and all(
                t in QUALIFIERS for t in re.findall(r"&&|&|\w+|\S", between)):
            body = body[:groups[-1][0]]
            groups = groups[:-1]
    tokens = re.findall(r"&&|&|\w+|\S", body[groups[-1][1] + 1:])
    if any(t not in QUALIFIERS for t in tokens):
        return None
    m = NAME_RE.search(body[:groups[-1][0]])
    if not m:
        return None
    name = re.sub(r"\s+", " ", m.group(1)).strip()
    if name in ("if", "for", "while", "switch", "catch", "return", "sizeof",
                "decltype", "alignas", "static_assert"):
        return None
    return name, skipped + m.start(1)


def scan(text):
    """(line, name, length) of each function definition in blanked `text`."""
    found = []
    line_of = LineIndex(text)

    def walk(start, end):
        header_start = i = start
        while i < end:
            c = text[i]
            if c in ";}":
                header_start = i + 1
            elif c in "([":
                i = match_close(text, i)
            elif c == "{":
                close = match_close(text, i)
                header = text[header_start:i]
                if is_member_init_brace(header):
                    i = close + 1
                    continue
                declarator = declarator_name(header)
                kind = strip_templates(header).strip()
                if declarator:
                    name, offset = declarator
                    first = line_of(header_start + offset)
                    found.append((first, name, line_of(close) - first + 1))
                elif (re.match(r"(inline\s+)?namespace\b|extern\b", kind)
                      or (CLASS_KEYWORDS.search(kind)
                          and not re.search(r"=\s*$", kind))):
                    walk(i + 1, close)
                i = close
                header_start = i + 1
            i += 1

    walk(0, len(text))
    return found


def match_balanced(text):
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


class LineIndex:
    def __init__(self, text):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def __call__(self, offset):
        lo, hi = 0, len(self.starts)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid
        return lo + 1


def source_files(root, dirs):
    excluded = [os.path.normpath(os.path.join(root, e)) for e in EXCLUDED]
    for d in dirs:
        top = os.path.normpath(os.path.join(root, d))
        if any(top == e or top.startswith(e + os.sep) for e in excluded):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(
                x for x in dirnames
                if os.path.normpath(os.path.join(dirpath, x)) not in excluded)
            for f in sorted(filenames):
                if f.endswith(SUFFIXES):
                    yield os.path.join(dirpath, f)


def main():
    default_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(
        description="List C++ functions longer than --max lines.")
    ap.add_argument("dirs", nargs="*", default=DEFAULT_DIRS,
                    help="directories to scan, relative to --root")
    ap.add_argument("--max", type=int, default=100,
                    help="the longest function allowed, in lines")
    ap.add_argument("--root", default=default_root,
                    help="the repository root (default: this script's ..)")
    args = ap.parse_args()
    long_functions = []
    for path in source_files(args.root, args.dirs):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = blank(f.read())
        functions, balanced = scan(text), match_balanced(text)
        rel = os.path.relpath(path, args.root)
        if not balanced:
            print(f"{rel}: unbalanced braces (preprocessor branches?); its "
                  f"lengths may be wrong", file=sys.stderr)
        long_functions += [(length, rel, line, name)
                           for line, name, length in functions
                           if length > args.max]
    long_functions.sort(key=lambda f: (-f[0], f[1], f[2]))
    for length, rel, line, name in long_functions:
        print(f"{rel}:{line} {name} {length}")
    return 1 if long_functions else 0


if __name__ == "__main__":
    sys.exit(main())
