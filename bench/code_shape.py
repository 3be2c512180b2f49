"""The code-shape targets of the restructure: functions over 60 lines, modules over 400, per package.

    python bench/code_shape.py            # a table of every offender in toydiff/, image_track/, apps/
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toydiff", "image_track", "apps")
MAX_FUNCTION, MAX_MODULE = 60, 400


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


def main() -> int:
    funcs, mods = offenders()
    print(f"| functions over {MAX_FUNCTION} lines | lines |\n|---|---:|")
    for where, n in sorted(funcs, key=lambda r: -r[1]):
        print(f"| {where} | {n} |")
    print(f"\n| modules over {MAX_MODULE} lines | lines |\n|---|---:|")
    for where, n in sorted(mods, key=lambda r: -r[1]):
        print(f"| {where} | {n} |")
    print(f"\n{len(funcs)} function(s) and {len(mods)} module(s) over the limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
