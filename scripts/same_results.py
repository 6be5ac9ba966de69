#!/usr/bin/env python3
"""Checks that two output folders of sdsgsm (reproduce, compare, attack) hold the same results:
every file byte for byte, except what measures time. A refactor that changes no behaviour must
pass it (docs/ARCHITECTURE.md, "Behaviour does not change").

  timing.json     not compared (wall-clock figures only)
  results.json    compared as JSON without the keys that measure time or memory
                  (*second*, peak_rss*, ddi_over_iterations)
  results.md, compare.md
                  compared without the tables' last column (img/s)
  report.html     not compared (it shows the timings)

Usage: same_results.py BEFORE AFTER. Prints the differences; exit 0 when there are none.
"""
import json
import re
import sys
from pathlib import Path

TIMING_KEY = re.compile(r"second|peak_rss|ddi_over_iterations")
SKIP = {"timing.json", "report.html"}
TABLES = {"results.md", "compare.md"}


def json_diffs(x, y, path, out):
    if type(x) is not type(y):
        out.append(f"{path}: {x!r} -> {y!r}")
    elif isinstance(x, dict):
        for k in sorted(set(x) | set(y)):
            if TIMING_KEY.search(k):
                continue
            if k not in x or k not in y:
                out.append(f"{path}/{k}: only in {'after' if k in y else 'before'}")
            else:
                json_diffs(x[k], y[k], f"{path}/{k}", out)
    elif isinstance(x, list):
        if len(x) != len(y):
            out.append(f"{path}: {len(x)} -> {len(y)} items")
        for i, (p, q) in enumerate(zip(x, y)):
            json_diffs(p, q, f"{path}[{i}]", out)
    elif x != y:
        out.append(f"{path}: {x!r} -> {y!r}")


def table_lines(path):
    return ["|".join(l.split("|")[:-2]) if l.startswith("|") else l for l in path.read_text().splitlines()]


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diffs = [f"{p}: only in {a}" for p in sorted(files_a - files_b)]
    diffs += [f"{p}: only in {b}" for p in sorted(files_b - files_a)]
    compared = 0
    for rel in sorted(files_a & files_b):
        if rel.name in SKIP:
            continue
        compared += 1
        pa, pb = a / rel, b / rel
        if rel.name == "results.json":
            out = []
            json_diffs(json.loads(pa.read_text()), json.loads(pb.read_text()), str(rel), out)
            diffs += out
        elif rel.name in TABLES:
            la, lb = table_lines(pa), table_lines(pb)
            diffs += [f"{rel}:{i + 1}: {x!r} -> {y!r}" for i, (x, y) in enumerate(zip(la, lb)) if x != y]
            if len(la) != len(lb):
                diffs.append(f"{rel}: {len(la)} -> {len(lb)} lines")
        elif pa.read_bytes() != pb.read_bytes():
            diffs.append(f"{rel}: differs")
    for d in diffs[:50]:
        print(d)
    print(f"{compared} files compared, {len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
