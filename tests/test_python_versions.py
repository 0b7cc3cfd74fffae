"""Python 3.10-3.13: the range the pinned TensorFlow stack has wheels for, declared in pyproject.toml and
kept by the code (no syntax or standard-library module newer than 3.10 outside a version check)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "toolchain").rglob("*.py")) + sorted((REPO / "tests").rglob("*.py"))
# Standard-library modules that 3.10 lacks, and the backport that stands in for each.
NEWER_MODULES = {"tomllib": "tomli"}


def _pyproject() -> str:
    return (REPO / "pyproject.toml").read_text()


def test_requires_python_is_the_tensorflow_wheel_range():
    # tensorflow-cpu 2.21.0 publishes cp310, cp311, cp312 and cp313 wheels and nothing else.
    assert re.search(r'^requires-python = ">=3.10,<3.14"$', _pyproject(), re.M)
    assert re.search(r'^target-version = "py310"$', _pyproject(), re.M)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_parses_as_python_3_10(path):
    ast.parse(path.read_text(), str(path), feature_version=(3, 10))


def test_feature_version_check_fires_on_3_11_syntax():
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))


def _unguarded_imports(tree: ast.AST) -> list[str]:
    """Imports of NEWER_MODULES not inside an `if sys.version_info …` block."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            guarded.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [n for n in names if n.split(".")[0] in NEWER_MODULES and id(node) not in guarded]
    return found


def test_newer_stdlib_modules_are_imported_behind_a_version_check():
    offenders = {str(p.relative_to(REPO)): _unguarded_imports(ast.parse(p.read_text())) for p in SOURCES}
    assert not {path: bad for path, bad in offenders.items() if bad}
    for module, backport in NEWER_MODULES.items():
        assert re.search(rf'"{backport}[^"]*; python_version < \'3.11\'"', _pyproject()), module


def test_unguarded_import_check_fires():
    assert _unguarded_imports(ast.parse("import tomllib\n")) == ["tomllib"]
    assert _unguarded_imports(ast.parse("import sys\nif sys.version_info >= (3, 11):\n    import tomllib\n")) == []


def test_boards_load_with_either_parser():
    from tinyrobust.firmware import boards

    assert boards.tomllib.__name__ == ("tomllib" if sys.version_info >= (3, 11) else "tomli")
    assert boards.load_board("nucleo_h743zi").name == "nucleo_h743zi"
