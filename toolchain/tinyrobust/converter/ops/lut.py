"""A 256-entry int8 table indexed by the input value: tr_lut_s8 (firmware/tr_nn/tr_lut_s8.c).

sigmoid and tanh become tables: exact on the grids by construction (the function is evaluated
once per input level, offline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Grid
from ..quantmath import round_half_away
from .base import ArraySpec, Op, OpFamily, OpFn

FUNCTIONS = {
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
}


@dataclass(frozen=True)
class LutParams:
    """The element count of the call's dims (the table is the op's array)."""

    elements: int


def lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """out = table[q + 128]."""
    table = np.asarray(table, dtype=np.int8)
    if table.shape != (256,):
        raise ValueError("LUT must hold 256 int8 entries")
    return table[np.asarray(x, dtype=np.int64) + 128]


def table(function: str, gi: Grid, go: Grid) -> np.ndarray:
    """`function` on every level of gi, rounded onto go (half away from zero) and clamped."""
    q = np.arange(-128, 128, dtype=np.float64)
    y = FUNCTIONS[function](gi.scale * (q - gi.zero_point))
    return np.clip(round_half_away(y / go.scale) + go.zero_point, go.qmin, go.qmax).astype(np.int8)


def lut_op(name: str, src: str, dst: str, function: str, gi: Grid, go: Grid, shape: tuple[int, ...]) -> Op:
    return Op(FAMILY.kernels[None], name, (src,), dst, LutParams(int(np.prod(shape))),
              {"table": table(function, gi, go)})


def _reference(op: Op) -> OpFn:
    t = op.arrays["table"]
    return lambda xs: lut(xs[0], t)


FAMILY = OpFamily(
    name="lut",
    params_type=LutParams,
    kernels={None: "tr_lut_s8"},
    arrays=(ArraySpec("table", "int8_t", fast=True),),
    inputs_per_call=1,
    reference=_reference,
    macs=lambda p: p.elements,
)
