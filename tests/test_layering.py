"""The layering of the library: no import circle anywhere in toydiff/, image_track/, apps/ (imports inside
functions and under ``if TYPE_CHECKING:`` count), no module importing its own package's ``__init__``, and the core
importing neither layer above it. The checker (bench/code_shape.py) is itself checked on a throw-away package."""

import importlib.util
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shape():
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "bench" / "code_shape.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_circle_in_the_library(shape):
    assert shape.import_circles(ROOT) == []


def test_no_module_imports_its_own_package_init(shape):
    assert shape.own_package_imports(ROOT) == []


def test_toydiff_imports_neither_image_track_nor_apps(shape):
    graph = shape.import_graph(ROOT)
    up = sorted((m, t) for m, ts in graph.items() if m.split(".")[0] == "toydiff" for t in ts
                if t.split(".")[0] in ("image_track", "apps"))
    assert up == []


def _package(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_checker_finds_a_function_level_circle(shape, tmp_path):
    _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import g\n\ndef f():\n    return g()\n",
        "pkg/b.py": "def g():\n    from pkg import a  # only when called\n    return a\n",
        "pkg/c.py": "import pkg.a\n",  # imports into the circle, is not part of it
    })
    assert shape.import_circles(tmp_path, ("pkg",)) == [["pkg.a", "pkg.b"]]


def test_the_checker_finds_a_type_only_circle_and_a_relative_one(shape, tmp_path):
    _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/engine.py": "from pkg.hooks import Hook\n",
        "pkg/hooks.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.engine import Trainer
            class Hook: ...
            """,
        "pkg/sub/__init__.py": "",
        "pkg/sub/x.py": "from .y import Y\n",
        "pkg/sub/y.py": "from . import x\nY = 1\n",
    })
    assert shape.import_circles(tmp_path, ("pkg",)) == [["pkg.engine", "pkg.hooks"], ["pkg.sub.x", "pkg.sub.y"]]


def test_the_checker_finds_an_import_of_the_own_package_init(shape, tmp_path):
    _package(tmp_path, {"pkg/__init__.py": "X = 1\n", "pkg/sub/__init__.py": "", "pkg/sub/m.py": "from pkg import X\n",
                        "pkg/ok.py": "from pkg import sub\n"})  # a submodule by name is not the __init__
    assert shape.own_package_imports(tmp_path, ("pkg",)) == [("pkg.sub.m", "pkg")]
