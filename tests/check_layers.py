#!/usr/bin/env python3
"""The house rules a compiler does not check (issue 21), checked on the source tree:

1. Dependencies point one way: the graph of which module includes which module's headers has no
   cycle (so no two modules include each other). Every public header belongs to one module
   (HEADERS below, as docs/ARCHITECTURE.md lists them); a header missing from it fails the check.
2. An attack's name is a string literal only under src/attacks/ (its own file and the registry):
   elsewhere code picks attacks by their registry traits or by the constants (kIfgsm, ...) each
   attack's file defines. The names are read from those definitions and the registry's aliases.
3. Evaluation computes, the report formats: no file of src/evaluation/ emits a Markdown table (a
   string literal that starts a table row with "|" or holds a separator "|---"). The tables of
   evaluation's results are written under src/report/.
4. Files stay small enough to read whole: no source file under src/ or apps/ over MAX_LINES lines
   (split one that grows past it by what its parts do).

Usage: check_layers.py SOURCE_DIR [--graph]. Exit 0 when all hold; otherwise one line per
violation and exit 1. --graph prints the module graph (module -> the modules it includes).
"""
import re
import sys
from pathlib import Path

HEADERS = {
    "core": ["core.hpp", "distributed.hpp", "options.hpp", "progress.hpp"],
    "data": ["data.hpp"],
    "models": ["models.hpp"],
    "metrics": ["metrics.hpp"],
    "attacks": ["attacks.hpp", "sdsgsm.hpp", "eot.hpp"],
    "results": ["run_result.hpp", "run_folder.hpp", "run_info.hpp", "regime.hpp", "robust_result.hpp"],
    "evaluation": ["runner.hpp", "evaluation.hpp", "checks.hpp", "sweep.hpp", "tuning.hpp", "min_eps.hpp",
                   "robust.hpp", "robust_options.hpp", "robust_curve.hpp", "transfer.hpp", "frontier.hpp"],
    "report": ["tables.hpp", "report.hpp", "curves.hpp", "reproduce_tables.hpp", "reproduce_section.hpp",
               "evaluation_tables.hpp", "robust_report.hpp", "robust_curve_report.hpp"],
    "training": ["training.hpp"],
    "orchestration": ["reproduce.hpp", "reproduce_plan.hpp", "eps_runs.hpp", "compare.hpp"],
}
# A literal that is an attack's name but means something else there: the project's own name.
ALLOWED_LITERALS = {("apps/main.cpp", "sdsgsm"), ("src/models/zoo.cpp", "sdsgsm")}

# Files of src/evaluation/ allowed to emit a Markdown table: none (evaluation computes, report
# formats). An entry that no longer emits one is itself reported.
MARKDOWN_IN_EVALUATION_PENDING = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of_header(name, problems, where):
    for module, headers in HEADERS.items():
        if name in headers:
            return module
    problems.append(f"{where}: includes sdsgsm/{name}, which no module owns (add it to HEADERS in "
                    f"tests/check_layers.py and to docs/ARCHITECTURE.md)")
    return None


def module_of_file(root, path):
    rel = path.relative_to(root).parts
    if rel[0] == "src":
        return rel[1]
    if rel[0] == "include":
        for module, headers in HEADERS.items():
            if rel[-1] in headers:
                return module
        return None
    return rel[0]  # apps, python


def module_graph(root, problems):
    files = sorted(list((root / "src").glob("*/*.[ch]pp")) + list((root / "include" / "sdsgsm").glob("*.hpp")))
    for h in (root / "include" / "sdsgsm").glob("*.hpp"):
        module_of_header(h.name, problems, f"include/sdsgsm/{h.name}")
    graph = {}
    for f in files:
        mod = module_of_file(root, f)
        if mod is None:
            continue
        graph.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text()):
            if inc.startswith("sdsgsm/"):
                dep = module_of_header(inc[len("sdsgsm/"):], problems, str(f.relative_to(root)))
            else:  # a module's internal header, relative to the file
                target = (f.parent / inc).resolve()
                dep = module_of_file(root, target) if target.is_relative_to(root) else None
            if dep and dep != mod:
                graph[mod].add(dep)
    return graph


def find_cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def attack_names(root):
    names = set()
    for f in (root / "src" / "attacks").glob("*.cpp"):
        names.update(re.findall(r'const char k\w+\[\]\s*=\s*"([^"]+)"', f.read_text()))
    registry = (root / "src" / "attacks" / "registry.cpp").read_text()
    for aliases in re.findall(r'\{("[^{}]*")\}\s*,\s*k[A-Z]', registry):  # the aliases' braces before the traits
        names.update(re.findall(r'"([^"]+)"', aliases))
    return names


def name_literals(root, names, problems):
    pattern = re.compile(r'"(' + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r')"')
    files = []
    for folder in ["src", "include", "apps", "python/src"]:
        files += [p for p in (root / folder).rglob("*.[ch]pp")]
    for f in sorted(files):
        rel = f.relative_to(root).as_posix()
        if rel.startswith("src/attacks/"):
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("//")[0]  # comments may name attacks
            for name in pattern.findall(code):
                if (rel, name) not in ALLOWED_LITERALS:
                    problems.append(f'{rel}:{i}: the attack name "{name}" as a literal (use the registry or k-constant)')


STRING_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def markdown_tables(root, problems):
    """A string literal in src/evaluation/ that starts a Markdown table row or holds its separator."""
    for f in sorted((root / "src" / "evaluation").glob("*.[ch]pp")):
        rel = f.relative_to(root).as_posix()
        found = []
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("//")[0] if not line.lstrip().startswith('"') else line
            for text in STRING_LITERAL.findall(code):
                t = text.replace("\\n", "\n")
                if "|---" in t or any(row.lstrip().startswith("|") for row in t.split("\n")):
                    found.append(i)
        if found and rel not in MARKDOWN_IN_EVALUATION_PENDING:
            for i in found:
                problems.append(f"{rel}:{i}: a Markdown table emitted from src/evaluation/ (evaluation computes; "
                                f"write the table from src/report/)")
        elif not found and rel in MARKDOWN_IN_EVALUATION_PENDING:
            problems.append(f"{rel}: emits no Markdown table any more: remove it from "
                            f"MARKDOWN_IN_EVALUATION_PENDING in tests/check_layers.py")


MAX_LINES = 400


def long_files(root, problems):
    """Source files of src/ and apps/ over MAX_LINES lines."""
    for folder in ("src", "apps"):
        for f in sorted((root / folder).rglob("*")):
            if f.suffix in (".cpp", ".hpp", ".h") and f.is_file():
                lines = len(f.read_text(errors="replace").splitlines())
                if lines > MAX_LINES:
                    problems.append(f"{f.relative_to(root)}: {lines} lines, over {MAX_LINES} (split it by what its parts do)")


def main():
    if len(sys.argv) < 2:
        print("usage: check_layers.py SOURCE_DIR [--graph]", file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    problems = []
    graph = module_graph(root, problems)
    if "--graph" in sys.argv:
        for mod in sorted(graph):
            print(f"{mod} -> {', '.join(sorted(graph[mod])) or '(nothing)'}")
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a < b and a in graph.get(b, ()):
                problems.append(f"modules {a} and {b} include each other's headers")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("include cycle between modules: " + " -> ".join(cycle))
    names = attack_names(root)
    if len(names) < 10:
        problems.append(f"found only {len(names)} attack names in src/attacks/ (the pattern no longer matches)")
    name_literals(root, names, problems)
    markdown_tables(root, problems)
    long_files(root, problems)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
