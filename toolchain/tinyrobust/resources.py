"""Where the non-Python parts live: the repo's top level in a checkout, `_data/` in a wheel."""

from __future__ import annotations

from pathlib import Path

from .errors import EnvironmentProblem

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]


def resource_dir(name: str) -> Path:
    """`firmware`, `firmware_templates`, `boards` or `renode`."""
    for candidate in (_CHECKOUT / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise EnvironmentProblem(f"tinyrobust resource folder '{name}' is missing from this installation")


def checkout_file(relative: str) -> Path | None:
    """A file of the source checkout (e.g. the committed example model), or None in an installed wheel."""
    candidate = _CHECKOUT / relative
    return candidate if candidate.is_file() and (_CHECKOUT / "pyproject.toml").is_file() else None


def example_file(name: str) -> Path | None:
    """A file of the shipped example (`examples/` in a checkout, `_data/examples/` in a wheel), or None."""
    for candidate in (_CHECKOUT / "examples" / name, _PACKAGE / "_data" / "examples" / name):
        if candidate.is_file():
            return candidate
    return None
