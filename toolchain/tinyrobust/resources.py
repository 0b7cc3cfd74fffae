"""Where the non-Python parts live: the repo's top level in a checkout, `_data/` in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`firmware_templates`, `boards` or `renode`."""
    for candidate in (_PACKAGE.parents[1] / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinyrobust resource folder '{name}' is missing from this installation")
