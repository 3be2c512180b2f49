"""The code-shape targets of the restructure, measured: functions over 60 lines, modules over 400, import circles,
process branches outside the core, figure functions written twice, toydiff's top-level modules, README lines.

    python bench/code_shape.py                 # the tables, for this checkout
    python bench/code_shape.py --root DIR      # for another checkout (e.g. a git worktree of an older commit)

The import graph counts every import: at module level, inside functions and under ``if TYPE_CHECKING:``.
``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to ``a.b`` (its ``__init__``);
``import a.b`` is an edge to ``a.b``. A circle is a strongly connected component of more than one module
(Tarjan 1972). tests/test_layering.py asserts the graph's targets; this script only prints.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toydiff", "image_track", "apps")
MAX_FUNCTION, MAX_MODULE = 60, 400
#: the layers above the core, where nothing should branch on the process
OUTSIDE_CORE = ("image_track", "apps", "toydiff/toy", "bench")
BRANCH = re.compile(r"isinstance\([^)]*\b(FlowObjective|VPObjective|InterpolantProcess|VPProcess)\b"
                    r"|\bprocess\w*\b[^=\n]*[!=]=\s*['\"](flow|vp)['\"]"  # process == "flow", process_of(m) != "vp"
                    r"|\.name\s*[!=]=\s*['\"](flow|vp)['\"]|\bFLOW_METHODS\b")
#: modules (or packages) whose functions are figures, and where they live
FIGURE_MODULE = re.compile(r"^(plots|charts|figures)")
FIGURE_ROOTS = ("toydiff/toy", "apps", "image_track")


def offenders(root: Path = ROOT) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(functions longer than MAX_FUNCTION lines, modules longer than MAX_MODULE lines), each as (where, lines)."""
    funcs, mods = [], []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            text = path.read_text()
            rel = path.relative_to(root).as_posix()
            n = len(text.splitlines())
            if n > MAX_MODULE:
                mods.append((rel, n))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION:
                        funcs.append((f"{rel}:{node.lineno} {node.name}", length))
    return funcs, mods


# --- the import graph --------------------------------------------------------------------------------------
def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/<package>`` (a package is its ``__init__``)."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(node: ast.AST, name: str, is_package: bool, known: dict) -> list[str]:
    """The dotted names one import statement of module ``name`` reaches (resolved against ``known`` modules)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        pkg = name.split(".") if is_package else name.split(".")[:-1]
        pkg = pkg[:len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """module -> the modules of ``packages`` it imports anywhere in its body (function-level and type-only too)."""
    known = modules(root, packages)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node, name, path.name == "__init__.py", known):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]  # a name inside a module: the module
                if target in known and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start), on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w), on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def import_circles(root: Path = ROOT, packages=PACKAGES) -> list[list[str]]:
    """Every import circle among the modules of ``packages`` under ``root``."""
    return circles(import_graph(root, packages))


def own_package_imports(root: Path = ROOT, packages=PACKAGES) -> list[tuple[str, str]]:
    """(module, package) where a module imports the ``__init__`` of a package it lives in."""
    known = modules(root, packages)
    graph = import_graph(root, packages)
    return sorted((m, t) for m, ts in graph.items() for t in ts
                  if known[t].name == "__init__.py" and m.startswith(t + "."))


# --- the other targets -------------------------------------------------------------------------------------
def process_branches(root: Path = ROOT) -> list[str]:
    """``path:line`` of every line outside the core that branches on the process (:data:`BRANCH`)."""
    hits = []
    for where in OUTSIDE_CORE:
        for path in sorted((root / where).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if BRANCH.search(line.split("#", 1)[0]):
                    hits.append(f"{path.relative_to(root).as_posix()}:{i}")
    return hits


def _is_figure_module(path: Path, base: Path) -> bool:
    return any(FIGURE_MODULE.match(part) for part in path.relative_to(base).with_suffix("").parts)


def duplicate_figures(root: Path = ROOT) -> dict[str, list[str]]:
    """Public figure functions (top level of a plots*/charts*/figures* module under :data:`FIGURE_ROOTS`) whose
    name is defined in more than one module: name -> the modules."""
    where = defaultdict(list)
    for base in FIGURE_ROOTS:
        for path in sorted((root / base).rglob("*.py")):
            if not _is_figure_module(path, root / base):
                continue
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                    where[node.name].append(path.relative_to(root).as_posix())
    return {name: mods for name, mods in sorted(where.items()) if len(set(mods)) > 1}


def targets(root: Path = ROOT) -> list[tuple[str, int]]:
    """The issue's measured targets as (what, count)."""
    readme = root / "README.md"
    return [
        ("import circles in toydiff/, image_track/, apps/", len(import_circles(root))),
        ("modules in those circles", sum(map(len, import_circles(root)))),
        ("imports of an own package's __init__", len(own_package_imports(root))),
        ("lines outside the core that branch on the process", len(process_branches(root))),
        ("figure functions defined in more than one module", len(duplicate_figures(root))),
        ("modules at toydiff/'s top level", len(list((root / "toydiff").glob("*.py")))),
        ("README lines", len(readme.read_text().splitlines()) if readme.exists() else 0),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    root = parser.parse_args(argv).root.resolve()
    print(f"| target ({root}) | measured |\n|---|---:|")
    for what, n in targets(root):
        print(f"| {what} | {n} |")
    for comp in import_circles(root):
        print(f"\ncircle: {' <-> '.join(comp)}")
    for m, pkg in own_package_imports(root):
        print(f"own package: {m} imports {pkg}")
    for line in process_branches(root):
        print(f"process branch: {line}")
    for name, mods in duplicate_figures(root).items():
        print(f"figure twice: {name} in {', '.join(mods)}")
    funcs, mods = offenders(root)
    print(f"\n| functions over {MAX_FUNCTION} lines | lines |\n|---|---:|")
    for where, n in sorted(funcs, key=lambda r: -r[1]):
        print(f"| {where} | {n} |")
    print(f"\n| modules over {MAX_MODULE} lines | lines |\n|---|---:|")
    for where, n in sorted(mods, key=lambda r: -r[1]):
        print(f"| {where} | {n} |")
    print(f"\n{len(funcs)} function(s) and {len(mods)} module(s) over the limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
