"""The restructure's shape targets hold for the whole library: no function over 60 lines, and the core imports none
of the layers above it (not even by name). Modules are split by concept, not by size: their lengths are printed
by bench/code_shape.py, not capped."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_shape():
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "bench" / "code_shape.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_long_functions():
    funcs, _ = _code_shape().offenders(ROOT)
    assert funcs == []


def test_the_checker_finds_an_offender(tmp_path):
    pkg = tmp_path / "toydiff"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (pkg / "long.py").write_text(f"def too_long():\n{body}\n" + "\n" * 400)
    for other in ("image_track", "apps"):
        (tmp_path / other).mkdir()
    funcs, mods = _code_shape().offenders(tmp_path)
    assert [n for _, n in funcs] == [62] and funcs[0][0].endswith("too_long")
    assert mods == [("toydiff/long.py", 462)]


def test_the_core_names_no_layer_above_it():
    pattern = re.compile(r"^\s*(from|import)\s+(image_track|apps)\b|['\"](image_track|apps)[.:]", re.M)
    hits = [p.relative_to(ROOT).as_posix() for p in (ROOT / "toydiff").rglob("*.py") if pattern.search(p.read_text())]
    assert hits == []
