"""The --fidelity modes: which tensors get int16 activations (converter/passes/widths.py does it).

Kept free of heavy imports: the CLI reads these names to build its parser.
"""

from __future__ import annotations

from typing import Literal

Fidelity = Literal["fast", "balanced", "exact"]
FIDELITIES: tuple[Fidelity, ...] = ("exact", "balanced", "fast")
DEFAULT_FIDELITY: Fidelity = "exact"
FIDELITY_HELP = (
    "activation precision. exact: int16 activations on every tensor whose grid comes from "
    "calibration, and int16 outputs; balanced: int16 only where the tensor stays within the model's largest "
    "int8 one (deeper layers, the head), and int16 outputs; fast: int8 everywhere (least RAM, fastest). "
    "A quantizer's grid stays int8 in every mode: it is exact there")
