"""Per-tensor requantisation from one int8 grid to another: tr_requantize_s8
(firmware/tr_nn/tr_requantize_s8.c). What a standalone relu or quantizer activation lowers to, and
how a concat brings an input onto its output grid.

  out = clamp(requantize(q + input_offset, mult, shift) + output_offset, activation)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Grid
from .arith import byte_table, output_stage
from .base import Clamp, Op, OpFamily, OpFn
from .lowering import INT8_ABS_MAX, multiplier, output_clamp


@dataclass(frozen=True)
class RequantizeParams:
    """tr_nn_requantize_params plus the element count of the call's dims."""

    elements: int
    input_offset: int  # −z_in
    output_offset: int
    mult: int
    shift: int
    activation: Clamp


def requantize_tensor(x: np.ndarray, p: RequantizeParams) -> np.ndarray:
    return output_stage(np.asarray(x, dtype=np.int64) + p.input_offset, p.mult, p.shift, p.output_offset,
                        p.activation.min, p.activation.max)


def requantize_op(name: str, src: str, dst: str, gi: Grid, go: Grid, relu: bool, shape: tuple[int, ...]) -> Op:
    """An op moving tensor `src` (grid gi) onto grid go as `dst`."""
    mult, shift = multiplier(gi.scale / go.scale, 2 * INT8_ABS_MAX, f"layer '{name}'")
    params = RequantizeParams(int(np.prod(shape)), -gi.zero_point, go.zero_point, mult, shift,
                              output_clamp(go, relu))
    return Op(FAMILY.kernels[None], name, (src,), dst, params)


def _reference(op: Op) -> OpFn:
    """requantize_tensor() looked up in its 256-entry table (computed by requantize_tensor() itself)."""
    table = byte_table(lambda x: requantize_tensor(x, op.params), 1)
    return lambda xs: table(xs[0])


FAMILY = OpFamily(
    name="requantize",
    params_type=RequantizeParams,
    kernels={None: "tr_requantize_s8"},
    arrays=(),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.elements,
)
