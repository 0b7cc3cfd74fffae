"""A 256-entry int8 table indexed by the input value: tr_lut_s8 (firmware/tr_nn/tr_lut_s8.c).

sigmoid and tanh, and QKeras activation quantizers that are not a plain requantisation, become
tables: exact on the grids by construction (the function is evaluated once per input level, offline).
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


def input_levels(gi: Grid) -> np.ndarray:
    """The real value of every int8 code −128…127 on gi: the table's index order."""
    return gi.scale * (np.arange(-128, 128, dtype=np.float64) - gi.zero_point)


def onto_grid(y: np.ndarray, go: Grid) -> np.ndarray:
    """Real values rounded onto go (half away from zero) and clamped: one table."""
    return np.clip(round_half_away(np.asarray(y, np.float64) / go.scale) + go.zero_point, go.qmin,
                   go.qmax).astype(np.int8)


def table(function: str, gi: Grid, go: Grid) -> np.ndarray:
    """`function` on every level of gi, rounded onto go."""
    return onto_grid(FUNCTIONS[function](input_levels(gi)), go)


def off_grid_steps(y: np.ndarray, entries: np.ndarray, gi: Grid, go: Grid) -> float:
    """How far, in output steps, the table's entries are from the values y they stand for (only the
    codes gi uses)."""
    used = slice(gi.qmin + 128, gi.qmax + 129)
    deployed = go.scale * (entries[used].astype(np.float64) - go.zero_point)
    return float(np.abs(deployed - y[used]).max() / go.scale)


def table_op(name: str, src: str, dst: str, entries: np.ndarray, shape: tuple[int, ...]) -> Op:
    return Op(FAMILY.kernels[None], name, (src,), dst, LutParams(int(np.prod(shape))),
              {"table": np.asarray(entries, dtype=np.int8)})


def lut_op(name: str, src: str, dst: str, function: str, gi: Grid, go: Grid, shape: tuple[int, ...]) -> Op:
    return table_op(name, src, dst, table(function, gi, go), shape)


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
