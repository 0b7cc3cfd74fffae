"""The deferred imports of tinyrobust, all of them.

TensorFlow and QKeras take seconds to load and most commands (export from a directory, validate a
built export, bench kernels, flash) never touch a Keras model, so every module that needs the
frontend asks for it here, when it needs it; only `converter/frontend/` imports TensorFlow. The
command line imports each command's workflow when that command runs: the robustness attacks (ART)
and the demo (scikit-learn) take seconds to import, which `tinyrobust --help` should not pay.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def frontend() -> ModuleType:
    from .converter import frontend as module

    return module


def workflow(name: str) -> ModuleType:
    """tinyrobust.workflows.<name>, e.g. "export" or "robustness.command"."""
    return importlib.import_module(f"{__package__}.workflows.{name}")
