"""tinyrobust: deploy ternary QKeras models on STM32H7 and prove on target that nothing was lost.

Packages: converter/ (model → Program: frontend, IR and passes, ops, lowering, reference, memory
plan), firmware/ (codegen, boards, budget, builds, kernel runner), targets/ (host, QEMU, Renode,
serial), workflows/ (export, validate, robustness, bench, demo); cli.py parses and dispatches.
docs/ARCHITECTURE.md is the map.
"""

from __future__ import annotations

__version__ = "0.1.0"

# convert(path, calibration=..., packing=...) → DeployedModel; .predict(x) runs the bit-exact reference.
from .converter.pipeline import DeployedModel, convert  # noqa: E402

__all__ = ["convert", "DeployedModel", "__version__"]
