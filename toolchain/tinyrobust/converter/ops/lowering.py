"""Helpers every family's lowering uses: options, output clamps and requantisation multipliers.

Every real-valued quantity becomes an int32 bias, a (multiplier, shift) pair or an int8 table in
the lowering, once; the reference and the C only ever see integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import packing
from ..ir import Graph, Grid, Node, UnsupportedModelError
from ..quantmath import check_left_shift_headroom, quantize_multiplier
from .base import Clamp, Op

PACKINGS = {"t2": packing.T2, "trit5": packing.TRIT5}
INT8_ABS_MAX = 128  # largest |q| of an int8 value (and of q − zero_point's int8 part)
ABS_MAX = {8: INT8_ABS_MAX, 16: 32768}  # by activation bits


@dataclass(frozen=True)
class LowerOptions:
    packing: str = "t2"  # "t2" (2-bit) or "trit5" (1.6-bit) for ternary and binary weights

    def __post_init__(self) -> None:
        if self.packing not in PACKINGS:
            raise UnsupportedModelError(f"packing '{self.packing}' unknown; choose one of {', '.join(PACKINGS)}")

    @property
    def ternary_format(self) -> str:
        return PACKINGS[self.packing]


def where(node: Node) -> str:
    return f"layer '{node.name}'"


def grids(graph: Graph, node: Node) -> tuple[list[Grid], Grid]:
    """The input grids and the output grid of a node (every one is set after assign_grids)."""
    ins = [graph.tensors[t].grid for t in node.inputs]
    out = graph.tensors[node.output].grid
    if out is None or any(g is None for g in ins):
        raise AssertionError(f"{where(node)}: lowering needs every grid assigned")
    return ins, out  # type: ignore[return-value]


def output_clamp(grid: Grid, relu: bool) -> Clamp:
    """The int8 (or int16) range of an output on `grid`; a fused relu clips at the grid's zero."""
    lo = max(grid.qmin, grid.zero_point) if relu else grid.qmin
    return Clamp(int(lo), int(grid.qmax))


def multipliers(real: np.ndarray, bound: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (q31 multiplier, shift) for `real`, refusing a left shift that could overflow
    an accumulator bounded by `bound`."""
    mults, shifts = [], []
    for r, b in zip(np.atleast_1d(real), np.atleast_1d(bound), strict=True):
        m, s = quantize_multiplier(float(r))
        try:
            check_left_shift_headroom(int(b), s)
        except OverflowError as exc:
            raise UnsupportedModelError(f"{where}: {exc}") from exc
        mults.append(m)
        shifts.append(s)
    return np.array(mults, dtype=np.int32), np.array(shifts, dtype=np.int32)


def multiplier(real: float, bound: int, where: str) -> tuple[int, int]:
    """One (q31 multiplier, shift) pair, as multipliers() does it."""
    m, s = multipliers(np.array([real]), np.array([bound]), where)
    return int(m[0]), int(s[0])


@dataclass(frozen=True)
class NewTensor:
    """A tensor the lowering adds (e.g. an input requantised onto a concat's grid)."""

    name: str
    shape: tuple[int, ...]
    grid: Grid
    source: str


@dataclass(frozen=True)
class Lowered:
    """What lowering one IR node gives: its ops, in order, and any tensors it introduced."""

    ops: tuple[Op, ...]
    tensors: tuple[NewTensor, ...] = ()
    notes: tuple[str, ...] = ()  # for the export report: what this lowering could not do exactly
